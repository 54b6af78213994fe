-- Where a client's settings come from: config file profiles, the
-- environment, the script; regions; and one clear line for each mistake.
local config = require("auditrun.config")
local settings = require("auditrun.insights.settings")
local SCHEMA = settings.schema
local util = require("tests.helper.util")

local function env(t) return function(name) return t[name] end end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

describe("config", function()
  local dir
  before_each(function()
    dir = util.tempdir()
  end)
  after_each(function() util.remove(dir) end)

  local base = { AUDITRUN_CLIENT_ID = "app", AUDITRUN_CLIENT_SECRET = "s3cret", HOME = "/nonexistent" }
  local function with(extra)
    local t = {}
    for k, v in pairs(base) do t[k] = v end
    for k, v in pairs(extra) do t[k] = v end
    return env(t)
  end

  local regions = {
    { "us", "https://graph-us.avepointonlineservices.com/insights", "https://identity.avepointonlineservices.com" },
    { "gcp-kr", "https://graph-gcp-kr.avepointonlineservices.com/insights", "https://identity.avepointonlineservices.com" },
    { "cn", "https://graph-cn.avepointonlineservices.com/insights", "https://identity.avepointonlineservices.com" },
    { "gov", "https://graph-gov.avepointonlineservices.com/insights", "https://identity-gov.avepointonlineservices.com" },
    { "aos2", "https://graph-aos2.avepointonlineservices.com/insights", "https://identity-aos2.avepointonlineservices.com" },
    { "fedramp", "https://graphusgovapi.online15.net/insights", "https://identity.online15.net" },
  }
  for _, r in ipairs(regions) do
    it("maps region " .. r[1] .. " to its API host and identity service", function()
      local c = assert(config.load(SCHEMA, nil, { getenv = with { AUDITRUN_INSIGHTS_REGION = r[1] } }))
      assert.equal(r[2], c.insights_url)
      assert.equal(r[3], c.identity_url)
      assert.equal("insights.graph.readwrite.all", c.scope)
    end)
  end

  it("knows all 24 data centers", function()
    local n = 0
    for _ in pairs(settings.REGIONS) do n = n + 1 end
    assert.equal(24, n)
  end)

  it("lets the environment override the file and the script override both", function()
    local path = dir .. "/config.lua"
    write(path, [[return {
      default = { client_id = "from-file", insights_region = "uk", scope = "file.scope" },
      prod = { client_id = "prod-app", insights_url = "https://example.test/insights/" },
    }]])
    local c = assert(config.load(SCHEMA, nil, { getenv = env { AUDITRUN_CONFIG = path, AUDITRUN_CLIENT_SECRET = "x",
                                                        AUDITRUN_SCOPE = "env.scope" } }))
    assert.equal("from-file", c.client_id)
    assert.equal("env.scope", c.scope)
    assert.equal("https://graph-uk.avepointonlineservices.com/insights", c.insights_url)
    c = assert(config.load(SCHEMA, { client_id = "explicit" }, { getenv = env {
                                                         AUDITRUN_CONFIG = path, AUDITRUN_CLIENT_SECRET = "x",
                                                                       AUDITRUN_PROFILE = "prod" } }))
    assert.equal("explicit", c.client_id)
    assert.equal("https://example.test/insights", c.insights_url)
    -- an environment URL replaces the file's region rather than clashing with it
    c = assert(config.load(SCHEMA, nil, { getenv = env { AUDITRUN_CONFIG = path, AUDITRUN_CLIENT_SECRET = "x",
                                                 AUDITRUN_INSIGHTS_URL = "https://127.0.0.1:9/insights" } }))
    assert.equal("https://127.0.0.1:9/insights", c.insights_url)
  end)

  -- Regression: a password from the environment dropped the file's
  -- certificate with it, and the run said "no credentials".
  it("takes a certificate's password from the environment and the certificate from the file", function()
    local path = dir .. "/config.lua"
    write(dir .. "/pw", "file-password\n")
    write(path, ([[return { default = { client_id = "app", insights_region = "us", cert = "/keys/app.pfx",
      cert_password_file = %q } }]]):format(dir .. "/pw"))
    local c = assert(config.load(SCHEMA, nil, { getenv = env { AUDITRUN_CONFIG = path, AUDITRUN_CERT_PASSWORD = "pw" } }))
    assert.equal("/keys/app.pfx", c.cert)
    assert.equal("pw", c.cert_password)
    assert.is_nil(c.cert_password_file)
    assert.equal("environment", c.sources.cert_password)
    -- A secret from the environment still replaces the file's certificate and its password.
    c = assert(config.load(SCHEMA, nil, { getenv = env { AUDITRUN_CONFIG = path, AUDITRUN_CLIENT_SECRET = "s" } }))
    assert.is_nil(c.cert)
    assert.is_nil(c.cert_password)
    assert.equal("s", c.client_secret)
  end)

  it("calls a setting copied from an example and never filled in not ready, naming it", function()
    for _, v in ipairs { "00000000-0000-0000-0000-000000000000", "<client id>", "YOUR_CLIENT_ID", "your-app-id",
                         "changeme", "xxxx" } do
      local c, err = config.load(SCHEMA, nil, { getenv = with { AUDITRUN_INSIGHTS_REGION = "us", AUDITRUN_CLIENT_ID = v } })
      assert.is_nil(c, v)
      assert.equal("client_id (AUDITRUN_CLIENT_ID) is still a placeholder ('" .. v .. "'): put the real value there",
        err.message)
    end
    -- A secret's placeholder is named, not shown.
    local c, err = config.load(SCHEMA, nil, { getenv = with { AUDITRUN_INSIGHTS_REGION = "us",
                                                                   AUDITRUN_CLIENT_SECRET = "<secret>" } })
    assert.is_nil(c)
    assert.equal("client_secret (AUDITRUN_CLIENT_SECRET) is still a placeholder: put the real value there", err.message)
    -- Real values pass: a GUID, a number, a word with x in it.
    for _, v in ipairs { "11111111-2222-3333-4444-555555555555", "1047", "0", "xylophone" } do
      assert.truthy(config.load(SCHEMA, nil, { getenv = with { AUDITRUN_INSIGHTS_REGION = "us", AUDITRUN_CLIENT_ID = v } }))
    end
  end)

  it("reads secrets and passwords from files, without their newline", function()
    write(dir .. "/secret", "from-a-file\n")
    local c = assert(config.load(SCHEMA, nil, { getenv = with {
      AUDITRUN_CLIENT_SECRET = "", AUDITRUN_CLIENT_SECRET_FILE = dir .. "/secret", AUDITRUN_INSIGHTS_REGION = "us",
    } }))
    assert.equal("from-a-file", c.client_secret)
  end)

  it("never shows a secret when printed", function()
    local c = assert(config.load(SCHEMA, nil, { getenv = with { AUDITRUN_INSIGHTS_REGION = "us" } }))
    assert.is_nil(tostring(c):find("s3cret"))
    assert.matches("client_secret=%(hidden%)", tostring(c))
  end)

  local mistakes = {
    { "an unknown region", { AUDITRUN_INSIGHTS_REGION = "mars" }, "unknown region 'mars' %(AUDITRUN_INSIGHTS_REGION%)" },
    { "both a URL and a region", { AUDITRUN_INSIGHTS_REGION = "us", AUDITRUN_INSIGHTS_URL = "https://x/insights" }, "not both" },
    { "no endpoint", {}, "no Insights endpoint" },
    { "no client id", { AUDITRUN_INSIGHTS_REGION = "us", AUDITRUN_CLIENT_ID = "" }, "no client id" },
    { "a certificate and a secret", { AUDITRUN_INSIGHTS_REGION = "us", AUDITRUN_CERT = "a.pfx" },
      "both a certificate %(AUDITRUN_CERT%) and a client secret %(AUDITRUN_CLIENT_SECRET%)" },
    { "a secret twice", { AUDITRUN_INSIGHTS_REGION = "us", AUDITRUN_CLIENT_SECRET_FILE = "/x" }, "not both" },
    { "no credentials", { AUDITRUN_INSIGHTS_REGION = "us", AUDITRUN_CLIENT_SECRET = "" }, "no credentials" },
    { "an unreadable secret file", { AUDITRUN_INSIGHTS_REGION = "us", AUDITRUN_CLIENT_SECRET = "",
                                      AUDITRUN_CLIENT_SECRET_FILE = "/no/such" }, "cannot read /no/such" },
    { "a bad job limit", { AUDITRUN_INSIGHTS_REGION = "us", AUDITRUN_MAX_JOBS = "lots" }, "max_jobs' must be a whole number" },
    { "a named but missing config file", { AUDITRUN_INSIGHTS_REGION = "us", AUDITRUN_CONFIG = "/no/such.lua" },
      "config file /no/such.lua cannot be read" },
  }
  for _, m in ipairs(mistakes) do
    it("refuses " .. m[1] .. " with one line", function()
      local c, err = config.load(SCHEMA, nil, { getenv = with(m[2]) })
      assert.is_nil(c)
      assert.equal("config", err.kind)
      assert.matches(m[3], err.message)
      assert.is_nil(tostring(err):find("\n"))
      assert.is_nil(tostring(err):find("s3cret"))
    end)
  end

  local files = {
    { "an unknown key", "return { default = { client_id = 'a', colour = 'red' } }", "profile 'default': unknown key 'colour'" },
    { "a syntax error", "return {", "config file .*config.lua, line 1: unexpected symbol" },
    { "code that fails", "return os.exit(1)", "config file .*attempt to call a nil value" },  -- os holds getenv alone
    { "a non-table", "return 42", "must return a table of profiles" },
    { "a missing profile", "return { default = {} }", "has no profile 'nope'", "nope" },
  }
  for _, f in ipairs(files) do
    it("refuses a config file with " .. f[1], function()
      local path = dir .. "/config.lua"
      write(path, f[2])
      local c, err = config.load(SCHEMA, nil, { getenv = with { AUDITRUN_CONFIG = path, AUDITRUN_INSIGHTS_REGION = "us" },
                                        profile = f[4] })
      assert.is_nil(c)
      assert.matches(f[3], err.message)
    end)
  end

  describe("for every vendor", function()
    local dealcloud = require("auditrun.dealcloud.settings").schema
    local exavault = require("auditrun.exavault.settings").schema

    it("take one profile holding the settings of every vendor, each vendor seeing its own", function()
      local path = dir .. "/config.lua"
      write(path, [[return { default = {
        insights_region = "us", client_id = "app", client_secret = "s",
        dealcloud_url = "https://acme.dealcloud.test/", dealcloud_client_id = "12",
        exavault_url = "https://acme.exavault.test/api/v2", exavault_api_key = "k",
      } }]])
      write(dir .. "/token", "tok\n")
      local getenv = env { AUDITRUN_CONFIG = path, AUDITRUN_DEALCLOUD_CLIENT_SECRET = "dcs",
                           AUDITRUN_EXAVAULT_ACCESS_TOKEN_FILE = dir .. "/token" }
      local dc = assert(config.load(dealcloud, nil, { getenv = getenv }))
      assert.equal("https://acme.dealcloud.test", dc.dealcloud_url)
      assert.equal("12", dc.dealcloud_client_id)
      assert.equal("dcs", dc.dealcloud_client_secret)
      assert.equal("user_management", dc.dealcloud_scope)
      assert.is_nil(dc.client_id)
      assert.equal("config file " .. path, dc.sources.dealcloud_url)
      assert.equal("environment", dc.sources.dealcloud_client_secret)
      assert.equal("default", dc.sources.dealcloud_scope)
      assert.is_nil(tostring(dc):find("dcs"))
      local ev = assert(config.load(exavault, nil, { getenv = getenv }))
      assert.equal("tok", ev.exavault_access_token)
      assert.equal("k", ev.exavault_api_key)
      local ins = assert(config.load(SCHEMA, nil, { getenv = getenv }))
      assert.equal("app", ins.client_id)
      assert.is_nil(ins.dealcloud_url)
    end)

    it("name every missing setting of a vendor in one line, and tell an unconfigured vendor", function()
      local getenv = env { HOME = "/nonexistent", AUDITRUN_DEALCLOUD_URL = "https://acme.dealcloud.test" }
      local c, err = config.load(dealcloud, nil, { getenv = getenv })
      assert.is_nil(c)
      assert.equal("DealCloud is not configured: set AUDITRUN_DEALCLOUD_CLIENT_ID, "
        .. "AUDITRUN_DEALCLOUD_CLIENT_SECRET (or _FILE) in the environment, or dealcloud_client_id, "
        .. "dealcloud_client_secret in profile 'default' of /nonexistent/.config/auditrun/config.lua", err.message)
      assert.is_true(config.configured(dealcloud, { getenv = getenv }))
      assert.is_false(config.configured(exavault, { getenv = getenv }))
      c, err = config.load(exavault, nil, { getenv = getenv })
      assert.is_nil(c)
      assert.equal("ExaVault is not configured: set AUDITRUN_EXAVAULT_URL, AUDITRUN_EXAVAULT_API_KEY, "
        .. "AUDITRUN_EXAVAULT_ACCESS_TOKEN (or _FILE) in the environment, or exavault_url, exavault_api_key, "
        .. "exavault_access_token in profile 'default' of /nonexistent/.config/auditrun/config.lua", err.message)
      -- The profile asked for is the one named.
      util.write(dir .. "/x.lua", "return { acme = { exavault_api_key = 'k' } }")
      c, err = config.load(exavault, nil, { getenv = getenv, config_path = dir .. "/x.lua", profile = "acme" })
      assert.is_nil(c)
      assert.matches("set AUDITRUN_EXAVAULT_URL, AUDITRUN_EXAVAULT_ACCESS_TOKEN %(or _FILE%) in the environment, or "
        .. "exavault_url, exavault_access_token in profile 'acme' of " .. (dir .. "/x.lua"):gsub("%p", "%%%0") .. "$",
        err.message)
      -- A CA file alone configures no vendor.
      assert.is_false(config.configured(exavault, { getenv = env { HOME = "/nonexistent", AUDITRUN_CA_FILE = "/x" } }))
    end)
  end)
end)
