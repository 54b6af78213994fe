-- auditrun --each-profile by the host against the sandbox: a consultant's
-- 20 customer tenants, a config profile each, run in one process with a
-- folder per profile under --out (and --out-dir), one summary line per
-- tenant, a failing tenant that does not stop the others and makes the exit
-- status 1, metrics kept per profile; two Insights tenants each with its own
-- job slots; the usage errors said once.
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util

local count_lines = util.count_lines

describe("--each-profile", function()
  local sb = sandbox.for_describe()
  local t, dir

  -- A config file of `n` ExaVault tenants t01 ... tNN; those in `bad` have a wrong token.
  local function exavault_config(n, bad)
    local parts = { "return {" }
    for i = 1, n do
      local name = string.format("t%02d", i)
      parts[#parts + 1] = string.format("  %s = { exavault_url = %q, exavault_api_key = %q, exavault_access_token = %q },",
        name, sb.url .. "/exavault/api/v2", t.exavault.api_key, bad[name] and "wrong" or t.exavault.access_token)
    end
    parts[#parts + 1] = "}"
    local path = dir .. "/config.lua"
    util.write(path, table.concat(parts, "\n") .. "\n")
    os.execute("chmod 600 " .. path)
    return path
  end

  local function env(config)
    return { HOME = dir, AUDITRUN_CONFIG = config, AUDITRUN_CA_FILE = sb.ca_file, XDG_STATE_HOME = dir .. "/state" }
  end

  before_each(function()
    t, dir = sb:reset_activity(), util.tempdir()
  end)
  after_each(function() util.remove(dir) end)

  it("runs a workflow for 20 tenants in one process: a folder each, a line each, exit 3 when one failed", function()
    local config = exavault_config(20, { t07 = true })
    local out, prom = dir .. "/customers", dir .. "/auditrun.prom"
    local code, _, err = host.run({ "--each-profile", "exavault-sessions", "--out", out, "--metrics", prom, "-q" },
      { env = env(config) })
    assert.equal(3, code, err)
    for i = 1, 20 do
      local name = string.format("t%02d", i)
      local file = out .. "/" .. name .. "/exavault-sessions.jsonl"
      if name == "t07" then
        assert.is_nil(count_lines(file) ~= 0 and count_lines(file) or nil)
        assert.matches("\n  t07: failed: [^\n]*401", err)
      else
        assert.equal(t.exavault.sessions, count_lines(file), name)
        assert.matches("\n  " .. name .. ": ok in %d+:%d%d", err)
      end
    end
    assert.matches("exavault%-sessions for each profile: 19 of 20 ok, 1 failed", err)
    assert.matches("auditrun: t07: ", err)
    assert.matches("auditrun: incomplete: 1 of 20 profiles failed\n$", err)
    -- One process: the metrics of every tenant, each its own series.
    local text = util.read(prom)
    for i = 1, 20 do
      local name = string.format("t%02d", i)
      assert.matches('auditrun_last_exit_code{profile="' .. name .. '",workflow="exavault%-sessions"} '
        .. (name == "t07" and "1" or "0"), text)
    end

    -- --profiles picks some; --out-dir is a parent folder too.
    code, _, err = host.run({ "--each-profile", "--profiles", "t02,t03", "exavault-sessions", "--incremental",
                              "--out-dir", dir .. "/series", "--from", "2000-01-01", "-q" }, { env = env(config) })
    assert.equal(0, code, err)
    assert.matches("2 of 2 ok, 0 failed", err)
    for _, name in ipairs { "t02", "t03" } do
      local files = util.sh("ls " .. dir .. "/series/" .. name .. "/")
      assert.matches("exavault%-sessions_20000101T000000Z_%d+T%d+Z%.jsonl", files)
    end
    assert.equal("", util.sh("ls " .. dir .. "/series/ | grep -v '^t0[23]$' || true"))
  end)

  it("says a usage error once, before any tenant runs", function()
    local config = exavault_config(3, {})
    local cases = {
      { { "--each-profile", "--profiles", "t01,nope", "exavault-sessions", "--out", dir .. "/o" }, "no profile 'nope'" },
      { { "--profile", "t01", "--each-profile", "exavault-sessions" }, "leave %-%-profile out" },
      { { "--profiles", "t01", "exavault-sessions" }, "give both" },
      { { "--each-profile", "exavault-sessions", "--from", "yesterday" }, "%-%-from must be a date" },
    }
    for _, case in ipairs(cases) do
      local code, _, err = host.run(case[1], { env = env(config) })
      assert.equal(2, code, err)
      assert.matches(case[2], err)
      assert.not_matches("%d+ of %d+ ok", err)
    end
    assert.is_nil(util.read(dir .. "/o"))
  end)

  it("gives each Insights tenant its own five job slots", function()
    local cert = os.getenv("PWD") .. "/tests/fixtures/app.pfx"
    local config = dir .. "/config.lua"
    util.write(config, ([[return {
  contoso = { insights_url = %q, identity_url = %q, client_id = %q, cert = %q, cert_password = "sandbox-pass" },
  fabrikam = { insights_url = %q, identity_url = %q, client_id = %q, client_secret = %q },
}
]]):format(sb.url .. "/insights", sb.issuer, sb.clients.cert, cert,
      sb.url .. "/insights", sb.issuer, sb.clients.secret, sb.clients.secret_value))
    os.execute("chmod 600 " .. config)
    sb:control("POST", "/reset")
    local code, _, err = host.run({ "--each-profile", "external-group-access", "--out", dir .. "/reports", "-q" },
      { env = env(config) })
    assert.equal(0, code, err)
    assert.matches("2 of 2 ok", err)
    local a = count_lines(dir .. "/reports/contoso/manifest.jsonl")
    assert.is_true(a > 10)
    assert.equal(a, count_lines(dir .. "/reports/fabrikam/manifest.jsonl"))
    -- Two tenants (two apps), two sets of slots.
    assert.equal("2", util.sh("ls " .. dir .. "/state/auditrun/slots/ | wc -l"):match("%d+"))
    -- Side by side: both tenants' jobs ran at once, neither above its five.
    local stats = sb:control("GET", "/stats")
    assert.equal(0, stats.jobs_refused)
    assert.is_true(stats.max_jobs_in_flight <= 5, stats.max_jobs_in_flight)
    assert.is_true(stats.max_jobs_in_flight_all > 5, stats.max_jobs_in_flight_all)
    -- Each line of the log says whose it is.
    code, _, err = host.run({ "--each-profile", "external-group-access", "--out", dir .. "/reports" },
      { env = env(config) })
    assert.equal(0, code, err)
    for line in err:gmatch("[^\n]+") do
      if line:match("^%d%d%d%d%-") then assert.matches("^%S+ (%a+): ", line) end
    end
    assert.matches("Z contoso: ", err)
    assert.matches("Z fabrikam: ", err)
  end)
end)
