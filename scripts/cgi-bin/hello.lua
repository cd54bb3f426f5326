-- hello.lua: a CGI program in Lua. The server runs it with sockplay itself
-- (a file ending in .lua needs no execute bit); os.getenv reads the CGI
-- meta-variables, io.read the request body, print writes the response.
-- A Status header sets the response status; Location redirects.

if arg[1] == "--help" then
  print("hello.lua: a CGI program; http_server.lua --cgi-bin DIR runs it with sockplay for /cgi-bin/hello.lua?a=1")
  return
end

local method = os.getenv("REQUEST_METHOD") or "GET"
local query = os.getenv("QUERY_STRING") or ""

-- /cgi-bin/hello.lua?go=/somewhere: send the client elsewhere.
local target = query:match("go=([^&]+)")
if target then
  print("Status: 302 Found")
  print("Location: " .. target)
  print("Content-Type: text/plain")
  print("")
  print("see " .. target)
  return
end

-- What goes into HTML is escaped: the query is whatever the client sent.
local function escape(s)
  return (s:gsub("[&<>\"]", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;"}))
end

local params = {}
for key, value in query:gmatch("([^&=]+)=([^&]*)") do
  params[#params + 1] = escape(key) .. " = " .. escape(value)
end
local body = method == "POST" and io.read("a") or ""

print("Status: 200 OK")
print("Content-Type: text/html; charset=utf-8")
print("")
print("<!doctype html><title>hello.lua</title>")
print("<h1>Hello from Lua</h1>")
print("<p>" .. escape(method .. " " .. (os.getenv("SCRIPT_NAME") or "?") .. (os.getenv("PATH_INFO") or "")) .. "</p>")
if #params > 0 then print("<p>query: " .. table.concat(params, ", ") .. "</p>") end
if body ~= "" then print("<p>" .. #body .. " bytes of body</p>") end
