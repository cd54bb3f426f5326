print("hello from a file")
from_file = "kept"
