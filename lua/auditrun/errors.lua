-- auditrun.errors: error values. Every expected failure is a table with a
-- `kind` ("timeout", "tls", "http", "auth", "job", ...), a `message`, and
-- where known `status`, `retryable` and a short `body` excerpt; tostring()
-- gives one readable line. Library functions return nil, err; scripts raise
-- with try().
local core = require "auditrun.core"

local M = {}

local EXCERPT = 300
local ERROR_META = getmetatable(core.error({}))

function M.new(kind, message, fields)
  local e = {}
  if fields then for k, v in pairs(fields) do e[k] = v end end
  e.kind, e.message = kind, message
  return core.error(e)
end

--- True when v is an error value (of the given kind, when one is given).
function M.is(v, kind)
  if type(v) ~= "table" or getmetatable(v) ~= ERROR_META then return false end
  return kind == nil or v.kind == kind
end

--- The first line or so of a body, for messages: never a whole page.
function M.excerpt(body)
  if type(body) ~= "string" or body == "" then return nil end
  local s = body:gsub("%s+", " ")
  if #s > EXCERPT then s = s:sub(1, EXCERPT) .. "..." end
  return s
end

--- try(v, err, ...): returns its arguments when v is not nil, raises err
--- otherwise. `local res = try(http.get(url))`.
function M.try(v, err, ...)
  if v == nil then
    if err == nil then err = M.new("error", "failed with no error value") end
    error(err, 0)
  end
  return v, err, ...
end

--- protect(fn): a function that returns nil, err where fn would raise an
--- error value (other errors still raise).
function M.protect(fn)
  return function(...)
    local r = table.pack(pcall(fn, ...))
    if r[1] then return table.unpack(r, 2, r.n) end
    if M.is(r[2]) then return nil, r[2] end
    error(r[2], 0)
  end
end

return M
