-- The guest-access workflow run by the host as a user runs it, against the
-- sandbox tenant: every guest's report once; after kill -9 in the middle, a
-- rerun that finishes the work without submitting a recorded job again or
-- writing any report twice; a state file it did not write refused clearly.
local helper = require("tests.helper")
local sandbox, host, reports, util = helper.sandbox, helper.host, helper.reports, helper.util
local auditrun = require("auditrun")

local lines = util.lines
local zips, all_intact = reports.zips, reports.intact

describe("guest-access", function()
  local sb = sandbox.for_describe {}
  local tenant, home, env

  local function control(method, path, body)
    return sb:control(method, path, body)
  end

  setup(function()
    tenant = control("GET", "/tenant")
    home, env = sb:new_home()
  end)
  teardown(function() util.remove(home) end)
  before_each(function() control("POST", "/reset") end)

  it("exports every guest's report once, and a rerun fetches nothing again", function()
    control("POST", "/config", { jobSeconds = 0.2 })
    local out_dir = home .. "/once"
    local code, out, err = host.run({ "guest-access", "--out", out_dir }, { env = env })
    assert.equal(0, code, err)
    local guests = tenant.counts.guests
    local summary = string.format("guest-access: %d of %d reports in %s (0 from an earlier run), 0 failed", guests,
      guests, out_dir)
    assert.is_truthy(err:find(summary, 1, true), err)
    assert.equal(guests, #lines(out))
    assert.equal(guests, #zips(out_dir))
    assert.is_true(all_intact(out_dir))
    assert.equal(guests, control("GET", "/stats").jobs_submitted)
    -- A clean finish leaves no lock file behind.
    assert.same({}, util.locks(out_dir))

    code, out, err = host.run({ "guest-access", "--out", out_dir }, { env = env })
    assert.equal(0, code, err)
    assert.equal(guests, #lines(out))
    assert.matches(string.format("%%(%d from an earlier run%%)", guests), err)
    assert.equal(guests, #zips(out_dir))
    assert.equal(guests, control("GET", "/stats").jobs_submitted)
  end)

  it("finishes after kill -9 without submitting a recorded job again or writing a report twice", function()
    control("POST", "/config", { jobSeconds = 1.5 })
    local out_dir = home .. "/killed"
    local h = host.start({ "guest-access", "--out", out_dir }, { env = env })
    -- Kill once several jobs are recorded and at least one report is down.
    local deadline = auditrun.now() + 120
    local before
    repeat
      auditrun.sleep(0.05)
      local ok, entries = pcall(reports.state, out_dir)
      local downloaded = 0
      for _, e in pairs(ok and entries or {}) do if e.path then downloaded = downloaded + 1 end end
      if downloaded >= 1 then before = entries end
    until before or auditrun.now() > deadline
    h:signal("KILL")
    local code = h:wait(60)
    assert.equal(137, code)
    assert.is_table(before, "the run never got as far as one report")
    local guests = tenant.counts.guests
    assert.is_true(#zips(out_dir) < guests, "the run ended before the kill")
    assert.is_true(all_intact(out_dir))
    local at_kill = reports.state(out_dir)
    local submitted_before = control("GET", "/stats").jobs_submitted
    -- The killed run's lock is still there; the rerun takes it over and removes it.
    assert.same({ ".auditrun/state.jsonl.lock" }, util.locks(out_dir))

    local _, err
    code, _, err = host.run({ "guest-access", "--out", out_dir }, { env = env })
    assert.equal(0, code, err)
    local names = zips(out_dir)
    assert.equal(guests, #names)
    for _, n in ipairs(names) do assert.is_nil(n:find("(", 1, true), "a second copy: " .. n) end
    assert.is_true(all_intact(out_dir))
    for _, n in ipairs(util.listing(out_dir)) do assert.is_nil(n:find(".part-", 1, true), "left behind: " .. n) end
    assert.same({}, util.locks(out_dir))
    -- Every job the killed run had recorded was picked up, not submitted
    -- again: the rerun submitted only for the guests it had not reached.
    local after = reports.state(out_dir)
    local recorded = 0
    for key, e in pairs(at_kill) do
      -- A submit still out at the kill ("posting") is sent again.
      if e.job then
        recorded = recorded + 1
        assert.equal(e.job, after[key].job, key)
      end
    end
    assert.is_true(recorded >= 1)
    assert.equal(guests - recorded, control("GET", "/stats").jobs_submitted - submitted_before)
  end)

  it("refuses a second run into the same folder while the first runs", function()
    control("POST", "/config", { jobSeconds = 3 })
    local out_dir = home .. "/busy"
    local first = host.start({ "guest-access", "--out", out_dir }, { env = env })
    local deadline = auditrun.now() + 60
    while not util.read(out_dir .. "/.auditrun/state.jsonl.lock") and auditrun.now() < deadline do auditrun.sleep(0.05) end
    auditrun.sleep(0.2)
    local code, _, err = host.run({ "guest-access", "--out", out_dir }, { env = env })
    assert.equal(1, code)
    assert.equal(1, #lines(err))
    assert.matches("^auditrun: state: another run is using .*%.auditrun/state%.jsonl", err)
    first:signal("KILL")
    assert.equal(137, (first:wait(60)))
  end)

  it("refuses a state file it did not write, in one line", function()
    local out_dir = home .. "/foreign"
    os.execute("mkdir -p " .. out_dir .. "/.auditrun && printf '{\"entries\": [' > " .. out_dir .. "/.auditrun/state.jsonl")
    local code, _, err = host.run({ "guest-access", "--out", out_dir }, { env = env })
    assert.equal(1, code)
    assert.equal(1, #lines(err))
    assert.matches("^auditrun: state: .*%.auditrun/state%.jsonl is not a run state", err)
    assert.equal(0, control("GET", "/stats").jobs_submitted)
  end)
end)
