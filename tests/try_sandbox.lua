-- make sandbox: the sandbox tenant (tests/sandbox, the server the specs
-- start) in the foreground on loopback, with a config profile and the same
-- settings as export lines, to run any workflow by hand from another terminal.
--
-- Every vendor is in the profile: Insights (the app certificate), the
-- DealCloud site and the ExaVault account. The secrets go into files in the
-- tenant's own folder (0700, its files 0600), whose paths are printed; the
-- profile itself names those files and holds only the ExaVault API key,
-- which has no file setting. Ctrl-C (or SIGTERM) stops the server,
-- removes the folder and exits 0.
local sandbox = require("tests.helper.sandbox")
local host = require("tests.helper.host")
local util = require("tests.helper.util")
local auditrun = require("auditrun")
local config = require("auditrun.config")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local task = require("auditrun.task")

-- The profile's keys in the order they are printed; a secret with the file
-- it goes into and the key that names that file; the certificate, copied.
local KEYS = {
  { "insights_url" }, { "identity_url" }, { "client_id" },
  { "cert", copy = "app.pfx" },
  { "cert_password", file = "app.pfx.pass", as = "cert_password_file" },
  { "dealcloud_url" }, { "dealcloud_client_id" },
  { "dealcloud_client_secret", file = "dealcloud-client-secret", as = "dealcloud_client_secret_file" },
  { "exavault_url" }, { "exavault_api_key" },
  { "exavault_access_token", file = "exavault-access-token", as = "exavault_access_token_file" },
  { "ca_file" },
}

local function write_private(path, data)
  local f = auditrun.try(files.open_write(path))
  assert(f:write(data))
  assert(f:close())
end

-- Jobs of about a third of a second, as in make demo; no time limit: the
-- server runs until it is stopped or this process is gone.
local sb = sandbox.start { job_seconds = 0.3, max_seconds = 0 }
-- Stops the server and removes its folder, once: at Ctrl-C, or when
-- anything below fails.
local stopped = false
local function stop()
  if stopped then return end
  stopped = true
  sb:stop()
  print("# The sandbox tenant stopped; its folder is removed.")
  io.stdout:flush()
end
local _ <close> = setmetatable({}, { __close = stop })
local settings = sb:settings()

-- The profile: each secret written to its file, the key naming the file.
local profile, paths = {}, {}
for _, k in ipairs(KEYS) do
  local key, value = k[1], settings[k[1]]
  if k.copy then
    local path = sb.dir .. "/" .. k.copy
    write_private(path, assert(util.read(value), "cannot read " .. value))
    paths[#paths + 1], value = path, path
  elseif k.file then
    local path = sb.dir .. "/" .. k.file
    write_private(path, value)
    paths[#paths + 1], key, value = path, k.as, path
  end
  profile[#profile + 1] = { key, value }
end

local lines = {}
for _, kv in ipairs(profile) do lines[#lines + 1] = ("    %s = %q,"):format(kv[1], kv[2]) end
local text = "return {\n  sandbox = {\n" .. table.concat(lines, "\n") .. "\n  },\n}\n"
local config_path = sb.dir .. "/config.lua"
write_private(config_path, text)

local exports = {}
for _, kv in ipairs(profile) do exports[#exports + 1] = "export " .. config.env_name(kv[1]) .. "=" .. host.quote(kv[2]) end

local bin = os.getenv("PWD") .. "/build/auditrun"
local day = 86400
local from = os.date("!%Y-%m-%d", os.time() - 30 * day)
local out = {
  "# The sandbox tenant is up at " .. sb.url .. " (loopback only). Ctrl-C stops it.",
  "# Its files, in a folder only you can read (removed when it stops):",
}
for _, p in ipairs(paths) do out[#out + 1] = "#   " .. p end
out[#out + 1] = "#   " .. settings.ca_file .. "  (the CA of its TLS certificate)"
out[#out + 1] = "#   " .. config_path .. "  (a config file holding the profile below)"
out[#out + 1] = "#"
out[#out + 1] = "# A config profile, \"sandbox\" (save it, or its entry, as a config file):"
out[#out + 1] = text
out[#out + 1] = "# The same settings for the environment, instead of a config file:"
out[#out + 1] = table.concat(exports, "\n")
out[#out + 1] = ""
out[#out + 1] = "# Then, in another terminal:"
out[#out + 1] = "#   export AUDITRUN_CONFIG=" .. host.quote(config_path)
out[#out + 1] = "#   " .. bin .. " --profile sandbox config"
out[#out + 1] = "#   " .. bin .. " --profile sandbox guest-access --out /tmp/guests"
out[#out + 1] = "#   " .. bin .. " --profile sandbox dealcloud-activity --from " .. from .. " --out /tmp/dealcloud.jsonl"
out[#out + 1] = "#   " .. bin .. " --profile sandbox exavault-sessions --from " .. from .. " --out /tmp/sessions.csv"
out[#out + 1] = "#   " .. bin .. " --profile sandbox token-check " ..
  host.quote(settings.insights_url .. "/groups/summary?startPage=1&pageSize=1")
out[#out + 1] = "# ready"
print(table.concat(out, "\n"))
io.stdout:flush()

-- Until Ctrl-C: the wait raises "interrupted". That is how a run ends, so
-- it ends with exit 0 (make then ends as Ctrl-C ends it, with no error line
-- of its own). A server that stops by itself ends the run with the end of
-- its log, and exit 1.
local ok, err = pcall(function()
  while sb:alive() do task.sleep(1) end
end)
if not ok and not errors.is(err, "interrupted") then error(err, 0) end
if ok then
  error(auditrun.error("sandbox", "the sandbox tenant stopped by itself; the end of its log:\n" ..
    sb:log():sub(-2000)), 0)
end
stop()
os.exit(0, true)
