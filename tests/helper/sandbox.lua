-- tests.helper.sandbox: starts the sandbox tenant (tests/sandbox/server.js)
-- on a free loopback port for a spec, and stops it. The server exits by
-- itself if this process dies, so a crashed run leaves nothing behind.
--
-- Plain Lua (io, os) plus cjson: it must work under lua5.4 as well as inside
-- the auditrun host, without the project's own C core.
local cjson = require("cjson")
local util = require("tests.helper.util")

local M = {}

-- Node and oidc-provider start in about a second. A start that has not said
-- it is ready in START_SECONDS (a machine busy with other specs, or a start
-- that stalled) is stopped and tried again, START_TRIES times in all, so one
-- stalled start does not fail every test of a spec.
local START_SECONDS, START_TRIES = 30, 3
local STOP_SECONDS = 10
-- The app certificate the tenant's identity service knows, and its password.
local APP_CERT, APP_CERT_PASSWORD = "tests/fixtures/app.pfx", "sandbox-pass"

local read = util.read

local function own_pid()
  return assert(read("/proc/self/stat"), "no /proc/self/stat"):match("^(%d+)")
end

local function nap()
  os.execute("sleep 0.05")
end

-- The server is started in the background by a shell that exits at once, so
-- nobody here reaps it: a zombie counts as gone.
local function alive(pid)
  local stat = read("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
end

local Sandbox = {}
Sandbox.__index = Sandbox

-- The CA of the sandbox started last (for M.http).
local current_ca

-- One try at starting the server: the sandbox, or nil and why not (the end
-- of its log, and what its processes were doing).
local function start_once(args)
  local dir = util.tempdir()
  local argv = { "--dir", dir }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  os.execute(("node tests/sandbox/server.js %s > %s/ready.json 2> %s/server.log < /dev/null &")
    :format(table.concat(argv, " "), dir, dir))
  -- os.time has whole seconds; a bound of START_SECONDS, give or take one, is enough.
  local deadline = os.time() + START_SECONDS
  repeat
    local line = (read(dir .. "/ready.json") or ""):match("^([^\n]*)\n")
    if line then
      local sb = setmetatable(cjson.decode(line), Sandbox)
      sb.port, sb.pid = math.tointeger(sb.port), math.tointeger(sb.pid)
      if sb.ca_file == cjson.null then sb.ca_file = nil end
      sb.dir = dir
      current_ca = sb.ca_file
      return sb
    end
    nap()
  until os.time() > deadline
  -- Stalled: say what it was doing, stop it (and what it started), clear up.
  -- "[s]erver.js" matches the server's command line but not the shell's own.
  local pattern = "[s]erver.js --dir " .. dir
  local ps = util.sh(("ps -o pid,stat,wchan:20,etime,args -p \"$(pgrep -d, -f %q)\" 2>/dev/null; "
    .. "pgrep -f %q | xargs -r -I{} ps -o pid,stat,wchan:20,etime,args --ppid {} 2>/dev/null"):format(pattern, pattern))
  os.execute(("pkill -KILL -f %q 2>/dev/null"):format(pattern))
  local log = read(dir .. "/server.log") or ""
  os.execute("rm -rf " .. dir)
  return nil, ("its log ends:\n%s\nits processes:\n%s"):format(log:sub(-2000), ps)
end

--- start{http=, token_ttl=, job_seconds=, client_cert=, opaque_tokens=, hostile=, markup=, max_seconds=}
--- -> sandbox with url, port, ca_file, issuer, token_endpoint, clients, scope, pid, dir. The server
--- stops by itself after max_seconds (default an hour; 0: only when stopped or this process is gone).
function M.start(opts)
  opts = opts or {}
  if not read("tests/sandbox/node_modules/.package-lock.json") then
    error("the sandbox's npm packages are missing: run npm ci --prefix tests/sandbox (make test does)", 2)
  end
  local args = { "--parent-pid", own_pid(), "--max-seconds", tostring(opts.max_seconds or 3600) }
  local function opt(name, value)
    if value ~= nil then
      args[#args + 1] = name
      args[#args + 1] = "'" .. tostring(value):gsub("'", "'\\''") .. "'"
    end
  end
  if opts.http then args[#args + 1] = "--http" end
  if opts.opaque_tokens then args[#args + 1] = "--opaque-tokens" end
  -- Formula-like texts in the vendors' text fields (server.js --hostile).
  if opts.hostile then args[#args + 1] = "--hostile" end
  -- HTML markup in Insights group names and object titles (server.js --markup).
  if opts.markup then args[#args + 1] = "--markup" end
  opt("--token-ttl", opts.token_ttl)
  opt("--job-seconds", opts.job_seconds)
  opt("--client-cert", opts.client_cert)
  local why
  for try = 1, START_TRIES do
    local sb
    sb, why = start_once(args)
    if sb then return sb end
    io.stderr:write(("# the sandbox did not start in %d s (try %d of %d): %s\n"):format(START_SECONDS, try,
      START_TRIES, why))
  end
  error(("the sandbox did not start in %d tries of %d s; the last: %s"):format(START_TRIES, START_SECONDS, why), 2)
end

--- for_describe(opts) -> the sandbox of a busted describe block: started in
--- its setup, stopped in its teardown. The table is filled in when setup
--- runs; register the block's own setup after this call to use it there.
function M.for_describe(opts)
  -- busted gives each spec file its own setup/teardown; its module has them too.
  local busted = require("busted")
  local sb = setmetatable({}, Sandbox)
  busted.setup(function()
    for k, v in pairs(M.start(opts)) do sb[k] = v end
  end)
  busted.teardown(function() sb:stop() end)
  return sb
end

--- http() -> auditrun.http as a spec uses it against the sandbox: requests
--- that name no CA file trust the CA of the sandbox started last.
---
--- auditrun.http itself keeps no CA setting; sessions and clients pass
--- their own. Needs the core.
function M.http()
  local http = require("auditrun.http")
  local function trusting(o)
    if o == nil then o = {} end
    -- Anything but a table goes through as it is, to be refused there.
    if type(o) == "table" and o.ca_file == nil then o.ca_file = current_ca end
    return o
  end
  return setmetatable({
    request = function(o) return http.request(trusting(o)) end,
    request_json = function(o) return http.request_json(trusting(o)) end,
    get = function(url, o) return http.get(url, trusting(o)) end,
    post = function(url, o) return http.post(url, trusting(o)) end,
  }, { __index = http })
end

--- ca_file() -> the CA file of the sandbox started last.
function M.ca_file() return current_ca end

--- Stops the server (TERM, then KILL if it lingers) and removes its directory.
function Sandbox:stop()
  if not self.pid then return end
  local pid = tostring(self.pid)
  os.execute("kill -TERM " .. pid .. " 2>/dev/null")
  local deadline = os.time() + STOP_SECONDS
  while alive(pid) and os.time() <= deadline do nap() end
  if alive(pid) then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  os.execute("rm -rf " .. self.dir)
  self.pid = nil
end

--- alive() -> whether the server is still running.
function Sandbox:alive()
  return self.pid ~= nil and alive(tostring(self.pid))
end

--- host_env(home) -> the environment a user would give the host to reach
--- this tenant with the app certificate; HOME keeps a config file of the
--- machine's own user out of the run.
function Sandbox:host_env(home)
  return { HOME = home, AUDITRUN_INSIGHTS_URL = self.url .. "/insights", AUDITRUN_IDENTITY_URL = self.issuer,
           AUDITRUN_CLIENT_ID = self.clients.cert, AUDITRUN_CERT = os.getenv("PWD") .. "/" .. APP_CERT,
           AUDITRUN_CERT_PASSWORD = APP_CERT_PASSWORD, AUDITRUN_CA_FILE = self.ca_file }
end

--- activity_env(t, ...) -> the environment of a user with this tenant's
--- DealCloud site and ExaVault account set up (t: the answer of
--- activity_control GET /tenant) and no config file (HOME=/nonexistent).
---
--- Each further table's keys are set over it in turn ("" unsets one; nil
--- or false is no table).
function Sandbox:activity_env(t, ...)
  local e = {
    HOME = "/nonexistent", AUDITRUN_CA_FILE = self.ca_file,
    AUDITRUN_DEALCLOUD_URL = self.url .. "/dealcloud", AUDITRUN_DEALCLOUD_CLIENT_ID = t.dealcloud.client_id,
    AUDITRUN_DEALCLOUD_CLIENT_SECRET = t.dealcloud.client_secret,
    AUDITRUN_EXAVAULT_URL = self.url .. "/exavault/api/v2", AUDITRUN_EXAVAULT_API_KEY = t.exavault.api_key,
    AUDITRUN_EXAVAULT_ACCESS_TOKEN = t.exavault.access_token,
  }
  for i = 1, select("#", ...) do
    for k, v in pairs(select(i, ...) or {}) do e[k] = v end
  end
  return e
end

--- secret_client_env() -> the environment keys that add this tenant's
--- Insights with the client that signs in with a secret (for activity_env).
function Sandbox:secret_client_env()
  return { AUDITRUN_INSIGHTS_URL = self.url .. "/insights", AUDITRUN_IDENTITY_URL = self.issuer,
           AUDITRUN_CLIENT_ID = self.clients.secret, AUDITRUN_CLIENT_SECRET = self.clients.secret_value }
end

--- new_home() -> a new empty folder for a user's home, and host_env of it;
--- the caller removes the folder (util.remove).
function Sandbox:new_home()
  local home = util.tempdir()
  return home, self:host_env(home)
end

--- reset_activity() -> the DealCloud site and ExaVault account reset to
--- their first state: the tenant (activity_control GET /tenant).
function Sandbox:reset_activity()
  self:activity_control("POST", "/reset")
  return self:activity_control("GET", "/tenant")
end

--- settings() -> the config keys that reach every vendor of this tenant,
--- secrets as values: Insights with the app certificate, the DealCloud
--- site, the ExaVault account and the CA. Needs the core.
function Sandbox:settings()
  local t = self:activity_control("GET", "/tenant")
  return {
    insights_url = self.url .. "/insights", identity_url = self.issuer, client_id = self.clients.cert,
    cert = os.getenv("PWD") .. "/" .. APP_CERT, cert_password = APP_CERT_PASSWORD,
    dealcloud_url = self.url .. "/dealcloud", dealcloud_client_id = t.dealcloud.client_id,
    dealcloud_client_secret = t.dealcloud.client_secret,
    exavault_url = self.url .. "/exavault/api/v2", exavault_api_key = t.exavault.api_key,
    exavault_access_token = t.exavault.access_token,
    ca_file = self.ca_file,
  }
end

local function control(self, prefix, method, path, body)
  local http = require("auditrun.http")
  return require("auditrun.errors").try(http.request_json {
    method = method, url = self.url .. prefix .. path, json = body, ca_file = self.ca_file })
end

--- control(method, path, body) -> the decoded answer of the tenant's
--- control API (/insights-control: faults, recorded requests, stats).
function Sandbox:control(method, path, body)
  return control(self, "/insights-control", method, path, body)
end

--- activity_control(method, path, body): the same for the DealCloud site
--- and ExaVault account (/activity-control).
function Sandbox:activity_control(method, path, body)
  return control(self, "/activity-control", method, path, body)
end

--- The server's stderr so far (for a failing spec's message).
function Sandbox:log()
  return read(self.dir .. "/server.log") or ""
end

return M
