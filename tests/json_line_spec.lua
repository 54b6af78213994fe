-- The JSON text of records rows written in C (csrc/ljson.c) is the text
-- records.lua writes in Lua, byte for byte; what C does not write (mixed
-- keys, NaN, a function) falls back to Lua, and decoded integers come
-- back as integers.
local cjson = require("cjson")
local core = require("auditrun.core")
local json = require("auditrun.json")
local records = require("auditrun.records")
local time = require("auditrun.time")

local ARRAY = getmetatable(records.array())
local ORDER = { "eventDate", "userName", "a", "b", "ip" }
local SET = { eventDate = true, userName = true, a = true, b = true, ip = true }

-- records.lua's line of a row, without C: the declared columns, then the others sorted.
local function lua_line(row)
  local cols, seen, extra = {}, {}, {}
  for _, c in ipairs(ORDER) do cols[#cols + 1], seen[c] = c, true end
  for k in pairs(row) do
    if type(k) == "string" and not seen[k] then extra[#extra + 1] = k end
  end
  table.sort(extra)
  for _, k in ipairs(extra) do cols[#cols + 1] = k end
  local parts = {}
  for _, k in ipairs(cols) do
    if row[k] ~= nil then parts[#parts + 1] = cjson.encode(k):gsub("\\/", "/") .. ":" .. records.encode(row[k]) end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

describe("records lines in C", function()
  it("escape every byte as lua-cjson does, '/' left bare", function()
    for b = 0, 255 do
      local s = string.char(b) .. "x/" .. string.char(b)
      local want = (cjson.encode(s):gsub("\\/", "/"))
      assert.equal(want, core.json_encode(s, ARRAY))
      assert.equal("{" .. want .. ":1}", core.json_line({}, { [s] = 1 }, ARRAY))
    end
  end)

  it("write numbers as lua-cjson does", function()
    for _, n in ipairs { 0, -0.0, 17, 17.0, -5, 0.1, 1 / 3, 99999999999999, 100000000000000, 1e14, 2 ^ 53,
                         12345678901234567, math.mininteger, math.maxinteger, 1e300, -2.5e-300, 123456.789 } do
      assert.equal(cjson.encode(n), core.json_encode(n, ARRAY))
    end
  end)

  it("give the text records.lua gives, for rows of every kind", function()
    math.randomseed(42)
    local R = math.random
    local function text()
      local t = {}
      for i = 1, R(0, 5) do t[i] = R(3) == 1 and string.char(R(0, 255)) or string.char(R(97, 100)) end
      return table.concat(t)
    end
    local value
    local function tbl(depth)
      local kind, t = R(5), {}
      if kind == 1 then return {} end
      if kind == 2 then return records.array() end
      if kind == 3 then
        for i = 1, R(4) do t[i] = value(depth + 1) end
        return t
      end
      for _ = 1, R(5) do t[text()] = value(depth + 1) end
      return t
    end
    function value(depth)
      local kind = R(depth > 3 and 5 or 7)
      if kind == 1 then return text() end
      if kind == 2 then return R(-1000, 1000) end
      if kind == 3 then return (R() - 0.5) * 10 ^ R(-20, 20) end
      if kind == 4 then return R(2) == 1 end
      if kind == 5 then return cjson.null end
      return tbl(depth)
    end
    for _ = 1, 3000 do
      local row = {}
      for _ = 1, R(0, 8) do row[R(2) == 1 and ORDER[R(#ORDER)] or text()] = value(1) end
      if R(10) == 1 then row[R(3)] = "not a column" end
      assert.equal(lua_line(row), core.json_line(ORDER, row, ARRAY))
      assert.equal(lua_line(row), core.json_line(ORDER, row, ARRAY, SET))
    end
  end)

  it("leave to Lua what it does not write, which records.encode still writes", function()
    local mixed = { "a", x = 1 }
    assert.is_nil(core.json_encode(mixed, ARRAY))
    assert.equal('{"1":"a","x":1}', records.encode(mixed))
    assert.is_nil(core.json_line({}, { v = 0 / 0 }, ARRAY))
    assert.is_nil(core.json_line({}, { v = print }, ARRAY))
    assert.is_nil(core.json_line({}, setmetatable({}, { __index = function() return 1 end }), ARRAY))
    assert.equal("[]", core.json_encode(records.array(), ARRAY))
    assert.equal("{}", core.json_encode({}, ARRAY))
  end)

  it("turn whole floats of a decoded value into integers", function()
    local v = json.decode('{"a":16,"b":[1.5,2,{"c":-0.0}],"d":9007199254740993,"e":1e3}')
    assert.equal("integer", math.type(v.a))
    assert.equal("float", math.type(v.b[1]))
    assert.equal("integer", math.type(v.b[2]))
    assert.equal("integer", math.type(v.b[3].c))
    assert.equal("float", math.type(v.d))
    assert.equal(1000, v.e)
    assert.equal("integer", math.type(v.e))
  end)

  it("read plain ISO 8601 times in C to the value and type auditrun.time gives", function()
    assert.equal(1735689600, core.iso_time("2025-01-01"))
    assert.equal("integer", math.type(core.iso_time("2025-01-01T10:20:30Z")))
    assert.equal(1735689600 + 37230, core.iso_time("2025-01-01T10:20:30Z"))
    assert.equal(1735689600 + 37200, core.iso_time("2025-01-01 10:20"))
    assert.equal(1735689600 + (37230 + tonumber("0.125")), core.iso_time("2025-01-01T10:20:30.125Z"))
    assert.equal("float", math.type(core.iso_time("2025-01-01T10:20:30.125")))
    -- Anything else is left to auditrun.time, which still reads it.
    for _, s in ipairs { "2025-01-01T10:20:30+01:00", "01/05/2022 10:00:00 AM", "2025-13-01", "2025-01-01T24:00",
                         "2025-01-01T10:20:30.Z", "2025-01-01X", "/Date(1735689600000)/" } do
      assert.is_nil(core.iso_time(s))
    end
    assert.equal(1735689600 + 37230 - 3600, time.parse("2025-01-01T10:20:30+01:00"))
    assert.equal(1735689600, time.read("/Date(1735689600000)/"))
  end)
end)
