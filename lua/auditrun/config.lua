-- auditrun.config: where a client's settings come from. Three layers, the
-- later winning: a profile of the config file ($AUDITRUN_CONFIG, else
-- ~/.config/auditrun/config.lua), the environment (AUDITRUN_<KEY>), and
-- the table a script passes. An empty variable counts as unset; an unknown
-- key is an error, never silently ignored. Every error names where the bad
-- value came from.
local errors = require "auditrun.errors"

local M = {}

-- Data centers, from the union of the Graph API's and the legacy Web API's
-- tables. FedRAMP is the one host off the graph-<dc> pattern.
local DC = {
  "au", "ca", "cn", "us", "fr", "de", "jp", "kr", "ne", "za", "sg", "ch", "uk", "gov", "we", "uae",
  "qa", "aos2", "gcp-au", "gcp-we", "gcp-jp", "gcp-us", "gcp-kr",
}
M.REGIONS = { fedramp = "https://graphusgovapi.online15.net/insights" }
for _, dc in ipairs(DC) do
  M.REGIONS[dc] = "https://graph-" .. dc .. ".avepointonlineservices.com/insights"
end

-- Identity services by environment (register-app-and-sign-in.md).
M.IDENTITY = {
  commercial = "https://identity.avepointonlineservices.com",
  gov = "https://identity-gov.avepointonlineservices.com",
  aos2 = "https://identity-aos2.avepointonlineservices.com",
  fedramp = "https://identity.online15.net",
}
local ENVIRONMENT_OF = { gov = "gov", aos2 = "aos2", fedramp = "fedramp" }

M.DEFAULT_SCOPE = "insights.graph.readwrite.all"

-- Every key a profile, the environment or a script may set.
M.KEYS = {
  insights_url = "string", insights_region = "string", identity_url = "string",
  client_id = "string", cert = "string", key = "string", cert_password = "string",
  cert_password_file = "string", client_secret = "string", client_secret_file = "string",
  scope = "string", ca_file = "string", audience = "string", kid = "string", max_jobs = "number",
}
-- Never shown in messages.
local SECRET = { cert_password = true, client_secret = true }

local function fail(message) return nil, errors.new("config", message) end

local function env_name(key) return "AUDITRUN_" .. key:upper() end

-- The environment, with empty meaning unset; tests pass their own.
local function reader(source)
  source = source or os.getenv
  return function(name)
    local v = source(name)
    if v == "" then return nil end
    return v
  end
end

function M.default_path(getenv)
  getenv = getenv or reader()
  local explicit = getenv("AUDITRUN_CONFIG")
  if explicit then return explicit, true end
  local home = getenv("HOME")
  return home and (home .. "/.config/auditrun/config.lua"), false
end

local function check_layer(layer, where)
  for k, v in pairs(layer) do
    if type(k) ~= "string" or not M.KEYS[k] then
      return fail(string.format("%s: unknown key '%s'", where, tostring(k)))
    end
    local want = M.KEYS[k]
    if want == "number" then
      v = tonumber(v)
      if not v or v ~= math.floor(v) or v < 1 then
        return fail(string.format("%s: '%s' must be a whole number of at least 1", where, k))
      end
      layer[k] = math.floor(v)
    elseif type(v) ~= "string" then
      return fail(string.format("%s: '%s' must be a string", where, k))
    end
  end
  return layer
end

--- Reads the named profile of a config file; a missing file is no error
--- unless it was asked for by name.
function M.read_file(path, profile, required)
  local f = io.open(path, "r")
  if not f then
    if required then return fail("config file " .. path .. " cannot be read") end
    return {}
  end
  f:close()
  -- A config file is data: it runs with no globals at all.
  local chunk, err = loadfile(path, "t", {})
  if not chunk then return fail("config file " .. err) end
  local ok, profiles = pcall(chunk)
  if not ok then return fail("config file " .. path .. ": " .. tostring(profiles)) end
  if type(profiles) ~= "table" then
    return fail("config file " .. path .. " must return a table of profiles")
  end
  for name, p in pairs(profiles) do
    if type(name) ~= "string" or type(p) ~= "table" then
      return fail("config file " .. path .. ": each profile is name = { key = value, ... }")
    end
  end
  local chosen = profiles[profile or "default"]
  if not chosen then
    if profile then return fail(string.format("config file %s has no profile '%s'", path, profile)) end
    return {}
  end
  local copy = {}
  for k, v in pairs(chosen) do copy[k] = v end
  return check_layer(copy, string.format("config file %s, profile '%s'", path, profile or "default"))
end

local function read_secret_file(path, key)
  local f = io.open(path, "rb")
  if not f then return fail(string.format("%s: cannot read %s", key, path)) end
  local s = f:read("a")
  f:close()
  s = s:gsub("\r?\n$", "")
  if s == "" then return fail(string.format("%s: %s is empty", key, path)) end
  return s
end

--- load(explicit, {profile=, config_path=, getenv=}) -> settings | nil, err. The result has
--- insights_url, identity_url, client_id, scope, ca_file, audience, kid,
--- max_jobs, and either cert (+ key, password) or secret; `sources` says
--- where each came from.
function M.load(explicit, opts)
  opts = opts or {}
  local getenv = reader(opts.getenv)
  local profile = opts.profile or getenv("AUDITRUN_PROFILE")
  local path, named = M.default_path(getenv)
  if opts.config_path then path, named = opts.config_path, true end
  local layers = {}
  if path then
    local file, err = M.read_file(path, profile, named or profile ~= nil)
    if not file then return nil, err end
    layers[#layers + 1] = { file, string.format("config file %s", path) }
  elseif profile then
    return fail("profile '" .. profile .. "' asked for, but there is no config file (set AUDITRUN_CONFIG)")
  end
  local env = {}
  for k in pairs(M.KEYS) do env[k] = getenv(env_name(k)) end
  local checked, err = check_layer(env, "environment")
  if not checked then return nil, err end
  layers[#layers + 1] = { env, "environment" }
  if explicit then
    local copy = {}
    for k, v in pairs(explicit) do copy[k] = v end
    checked, err = check_layer(copy, "connect{}")
    if not checked then return nil, err end
    layers[#layers + 1] = { copy, "connect{}" }
  end

  -- A layer that names the Insights URL or region replaces both from the
  -- layers below; the same for a certificate against a secret.
  local groups = {
    insights_url = "endpoint", insights_region = "endpoint",
    cert = "cred", key = "cred", cert_password = "cred", cert_password_file = "cred",
    client_secret = "cred", client_secret_file = "cred",
  }
  local s, sources = {}, {}
  for _, layer in ipairs(layers) do
    local values, where = layer[1], layer[2]
    local touched = {}
    for k in pairs(values) do if groups[k] then touched[groups[k]] = true end end
    for k, g in pairs(groups) do
      if touched[g] and values[k] == nil then s[k], sources[k] = nil, nil end
    end
    for k, v in pairs(values) do s[k], sources[k] = v, where end
  end
  local function from(k) return sources[k] == "environment" and env_name(k) or sources[k] end

  if s.insights_url and s.insights_region then
    return fail(string.format("give insights_url (%s) or insights_region (%s), not both",
      from("insights_url"), from("insights_region")))
  end
  if s.insights_region then
    local region = s.insights_region:lower()
    if not M.REGIONS[region] then
      local known = {}
      for r in pairs(M.REGIONS) do known[#known + 1] = r end
      table.sort(known)
      return fail(string.format("unknown region '%s' (%s); known: %s", s.insights_region,
        from("insights_region"), table.concat(known, " ")))
    end
    s.insights_url = M.REGIONS[region]
    s.identity_url = s.identity_url or M.IDENTITY[ENVIRONMENT_OF[region] or "commercial"]
  end
  if not s.insights_url then
    return fail("no Insights endpoint: set AUDITRUN_INSIGHTS_URL or AUDITRUN_INSIGHTS_REGION")
  end
  if not s.insights_url:match("^https?://[^/]+") then
    return fail(string.format("insights_url '%s' (%s) is not an http(s) URL", s.insights_url, from("insights_url")))
  end
  s.insights_url = s.insights_url:gsub("/+$", "")
  s.identity_url = s.identity_url or M.IDENTITY.commercial
  if not s.client_id then return fail("no client id: set AUDITRUN_CLIENT_ID") end
  s.scope = s.scope or M.DEFAULT_SCOPE

  if s.client_secret and s.client_secret_file then
    return fail("give client_secret or client_secret_file, not both")
  end
  if s.cert_password and s.cert_password_file then
    return fail("give cert_password or cert_password_file, not both")
  end
  local has_secret = s.client_secret or s.client_secret_file
  if s.cert and has_secret then
    return fail(string.format("both a certificate (%s) and a client secret (%s) are configured: keep one",
      from("cert"), from(s.client_secret and "client_secret" or "client_secret_file")))
  end
  if not s.cert and not has_secret then
    return fail("no credentials: set AUDITRUN_CERT (with AUDITRUN_CERT_PASSWORD or _FILE) or AUDITRUN_CLIENT_SECRET")
  end
  if s.key and not s.cert then return fail("a key file was given without its certificate (AUDITRUN_CERT)") end
  if s.client_secret_file then
    local v, e = read_secret_file(s.client_secret_file, "client_secret_file")
    if not v then return nil, e end
    s.client_secret = v
  end
  if s.cert_password_file then
    local v, e = read_secret_file(s.cert_password_file, "cert_password_file")
    if not v then return nil, e end
    s.cert_password = v
  end
  s.client_secret_file, s.cert_password_file = nil, nil
  s.sources = sources
  return setmetatable(s, { __tostring = function(t)
    local parts = {}
    for k in pairs(M.KEYS) do
      if t[k] ~= nil then parts[#parts + 1] = k .. "=" .. (SECRET[k] and "(hidden)" or tostring(t[k])) end
    end
    table.sort(parts)
    return "config{" .. table.concat(parts, ", ") .. "}"
  end })
end

return M
