-- auditrun.json: the one place JSON is decoded and encoded, and null named
-- (modules require this one, not lua-cjson). Numbers written without a
-- fraction come back as Lua integers.
--
-- lua-cjson parses. Debian's lua-cjson 2.1.0 decodes every number as a
-- float, so an API's 16 would print as "16.0" in lines and CSV: whole
-- numbers are made integers again. Integers beyond 2^53 have already lost
-- digits in lua-cjson and stay floats.
--
-- A lone UTF-16 surrogate escape (\ud800 with no low half after it, or a
-- low half with none before) is replaced by U+FFFD, the replacement
-- character, and counted: lua-cjson refuses the whole text for one, and a
-- service that wrote one into a row would otherwise fail that page on
-- every rerun. Text that decodes as it is never pays for the repair.
local cjson = require("cjson")
local cjson_safe = require("cjson.safe")
local core = require("auditrun.core")

local M = {}

--- JSON null, as decoded and encoded (http.null is the same value).
M.null = cjson.null
--- encode(value) -> JSON text. Raises on what JSON cannot hold (a
--- function, a cycle, NaN, nesting deeper than 1000). Records rows have
--- their own writer (auditrun.records: sorted keys, in C).
M.encode = cjson.encode

local tointeger, mtype = math.tointeger, math.type

-- Every whole float of a decoded value as an integer, in place (in C:
-- csrc/ljson.c).
local integers = core.json_integers

local BACKSLASH = string.byte("\\")

--- repair_surrogates(text) -> text with each lone surrogate escape as
--- \ufffd, and how many there were. A valid pair stays; an escaped
--- backslash before "ud800" (\\ud800) is no escape and stays too.
function M.repair_surrogates(text)
  local parts, n, pos, copied = {}, 0, 1, 1
  while true do
    local s, e, hex = text:find("\\u([dD][89a-fA-F]%x%x)", pos)
    if not s then break end
    -- The backslash escapes only when an even number of backslashes precede it.
    local b = s - 1
    while b >= 1 and text:byte(b) == BACKSLASH do b = b - 1 end
    if (s - 1 - b) % 2 == 1 then
      pos = s + 1
    elseif tonumber(hex, 16) <= 0xdbff and text:find("^\\u[dD][c-fC-F]%x%x", e + 1) then
      pos = e + 7
    else
      parts[#parts + 1] = text:sub(copied, s - 1)
      parts[#parts + 1] = "\\ufffd"
      n, pos, copied = n + 1, e + 1, e + 1
    end
  end
  if n == 0 then return text, 0 end
  parts[#parts + 1] = text:sub(copied)
  return table.concat(parts), n
end

--- decode(text[, counts]) -> value | nil, message. JSON null is json.null.
--- counts, when given, gets `surrogates`: how many lone surrogates were
--- replaced (0 when none).
function M.decode(text, counts)
  local value, err = cjson_safe.decode(text)
  local repaired = 0
  if value == nil then
    if type(text) ~= "string" then return nil, err end
    local mended
    mended, repaired = M.repair_surrogates(text)
    if repaired == 0 then return nil, err end
    value = cjson_safe.decode(mended)
    if value == nil then return nil, err end
  end
  if counts then counts.surrogates = repaired end
  if type(value) == "table" then return integers(value) end
  if mtype(value) == "float" then
    local i = tointeger(value)
    if i and i > -2^53 and i < 2^53 then return i end
  end
  return value
end

return M
