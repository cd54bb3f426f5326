-- args.lua: command-line options for sockplay scripts.
--
--   local args = require("args")
--   local opt = args.parse(arg, {
--     usage = "tcp_echo_server.lua [--host H] [--port P]",
--     about = "Echo every byte back to its sender.",
--     options = {
--       {"host", "127.0.0.1", "address to listen on"},
--       {"port", 0, "port to listen on (0: any free port)"},
--       {"verbose", false, "print each connection"},
--       {"header", {}, "a header to add (repeatable)"},
--     },
--   })
--
-- The default's type decides the option's: a string or number takes a value
-- (--port 8080 or --port=8080), false makes a flag, a table collects every
-- use. Words that are not options are returned in opt._ in order. --help
-- prints the usage and exits; a mistake prints one line and exits with 2.

local M = {}

local function usage(spec)
  local lines = {"usage: " .. spec.usage}
  if spec.about then lines[#lines + 1] = spec.about end
  if #spec.options > 0 then lines[#lines + 1] = "options:" end
  for _, o in ipairs(spec.options) do
    local name, default, help = o[1], o[2], o[3]
    local left = "--" .. name
    if type(default) ~= "boolean" then left = left .. " " .. string.upper(name) end
    local dflt = ""
    if type(default) == "string" or type(default) == "number" then
      dflt = " (default " .. tostring(default) .. ")"
    end
    lines[#lines + 1] = string.format("  %-22s %s%s", left, help or "", dflt)
  end
  lines[#lines + 1] = string.format("  %-22s %s", "--help", "show this help")
  return table.concat(lines, "\n")
end
M.usage = usage

local function fail(spec, msg)
  io.stderr:write(spec.usage:match("^(%S+)") .. ": " .. msg .. " (try --help)\n")
  os.exit(2)
end

-- fail(spec, msg) is a mistake in the command line: "script: msg (try
-- --help)" on stderr, exit status 2.
M.fail = fail

-- die(spec, what, msg, code) is a failure of the world that ends the
-- script, with the msg and code a call returned: "script: what: msg
-- (code)" on stderr, exit status 1.
function M.die(spec, what, msg, code)
  io.stderr:write(string.format("%s: %s: %s (%s)\n", spec.usage:match("^(%S+)"), what, tostring(msg), tostring(code)))
  os.exit(1)
end

function M.parse(argv, spec)
  local byname, opt = {}, {_ = {}}
  for _, o in ipairs(spec.options) do
    byname[o[1]] = o
    if type(o[2]) == "table" then opt[o[1]] = {} else opt[o[1]] = o[2] end
  end
  local i = 1
  while argv[i] ~= nil do
    local a = argv[i]
    if a == "--help" or a == "-h" then
      print(usage(spec))
      os.exit(0)
    elseif a == "--" then
      for j = i + 1, #argv do opt._[#opt._ + 1] = argv[j] end
      break
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([%w%-_]+)=(.*)$")
      name = name or a:sub(3)
      local o = byname[name]
      if not o then fail(spec, "unknown option --" .. name) end
      local kind = type(o[2])
      if kind == "boolean" then
        if value then fail(spec, "--" .. name .. " takes no value") end
        opt[name] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then fail(spec, "--" .. name .. " needs a value") end
        end
        if kind == "number" then
          local n = tonumber(value)
          if not n then fail(spec, "--" .. name .. " wants a number, not '" .. value .. "'") end
          opt[name] = n
        elseif kind == "table" then
          local list = opt[name]
          list[#list + 1] = value
        else
          opt[name] = value
        end
      end
    else
      opt._[#opt._ + 1] = a
    end
    i = i + 1
  end
  return opt
end

-- port checks a port number and exits with a clear message when it is not one.
function M.port(spec, p)
  if p ~= math.floor(p) or p < 0 or p > 65535 then
    fail(spec, "port " .. tostring(p) .. " is out of range 0-65535")
  end
  return p
end

---------------------------------------------------------------------------
-- Scripts whose options are of their own making (curl-style -X and -H,
-- a usage text written by hand) walk their words with these two instead.

-- usage_error(script, usage, msg) prints "script: msg" and then the usage
-- on stderr, and exits with 2.
function M.usage_error(script, usage, msg)
  io.stderr:write(script .. ": " .. msg .. "\n" .. usage .. "\n")
  os.exit(2)
end

-- words(argv, script, usage) goes through the words in order:
--   for a, value in args.words(arg, "my_script.lua", USAGE) do ... end
-- value() takes the word after a as a's value (a usage_error when there
-- is none). --help and -h print usage and exit with 0.
function M.words(argv, script, usage)
  local i = 0
  return function()
    i = i + 1
    local a = argv[i]
    if a == nil then return nil end
    if a == "--help" or a == "-h" then
      print(usage)
      os.exit(0)
    end
    local function value()
      i = i + 1
      if argv[i] == nil then M.usage_error(script, usage, a .. " needs a value") end
      return argv[i]
    end
    return a, value
  end
end

return M
