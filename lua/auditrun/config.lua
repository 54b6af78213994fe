-- auditrun.config: where a client's settings come from: a profile of the
-- config file, the environment, and the table a script passes, the later
-- winning. Every error names where the bad value came from.
--
-- Each vendor declares its settings as a schema (auditrun.<vendor>.settings).
-- The config file is $AUDITRUN_CONFIG, else ~/.config/auditrun/config.lua;
-- the environment's names are AUDITRUN_<KEY>. An empty variable counts as
-- unset; a key no vendor declares is an error, never silently ignored. The
-- result keeps where each value came from (`sources`).
--
-- A schema:
--   name       the vendor, for messages ("DealCloud")
--   keys       key -> "string" | "number" (a whole number of at least 1)
--   defaults   key -> value used when no layer sets it
--   secrets    keys never shown
--   files      key -> the key whose value it holds in a file (secret_file)
--   groups     key -> group: a layer that sets one key of a group
--              replaces the whole group from the layers below
--   attached   keys of a group that go with another of its keys (a
--              certificate's password): a layer that sets only those
--              replaces only those, keeping the rest of the group below
--   url        the key holding the API's base URL (http(s), no trailing /)
--   credential_urls  keys holding URLs that credentials are sent to: each
--              must be https, or plain http to loopback (M.cleartext_refusal)
--   url_example  what `url` looks like, for the hint on a 404 (M.hint)
--   credentials  the keys a 401 asks to check, those that are set (M.hint)
--   setup      what a first profile needs: keys or lists of alternatives
--              (M.setup; default `required`)
--   required   keys that must end up set: missing ones are named together
--   exclusive  lists of keys of which at most one may be set
--   resolve    optional fn(settings, from) -> nil | message: what the
--              vendor derives or checks beyond that (from(key) names the
--              source of a key)
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local util = require("auditrun.util")

local M = {}

-- Keys every vendor takes: the CA bundle, and the tenant's name for the
-- timeline's OCSF and ECS events (metadata.tenant_uid, organization.id).
M.COMMON = { ca_file = "string", tenant = "string" }

-- A schema's keys with the common ones: the settings modules are plain
-- data (they require nothing), so the common keys are added here.
local keys_of = setmetatable({}, { __mode = "k" })

--- keys(schema) -> {key = type}: the schema's keys and the common ones.
function M.keys(schema)
  local k = keys_of[schema]
  if not k then
    k = util.copy(M.COMMON)
    util.merge(k, schema.keys)
    keys_of[schema] = k
  end
  return k
end

-- Every vendor's keys (auditrun.vendors), so that a profile may hold the
-- settings of every vendor while a misspelt key is still refused. Read on
-- first use.
local declared, declared_secrets
local function declared_keys()
  if not declared then
    declared, declared_secrets = util.copy(M.COMMON), {}
    for _, vendor in ipairs(require("auditrun.vendors")) do
      local schema = require("auditrun." .. vendor .. ".settings").schema
      util.merge(declared, schema.keys)
      for _, k in ipairs(schema.secrets or {}) do declared_secrets[k] = true end
    end
  end
  return declared
end

local function fail(message) return nil, errors.new("config", message) end

--- lab() -> true when AUDITRUN_LAB=1 allows plain http:// to any host (a
--- test tenant on a private network), and TLS key logging.
function M.lab()
  return os.getenv("AUDITRUN_LAB") == "1"
end

-- The host of a URL, lower-cased, without user, port or IPv6 brackets.
local function host_of(url)
  local authority = url:match("^%a[%w+.-]*://([^/?#]*)")
  if not authority then return nil end
  authority = authority:gsub("^.*@", ""):lower()
  return authority:match("^%[(.*)%]") or authority:gsub(":%d*$", "")
end

local function loopback(host)
  return host == "localhost" or host == "::1" or (host and host:match("^127%.%d+%.%d+%.%d+$")) ~= nil
end

--- cleartext_refusal(url) -> nil when credentials may be sent to url, else
--- why not.
---
--- https always; plain http:// only to loopback (localhost, 127.0.0.0/8,
--- [::1]: nothing crosses a network), or to any host with AUDITRUN_LAB=1.
function M.cleartext_refusal(url)
  if url:match("^[Hh][Tt][Tt][Pp][Ss]://") then return nil end
  if url:match("^[Hh][Tt][Tt][Pp]://") and (loopback(host_of(url)) or M.lab()) then return nil end
  return "is not https: credentials and tokens are never sent in the clear but to loopback " ..
    "(AUDITRUN_LAB=1 allows it for a lab)"
end

function M.env_name(key) return "AUDITRUN_" .. key:upper() end

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

-- Checks a layer's keys and types; keys declared by another vendor are
-- kept out of this schema's view.
local function check_layer(schema, layer, where)
  local out = {}
  for k, v in pairs(layer) do
    local want = type(k) == "string" and (M.keys(schema)[k] or declared_keys()[k])
    if not want then
      return fail(string.format("%s: unknown key '%s'", where, tostring(k)))
    end
    if want == "number" then
      v = tonumber(v)
      if not v or v ~= math.floor(v) or v < 1 then
        return fail(string.format("%s: '%s' must be a whole number of at least 1", where, k))
      end
      v = math.floor(v)
    elseif type(v) ~= "string" then
      return fail(string.format("%s: '%s' must be a string", where, k))
    end
    if M.keys(schema)[k] then out[k] = v end
  end
  return out
end

-- The key a config file was setting at `line`: the last declared key
-- assigned on that line or above, looked for outside string literals so
-- that no part of a value is ever taken for a key.
local function key_at(path, line)
  local f = io.open(path, "r")
  if not f then return nil end
  local keys, found, n = declared_keys(), nil, 0
  for text in f:lines() do
    n = n + 1
    if n > line then break end
    -- whole strings become a bare placeholder; from an unclosed one on, nothing is kept
    text = text:gsub("%-%-.*$", ""):gsub('"[^"]*"', "S"):gsub("'[^']*'", "S"):gsub("[\"'%[].*$", "")
    for k in text:gmatch("([%a_][%w_]*)%s*=") do
      if keys[k] then found = k end
    end
  end
  f:close()
  return found
end

local LUA_WORDS = { ["nil"] = true, boolean = true, number = true, string = true, table = true,
                    ["function"] = true, userdata = true, thread = true, ["<eof>"] = true }

-- A load or run error of a config file, as "config file F, line N (key K):
-- what". Lua's own message quotes the source ("near '"s3cret } }'", "global
-- 's3cret'"), which may be a password: those parts are dropped.
local function load_error(path, msg)
  msg = tostring(msg)
  local rest = msg:sub(1, #path + 1) == path .. ":" and msg:sub(#path + 2) or msg
  local line, what = rest:match("^(%d+): (.*)$")
  what = (what or "it cannot be loaded"):gsub("%s+near%s.*$", ""):gsub("%s*%b()", function(p)
    return p:find("['\"]") and "" or p
  end):gsub("'([^']*)'", function(q)
    -- Lua's tokens and type names stay; anything else may be a value.
    if (#q <= 3 and q:match("^%p+$")) or LUA_WORDS[q] then return nil end
    return "'...'"
  end)
  local key = line and key_at(path, tonumber(line))
  return fail(string.format("config file %s%s%s: %s", path, line and (", line " .. line) or "",
    key and (" (key '" .. key .. "')") or "", what))
end

--- warn(message): where a config file's warning goes; stderr unless
--- replaced (`auditrun config` shows them in its report).
function M.warn(message)
  io.stderr:write("auditrun: warning: ", message, "\n")
end

local warned = {}  -- path -> true once its warning was given
local GROUP_OR_OTHER_READ = tonumber("044", 8)

-- A config file that holds a secret (one not read from the environment)
-- and that group or others can read gets one warning, as ssh gives for a
-- private key.
local function check_mode(path, profiles, from_env)
  if warned[path] then return end
  declared_keys()
  local holds = false
  for _, p in pairs(profiles) do
    for k, v in pairs(p) do
      if declared_secrets[k] and type(v) == "string" and not from_env[v] then holds = true end
    end
  end
  local mode = holds and files.mode(path)
  if mode and mode & GROUP_OR_OTHER_READ ~= 0 then
    warned[path] = true
    M.warn(string.format("config file %s holds a secret and group or others can read it (mode %04o): " ..
      "run chmod 600 %s", path, mode, path))
  end
end

-- Every profile of a config file: {name = table} | nil, err; nil, nil
-- when there is no file.
local function read_profiles(path)
  local f = io.open(path, "r")
  if not f then return nil, nil end
  f:close()
  -- A config file is data: it runs with no globals but os.getenv (to
  -- read a secret from the environment) and error (to refuse). Values it
  -- read from the environment are not secrets the file holds.
  local from_env = {}
  local function getenv(name)
    local v = os.getenv(name)
    if v then from_env[v] = true end
    return v
  end
  local chunk, err = loadfile(path, "t", { os = { getenv = getenv }, error = error })
  if not chunk then return load_error(path, err) end
  local ok, profiles = pcall(chunk)
  if not ok then return load_error(path, profiles) end
  if type(profiles) ~= "table" then
    return fail("config file " .. path .. " must return a table of profiles")
  end
  for name, p in pairs(profiles) do
    if type(name) ~= "string" or type(p) ~= "table" then
      return fail("config file " .. path .. ": each profile is name = { key = value, ... }")
    end
  end
  check_mode(path, profiles, from_env)
  return profiles
end

--- Reads the named profile of a config file: the profile's table | nil,
--- err. A missing file is no error unless it was asked for by name.
function M.read_file(path, profile, required)
  local profiles, err = read_profiles(path)
  if err then return nil, err end
  if not profiles then
    if required then return fail("config file " .. path .. " cannot be read") end
    return {}
  end
  local chosen = profiles[profile or "default"]
  if not chosen then
    local names = util.sorted_keys(profiles)
    if profile then
      return fail(string.format("config file %s has no profile '%s' (it has: %s)", path, profile,
        #names > 0 and table.concat(names, ", ") or "none"))
    end
    if #names > 0 then
      return fail(string.format("config file %s has profiles %s but none is picked: use --profile NAME or " ..
        "AUDITRUN_PROFILE, or name one 'default'", path, table.concat(names, ", ")))
    end
    return {}
  end
  return util.copy(chosen)
end

--- profiles({getenv=}) -> the names of the config file's profiles, sorted
--- | nil, err (no config file, or one that cannot be read).
function M.profiles(opts)
  local path = M.default_path(reader(opts and opts.getenv))
  if not path then return fail("no config file: set AUDITRUN_CONFIG or HOME") end
  local profiles, err = read_profiles(path)
  if err then return nil, err end
  if not profiles then return fail("config file " .. path .. " cannot be read") end
  return util.sorted_keys(profiles), path
end

--- layers(schema, explicit, {profile=, config_path=, getenv=}) -> a list
--- of {values, where} from lowest to highest | nil, err
function M.layers(schema, explicit, opts)
  opts = opts or {}
  local getenv = reader(opts.getenv)
  local profile = opts.profile or getenv("AUDITRUN_PROFILE")
  local path, named = M.default_path(getenv)
  if opts.config_path then path, named = opts.config_path, true end
  local layers = {}
  if path then
    local file, err = M.read_file(path, profile, named or profile ~= nil)
    if not file then return nil, err end
    local where = string.format("config file %s", path)
    file, err = check_layer(schema, file, string.format("%s, profile '%s'", where, profile or "default"))
    if not file then return nil, err end
    layers[#layers + 1] = { file, where }
  elseif profile then
    return fail("profile '" .. profile .. "' asked for, but there is no config file (set AUDITRUN_CONFIG)")
  end
  local env = {}
  for k in pairs(M.keys(schema)) do env[k] = getenv(M.env_name(k)) end
  local checked, err = check_layer(schema, env, "environment")
  if not checked then return nil, err end
  layers[#layers + 1] = { checked, "environment" }
  if explicit then
    checked, err = check_layer(schema, explicit, "connect{}")
    if not checked then return nil, err end
    layers[#layers + 1] = { checked, "connect{}" }
  end
  return layers
end

--- merge(schema, layers) -> values, sources: the layers applied in order,
--- a layer touching a group replacing the group.
function M.merge(schema, layers)
  local groups, attached = schema.groups or {}, schema.attached or {}
  local s, sources = {}, {}
  for _, layer in ipairs(layers) do
    local values, where = layer[1], layer[2]
    -- A layer that sets only attached keys of a group (a password) keeps
    -- the group below (the certificate) and replaces only those keys.
    local touched, partly = {}, {}
    for k in pairs(values) do
      if groups[k] and attached[k] then partly[groups[k]] = true
      elseif groups[k] then touched[groups[k]] = true end
    end
    for k, g in pairs(groups) do
      local replaced = touched[g] or (partly[g] and attached[k])
      if replaced and values[k] == nil then s[k], sources[k] = nil, nil end
    end
    for k, v in pairs(values) do s[k], sources[k] = v, where end
  end
  return s, sources
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

-- The name to tell a user for a key: its variable when it came from the
-- environment (or nowhere), else where it came from.
local function namer(sources)
  return function(k)
    local src = sources[k]
    if src == nil or src == "environment" then return M.env_name(k) end
    return src
  end
end

--- placeholder(value) -> true for a value copied from an example and never
--- filled in: the all-zero GUID, "<...>", "YOUR_...", "changeme", "xxxx".
function M.placeholder(v)
  if type(v) ~= "string" then return false end
  local lower = v:lower()
  return v:match("^0+%-0+%-0+%-0+%-0+$") ~= nil
    or v:find("[<>]") ~= nil
    or lower:match("^your[%s_%-]") ~= nil
    or lower == "changeme" or lower == "placeholder" or lower == "todo"
    or lower:match("^x+$") ~= nil and #v >= 3
end

-- A setting still holding an example's placeholder makes the vendor not
-- ready (every request would fail); a secret's value is not shown.
local function check_placeholders(schema, s, from)
  local secret = {}
  for _, k in ipairs(schema.secrets or {}) do secret[k] = true end
  local keys = util.sorted_keys(M.keys(schema))
  for _, k in ipairs(keys) do
    if M.placeholder(s[k]) then
      return fail(string.format("%s (%s) is still a placeholder%s: put the real value there", k, from(k),
        secret[k] and "" or string.format(" ('%s')", s[k])))
    end
  end
  return true
end

--- resolve_endpoint(schema, s, from) -> true | nil, err
function M.resolve_endpoint(schema, s, from)
  local key = schema.url
  if not key or not s[key] then return true end
  if not s[key]:match("^https?://[^/]+") then
    return fail(string.format("%s '%s' (%s) is not an http(s) URL", key, s[key], from(key)))
  end
  s[key] = s[key]:gsub("/+$", "")
  return true
end

--- check_transport(schema, s, from) -> true | nil, err: every credential
--- URL set may carry credentials (cleartext_refusal).
function M.check_transport(schema, s, from)
  for _, key in ipairs(schema.credential_urls or {}) do
    local why = s[key] and M.cleartext_refusal(s[key])
    if why then return fail(string.format("%s %s (%s) %s", key, s[key], from(key), why)) end
  end
  return true
end

--- resolve_credentials(schema, s) -> true | nil, err: exclusive keys,
--- secrets read from their files.
function M.resolve_credentials(schema, s)
  for _, set in ipairs(schema.exclusive or {}) do
    local given = {}
    for _, k in ipairs(set) do if s[k] ~= nil then given[#given + 1] = k end end
    if #given > 1 then return fail(string.format("give %s, not both", table.concat(given, " or "))) end
  end
  for file_key, key in pairs(schema.files or {}) do
    if s[file_key] then
      local v, e = read_secret_file(s[file_key], file_key)
      if not v then return nil, e end
      s[key] = v
      s[file_key] = nil
    end
  end
  return true
end

--- missing(schema, s) -> the required keys not set, as the variables to set.
---
--- setup(schema) -> "k1 (or k2), k3 ...", "AUDITRUN_K1 (or AUDITRUN_K2), ...":
--- what a first profile of the vendor needs, as config keys and as environment
--- names (schema.setup, else its required keys).
function M.setup(schema)
  local keys, envs = {}, {}
  for _, entry in ipairs(schema.setup or schema.required or {}) do
    local alts = type(entry) == "table" and entry or { entry }
    local k, e = { table.unpack(alts, 2) }, {}
    for i, key in ipairs(k) do e[i] = M.env_name(key) end
    local function either(first, rest) return first .. (#rest > 0 and " (or " .. table.concat(rest, ", ") .. ")" or "") end
    keys[#keys + 1], envs[#envs + 1] = either(alts[1], k), either(M.env_name(alts[1]), e)
  end
  return table.concat(keys, ", "), table.concat(envs, ", ")
end

function M.missing(schema, s)
  local files_of = {}
  for file_key, key in pairs(schema.files or {}) do files_of[key] = file_key end
  local out, keys = {}, {}
  for _, k in ipairs(schema.required or {}) do
    if s[k] == nil and not (files_of[k] and s[files_of[k]]) then
      out[#out + 1] = M.env_name(k) .. (files_of[k] and " (or _FILE)" or "")
      keys[#keys + 1] = k
    end
  end
  return out, keys
end

-- Where a missing setting could go in the config file: " in the
-- environment, or KEYS in profile 'P' of FILE" (only the first part when
-- there is no config file to name).
local function file_hint(keys, opts)
  local getenv = reader(opts.getenv)
  local path = opts.config_path or M.default_path(getenv)
  if not path then return "" end
  return string.format(" in the environment, or %s in profile '%s' of %s", table.concat(keys, ", "),
    opts.profile or getenv("AUDITRUN_PROFILE") or "default", path)
end

local function tostring_of(schema)
  local secret = {}
  for _, k in ipairs(schema.secrets or {}) do secret[k] = true end
  return function(t)
    local parts = {}
    for k in pairs(M.keys(schema)) do
      if t[k] ~= nil then parts[#parts + 1] = k .. "=" .. (secret[k] and "(hidden)" or tostring(t[k])) end
    end
    table.sort(parts)
    return "config{" .. table.concat(parts, ", ") .. "}"
  end
end

--- load(schema, explicit, {profile=, config_path=, getenv=}) -> settings |
--- nil, err. settings holds the schema's keys (defaults filled in, secrets
--- read from their files) and `sources` (key -> where its value came from).
function M.load(schema, explicit, opts)
  local layers, err = M.layers(schema, explicit, opts)
  if not layers then return nil, err end
  local s, sources = M.merge(schema, layers)
  local from = namer(sources)
  local ok, rerr = check_placeholders(schema, s, from)
  if not ok then return nil, rerr end
  ok, rerr = M.resolve_endpoint(schema, s, from)
  if not ok then return nil, rerr end
  if schema.resolve then
    local why = schema.resolve(s, from)
    if why then return fail(why) end
  end
  ok, rerr = M.check_transport(schema, s, from)
  if not ok then return nil, rerr end
  local missing, keys = M.missing(schema, s)
  if #missing > 0 then
    return fail(string.format("%s is not configured: set %s%s", schema.name, table.concat(missing, ", "),
      file_hint(keys, opts or {})))
  end
  ok, rerr = M.resolve_credentials(schema, s)
  if not ok then return nil, rerr end
  -- From here on no error value or log line shows them.
  for _, k in ipairs(schema.secrets or {}) do errors.secret(s[k]) end
  for k, v in pairs(schema.defaults or {}) do
    if s[k] == nil then s[k], sources[k] = v, "default" end
  end
  s.sources = sources
  return setmetatable(s, { __tostring = tostring_of(schema), __index = { schema = schema,
    profile_name = opts and opts.profile or reader(opts and opts.getenv)("AUDITRUN_PROFILE") or "default" } })
end

-- "KEY (where it came from)", for a hint.
local function key_and_source(s, k)
  local where = s.sources and s.sources[k]
  if where == "environment" then where = "environment " .. M.env_name(k) end
  return string.format("%s (%s)", k, where or "default")
end

--- hint(settings, status) -> what to check when the vendor answers a
--- request with `status`, or nil.
---
--- For 404 the shape of its base URL, for 401 the credential keys in use
--- and where each came from, with the profile; nil for other statuses or
--- settings that did not come from load().
function M.hint(s, status)
  local schema = getmetatable(s) and s.schema
  if not schema then return nil end
  if status == 404 and schema.url and schema.url_example then
    return string.format("%s must be the API's base URL, like %s", key_and_source(s, schema.url), schema.url_example)
  elseif status == 401 and schema.credentials then
    local used = {}
    for _, k in ipairs(schema.credentials) do
      if s[k] ~= nil then used[#used + 1] = key_and_source(s, k) end
    end
    if #used == 0 then return nil end
    return string.format("check %s of profile '%s'", table.concat(used, ", "), s.profile_name)
  end
end

--- configured(schema, {getenv=, profile=, config_path=}) -> true when any
--- of the schema's own keys is set in a layer (ca_file aside): the vendor
--- is meant to be used, and load() says what is wrong if it cannot be.
function M.configured(schema, opts)
  local layers = M.layers(schema, nil, opts)
  if not layers then return true end   -- load() reports the error
  for _, layer in ipairs(layers) do
    for k in pairs(layer[1]) do
      if not M.COMMON[k] then return true end
    end
  end
  return false
end

return M
