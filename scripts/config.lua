-- Shows the settings in effect for a profile and where each comes from (config file, environment, default), secrets masked
local cli = require("auditrun.cli")
local config = require("auditrun.config")
local errors = require("auditrun.errors")
local util = require("auditrun.util")
local vendors = require("auditrun.vendors")

local args = cli.parse({
  name = "config",
  summary = "Shows, for each vendor, every setting in effect for a profile, its value and where it comes from: " ..
    "the config file, the environment (AUDITRUN_<KEY>, which wins over the file) or a default. " ..
    "Secrets are masked.",
  examples = { "auditrun config", "auditrun config --profile contoso" },
}, ...)

-- A config file's warnings (one that others can read) go in the report.
local warnings = {}
config.warn = function(message) warnings[#warnings + 1] = message end

local profile = args.profile
local opts = { profile = profile }
local path, named = config.default_path()
local f = path and io.open(path)
if f then f:close() end
print(string.format("config file: %s%s", path or "(none: HOME and AUDITRUN_CONFIG are unset)",
  path and (f and "" or (named and " (cannot be read)" or " (none there)")) or ""))
print(string.format("profile:     %s", profile or "default"))

local unusable, ready = {}, 0
for _, vendor in ipairs(vendors) do
  local schema = require("auditrun." .. vendor .. ".settings").schema
  print()
  local layers, err = config.layers(schema, nil, opts)
  if not layers then
    error(err, 0)  -- the config file itself is wrong: every vendor would say the same
  end
  local values, sources = config.merge(schema, layers)
  local set = config.configured(schema, opts)
  local loaded, lerr = config.load(schema, nil, opts)
  -- Ready means a run could sign in with what is there: the vendor's
  -- session is made as a run makes it (Insights loads the certificate with
  -- its password), short of sending anything.
  local module = require("auditrun." .. vendor)
  if loaded and module.session then
    local session, serr = module.session(loaded)
    if not session then loaded, lerr = nil, serr end
  end
  local secret = {}
  for _, k in ipairs(schema.secrets or {}) do secret[k] = true end
  local keys = util.sorted_keys(config.keys(schema))
  print(string.format("%s: %s", schema.name,
    loaded and "ready" or (set and ("not ready: " .. lerr.message) or "not configured")))
  if not (set or loaded) then
    local needs, envs = config.setup(schema)
    print(string.format("  to use it, set %s in a profile of the config file, or %s in the environment", needs, envs))
  end
  if set or loaded then
    for _, k in ipairs(keys) do
      local v, where = (loaded or values)[k], sources[k]
      if v == nil and schema.defaults and schema.defaults[k] ~= nil then v = schema.defaults[k] end
      if where == "environment" then
        where = "environment " .. config.env_name(k)
      elseif where == nil and v ~= nil then
        local default = (schema.defaults or {})[k]
        where = default == v and "default" or "derived"
        for file_key, key in pairs(schema.files or {}) do
          if key == k and sources[file_key] then where = "read from " .. file_key end
        end
      end
      if v ~= nil and secret[k] then v = "********" end
      print(string.format("  %-28s %-48s %s", k, v ~= nil and tostring(v) or "-", where or "not set"))
    end
  end
  if set and not loaded then unusable[#unusable + 1] = schema.name end
  if loaded then ready = ready + 1 end
end
for _, w in ipairs(warnings) do print("\nwarning: " .. w) end
if ready == 0 and #unusable == 0 then
  error(errors.new("config", string.format("nothing is configured: write a profile in %s or set the environment "
    .. "variables named above (README: Connect your tenant)", path or "~/.config/auditrun/config.lua")), 0)
end
if #unusable > 0 then
  error(errors.new("config", table.concat(unusable, ", ") .. " configured but not ready (see above)"), 0)
end
