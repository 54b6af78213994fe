-- auditrun.catalog: the engine under every vendor's request catalogue.
--
-- A vendor describes its API as data (auditrun.insights.endpoints,
-- auditrun.dealcloud.endpoints, ...): endpoints with a method, a path, a
-- kind, parameters, rules between parameters, where rows and cursors are,
-- and job families that say how a job's status maps to running, done and
-- failed. catalog.new compiles that data once; a catalogue then checks
-- parameters and builds the exact request, without touching the network.
--
-- An endpoint:
--   method, path (relative to the client's base URL, {name} for a path
--   parameter), doc (the document it comes from), kind:
--     "read"    a retrieval: the decoded answer, or with `paging` its rows
--     "submit"  starts a job of family `job`
--     "status"  a job's status, "file" a job's file (family `job`)
--     "action"  anything else
--   params    a list of parameters (below)
--   rules     a list of rules between parameters (below)
--   paging    {style=, rows={...}, ...} (auditrun.paging), plus `page`,
--             `offset`, `size` or `cursor`: the parameter names carrying
--             them, `default_size`, and `each`: a parameter whose list of
--             values is walked one value at a time
--
-- A parameter: name (as its document's table spells it), at (path, query
-- or body), type (string, integer, list, time, token, filters), required,
-- and where needed: wire (the name sent, when it differs), aliases, enum (a
-- list of {code, word...}: the first element is sent, any word names it),
-- max (list length or integer), min, digits (a string of digits), format
-- (times: strict, iso, legacy), encode (path: "once" or "twice"), keep
-- (characters the sample leaves unescaped), lower, null (sent as null when
-- absent), as_string (an integer sent as a string), list_of_one (a list of
-- one taken as its value), items = "integer" (a list of integers), zulu
-- (epoch seconds written with Z), ids and values (filters).
--
-- A rule is a list, its first element naming it:
--   { "not_after", a, b }                 a must not be later than b
--   { "required_unless", p, q, value, why } p is required unless q == value
--   { "one_of", a, b }                     a or b is required
--   { "not_value", p, value, why }        p must not be value
--   { "only_with", p, q, value, why }     p may be given only when q == value
local core = require("auditrun.core")
local errors = require("auditrun.errors")
local http = require("auditrun.http")
local json = require("auditrun.json")
local util = require("auditrun.util")

local M = {}

local NULL = json.null
local escape = core.url_escape

local function absent(v) return v == nil or v == NULL end

local function show(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if type(v) == "table" then return "a table" end
  return tostring(v)
end

-- ---- vocabularies -------------------------------------------------------------

--- word(s): a friendly name in one spelling: "Anyone link", "anyone-link"
--- and "anyone_link" are the same word.
local function word(s)
  return (s:lower():gsub("[%s_%-%(%)/]+", "_"):gsub("^_", ""):gsub("_$", ""))
end
M.word = word

local compiled = setmetatable({}, { __mode = "k" })

--- enum(entries) -> the compiled table for a list of {code, word...}:
--- by_word, by_code and label (code -> the first word). Compiled once
--- per list.
function M.enum(entries)
  if compiled[entries] then return compiled[entries] end
  local e = { entries = entries, by_word = {}, by_code = {}, label = {} }
  for _, entry in ipairs(entries) do
    local code = entry[1]
    e.by_code[tostring(code)] = code
    e.label[code] = entry[2] or code
    if type(code) == "string" then e.by_word[word(code)] = code end
    for i = 2, #entry do e.by_word[word(entry[i])] = code end
  end
  compiled[entries] = e
  return e
end

local function enum_help(e)
  local out = {}
  for _, entry in ipairs(e.entries) do
    if type(entry[1]) == "number" then
      out[#out + 1] = string.format("%d (%s)", entry[1], entry[2])
    else
      out[#out + 1] = string.format("'%s'", entry[1])
    end
  end
  return table.concat(out, ", ")
end

local function integer(v)
  if math.type(v) == "integer" then return v end
  if math.type(v) == "float" and v == math.floor(v) and v >= math.mininteger and v <= math.maxinteger then
    return math.tointeger(v)
  end
  if type(v) == "string" and v:match("^%-?%d+$") then return math.tointeger(tonumber(v)) end
  return nil
end

--- tables(list, title) -> a vendor's named tables ({kind = entries}) both
--- ways: t.name(kind, code) -> the documented name (codes given as numbers
--- or digit strings alike), t.id(kind, name_or_code) -> the code.
function M.tables(list, title)
  local compiled_tables = {}
  for kind, entries in pairs(list) do compiled_tables[kind] = M.enum(entries) end
  local function get(kind) return assert(compiled_tables[kind], "no " .. title .. " table " .. tostring(kind)) end
  return {
    name = function(kind, code)
      local e = get(kind)
      return e.label[code] or e.label[math.tointeger(tonumber(code)) or false]
    end,
    id = function(kind, v) return M.enum_value(get(kind), v) end,
  }
end

--- enum_value(e, v) -> the code a value names (a code, or any of its
--- words), or nil.
local function enum_value(e, v)
  if type(v) == "number" or (type(v) == "string" and v:match("^%-?%d+$")) then
    local code = e.by_code[tostring(integer(v) or v)]
    if code ~= nil then return code end
  end
  if type(v) == "string" then return e.by_word[word(v)] end
  return nil
end
M.enum_value = enum_value

-- ---- times ----------------------------------------------------------------------

local DAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
local FORMATS = {
  strict = "yyyy-MM-ddTHH:mm:ss",
  iso = "ISO 8601 (yyyy-MM-ddTHH:mm:ss, optionally with fractions and Z or an offset)",
  legacy = "yyyy-MM-ddTHH:mm:ss (optionally with fractions and Z)",
}

local function time_ok(s, format)
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return false end
  mo, d, h, mi, sec = tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > DAYS[mo] or h > 23 or mi > 59 or sec > 59 then return false end
  if mo == 2 and d == 29 and not (tonumber(y) % 4 == 0 and (tonumber(y) % 100 ~= 0 or tonumber(y) % 400 == 0)) then
    return false
  end
  if format == "strict" then return rest == "" end
  rest = rest:gsub("^%.%d%d?%d?%d?%d?%d?%d?", "", 1)
  if rest == "" or rest == "Z" then return true end
  return format == "iso" and rest:match("^[+-]%d%d:%d%d$") ~= nil
end

-- ---- values ---------------------------------------------------------------------

-- Normalizes one value of parameter p: a string, integer, list, or nil and
-- the rule it broke (the caller names the parameter).
local normalize = {}

function normalize.string(p, v)
  if type(v) == "number" and integer(v) then v = string.format("%d", integer(v)) end
  if type(v) ~= "string" then return nil, "must be a string, not " .. type(v) end
  if p.enum then
    local code = enum_value(p.enum, v)
    if code == nil then return nil, "must be one of " .. enum_help(p.enum) .. ", not " .. show(v) end
    return code
  end
  if v == "" and (p.required or p.at == "path") then return nil, "must not be empty" end
  if p.digits and not v:match("^%d+$") then return nil, "must be a number, not " .. show(v) end
  return v
end

function normalize.integer(p, v)
  local n
  if p.list_of_one and type(v) == "table" and #v == 1 then v = v[1] end
  if p.enum then
    n = enum_value(p.enum, v)
    if n == nil then return nil, "must be one of " .. enum_help(p.enum) .. ", not " .. show(v) end
  else
    n = integer(v)
    if n == nil then return nil, "must be an integer, not " .. show(v) end
  end
  if p.min and n < p.min then return nil, string.format("must be at least %d (got %d)", p.min, n) end
  if p.max and n > p.max then return nil, string.format("must be at most %d (got %d)", p.max, n) end
  if p.as_string then return string.format("%d", n) end
  return n
end

function normalize.time(p, v)
  -- Seconds since the epoch are written out in UTC.
  if math.type(v) == "integer" then
    v = os.date(p.zulu and "!%Y-%m-%dT%H:%M:%SZ" or "!%Y-%m-%dT%H:%M:%S", v)
  elseif type(v) ~= "string" then
    return nil, "must be a time string or seconds since the epoch, not " .. type(v)
  end
  if not time_ok(v, p.format) then
    return nil, string.format("must be a time in the format %s, not %s", FORMATS[p.format], show(v))
  end
  return v
end

function normalize.token(_, v)
  if type(v) ~= "string" then return nil, "must be the token string from the previous page, not " .. type(v) end
  return v
end

local function as_list(v)
  if type(v) ~= "table" then return { v } end
  local n = 0
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 then return nil end
    n = math.max(n, k)
  end
  if n ~= #v then return nil end
  return v
end

function normalize.list(p, v)
  local list = as_list(v)
  if not list then return nil, "must be a list (a Lua sequence)" end
  if p.max and #list > p.max then
    return nil, string.format("takes at most %d values (got %d)", p.max, #list)
  end
  local out = {}
  for i, item in ipairs(list) do
    local x, why
    if p.enum then
      x = enum_value(p.enum, item)
      if x == nil then return nil, string.format("value %d must be one of %s, not %s", i, enum_help(p.enum), show(item)) end
    elseif p.items == "integer" then
      x = integer(item)
      if x == nil then return nil, string.format("value %d must be an integer, not %s", i, show(item)) end
    else
      x, why = normalize.string({}, item)
      if x == nil then return nil, string.format("value %d %s", i, why) end
    end
    out[i] = x
  end
  -- An empty list would go out as {} (lua-cjson cannot tell): leave it out.
  if #out == 0 then return nil end
  return out
end

-- One filter value: an enum code (sent as a string), a time, or a string.
local function filter_value(id, spec, item, i)
  if spec and spec.enum then
    local x = enum_value(spec.enum, item)
    if x == nil then
      return nil, string.format("filter '%s' value %s must be one of %s", id, show(item), enum_help(spec.enum))
    end
    return string.format("%d", x)
  end
  if spec and spec.time then
    -- Epoch seconds are written as the samples write times (ending in Z).
    if math.type(item) == "integer" then item = os.date("!%Y-%m-%dT%H:%M:%SZ", item) end
    if type(item) ~= "string" or not time_ok(item, spec.time) then
      return nil, string.format("filter '%s' value %s must be a time in the format %s", id, show(item),
        FORMATS[spec.time])
    end
    return item
  end
  if type(item) ~= "string" then
    return nil, string.format("filter '%s' value %d must be a string, not %s", id, i, type(item))
  end
  return item
end

local COUNT = { "one", "two", "three" }

-- filters: the documented list of {id=, values=} or a map id -> values (ids
-- documented or snake_case); enum values by code or word; values go out as
-- strings, as in the samples. p.values says what each filter id takes.
function normalize.filters(p, v)
  if type(v) ~= "table" then return nil, "must be a table of filters" end
  local allowed = {}
  for _, id in ipairs(p.ids) do allowed[id], allowed[M.snake(id)] = id, id end
  local given = {}
  if v[1] ~= nil then
    if not as_list(v) then return nil, "must be a list of {id=, values=} or a map from filter id to values" end
    for i, f in ipairs(v) do
      if type(f) ~= "table" or type(f.id) ~= "string" then
        return nil, string.format("entry %d must be a table with id and values", i)
      end
      given[#given + 1] = { f.id, f.values }
    end
  else
    local keyed = {}
    for id, values in pairs(v) do
      if type(id) ~= "string" then return nil, "must be a list of {id=, values=} or a map from filter id to values" end
      local doc = allowed[id]
      if not doc then
        return nil, string.format("has no filter %s (valid: %s)", show(id), table.concat(p.ids, ", "))
      end
      if keyed[doc] then return nil, string.format("names filter '%s' twice", doc) end
      keyed[doc] = values
    end
    for _, id in ipairs(p.ids) do
      if keyed[id] ~= nil then given[#given + 1] = { id, keyed[id] } end
    end
  end
  local out = {}
  for _, f in ipairs(given) do
    local id = allowed[f[1]]
    if not id then
      return nil, string.format("has no filter %s (valid: %s)", show(f[1]), table.concat(p.ids, ", "))
    end
    local values = absent(f[2]) and {} or as_list(f[2])
    if not values then return nil, string.format("filter '%s' needs a list of values", id) end
    local spec = p.values and p.values[id]
    if spec and spec.max and #values > spec.max then
      return nil, string.format("filter '%s' takes at most %s values (got %d)", id, COUNT[spec.max] or spec.max,
        #values)
    end
    local strs = {}
    for i, item in ipairs(values) do
      local x, why = filter_value(id, spec, item, i)
      if x == nil then return nil, why end
      strs[i] = x
    end
    if #strs > 0 then out[#out + 1] = { id = id, values = strs } end
  end
  if #out == 0 then return nil end
  return out
end

-- ---- rules ----------------------------------------------------------------------

local rules = {}

-- Times in the same format compare as strings.
function rules.not_after(v, first, second)
  local a, z = v[first], v[second]
  if type(a) == "string" and type(z) == "string" and #a == #z and a > z then
    return string.format("parameter '%s' (%s) must not be later than '%s' (%s)", first, a, second, z)
  end
end

function rules.required_unless(v, name, other, value, why)
  if v[name] == nil and v[other] ~= value then
    return string.format("parameter '%s' is required unless '%s' is %s (%s)", name, other, tostring(value), why)
  end
end

function rules.one_of(v, a, b)
  if v[a] == nil and v[b] == nil then return string.format("parameter '%s' or '%s' is required", a, b) end
end

function rules.not_value(v, name, value, why)
  if v[name] == value then return string.format("parameter '%s' %s %s", name, tostring(value), why) end
end

function rules.only_with(v, name, other, value, why)
  if v[name] ~= nil and v[other] ~= value then
    return string.format("parameter '%s' needs '%s' %s (%s)", name, other, tostring(value), why)
  end
end

-- ---- names ----------------------------------------------------------------------

--- param(at, name, type, fields) -> a parameter's data (for catalogue
--- files): fields with at, name and type set.
function M.param(at, name, ty, o)
  o = o or {}
  o.at, o.name, o.type = at, name, ty
  return o
end

--- snake(name): "startPage" -> "start_page", "SiteURLs" -> "site_ur_ls".
function M.snake(name)
  return (name:gsub("(%l)(%u)", "%1_%2"):gsub("(%u)(%u%l)", "%1_%2"):lower())
end

-- ---- catalogues -----------------------------------------------------------------

local Catalog = {}
Catalog.__index = Catalog

local KINDS = { read = true, submit = true, status = true, file = true, action = true }
local PLACES = { path = true, query = true, body = true }

--- new(name, data) -> a catalogue.
---
--- data = {endpoints = {name = endpoint}, jobs = {family = {status=, file=,
--- id=, state=, zip=, extension=}}, title = the API's name in messages,
--- error_message = the path to the message in an error answer's JSON
--- ({"message"}, {"errors", 1, "detail"})}. Every spelling a parameter
--- answers to (its documented name, its wire name, its aliases and its
--- snake_case name, without regard to case) is checked here, so that no two
--- parameters of an endpoint share one.
function M.new(name, data)
  local cat = setmetatable({ name = name, title = data.title or name, endpoints = data.endpoints, jobs = data.jobs or {},
                             error_message = data.error_message, lookup = {} }, Catalog)
  for ename, def in pairs(cat.endpoints) do
    def.name = ename
    assert(KINDS[def.kind], ename .. ": unknown kind " .. tostring(def.kind))
    assert(def.job == nil or cat.jobs[def.job], ename .. ": unknown job family " .. tostring(def.job))
    local lookup = {}
    for _, p in ipairs(def.params) do
      assert(PLACES[p.at] and normalize[p.type], ename .. "." .. p.name .. ": bad place or type")
      if p.enum then p.enum = M.enum(p.enum.entries or p.enum) end
      for _, spec in pairs(p.values or {}) do
        if spec.enum then spec.enum = M.enum(spec.enum.entries or spec.enum) end
      end
      p.friendly = M.snake(p.name)
      p.wire = p.wire or p.name
      local spellings = { p.name, p.wire, p.friendly }
      for _, a in ipairs(p.aliases or {}) do spellings[#spellings + 1] = a end
      for _, s in ipairs(spellings) do
        s = s:lower()
        assert(lookup[s] == nil or lookup[s] == p, "two parameters spelled " .. s .. " in " .. ename)
        lookup[s] = p
      end
    end
    for _, r in ipairs(def.rules or {}) do assert(rules[r[1]], ename .. ": unknown rule " .. tostring(r[1])) end
    cat.lookup[def] = lookup
  end
  for fname, fam in pairs(cat.jobs) do
    assert(cat.endpoints[fam.status] and cat.endpoints[fam.file], "job family " .. fname .. " names no status or file")
  end
  return cat
end

--- list() -> the endpoint names, sorted.
function Catalog:list()
  return util.sorted_keys(self.endpoints)
end

--- definition(name) -> the endpoint's data; an unknown name raises.
function Catalog:definition(name, level)
  local def = self.endpoints[name]
  if not def then error("unknown " .. self.name .. " endpoint " .. tostring(name), (level or 1) + 1) end
  return def
end

local function invalid(self, def, fmt, ...)
  return nil, errors.new("invalid", string.format("%s %s: " .. fmt, self.name, def.name, ...),
    { endpoint = def.name, api = self.name })
end

-- Programmer mistakes raise, at the caller of build or canonical.
local function checked_definition(self, name, params)
  local def = self:definition(name, 3)
  if params ~= nil and type(params) ~= "table" then
    error("parameters of " .. name .. " must be a table, not " .. type(params), 3)
  end
  return def
end

-- The given parameters keyed by their definitions: every spelling is
-- taken, an unknown name or a parameter given twice is refused.
local function by_param(self, def, params)
  local lookup = self.lookup[def]
  local raw, seen = {}, {}
  for k, v in pairs(params or {}) do
    local p = type(k) == "string" and lookup[k:lower()]
    if not p then
      local known = {}
      for _, x in ipairs(def.params) do known[#known + 1] = x.name end
      return invalid(self, def, "unknown parameter %s (parameters: %s)", show(k), table.concat(known, ", "))
    end
    if seen[p] then
      return invalid(self, def, "parameter '%s' is given twice (as '%s' and '%s')", p.name, seen[p], k)
    end
    seen[p] = k
    if not absent(v) then raw[p] = v end
  end
  return raw
end

--- named(name, params) -> the parameters as given, keyed by their
--- documented names, values unchecked | nil, err. Callers that add
--- parameters of their own (the pager) start from this.
function Catalog:named(name, params)
  local def = checked_definition(self, name, params)
  local raw, err = by_param(self, def, params)
  if not raw then return nil, err end
  local out = {}
  for p, v in pairs(raw) do out[p.name] = v end
  return out
end

--- canonical(name, params) -> the parameters keyed by their documented
--- names, values checked and in the form they are sent | nil, err
function Catalog:canonical(name, params)
  local def = checked_definition(self, name, params)
  local raw, err = by_param(self, def, params)
  if not raw then return nil, err end
  local values = {}
  for _, p in ipairs(def.params) do
    local v = raw[p]
    if v ~= nil then
      local x, why = normalize[p.type](p, v)
      if why then return invalid(self, def, "parameter '%s' %s", p.name, why) end
      if x == nil and p.required then return invalid(self, def, "parameter '%s' needs at least one value", p.name) end
      values[p.name] = x
    elseif p.required then
      return invalid(self, def, "parameter '%s' is required", p.name)
    end
  end
  for _, r in ipairs(def.rules or {}) do
    local why = rules[r[1]](values, table.unpack(r, 2))
    if why then return invalid(self, def, "%s", why) end
  end
  return values
end

-- Undoes the escaping of the characters a sample leaves bare.
local function keep(s, chars)
  if not chars then return s end
  return (s:gsub("%%(%x%x)", function(hex)
    local c = string.char(tonumber(hex, 16))
    if chars:find(c, 1, true) then return c end
  end))
end

local function path_segment(p, v)
  if p.lower then v = v:lower() end
  local s = escape(v)
  if p.encode == "twice" then s = escape(s) end
  return keep(s, p.keep)
end

local function query_part(p, v)
  return keep(http.encode_query { { p.wire, v } }, p.keep)
end

--- build(name, params) -> request | nil, err.
---
--- request = {method=, path= (encoded, relative to the base URL), query=
--- (encoded, no '?', "" when none), body= (a table for lua-cjson, or
--- nil), name=, kind=, paging=, job=}.
function Catalog:build(name, params)
  local def = checked_definition(self, name, params)
  local values, err = self:canonical(name, params)
  if not values then return nil, err end
  local path = def.path
  local query, body = {}, nil
  for _, p in ipairs(def.params) do
    local v = values[p.name]
    if p.at == "path" then
      if v == nil then
        path = path:gsub("/{" .. p.name .. "}", "", 1)
      else
        local s = path_segment(p, v)
        path = path:gsub("{" .. p.name .. "}", function() return s end, 1)
      end
    elseif p.at == "query" then
      if v ~= nil then query[#query + 1] = query_part(p, v) end
    else
      body = body or {}
      if v ~= nil then
        body[p.wire] = v
      elseif p.null then
        body[p.wire] = NULL
      end
    end
  end
  if def.method ~= "GET" and def.method ~= "PATCH" then body = body or {} end
  return {
    name = name, kind = def.kind, method = def.method, path = path, query = table.concat(query, "&"), body = body,
    paging = def.paging, job = def.job,
  }
end

--- family(name) -> the job family's data.
function Catalog:family(name)
  return assert(self.jobs[name], "unknown job family " .. tostring(name))
end

return M
