-- auditrun.client: a vendor's client class, made from its catalogue
-- (auditrun.catalog): every endpoint becomes a method, and a vendor's glue
-- adds what its API needs beyond that.
--
-- A "submit" returns a job (auditrun.jobs), a paged "read" an iterator over
-- its rows, a "file" downloads as a job's file does, anything else returns
-- the decoded answer.
--
-- A client object holds: catalogue, base (the URL paths are relative to),
-- session (anything with request(opts) -> res | nil, err: it adds the
-- vendor's credentials) and, for vendors with jobs, limiter.
local catalog = require("auditrun.catalog")
local config = require("auditrun.config")
local http = require("auditrun.http")
local jobs = require("auditrun.jobs")
local json = require("auditrun.json")
local paging = require("auditrun.paging")
local util = require("auditrun.util")

local M = {}

local Client = {}
M.Client = Client

--- Job ids are kept as strings; a number sent as JSON must not become
--- "123.0".
function M.id_string(v)
  if math.type(v) == "float" and v == math.floor(v) then return string.format("%d", v) end
  return tostring(v)
end

function Client:request(opts)
  return self.session:request(opts)
end

function Client:url_for(req)
  return self.base .. req.path .. ((req.query and req.query ~= "") and ("?" .. req.query) or "")
end

-- The request a built endpoint becomes.
function Client:spec_for(req)
  return {
    method = req.method, url = self:url_for(req), json = req.body,
    -- Retrievals sent as POST only query; setting a tag twice is the same tag.
    idempotent = req.kind ~= "submit",
  }
end

-- An error answer's own message (where the catalogue says it is) becomes
-- the error's message, as the API wrote it; a 404 or 401 also says which
-- setting to check (config.hint).
local function api_message(self, err)
  local hint = err.kind == "http" and self.config and config.hint(self.config, err.status)
  if hint then err.hint = hint end
  local path = self.catalogue.error_message
  if not (path and err.kind == "http" and err.response) then
    if hint then err.message = err.message .. "; " .. hint end
    return err
  end
  local v = json.decode(err.response.body or "")
  for _, k in ipairs(path) do
    if type(v) ~= "table" then return err end
    v = v[k]
  end
  if type(v) == "string" and v ~= "" then
    err.message = string.format("%s: %s (HTTP %d)", self.catalogue.title, v, err.status)
    err.api_message = v
  end
  if hint then err.message = err.message .. "; " .. hint end
  return err
end

--- call(name, params) -> decoded answer, response | nil, err
function Client:call(name, params)
  local req, err = self.catalogue:build(name, params or {})
  if not req then return nil, err end
  local res, rerr = self:request(self:spec_for(req))
  if not res then return nil, api_message(self, rerr) end
  if res.body == "" then return json.null, res end
  local body, derr = http.decode(res, name)
  if body == nil then return nil, derr end
  return body, res
end

-- The pages of one paged walk: `base` holds documented names; the page
-- number, offset or cursor goes in on top of it for each request.
-- `what`, when given, says which part of a longer walk this is (a window,
-- a site) in its errors; `at`, a position paging.pages gave, where it starts.
local function walk(self, def, base, what, at)
  local pg = def.paging
  if pg.size and base[pg.size] == nil then base[pg.size] = pg.default_size end
  local cursor_p = assert(pg.page or pg.offset or pg.cursor, "no page or cursor parameter for " .. def.name)
  -- The decoded page only: the response (and its body text, as long as
  -- the page) is not kept while the page's rows are handled.
  local function fetch_page(cursor)
    local p = util.copy(base)
    p[cursor_p] = cursor
    local body, err = self:call(def.name, p)
    if body == nil then return nil, err end
    return body
  end
  return paging.pages { style = pg.style, fetch = fetch_page, rows = pg.rows, next = pg.next, total = pg.total,
                        first = base[cursor_p], at = at, page_size = pg.size and tonumber(base[pg.size]),
                        ends_on_empty = pg.ends_on_empty,
                        name = self.catalogue.title .. " " .. def.name .. (what and (", " .. what) or "") }
end

-- A walk over each value of parameter `each`: one value, a list of them,
-- or, when none is given, every value the vendor's all_values(name) gives;
-- each value is paged in turn.
local function each_walk(self, def, base)
  local each = def.paging.each
  local given = base[each]
  base[each] = nil
  local values
  if given == nil then
    values = self:all_values(each)
  else
    local list = type(given) == "table" and given or { given }
    local i = 0
    values = function()
      i = i + 1
      return list[i]
    end
  end
  local value, pages
  return function()
    while true do
      if pages then
        local body, n = pages()
        if body ~= nil then return body, n, value end
      end
      value = values()
      if value == nil then return nil end
      local p = util.copy(base)
      p[each] = value
      pages = walk(self, def, p, each .. " " .. tostring(value))
    end
  end
end

--- all_values(name) -> iterator over every value of a walked parameter
--- that was not given; vendors that have such walks replace this.
function Client.all_values(_, name)
  error("parameter " .. name .. " needs a value", 3)
end

--- pages(name, params[, what, at]) -> iterator over (page body, page
--- number, where the next page starts (paging.pages)); rows(...) over the
--- rows.
---
--- For an endpoint walked over each value of a parameter, the third value
--- is that value instead. Parameters are checked before the first request;
--- a bad one raises its error value, as a failed page does. `what` names
--- this walk's part of a longer one (a window) in its errors; `at` (a
--- position paging.pages gave) is where it starts.
function Client:pages(name, params, what, at)
  local def = self.catalogue:definition(name, 2)
  if not def.paging then error("endpoint " .. name .. " is not paged", 2) end
  local base, err = self.catalogue:named(name, params)
  if not base then error(err, 0) end
  if def.paging.each then return each_walk(self, def, base) end
  return walk(self, def, base, what, at)
end

function Client:rows(name, params)
  local def = self.catalogue:definition(name, 2)
  return paging.each_row(self:pages(name, params), def.paging and def.paging.rows)
end

--- family(name) -> how a job family (catalogue jobs) reports on its jobs:
--- the status and file requests built from the catalogue, the state map,
--- and where a submit's answer keeps the job id.
function Client:family(name)
  local fam = self.catalogue:family(name)
  local function spec(endpoint, id)
    local req, err = self.catalogue:build(endpoint, { [fam.id] = id })
    if not req then return nil, err end
    return { url = self:url_for(req) }
  end
  return {
    status = function(id) return spec(fam.status, id) end,
    file = function(id) return spec(fam.file, id) end,
    state = fam.state, zip = fam.zip, extension = fam.extension, id = fam.id,
    job_id = function(body)
      local id = body[fam.id]
      return id ~= nil and M.id_string(id) or nil
    end,
  }
end

--- submit(name, params, {deadline=, on_post=}) -> job | nil, err. Waits for
--- one of the tenant's job slots first (on_post: see auditrun.jobs.submit).
function Client:submit(name, params, opts)
  local req, err = self.catalogue:build(name, params or {})
  if not req then return nil, err end
  if req.kind ~= "submit" then error("endpoint " .. name .. " does not start a job", 2) end
  local fam = self:family(req.job)
  return jobs.submit {
    limiter = self.limiter, request = function(s) return self:request(s) end,
    spec = self:spec_for(req), job_id = fam.job_id, family = fam, name = name,
    deadline = opts and opts.deadline, on_post = opts and opts.on_post,
  }
end

--- job(id, name, {slot=, permit=}) -> the job object for an id an earlier
--- run submitted through `name` (a rerun picks up its jobs instead of
--- submitting them again).
---
--- With slot = true it first waits for one of the tenant's job slots and
--- holds it until the job is seen done or failed, as a job submitted now
--- would; a permit given (a slot already held for it, e.g. a jobs.hold) is
--- held that way instead; otherwise it holds none.
function Client:job(id, name, opts)
  local def = self.catalogue.endpoints[name]
  if not (def and def.kind == "submit") then error("no " .. self.catalogue.name .. " job named " .. tostring(name), 2) end
  local permit = opts and (opts.permit or opts.slot and self.limiter:acquire()) or nil
  return jobs.new { id = M.id_string(id), name = name, family = self:family(def.job), permit = permit,
                    request = function(s) return self:request(s) end }
end

--- export(name, params, {dir=, deadline=, first_interval=}) -> file | nil,
--- err: submit, wait (first poll after first_interval, 1 s by default),
--- download. file = {path, name, size, sha256, job, reused}.
function Client:export(name, params, opts)
  opts = opts or {}
  local job, err = self:submit(name, params, opts)
  if not job then return nil, err end
  return job:finish(opts)
end

--- download_file(name, params, {dir=}) -> file | nil, err: a job's file
--- endpoint downloaded as a job's file is.
function Client:download_file(name, params, opts)
  local values, err = self.catalogue:canonical(name, params)
  if not values then return nil, err end
  local def = self.catalogue.endpoints[name]
  local fam = self:family(def.job)
  local job = jobs.new { id = M.id_string(values[fam.id]), name = name, family = fam,
                         request = function(s) return self:request(s) end }
  return job:download { dir = (opts and opts.dir) or "." }
end

function Client:endpoints()
  return self.catalogue:list()
end

local function method_for(name, def)
  return function(self, params, opts)
    if def.kind == "submit" then return self:submit(name, params, opts) end
    if def.paging then return self:rows(name, params) end
    if def.kind == "file" then return self:download_file(name, params, opts) end
    return self:call(name, params)
  end
end

--- class(catalogue, name, methods) -> a metatable for clients of that
--- catalogue: the generic methods, the vendor's `methods` over them, and
--- one method per endpoint whose name is not taken.
function M.class(catalogue, name, methods)
  local class = util.copy(Client)
  for k, v in pairs(methods or {}) do class[k] = v end
  for ename, def in pairs(catalogue.endpoints) do
    if class[ename] == nil then class[ename] = method_for(ename, def) end
  end
  class.__index = class
  class.__name = name
  return class
end

--- vendor(V, o) -> V: the part of a vendor module every vendor shares
--- (the contract is in auditrun.vendors).
---
--- o: name ("dealcloud"), title ("DealCloud", for messages), endpoints
--- (its catalogue's data), settings (its settings module), base (the
--- setting holding the API's URL), session(cfg) -> session | nil, err
--- (the vendor's credentials on each request), methods (its client
--- methods over the generic ones). Sets V.catalogue, V.settings, V.name
--- and V.id (its enum tables both ways, when it has some) and
--- V.connect(given, opts) -> client | nil, err, which loads the settings
--- (auditrun.config) and makes the client.
function M.vendor(V, o)
  V.catalogue = catalog.new(o.name, o.endpoints)
  V.settings = o.settings.schema
  if o.endpoints.enums then
    local tables = catalog.tables(o.endpoints.enums, o.title)
    V.name, V.id = tables.name, tables.id
  end
  local class
  function V.connect(given, opts)
    local cfg, err = config.load(V.settings, given, opts)
    if not cfg then return nil, err end
    local session, serr = o.session(cfg)
    if not session then return nil, serr end
    class = class or M.class(V.catalogue, "auditrun." .. o.name, o.methods)
    return setmetatable({ api = o.name, catalogue = V.catalogue, base = cfg[o.base], session = session, config = cfg },
      class)
  end
  return V
end

return M
