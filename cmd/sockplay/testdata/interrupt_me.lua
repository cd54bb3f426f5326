print("ready")
while true do sleep(1) end
