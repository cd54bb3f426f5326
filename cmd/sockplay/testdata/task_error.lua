spawn(function() error("task broke") end)
sleep(0.05)
print("main goes on")
