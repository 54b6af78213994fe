-- make demo: start the sandbox tenant on loopback, point auditrun at it
-- through the environment as a user would, run the bundled workflow with
-- the real host, and stop the sandbox.
local sandbox = require "tests.helper.sandbox"
local host = require "tests.helper.host"

local sb = sandbox.start {}
local env = {
  AUDITRUN_CONFIG = "/dev/null/none",  -- no config file: the environment says it all
  AUDITRUN_INSIGHTS_URL = sb.url .. "/insights",
  AUDITRUN_IDENTITY_URL = sb.issuer,
  AUDITRUN_CLIENT_ID = sb.clients.cert,
  AUDITRUN_CERT = "tests/fixtures/app.pfx",
  AUDITRUN_CERT_PASSWORD = "sandbox-pass",
  AUDITRUN_CA_FILE = sb.ca_file,
}
local parts = {}
for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. host.quote(v) end
table.sort(parts)
local workflow = arg[1] or "token-check"
local args = { table.unpack(arg, 2) }
if #args == 0 then args = { sb.url .. "/test/protected" } end
local quoted = {}
for i, a in ipairs(args) do quoted[i] = host.quote(a) end
print("# sandbox tenant at " .. sb.url)
local ok, how, code = os.execute(("env %s build/auditrun %s %s"):format(table.concat(parts, " "), workflow,
  table.concat(quoted, " ")))
sb:stop()
if not ok then os.exit(how == "exit" and code or 1) end
