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
local errors = require("auditrun.errors")
local util = require("auditrun.util")
-- What only a connection, a call or a run needs loads on first use.
local auth = util.lazy "auditrun.auth"
local catalog = util.lazy "auditrun.catalog"
local client = util.lazy "auditrun.client"
local config = util.lazy "auditrun.config"
local settings_module = util.lazy "auditrun.insights.settings"
local endpoints = util.lazy "auditrun.insights.endpoints"
local jobs = util.lazy "auditrun.jobs"
local jwt = util.lazy "auditrun.jwt"
local paging = util.lazy "auditrun.paging"
local runs = util.lazy "auditrun.run"

local M = {}

M.MAX_JOBS = 5

--- The two compiled catalogues: graph and legacy.
M.catalogues = setmetatable({}, { __index = function(t, api)
  if api ~= "graph" and api ~= "legacy" then return nil end
  local c = catalog.new(api, endpoints[api])
  rawset(t, api, c)
  return c
end })

local Client = {}

-- site_id and site_ids answer with their rows as the paged reads do.
local ROWS = { "values", "results" }

-- Sites, one at a time, for a walk that was given none: every site the
-- tenant's site overview lists, as the URL or id the walk needs.
function Client:all_values(want)
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
      local id = paging.rows_of(body, ROWS)[1]
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
    for _, row in ipairs(paging.rows_of(body, ROWS)) do batch[#batch + 1] = row.siteId end
    return batch[1]
  end
end

--- export_once(run, key, name, params, opts) -> file | nil, err: export,
--- remembered in `run` (auditrun.run, or a state from auditrun.state)
--- under `key`, exactly once across kills and reruns: see auditrun.run.
function Client:export_once(run, key, name, params, opts)
  return runs.export(run, self, key, name, params, opts)
end

local GROUP_SUMMARIES = { graph = "group_summaries", legacy = "groups" }

--- groups(params): the group summaries of this API, row by row.
function Client:groups(params)
  return self:rows(GROUP_SUMMARIES[self.api], params)
end

local GraphClient, LegacyClient

--- session(cfg) -> the app's session for loaded Insights settings
--- (auditrun.config: the certificate, loaded here, or the client secret;
--- identity_url, client_id, scope, audience, kid, ca_file) | nil, err.
function M.session(cfg)
  local key
  if cfg.cert then
    local err
    key, err = jwt.load_key { cert = cfg.cert, key = cfg.key, password = errors.secret(cfg.cert_password) }
    if not key then return nil, err end
  end
  return auth.session {
    identity_url = cfg.identity_url, client_id = cfg.client_id, scope = cfg.scope,
    key = key, secret = not key and cfg.client_secret or nil,
    audience = cfg.audience, kid = cfg.kid, ca_file = cfg.ca_file,
  }
end

--- connect(settings, {profile=}) -> client | nil, err. Settings and their
--- sources are those of auditrun.config.
function M.connect(settings, opts)
  local cfg, err = config.load(settings_module.schema, settings, opts)
  if not cfg then return nil, err end
  local session, serr = M.session(cfg)
  if not session then return nil, serr end
  GraphClient = GraphClient or client.class(M.catalogues.graph, "auditrun.insights.graph", Client)
  LegacyClient = LegacyClient or client.class(M.catalogues.legacy, "auditrun.insights.legacy", Client)
  -- One tenant, one set of slots: its identity, API and app, shared by the
  -- auditrun processes of this machine.
  local tenant = string.format("insights %s %s %s", cfg.identity_url or "", cfg.insights_url, cfg.client_id or "")
  local limiter = jobs.limiter(tenant, math.min(cfg.max_jobs or M.MAX_JOBS, M.MAX_JOBS), { shared = true })
  local c = setmetatable({ api = "graph", catalogue = M.catalogues.graph, base = cfg.insights_url,
                           session = session, limiter = limiter, config = cfg }, GraphClient)
  c.legacy = setmetatable({ api = "legacy", catalogue = M.catalogues.legacy, base = cfg.insights_url,
                            session = session, limiter = limiter, config = cfg }, LegacyClient)
  return c
end

--- timeline(client, from, to, opts) -> the activity timeline's sources:
--- each user's activity export (auditrun.insights.timeline).
function M.timeline(c, from, to, opts)
  return require("auditrun.insights.timeline").sources(c, from, to, opts)
end

M.errors = errors
-- M.settings, the settings schema every vendor has (auditrun.insights.settings),
-- loads on first use, as the rest does.
return setmetatable(M, { __index = function(_, k) if k == "settings" then return settings_module.schema end end })
