-- make demo: start the sandbox tenant on loopback, point auditrun at it
-- through a config file as a user would, run a bundled workflow (by
-- default external-group-access into build/demo/, with its progress line
-- and summary; `auditrun tests/demo.lua NAME ARGS...` picks another) with
-- the real host, and stop the sandbox.
local sandbox = require("tests.helper.sandbox")
local host = require("tests.helper.host")

-- Jobs of about a third of a second: the run takes a minute, not five.
local sb = sandbox.start { job_seconds = 0.3 }
-- A config file with a "sandbox" profile, picked with --profile, as a
-- consultant keeps one profile per tenant; the CA comes from the environment.
local config_path = sb.dir .. "/config.lua"
local f = assert(io.open(config_path, "w"))
f:write(([[
return {
  sandbox = {
    insights_url = %q,
    identity_url = %q,
    client_id = %q,
    cert = "tests/fixtures/app.pfx",
    cert_password = "sandbox-pass",
  },
}
]]):format(sb.url .. "/insights", sb.issuer, sb.clients.cert))
f:close()
os.execute("chmod 600 " .. config_path)  -- it holds a password: private, or auditrun warns
local env = { AUDITRUN_CONFIG = config_path, AUDITRUN_CA_FILE = sb.ca_file }
local parts = {}
for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. host.quote(v) end
table.sort(parts)
-- The main job by default: every external group's access report, into build/demo.
local workflow = arg[1] or "external-group-access"
local args = { table.unpack(arg, 2) }
local DEFAULT_ARGS = { ["external-group-access"] = { "--out", "build/demo" }, ["token-check"] = { sb.url .. "/test/protected" } }
if #args == 0 then args = DEFAULT_ARGS[workflow] or {} end
local quoted = {}
for i, a in ipairs(args) do quoted[i] = host.quote(a) end
print("# sandbox tenant at " .. sb.url)
local ok, how, code = os.execute(("env %s build/auditrun --profile sandbox %s %s"):format(table.concat(parts, " "), workflow,
  table.concat(quoted, " ")))
sb:stop()
if not ok then os.exit(how == "exit" and code or 1) end
