-- Malformed answers and bad local input, met as a user meets them: the
-- host runs a bundled workflow and must end with one clear line naming
-- what was wrong (the endpoint, the file, the flag), a non-zero exit, no
-- traceback, in bounded time, and no half-written report.
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local auditrun = require("auditrun")
local http = sandbox.http()

local FX = os.getenv("PWD") .. "/tests/fixtures/"

-- The last line of stderr, after checking that nothing deep leaked out.
local function one_line(stderr)
  assert.is_nil(stderr:find("stack traceback", 1, true), stderr)
  assert.is_nil(stderr:find("%.lua:%d+:"), stderr)
  local lines = util.lines(stderr)
  return lines[#lines] or ""
end

describe("malformed answers", function()
  local sb = sandbox.for_describe {}
  local home, env

  local function control(method, path, body)
    return auditrun.try(http.request_json { method = method, url = sb.url .. "/insights-control" .. path, json = body })
  end

  setup(function()
    home = util.tempdir()
    env = { HOME = home, AUDITRUN_INSIGHTS_URL = sb.url .. "/insights", AUDITRUN_IDENTITY_URL = sb.issuer,
            AUDITRUN_CLIENT_ID = sb.clients.cert, AUDITRUN_CERT = FX .. "app.pfx",
            AUDITRUN_CERT_PASSWORD = "sandbox-pass", AUDITRUN_CA_FILE = sb.ca_file }
  end)
  teardown(function() util.remove(home) end)
  before_each(function() control("POST", "/reset") end)

  local SUMMARY = "GET /insights/users/summary"
  local rows = {}
  for i = 1, 100 do rows[i] = string.format('{"loginName": "guest%d#EXT#@x"}', i) end
  local FULL_PAGE = -- a whole page (the client asks for 100 rows), again and again
    '{"results": [' .. table.concat(rows, ",") .. ']}'
  -- Whole pages of the guests from `first` on.
  local function page_from(first)
    local list = {}
    for i = first, first + 99 do list[#list + 1] = string.format('{"loginName": "guest%d#EXT#@x"}', i) end
    return '{"results": [' .. table.concat(list, ",") .. ']}'
  end
  local STATUS = "GET /insights/job/"
  local cases = {
    { "an HTML error page", { match = SUMMARY, status = 200, content_type = "text/html",
      body = "<html><body><h1>Service Unavailable</h1></body></html>" }, "malformed JSON in user_summaries" },
    -- Regression: these three were taken for "no users" and the run ended
    -- with nothing to do and exit 0.
    { "JSON that is not an object", { match = SUMMARY, body = "42" },
      "user_summaries: page 1: the answer is not a JSON object or list" },
    { "null where the list belongs", { match = SUMMARY, body = '{"results": null, "total": 5}' },
      "user_summaries: page 1: 'results' is null where a list belongs" },
    { "a string where the list belongs", { match = SUMMARY, body = '{"results": "none"}' },
      "user_summaries: page 1: 'results' is a string where a list belongs" },
    -- Regression: a server ignoring the page asked for was followed to MAX_PAGES.
    { "pages that never end", { match = SUMMARY, times = 1000000, body = FULL_PAGE },
      "Insights %(Graph API%) user_summaries: page 2 repeats rows of page 1", listed_first = true },
    -- Regression: only a page the same as the one just before was caught.
    { "pages that alternate", { match = SUMMARY, times = 1000000, bodies = { page_from(1), page_from(101) } },
      "user_summaries: page 3 repeats rows of page 1", listed_first = true },
    { "pages that shift", { match = SUMMARY, times = 1000000, bodies = { page_from(1), page_from(51), page_from(101) } },
      "user_summaries: page 2 repeats rows of page 1", listed_first = true },
    { "an unknown job status", { match = STATUS, times = 1000, body = '{"jobStatus": 9}' },
      "job %d+ of user_permissions_export has an unknown status 9" },
    { "a job status that is not JSON", { match = STATUS, times = 1000, body = "Export in progress." },
      "malformed JSON in the job status" },
    -- The fix named: the shape of the base URL, the credentials in use.
    { "a 404 from the API", { match = SUMMARY, status = 404, body = "{}" },
      "HTTP 404 Not Found from GET [^\n]*; insights_url %(environment AUDITRUN_INSIGHTS_URL%) must be the API's base "
        .. "URL, like https://graph%-us%.avepointonlineservices%.com/insights\n$" },
    { "a 401 from the API", { match = SUMMARY, status = 401, times = 10, body = "{}" },
      "; check client_id %(environment AUDITRUN_CLIENT_ID%), cert %(environment AUDITRUN_CERT%), "
        .. "scope %(default%) of profile 'default'\n$" },
    { "a huge answer", { match = SUMMARY, huge_mb = 65 },
      "response body larger than 67108864 bytes %(GET https://127.0.0.1:%d+/insights/users/summary%)" },
  }
  for _, case in ipairs(cases) do
    it("ends with one clear line on " .. case[1], function()
      control("POST", "/faults", case[2])
      local out = home .. "/out"
      local code, _, stderr = host.run({ "guest-access", "--out", out, "--max-attempts", "1" }, { env = env })
      assert.is_true(code ~= 0, stderr)
      if case[2].match == SUMMARY and not case.listed_first then
        -- The listing fails before anything is under way: that error is
        -- the one line.
        assert.equal(1, #util.lines(stderr), stderr)
        assert.matches("^auditrun: [%w_]+: [^\n]*" .. case[3], stderr)
      else
        -- The workflow's summary lists each failure on a line of its own,
        -- then its last line says the run is incomplete.
        assert.matches("^auditrun: incomplete: ", one_line(stderr))
        assert.matches("\n  failed: [^\n]*" .. case[3], stderr)
      end
      assert.equal("", util.sh("find " .. out .. " -name '.*.part-*' 2>/dev/null"))
      os.execute("rm -rf " .. out)
    end)
  end
end)

describe("bad local input", function()
  local dir
  before_each(function() dir = util.tempdir() end)
  after_each(function() util.remove(dir) end)

  local base = { AUDITRUN_INSIGHTS_URL = "https://127.0.0.1:9/insights", AUDITRUN_IDENTITY_URL = "https://127.0.0.1:9/id",
                 AUDITRUN_CLIENT_ID = "app" }
  local cases = {
    { "a missing certificate", { AUDITRUN_CERT = "/no/such.pfx", AUDITRUN_CERT_PASSWORD = "x" },
      "^auditrun: key: /no/such.pfx: No such file or directory$" },
    { "a certificate that is a folder", { AUDITRUN_CERT = "/tmp", AUDITRUN_CERT_PASSWORD = "x" }, "^auditrun: key: .*/tmp" },
    { "a wrong password", { AUDITRUN_CERT = FX .. "app.pfx", AUDITRUN_CERT_PASSWORD = "not-the-one" },
      "^auditrun: key: wrong password for .*app.pfx$" },
    { "a key file given as the certificate", { AUDITRUN_CERT = FX .. "app-key.pem" },
      "^auditrun: key: no certificate found in .*app%-key.pem$" },
    { "an EC key", { AUDITRUN_CERT = FX .. "ec-cert.pem", AUDITRUN_KEY = FX .. "ec-key.pem" },
      "^auditrun: key: the key in .*ec%-key.pem is not an RSA key" },
    { "an expired certificate", { AUDITRUN_CERT = FX .. "expired-cert.pem", AUDITRUN_KEY = FX .. "app-key.pem" },
      "^auditrun: key: the certificate in .*expired%-cert.pem expired on 2021%-01%-01" },
    { "garbage", { AUDITRUN_CERT = FX .. "garbage.pem" }, "^auditrun: key: no certificate found in .*garbage.pem$" },
    { "a config syntax error", { config = 'return { default = { client_id = "x", cert_password = "s3cret } }' },
      "^auditrun: config: config file .*config.lua, line 1 %(key 'cert_password'%): unfinished string$" },
    { "an unknown config key", { config = 'return { default = { colour = "red" } }' },
      "^auditrun: config: config file .*config.lua, profile 'default': unknown key 'colour'$" },
  }
  for _, case in ipairs(cases) do
    it("says what is wrong in one line: " .. case[1], function()
      local env = { HOME = dir }
      for k, v in pairs(base) do env[k] = v end
      for k, v in pairs(case[2]) do
        if k == "config" then
          util.write(dir .. "/config.lua", v)
          env.AUDITRUN_CONFIG = dir .. "/config.lua"
        else
          env[k] = v
        end
      end
      local code, _, stderr = host.run({ "user-access", "--out", dir .. "/out" }, { env = env })
      assert.equal(1, code, stderr)
      assert.equal(1, #util.lines(stderr), stderr)
      assert.matches(case[3], one_line(stderr))
      assert.is_nil(stderr:find("s3cret", 1, true))
    end)
  end

  -- Regression: a subject listed twice was submitted twice; bytes that are
  -- not UTF-8 went to the service as they were.
  it("reads a subject file with blank lines and duplicates once each, and refuses one that is not UTF-8", function()
    util.write(dir .. "/users.txt", "\239\187\191a@contoso.com\n\n   \n# a comment\nA@Contoso.com\nb@contoso.com \n")
    local env = { HOME = dir, AUDITRUN_CERT = FX .. "app.pfx", AUDITRUN_CERT_PASSWORD = "sandbox-pass" }
    for k, v in pairs(base) do env[k] = v end
    local code, out, stderr = host.run({ "user-access", "--users", dir .. "/users.txt", "--dry-run", "--out", dir .. "/o" },
      { env = env })
    assert.equal(0, code, stderr)
    assert.equal(2, select(2, out:gsub("would submit", "")), out)
    util.write(dir .. "/bad.txt", "a@contoso.com\n\255\254@contoso.com\n")
    code, out, stderr = host.run({ "user-access", "--users", dir .. "/bad.txt", "--dry-run" }, { env = env })
    assert.is_true(code ~= 0, out)
    assert.matches("%-%-users .*bad.txt: line 2 is not UTF%-8 text", one_line(stderr))
  end)

  for _, case in ipairs {
    { "a malformed date", { "activity-timeline", "--from", "2025-13-45", "--to", "2025-12-01" }, "%-%-from" },
    { "a word for a date", { "dealcloud-activity", "--from", "yesterday" }, "not 'yesterday'" },
  } do
    it("says what is wrong with " .. case[1] .. " in one line", function()
      local code, _, stderr = host.run(case[2], { env = { HOME = dir } })
      assert.is_true(code ~= 0)
      assert.matches(case[3], one_line(stderr))
    end)
  end
end)
