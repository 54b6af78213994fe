-- auditrun.insights: the AvePoint Insights client. One connection speaks
-- the AvePoint Graph API (c) and the legacy Web API (c.legacy) on the same
-- host with the same token, token cache and export-job limit.
--
--   local c = auditrun.try(insights.connect())        -- settings: auditrun.config
--   for g in c:groups() do print(g.displayName) end   -- Graph group summaries
--   for g in c.legacy:groups() do ... end             -- legacy group summaries
--   local job = auditrun.try(c:user_permissions_export { email = guest, data_sources = "teams" })
--   auditrun.try(job:wait())
--   local file = auditrun.try(job:download { dir = "reports" })
--
-- Every documented endpoint is a method named as in auditrun.insights.
-- endpoints (c:endpoints() lists them): an export returns a job, a paged
-- retrieval returns an iterator over its rows, a job's file endpoint
-- downloads, anything else returns the decoded answer. Parameters are
-- checked before anything is sent.
local auth = require "auditrun.auth"
local config = require "auditrun.config"
local endpoints = require "auditrun.insights.endpoints"
local errors = require "auditrun.errors"
local http = require "auditrun.http"
local jobs = require "auditrun.jobs"
local paging = require "auditrun.paging"
local runs = require "auditrun.run"

local M = {}

M.MAX_JOBS = 5

-- Job ids: Graph sends strings (kept as given); the legacy API numbers,
-- which must not turn into "123.0".
local function id_string(v)
  if math.type(v) == "float" and v == math.floor(v) then return string.format("%d", v) end
  return tostring(v)
end

local Client = {}

local function url_for(self, req)
  return self.base .. req.path .. ((req.query and req.query ~= "") and ("?" .. req.query) or "")
end

-- The request a built endpoint becomes.
local function spec_for(self, req)
  return {
    method = req.method, url = url_for(self, req), json = req.body,
    -- Retrievals sent as POST only query; setting a tag twice is the same tag.
    idempotent = not req.job,
  }
end

function Client:request(opts)
  return self.session:request(opts)
end

local function build(self, name, params)
  return endpoints.build(self.api, name, params or {})
end

--- call(name, params) -> decoded answer, response | nil, err
function Client:call(name, params)
  local req, err = build(self, name, params)
  if not req then return nil, err end
  local res, rerr = self:request(spec_for(self, req))
  if not res then return nil, rerr end
  if res.body == "" then return http.null, res end
  local body, derr = http.decode(res, name)
  if body == nil then return nil, derr end
  return body, res
end

-- The documented name of the endpoint's parameter spelled like one of
-- `...` (compared without case), or nil.
local function param_name(def, ...)
  local wanted = {}
  for _, w in ipairs { ... } do wanted[w:lower()] = true end
  for _, p in ipairs(def.params) do
    if wanted[p.name:lower()] then return p.name end
  end
  return nil
end

-- The parameter that carries an opaque cursor (nextLink, token).
local function cursor_name(def)
  for _, p in ipairs(def.params) do
    if p.type == "token" then return p.name end
  end
  return nil
end

local PAGE_SIZE = 100

-- The pages of one paged walk: `base` holds documented names; the page
-- number or cursor goes in on top of it for each request.
local function walk(self, def, style, base)
  local size_p = param_name(def, "pageSize", "top")
  if size_p and base[size_p] == nil then base[size_p] = PAGE_SIZE end
  local cursor_p = style == "page" and param_name(def, "startPage") or cursor_name(def)
  assert(cursor_p, "no page or cursor parameter for " .. def.name)
  local first = base[cursor_p]
  local function fetch(cursor)
    local p = {}
    for k, v in pairs(base) do p[k] = v end
    p[cursor_p] = cursor
    return self:call(def.name, p)
  end
  return paging.pages { style = style, fetch = fetch, first_page = first, first_cursor = first,
                        page_size = style == "page" and tonumber(base[size_p]) or nil }
end

-- Sites, one at a time, for a walk that was given none: every site the
-- tenant's site overview lists, as the URL or id the walk needs.
local function all_sites(self, want)
  local urls = self:rows("site_overview", {})
  if want == "siteUrl" then
    return function()
      local row = urls()
      return row and row.siteUrl
    end
  end
  if self.api == "graph" then
    return function()
      local row = urls()
      if row == nil then return nil end
      local body, err = self:call("site_id", { siteUrl = row.siteUrl })
      if body == nil then error(err, 0) end
      local id = paging.rows_of(body)[1]
      if id == nil then
        error(errors.new("insights", "the site overview lists " .. tostring(row.siteUrl) .. " but it has no site id"), 0)
      end
      return id
    end
  end
  -- Legacy: getSiteIds takes up to 100 URLs at once.
  local batch, i = {}, 0
  return function()
    i = i + 1
    if batch[i] then return batch[i] end
    local list = {}
    for row in urls do
      list[#list + 1] = row.siteUrl
      if #list == 100 then break end
    end
    if #list == 0 then return nil end
    local body, err = self:call("site_ids", { siteUrls = list })
    if body == nil then error(err, 0) end
    batch, i = {}, 1
    for _, row in ipairs(paging.rows_of(body)) do batch[#batch + 1] = row.siteId end
    return batch[1]
  end
end

-- A per-site walk: the site parameter takes one site, a list of them, or
-- none for every site of the tenant; each site is paged in turn.
local function site_walk(self, def, base)
  local per_site = def.per_site
  local given = base[per_site]
  base[per_site] = nil
  local sites
  if given == nil then
    sites = all_sites(self, per_site)
  else
    local list = type(given) == "table" and given or { given }
    local i = 0
    sites = function()
      i = i + 1
      return list[i]
    end
  end
  local site, pages
  return function()
    while true do
      if pages then
        local body, n = pages()
        if body ~= nil then return body, n, site end
      end
      site = sites()
      if site == nil then return nil end
      local p = {}
      for k, v in pairs(base) do p[k] = v end
      p[per_site] = site
      pages = walk(self, def, def.cursor, p)
    end
  end
end

--- pages(name, params) -> iterator over (page body, page number[, site]);
--- rows(...) over the rows. Parameters are checked before the first
--- request; a bad one raises its error value, as a failed page does.
function Client:pages(name, params)
  local def = endpoints[self.api][name]
  if not def then error("unknown " .. self.api .. " Insights endpoint " .. tostring(name), 2) end
  if not def.paging then error("endpoint " .. name .. " is not paged", 2) end
  local base, err = endpoints.named(self.api, name, params)
  if not base then error(err, 0) end
  if def.paging == "site_walk" then return site_walk(self, def, base) end
  return walk(self, def, def.paging, base)
end

function Client:rows(name, params)
  return paging.each_row(self:pages(name, params))
end

-- How a job family (endpoints.families) reports on its jobs: the status
-- and file requests built from the catalogue, and where the answers keep
-- the status code and the job id.
local function family(self, name)
  local fam = assert(endpoints.families[name], "unknown job family " .. tostring(name))
  local function spec(endpoint, id)
    local req, err = endpoints.build(fam.api, endpoint, { [fam.id] = id })
    if not req then return nil, err end
    return { url = url_for(self, req) }
  end
  return {
    status = function(id) return spec(fam.status, id) end,
    file = function(id) return spec(fam.file, id) end,
    state = fam.state, zip = fam.zip, extension = fam.extension,
    job_id = function(body)
      local id = body[fam.id]
      return id ~= nil and id_string(id) or nil
    end,
  }
end

--- submit(name, params, {deadline=, on_post=}) -> job | nil, err. Waits for
--- one of the tenant's export slots first (on_post: see auditrun.jobs.submit).
function Client:submit(name, params, opts)
  local req, err = build(self, name, params)
  if not req then return nil, err end
  if not req.job then error("endpoint " .. name .. " is not an export", 2) end
  local fam = family(self, req.family)
  return jobs.submit {
    limiter = self.limiter, request = function(s) return self:request(s) end,
    spec = spec_for(self, req), job_id = fam.job_id, family = fam, name = name,
    deadline = opts and opts.deadline, on_post = opts and opts.on_post,
  }
end

--- job(id, name, {slot=}) -> the job object for an id an earlier run
--- submitted through export `name` (a rerun picks up its jobs instead of
--- submitting them again). With slot = true it first waits for one of the
--- tenant's export slots and holds it until the job is seen done or failed,
--- as a job submitted now would; otherwise it holds none.
function Client:job(id, name, opts)
  local def = endpoints[self.api][name]
  if not (def and def.job) then error("no " .. self.api .. " export named " .. tostring(name), 2) end
  local permit = opts and opts.slot and self.limiter:acquire() or nil
  return jobs.new { id = id_string(id), name = name, family = family(self, def.family), permit = permit,
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

--- export_once(run, key, name, params, opts) -> file | nil, err: export,
--- remembered in `run` (auditrun.run, or a state from auditrun.state)
--- under `key`, exactly once across kills and reruns: see auditrun.run.
function Client:export_once(run, key, name, params, opts)
  return runs.export(run, self, key, name, params, opts)
end

function Client:endpoints()
  return endpoints.list(self.api)
end

local GROUP_SUMMARIES = { graph = "group_summaries", legacy = "groups" }

--- groups(params): the group summaries of this API, row by row.
function Client:groups(params)
  return self:rows(GROUP_SUMMARIES[self.api], params)
end

--- download_file(name, params, {dir=}) -> file | nil, err: a job's file endpoint
--- (export_file, permission_export_file, ...) downloaded as a job would.
function Client:download_file(name, params, opts)
  local values, err = endpoints.canonical(self.api, name, params)
  if not values then return nil, err end
  local def = endpoints[self.api][name]
  local fam = family(self, def.family)
  local job = jobs.new { id = id_string(values[endpoints.families[def.family].id]), name = name, family = fam,
                         request = function(s) return self:request(s) end }
  return job:download { dir = (opts and opts.dir) or "." }
end

local function method_for(name, def)
  return function(self, params, opts)
    if def.job then return self:submit(name, params, opts) end
    if def.paging then return self:rows(name, params) end
    if def.kind == "file" then return self:download_file(name, params, opts) end
    return self:call(name, params)
  end
end

local function make_class(api)
  local class = {}
  for k, v in pairs(Client) do class[k] = v end
  for name, def in pairs(endpoints[api]) do
    if class[name] == nil then class[name] = method_for(name, def) end
  end
  class.__index = class
  class.__name = "auditrun.insights." .. api
  return class
end

local GraphClient, LegacyClient

--- connect(settings, {profile=}) -> client | nil, err. Settings and their
--- sources are those of auditrun.config.
function M.connect(settings, opts)
  local cfg, err = config.load(settings, opts)
  if not cfg then return nil, err end
  if cfg.ca_file then http.ca_file = cfg.ca_file end
  local session, serr = auth.from_config(cfg)
  if not session then return nil, serr end
  GraphClient = GraphClient or make_class("graph")
  LegacyClient = LegacyClient or make_class("legacy")
  local limiter = jobs.limiter(cfg.insights_url, math.min(cfg.max_jobs or M.MAX_JOBS, M.MAX_JOBS))
  local c = setmetatable({ api = "graph", base = cfg.insights_url, session = session, limiter = limiter,
                           config = cfg }, GraphClient)
  c.legacy = setmetatable({ api = "legacy", base = cfg.insights_url, session = session, limiter = limiter,
                            config = cfg }, LegacyClient)
  return c
end

M.errors = errors
return M
