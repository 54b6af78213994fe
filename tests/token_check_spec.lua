-- variants: plain
-- token-check signs in and calls a URL whatever the token looks like: the
-- identity service here issues opaque access tokens (not JWTs).
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util

describe("token-check with opaque access tokens", function()
  local sb = sandbox.for_describe { opaque_tokens = true }
  local home, env
  setup(function()
    home = util.tempdir()
    env = { HOME = home, AUDITRUN_IDENTITY_URL = sb.issuer, AUDITRUN_CLIENT_ID = sb.clients.cert,
            AUDITRUN_CERT = os.getenv("PWD") .. "/tests/fixtures/app.pfx", AUDITRUN_CERT_PASSWORD = "sandbox-pass",
            AUDITRUN_CA_FILE = sb.ca_file, AUDITRUN_INSIGHTS_URL = sb.url .. "/insights" }
  end)
  teardown(function() util.remove(home) end)

  it("signs in, says how long the token lasts, and calls the URL with it", function()
    local url = sb.url .. "/test/protected"
    local code, out, err = host.run({ "token-check", url }, { env = env })
    assert.equal(0, code, err)
    assert.equal("", err)
    local function literal(s) return (s:gsub("%p", "%%%0")) end
    assert.matches("^signed in to " .. literal(sb.issuer) .. " as " .. literal(sb.clients.cert)
      .. " in %d+ ms; token valid for %d+ s, scope " .. literal(sb.scope) .. "\n", out)
    assert.matches("GET " .. literal(url) .. " %-> 200 %(%d+ bytes%)\n$", out)
  end)
end)
