-- The command line of every bundled workflow, run by the host as a user
-- would: --help prints the usage its declaration gives and sends nothing
-- (the sandbox records every request it gets); an unknown flag, a stray
-- argument or a bad value is a usage error (exit 2, the usage and one
-- line); a reader that closes stdout early does not stop a run.
local helper = require("tests.helper")
local sandbox, host, reports, util = helper.sandbox, helper.host, helper.reports, helper.util

local lines = util.lines

-- Every bundled workflow, from the scripts folder.
local function workflows()
  local names = {}
  for _, f in ipairs(lines(util.sh("ls scripts"))) do
    local name = f:match("^(.+)%.lua$")
    if name then names[#names + 1] = name end
  end
  return names
end

describe("bundled workflows", function()
  local sb = sandbox.for_describe {}
  local home, env

  setup(function() home, env = sb:new_home() end)
  teardown(function() util.remove(home) end)
  before_each(function() sb:control("POST", "/reset") end)

  it("are listed, each with its one-line description", function()
    local code, out = host.run({ "--list" })
    assert.equal(0, code)
    local names = workflows()
    assert.is_true(#names >= 12, "only " .. #names .. " workflows")
    for _, name in ipairs(names) do
      assert.matches("\n?" .. name:gsub("%-", "%%-") .. " +%u[^\n]+", out)
    end
  end)

  it("print their usage for --help and send nothing", function()
    for i, name in ipairs(workflows()) do
      -- Every form once; then --help alone (each run is a host start).
      local forms = { { name, "--help" } }
      if i == 1 then
        forms[2] = { name, "-h" }
        forms[3] = { "--profile", "x", name, "--out", "o", "--help" }
      end
      for _, args in ipairs(forms) do
        local code, out, err = host.run(args, { env = env })
        assert.equal(0, code, name .. ": " .. err)
        assert.equal("", err, name)
        assert.matches("^Usage: auditrun " .. name:gsub("%-", "%%-") .. " ", out)
        assert.matches("\n   %-h, %-%-help ", out)
        assert.matches("\n   %-%-profile NAME ", out)
      end
      assert.same({}, sb:control("GET", "/requests"), name .. " --help sent a request")
    end
    assert.is_nil(util.read(home .. "/o"), "--help made a folder")
  end)

  it("refuse an unknown flag, a stray argument or a bad value with exit 2 and send nothing", function()
    for _, name in ipairs(workflows()) do
      local cases = { { name, "--no-such-flag" }, { name, "--profile" } }
      if name ~= "token-check" then
        cases[#cases + 1] = { name, "stray" }
      else
        cases[#cases + 1] = { name, "https://a.example/", "stray" }
      end
      for _, args in ipairs(cases) do
        local code, out, err = host.run(args, { env = env })
        local what = table.concat(args, " ")
        assert.equal(2, code, what .. ": " .. err)
        assert.equal("", out, what)
        assert.matches("^Usage: auditrun " .. name:gsub("%-", "%%-") .. " ", err, what)
        assert.matches("\nauditrun: " .. name:gsub("%-", "%%-") .. ": [^\n]+\n$", err, what)
      end
      assert.same({}, sb:control("GET", "/requests"), name)
    end
    local many = {}
    for i = 1, 101 do many[i] = "https://sandbox.sharepoint.com/sites/s" .. i end
    util.write(home .. "/101-sites.txt", table.concat(many, "\n") .. "\n")
    for _, args in ipairs {
      { "external-group-access", "--log-format", "xml" },
      { "external-group-access", "-q", "-v" },
      { "site-overview", "--format", "xml" },
      { "external-group-access", "--batch-size", "0" },
      { "external-group-access", "--max-attempts", "two" },
      { "external-group-access", "--data-sources", "dropbox" },
      { "external-group-access", "--language", "fr-FR" },     -- legacy only
      { "external-group-access", "--sites", home .. "/missing.txt" },
      { "external-group-access", "--api", "legacy", "--sites", home .. "/101-sites.txt" },
    } do
      local code, _, err = host.run(args, { env = env })
      assert.equal(2, code, table.concat(args, " ") .. ": " .. err)
    end
  end)

  it("draw one live progress line on a terminal, and log lines elsewhere", function()
    local dir = home .. "/tty"
    local parts = {}
    for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. host.quote(v) end
    -- script(1) gives the host a terminal; its output is what a person sees.
    local cmd = ("env %s %s guest-access --out %s"):format(table.concat(parts, " "), host.binary, dir)
    local screen = util.sh(("script -qec %s /dev/null"):format(host.quote(cmd)))
    local guests = sb:control("GET", "/tenant").counts.guests
    assert.matches("\r%d+:%d%d listed %d+  queued %d+  running %d+  done %d+  failed 0  [%d%.]+ %a?B  ETA [%d:%-]+\27%[K",
      screen)
    assert.matches(("\r%%d+:%%d%%d listed %d  queued 0  running 0  done %d  failed 0 "):format(guests, guests), screen)
    assert.is_nil(screen:find(" listed user ", 1, true), "a log line on a terminal")
    assert.matches("guest%-access: " .. guests .. " of " .. guests .. " reports", screen)
    -- Not a terminal: a timestamped line per event, no carriage returns.
    local code, _, err = host.run({ "guest-access", "--out", home .. "/log" }, { env = env })
    assert.equal(0, code, err)
    assert.is_nil(err:find("\r", 1, true))
    assert.matches("\n%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ done user [^\n]+%.zip %(", err)
  end)

  it("say a wrong password in one line and exit 1, exports and records alike", function()
    local wrong = {}
    for k, v in pairs(env) do wrong[k] = v end
    wrong.AUDITRUN_CERT_PASSWORD = "not-the-password"
    for _, args in ipairs {
      { "external-group-access", "--out", home .. "/pw" },
      { "site-overview", "--out", home .. "/pw.csv" },
    } do
      local code, out, err = host.run(args, { env = wrong })
      assert.equal(1, code, err)
      assert.equal("", out)
      assert.equal(1, #util.lines(err), err)
      assert.matches("^auditrun: key: ", err)
    end
    assert.same({}, sb:control("GET", "/requests"))
  end)

  it("finish a run whose reader closed stdout early", function()
    local dir = home .. "/head"
    local cmd = ("env HOME=%s AUDITRUN_INSIGHTS_URL=%s AUDITRUN_IDENTITY_URL=%s AUDITRUN_CLIENT_ID=%s AUDITRUN_CERT=%s "
      .. "AUDITRUN_CERT_PASSWORD=sandbox-pass AUDITRUN_CA_FILE=%s %s guest-access --out %s 2>%s/err | head -1; "
      .. "echo ${PIPESTATUS[0]}"):format(home, env.AUDITRUN_INSIGHTS_URL, env.AUDITRUN_IDENTITY_URL,
      env.AUDITRUN_CLIENT_ID, env.AUDITRUN_CERT, env.AUDITRUN_CA_FILE, host.binary, dir, home)
    local out = util.sh("bash -c " .. host.quote(cmd))
    local first, code = out:match("^([^\n]*)\n(%d+)\n$")
    assert.matches("%.zip$", first)
    assert.equal("0", code, util.read(home .. "/err"))
    local guests = sb:control("GET", "/tenant").counts.guests
    assert.equal(guests, #reports.zips(dir))
    assert.equal(guests, reports.summary(dir).done)
  end)
end)
