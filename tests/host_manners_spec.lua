-- What a new user meets first: the host's help, its flags, usage errors,
-- and `auditrun config` (the settings in effect and where each came from).
local helper = require("tests.helper")
local host, util = helper.host, helper.util

describe("the host's help", function()
  for _, flag in ipairs { "--help", "-h" } do
    it(flag .. " names --profile, the environment, the config file and the exit codes", function()
      local code, out = host.run { flag }
      assert.equal(0, code)
      for _, needle in ipairs { "%-%-profile NAME", "%-%-profile=NAME", "AUDITRUN_CONFIG", "AUDITRUN_PROFILE",
                                "AUDITRUN_<KEY>", "~/%.config/auditrun/config%.lua", "exit codes: 0 success, 1 failure, " ..
                                "2 usage error, 3 incomplete %(finished\nwith some items failed: rerun to finish%), 130 "
                                .. "interrupted", "auditrun %[%-%-profile NAME%] config" } do
        assert.matches(needle, out)
      end
    end)
  end
end)

describe("the host's flags", function()
  local script
  setup(function() script = host.script 'print(os.getenv("AUDITRUN_PROFILE"), ...)' end)
  teardown(function() os.remove(script) end)

  it("takes --profile NAME and --profile=NAME before the script", function()
    local code, out = host.run { "--profile", "contoso", script, "a" }
    assert.equal(0, code)
    assert.equal("contoso\ta\n", out)
    code, out = host.run { "--profile=fabrikam", script }
    assert.equal(0, code)
    assert.equal("fabrikam\n", out)
  end)

  for _, args in ipairs { { "--profile" }, { "--profile=" }, { "--profile", "--list" } } do
    it("says a bare " .. table.concat(args, " ") .. " needs a name (exit 2)", function()
      local code, out, err = host.run(args)
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("^auditrun: %-%-profile needs a profile name: %-%-profile NAME\nusage:", err)
    end)
  end

  it("calls any other option unknown, single dash ones too (exit 2)", function()
    local code, _, err = host.run { "-q" }
    assert.equal(2, code)
    assert.matches("^auditrun: unknown option '%-q'", err)
  end)

  it("makes token-check without a URL a usage error: exit 2, one usage line", function()
    local code, out, err = host.run({ "token-check" }, { env = { HOME = "/nonexistent" } })
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("^Usage: auditrun token%-check %[%-h%] %[%-%-profile NAME%] <url>\nauditrun: token%-check: " ..
      "missing argument 'url'", err)
    assert.is_nil(err:lower():find("usage: usage:", 1, true))
  end)
end)

describe("auditrun config", function()
  local dir, file
  local base
  before_each(function()
    dir = util.tempdir()
    file = dir .. "/config.lua"
    base = { HOME = dir, AUDITRUN_CONFIG = file }
  end)
  after_each(function() util.remove(dir) end)

  local function run(args, env)
    local e = {}
    for k, v in pairs(base) do e[k] = v end
    for k, v in pairs(env or {}) do e[k] = v end
    return host.run(args, { env = e })
  end

  -- The row of a key: value and source.
  local function row(out, key)
    local v, src = out:match("\n  " .. key:gsub("%p", "%%%0") .. " +(%S+) +([^\n]+)")
    return v, src
  end

  it("shows each setting, where it came from, and masks secrets", function()
    util.write(file, ([[
      return {
        contoso = { insights_region = "us", client_id = "app-123", cert = %q,
                    cert_password = "sandbox-pass" },
      }]]):format(os.getenv("PWD") .. "/tests/fixtures/app.pfx"))
    local code, out, err = run({ "--profile", "contoso", "config" }, { AUDITRUN_SCOPE = "custom.scope" })
    assert.equal(0, code, err)
    assert.matches("config file: " .. file:gsub("%p", "%%%0"), out)
    assert.matches("profile: +contoso", out)
    assert.matches("Insights: ready", out)
    assert.same({ "app-123", "config file " .. file }, { row(out, "client_id") })
    assert.same({ "custom.scope", "environment AUDITRUN_SCOPE" }, { row(out, "scope") })
    assert.same({ "https://identity.avepointonlineservices.com", "default" }, { row(out, "identity_url") })
    assert.same({ "https://graph-us.avepointonlineservices.com/insights", "derived" }, { row(out, "insights_url") })
    assert.same({ "********", "config file " .. file }, { row(out, "cert_password") })
    assert.same({ "-", "not set" }, { row(out, "kid") })
    assert.is_nil(out:find("sandbox-pass", 1, true))
    assert.matches("DealCloud: not configured", out)
  end)

  it("takes --profile after the name too, and says where a secret file's value came from", function()
    util.write(dir .. "/secret", "s3cret-value\n")
    util.write(file, ('return { fabrikam = { insights_url = "https://x.example/insights", client_id = "f", ' ..
      'client_secret_file = %q } }'):format(dir .. "/secret"))
    local code, out, err = run { "config", "--profile", "fabrikam" }
    assert.equal(0, code, err)
    assert.same({ "********", "read from client_secret_file" }, { row(out, "client_secret") })
    assert.is_nil(out:find("s3cret", 1, true))
  end)

  it("says with nothing configured what to set, as config keys and as environment names, and exits 1", function()
    local code, out, err = run({ "config" }, { AUDITRUN_CONFIG = "" })
    assert.equal(1, code)
    assert.matches("config file: " .. (dir .. "/.config/auditrun/config.lua"):gsub("%p", "%%%0") .. " %(none there%)", out)
    assert.matches("\nInsights: not configured\n  to use it, set insights_region %(or insights_url%), client_id, "
      .. "cert %(or client_secret%) in a profile of the config file, or AUDITRUN_INSIGHTS_REGION %(or "
      .. "AUDITRUN_INSIGHTS_URL%), AUDITRUN_CLIENT_ID, AUDITRUN_CERT %(or AUDITRUN_CLIENT_SECRET%) in the environment\n",
      out)
    assert.matches("\nExaVault: not configured\n  to use it, set exavault_url, exavault_api_key, "
      .. "exavault_access_token in a profile", out)
    assert.equal("auditrun: config: nothing is configured: write a profile in " .. dir
      .. "/.config/auditrun/config.lua or set the environment variables named above (README: Connect your tenant)\n",
      err)
    -- One vendor ready is enough: the others only say how.
    code, out, err = run({ "config" }, { AUDITRUN_CONFIG = "", AUDITRUN_EXAVAULT_URL = "https://a.exavault.com/api/v2",
      AUDITRUN_EXAVAULT_API_KEY = "k", AUDITRUN_EXAVAULT_ACCESS_TOKEN = "t" })
    assert.equal(0, code, err)
    assert.matches("\nDealCloud: not configured\n  to use it, set dealcloud_url", out)
  end)

  it("names the profiles of a file when none is picked, and exits 1", function()
    util.write(file, 'return { contoso = { client_id = "a" }, fabrikam = { client_id = "b" } }')
    local code, _, err = run { "config" }
    assert.equal(1, code)
    assert.matches("has profiles contoso, fabrikam but none is picked: use %-%-profile NAME", err)
  end)

  it("fails, naming the vendor, when a configured vendor cannot be used", function()
    local code, out, err = run({ "config" }, { AUDITRUN_CONFIG = "", AUDITRUN_DEALCLOUD_URL = "https://dc.example" })
    assert.equal(1, code)
    assert.matches("DealCloud: not ready: DealCloud is not configured: set AUDITRUN_DEALCLOUD_CLIENT_ID", out)
    assert.matches("dealcloud_url +https://dc%.example +environment AUDITRUN_DEALCLOUD_URL", out)
    assert.equal("auditrun: config: DealCloud configured but not ready (see above)\n", err)
  end)

  -- Regression: a certificate whose password is wrong was called ready,
  -- and the first run failed on it.
  it("calls a profile whose certificate does not open with its password not ready, saying why", function()
    local fixtures = os.getenv("PWD") .. "/tests/fixtures"
    local cert = { AUDITRUN_CONFIG = "", AUDITRUN_INSIGHTS_REGION = "us", AUDITRUN_CLIENT_ID = "app",
                   AUDITRUN_CERT = fixtures .. "/app.pfx", AUDITRUN_CERT_PASSWORD = "not-the-password" }
    local code, out, err = run({ "config" }, cert)
    assert.equal(1, code)
    assert.matches("\nInsights: not ready: wrong password for " .. (fixtures .. "/app.pfx"):gsub("%p", "%%%0") .. "\n",
      out)
    assert.not_matches("not%-the%-password", out .. err)
    assert.equal("auditrun: config: Insights configured but not ready (see above)\n", err)
    cert.AUDITRUN_CERT = fixtures .. "/missing.pfx"
    code, out = run({ "config" }, cert)
    assert.equal(1, code)
    assert.matches("\nInsights: not ready: [^\n]*missing%.pfx", out)
    -- With its password it is ready.
    cert.AUDITRUN_CERT, cert.AUDITRUN_CERT_PASSWORD = fixtures .. "/app.pfx", "sandbox-pass"
    code, out, err = run({ "config" }, cert)
    assert.equal(0, code, err)
    assert.matches("\nInsights: ready\n", out)
  end)

  -- Regression: a profile with a plain http:// URL to another host was
  -- called ready, though no credential may be sent there.
  it("says why a profile with a plain http:// URL is not ready, unless it is loopback or a lab", function()
    util.write(file, 'return { default = { identity_url = "http://id.example", client_id = "c", ' ..
      'dealcloud_url = "http://127.0.0.1:9/dc", dealcloud_client_id = "d", dealcloud_client_secret = "s" } }')
    os.execute("chmod 600 " .. file)
    local http_url = { AUDITRUN_INSIGHTS_URL = "http://10.0.0.5/insights", AUDITRUN_CLIENT_SECRET = "s3cret" }
    local code, out, err = run({ "config" }, http_url)
    assert.equal(1, code)
    assert.matches("\nInsights: not ready: insights_url http://10%.0%.0%.5/insights "
      .. "%(AUDITRUN_INSIGHTS_URL%) is not https: credentials and tokens are never sent in the clear but to "
      .. "loopback %(AUDITRUN_LAB=1 allows it for a lab%)\n", out)
    assert.matches("\nDealCloud: ready\n", out)
    assert.equal("auditrun: config: Insights configured but not ready (see above)\n", err)
    code, out = run({ "config" }, { AUDITRUN_INSIGHTS_URL = "http://127.0.0.1:9/insights", AUDITRUN_CLIENT_SECRET = "s" })
    assert.equal(1, code)
    assert.matches("\nInsights: not ready: identity_url http://id%.example %(config file " .. file:gsub("%p", "%%%0")
      .. "%) is not https", out)
    http_url.AUDITRUN_LAB = "1"
    code, out, err = run({ "config" }, http_url)
    assert.equal(0, code, err)
    assert.matches("\nInsights: ready\n", out)
  end)

  -- Regression: a config file holding a secret was read whatever its mode.
  it("warns, naming the file and the chmod that fixes it, when others can read a config file's secret", function()
    util.write(file, 'return { default = { exavault_url = "https://a.exavault.com/api/v2", exavault_api_key = "k", ' ..
      'exavault_access_token = "t" } }')
    local script = host.script([[
      assert(require("auditrun.exavault").connect())
      assert(require("auditrun.dealcloud").connect() == nil)
      print("connected")
    ]])
    local function warning(mode)
      return ("warning: config file %s holds a secret and group or others can read it (mode %s): run chmod 600 %s")
        :format(file, mode, file)
    end
    for _, mode in ipairs { "0644", "0666", "0640" } do
      os.execute("chmod " .. mode .. " " .. file)
      local code, out, err = run { "config" }
      assert.equal(0, code, err)
      assert.matches("\n\n" .. warning(mode):gsub("%p", "%%%0") .. "\n$", out)
      assert.equal("", err)
      code, out, err = run { script }
      assert.equal(0, code, err)
      assert.equal("connected\n", out)
      assert.equal("auditrun: " .. warning(mode) .. "\n", err)  -- once, though read for two vendors
    end
    os.execute("chmod 600 " .. file)
    local code, _, err = run { script }
    assert.equal(0, code, err)
    assert.equal("", err)
    -- A secret the file reads from the environment is not in the file.
    util.write(file, 'return { default = { exavault_url = "https://a.exavault.com/api/v2", ' ..
      'exavault_api_key = os.getenv("EV_KEY"), exavault_access_token = os.getenv("EV_TOKEN") } }')
    os.execute("chmod 644 " .. file)
    code, _, err = run({ script }, { EV_KEY = "k", EV_TOKEN = "t" })
    os.remove(script)
    assert.equal(0, code, err)
    assert.equal("", err)
    local out
    code, out = run({ "config" }, { EV_KEY = "k", EV_TOKEN = "t" })
    assert.equal(0, code)
    assert.is_nil(out:find("warning", 1, true))
  end)

  it("lets a config file read the environment and refuse with error()", function()
    util.write(file, [[
      local secret = os.getenv("CONTOSO_SECRET") or error("set CONTOSO_SECRET")
      return { default = { insights_url = "https://x.example/insights", client_id = "c", client_secret = secret } }]])
    local code, out, err = run({ "config" }, { CONTOSO_SECRET = "from-env" })
    assert.equal(0, code, err)
    assert.same({ "********", "config file " .. file }, { row(out, "client_secret") })
    local code2, _, err2 = run { "config" }
    assert.equal(1, code2)
    assert.matches("set CONTOSO_SECRET", err2)
  end)

  it("is a usage error (exit 2) for an option it does not know", function()
    local code, _, err = run { "config", "--frob" }
    assert.equal(2, code)
    assert.matches("auditrun: config: unknown option '%-%-frob'", err)
  end)
end)
