-- A task keeps the process alive until it ends.
spawn(function() sleep(0.05); print("task done") end)
print("main done")
