-- show prints a call's results the way the comparison reads them: how
-- many, and each one, with object addresses left out.
local function repr(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "userdata" then return (tostring(v):gsub(": 0x%x+", "")) end
  if type(v) == "table" then return "table" end
  return tostring(v)
end

return function(label, ...)
  local out = {}
  for i = 1, select("#", ...) do out[i] = repr((select(i, ...))) end
  print(label .. " [" .. select("#", ...) .. "] " .. table.concat(out, ", "))
end
