-- json.lua: encode Lua values as JSON, for scripts that write results
-- other programs read.
--
--   local json = require("json")
--   print(json.encode({sent = 300, sizes = {64, 1024}}, "  "))
--
-- A table whose keys are 1..n is an array; any other table is an object
-- with its keys sorted, so the same value always gives the same text. An
-- empty table is {} unless it was made with json.array(); a table of
-- number keys with more holes than values is an object. NaN and the
-- infinities have no JSON form and become null; so does a hole in an array.

local M = {}

local array_mt = {}

-- array marks t (default: a new table) as a JSON array even when empty.
function M.array(t)
  return setmetatable(t or {}, array_mt)
end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function number(x)
  if x ~= x or x == math.huge or x == -math.huge or x >= 1.7976931348623157e308 or x <= -1.7976931348623157e308 then
    return "null"
  end
  if x == math.floor(x) and x > -2 ^ 53 and x < 2 ^ 53 then
    return string.format("%d", x)
  end
  return string.format("%.10g", x)
end

-- is_array returns the length of t when its keys are exactly 1..n.
local function is_array(t)
  local n, count = 0, 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then return nil end
    if k > n then n = k end
    count = count + 1
  end
  if n == 0 and getmetatable(t) ~= array_mt then return nil end
  if n > 2 * count + 8 then return nil end -- mostly holes: an object says it better
  return n
end

local encode

local function encode_table(t, indent, depth, seen)
  if seen[t] then error("json.encode: a table contains itself", 0) end
  seen[t] = true
  local pad, inner, sep, colon = "", "", ",", ":"
  if indent then
    pad = "\n" .. string.rep(indent, depth)
    inner = "\n" .. string.rep(indent, depth + 1)
    sep, colon = ",", ": "
  end
  local parts = {}
  local n = is_array(t)
  local out
  if n then
    for i = 1, n do
      parts[i] = inner .. encode(t[i], indent, depth + 1, seen)
    end
    out = n == 0 and "[]" or "[" .. table.concat(parts, sep) .. pad .. "]"
  else
    local keys = {}
    for k in pairs(t) do
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" then
        error("json.encode: a " .. kt .. " cannot be an object key", 0)
      end
      keys[#keys + 1] = k
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for i, k in ipairs(keys) do
      parts[i] = inner .. quote(tostring(k)) .. colon .. encode(t[k], indent, depth + 1, seen)
    end
    out = #keys == 0 and "{}" or "{" .. table.concat(parts, sep) .. pad .. "}"
  end
  seen[t] = nil
  return out
end

function encode(v, indent, depth, seen)
  local t = type(v)
  if t == "nil" then
    return "null"
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "number" then
    return number(v)
  elseif t == "string" then
    return quote(v)
  elseif t == "table" then
    return encode_table(v, indent, depth, seen)
  end
  error("json.encode: cannot encode a " .. t, 0)
end

-- encode returns v as JSON text; with indent (such as "  ") it is spread
-- over lines, one value to a line.
function M.encode(v, indent)
  return encode(v, indent, 0, {})
end

return M
