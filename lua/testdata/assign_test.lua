-- Multiple assignment evaluates every value before it assigns any, as
-- Lua 5.1 does (gopher-lua on its own does not: see compile.go).

function TestSwap()
  local a, b = 1, 2
  a, b = b, a
  expect.eq(a, 2); expect.eq(b, 1)
  local x, y, z = 1, 2, 3
  x, y, z = z, x, y
  expect.eq(x, 3); expect.eq(y, 1); expect.eq(z, 2)
  g1, g2 = "one", "two"
  g1, g2 = g2, g1
  expect.eq(g1, "two"); expect.eq(g2, "one")
end

function TestValuesReadBeforeAssigning()
  local a, b = 0, 0
  a, b = a + 1, a + b
  expect.eq(a, 1); expect.eq(b, 0)
  local function choose(name, opt1, opt2)
    if type(name) ~= "string" then
      name, opt1, opt2 = "default", name, opt1
    end
    return name, opt1, opt2
  end
  local n, o1, o2 = choose(5, 6)
  expect.eq(n, "default"); expect.eq(o1, 5); expect.eq(o2, 6)
end

function TestTablesUpvaluesAndCalls()
  local t = {1, 2}
  t[1], t[2] = t[2], t[1]
  expect.eq(t[1], 2); expect.eq(t[2], 1)
  local i = 1
  i, t[i] = i + 1, 20
  expect.eq(i, 2); expect.eq(t[1], 20, "the index is read before i changes")
  local u, v = "u", "v"
  local function swap() u, v = v, u end
  swap()
  expect.eq(u, "v"); expect.eq(v, "u")
  local function three() return 7, 8, 9 end
  local p, q, r = 0, 0, 0
  p, q, r = three()
  expect.eq(p, 7); expect.eq(q, 8); expect.eq(r, 9)
  p, q = 1
  expect.eq(p, 1); expect.eq(q, nil)
  local called = false
  p, q = q, p, (function() called = true end)()
  expect.eq(called, true, "extra values are evaluated")
  expect.eq(p, nil); expect.eq(q, 1)
end

function TestLoadersCompileTheSameWay()
  local f = loadstring("local p, q = 1, 2; p, q = q, p; return p, q")
  local p, q = f()
  expect.eq(p, 2); expect.eq(q, 1)
  local pieces = {"local a, b = 'x', 'y' ", "a, b = b, a ", "return a .. b"}
  local i = 0
  expect.eq(load(function() i = i + 1; return pieces[i] end)(), "yx")
  local fn, err = loadstring("x =")
  expect.eq(fn, nil)
  expect.match(err, "EOF")
  expect.fails(function() dofile("/nonexistent/file.lua") end, "no such file")
end

-- string.match returns nil when nothing matches, as Lua 5.1's does (not
-- no value at all), so it can be passed on: tonumber(s:match("%d+")).
function TestStringMatchNoMatchIsNil()
  expect.eq(select("#", string.match("", "%d+")), 1)
  expect.eq(select("#", ("abc"):match("%d+")), 1)
  expect.eq(tonumber(("abc"):match("%d+")), nil)
  expect.eq(tonumber(("a42"):match("%d+")), 42)
  local a, b = ("k=v"):match("(%w)=(%w)")
  expect.eq(a, "k"); expect.eq(b, "v")
end
