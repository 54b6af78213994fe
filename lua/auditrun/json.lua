-- auditrun.json: the one place JSON is decoded. lua-cjson parses, then
-- numbers written without a fraction come back as Lua integers: Debian's
-- lua-cjson 2.1.0 decodes every number as a float, so an API's 16 would
-- print as "16.0" in lines and CSV. Integers beyond 2^53 have already lost
-- digits in lua-cjson and stay floats.
local cjson_safe = require "cjson.safe"

local M = {}

M.null = cjson_safe.null
M.encode = cjson_safe.encode

local tointeger, mtype = math.tointeger, math.type

local function integers(v)
  for k, x in pairs(v) do
    local t = type(x)
    if t == "table" then
      integers(x)
    elseif t == "number" and mtype(x) == "float" then
      local i = tointeger(x)
      if i and i > -2^53 and i < 2^53 then v[k] = i end
    end
  end
  return v
end

--- decode(text) -> value | nil, message. JSON null is json.null.
function M.decode(text)
  local value, err = cjson_safe.decode(text)
  if value == nil then return nil, err end
  if type(value) == "table" then return integers(value) end
  if mtype(value) == "float" then
    local i = tointeger(value)
    if i and i > -2^53 and i < 2^53 then return i end
  end
  return value
end

return M
