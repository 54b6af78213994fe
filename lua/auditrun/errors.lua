-- auditrun.errors: error values. Every expected failure is a table with a
-- `kind` and a `message`, and tostring() gives one readable line. Library
-- functions return nil, err; scripts raise with try().
--
-- Kinds are "timeout", "tls", "http", "auth", "job", ...; where known an
-- error also has `status`, `retryable` and a short `body` excerpt.
--
-- Secrets never show: whatever registers a secret (errors.secret: the
-- sign-in registers the bearer token, the client secret, each assertion and
-- the certificate password; vendor clients their keys) finds it replaced by
-- "[redacted]" in every error value made here, in tostring(err), in body
-- excerpts and in whatever goes through errors.redact (log lines), also
-- where a server echoes it percent- or JSON-encoded.
--
-- A secret of four bytes or more is replaced wherever it appears. A
-- shorter one would blank out parts of ordinary words, so it is replaced
-- where it stands as a whole value: with the start or end of the text or a
-- delimiter on each side (white space, a quote, = & , ; : ( ) [ ] { } < >),
-- as in a JSON string value ("abc"), a header value (key: abc) or a form
-- value (key=abc&...).
local core = require("auditrun.core")
local json_encode  -- auditrun.json's, loaded when a secret is first registered

local M = {}

local EXCERPT = 300
local ERROR_META = getmetatable(core.error({}))
local REDACTED = "[redacted]"

-- Patterns for every registered secret's spellings, longest first so a
-- secret that contains another is replaced whole; `whole` holds the
-- spellings of the short secrets, replaced only as whole values.
local SHORT = 4
local secrets, patterns, whole = {}, {}, {}
local DELIMITER = "[%s\"'=&,;:()%[%]{}<>]"

local function spellings(value)
  local out = { value }
  local escaped = core.url_escape(value)
  if escaped ~= value then out[#out + 1] = escaped end
  local plus = escaped:gsub("%%20", "+")  -- form encoding of a space
  if plus ~= escaped then out[#out + 1] = plus end
  json_encode = json_encode or require("auditrun.json").encode
  local json = json_encode(value):sub(2, -2)
  if json ~= value then out[#out + 1] = json end
  return out
end

local function rebuild()
  local list, short = {}, {}
  for value in pairs(secrets) do
    local into = #value < SHORT and short or list
    for _, v in ipairs(spellings(value)) do into[#into + 1] = v end
  end
  local longest = function(a, b) return #a > #b end
  table.sort(list, longest)
  table.sort(short, longest)
  patterns, whole = {}, short
  for i, v in ipairs(list) do patterns[i] = v:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0") end
end

-- s with each occurrence of v that stands as a whole value replaced.
local function redact_whole(s, v)
  local out, kept, from = {}, 1, 1
  while true do
    local i, j = s:find(v, from, true)
    if not i then break end
    if (i == 1 or s:sub(i - 1, i - 1):find(DELIMITER)) and (j == #s or s:sub(j + 1, j + 1):find(DELIMITER)) then
      out[#out + 1] = s:sub(kept, i - 1)
      out[#out + 1] = REDACTED
      kept = j + 1
      from = j + 1
    else
      from = i + 1
    end
  end
  if kept == 1 then return s end
  out[#out + 1] = s:sub(kept)
  return table.concat(out)
end

--- secret(value) -> value: from now on value is redacted wherever an error
--- or a log line would show it (one shorter than four bytes where it stands
--- as a whole value).
function M.secret(value)
  if type(value) == "string" and value ~= "" and not secrets[value] then
    secrets[value] = true
    rebuild()
  end
  return value
end

--- forget(value): a secret no longer in use (a replaced token) stops being
--- looked for.
function M.forget(value)
  if value ~= nil and secrets[value] then
    secrets[value] = nil
    rebuild()
  end
end

--- redact(s) -> s with every registered secret replaced; non-strings as they are.
function M.redact(s)
  if type(s) ~= "string" or s == "" then return s end
  for _, p in ipairs(patterns) do s = s:gsub(p, REDACTED) end
  for _, v in ipairs(whole) do s = redact_whole(s, v) end
  return s
end

-- Strings in an error value, and in the response it carries (body, headers).
local function scrub(t, depth)
  for k, v in pairs(t) do
    if type(v) == "string" then t[k] = M.redact(v)
    elseif type(v) == "table" and depth < 3 and getmetatable(v) == nil then scrub(v, depth + 1) end
  end
end

--- scrub(err) -> err, its strings redacted in place (for error values made
--- elsewhere, such as the C core's).
function M.scrub(err)
  if type(err) == "table" then scrub(err, 0) end
  return err
end

function M.new(kind, message, fields)
  local e = {}
  if fields then for k, v in pairs(fields) do e[k] = v end end
  e.kind, e.message = kind, message
  scrub(e, 0)
  return core.error(e)
end

-- tostring(err) for every error value, the C core's included.
ERROR_META.__tostring = function(e)
  return M.redact(string.format("%s: %s", tostring(e.kind or "error"), tostring(e.message or "(no message)")))
end

--- True when v is an error value (of the given kind, when one is given).
function M.is(v, kind)
  if type(v) ~= "table" or getmetatable(v) ~= ERROR_META then return false end
  return kind == nil or v.kind == kind
end

--- The first line or so of a body, for messages: never a whole page.
function M.excerpt(body)
  if type(body) ~= "string" or body == "" then return nil end
  local s = M.redact(body):gsub("%s+", " ")
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
