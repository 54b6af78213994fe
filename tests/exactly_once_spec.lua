-- variants: plain
-- Exactly once at the worst instants, with the host as a subprocess running
-- the guest-access and external-group-access workflows against the sandbox
-- (token lifetime 4 s): kill -9 the moment a report
-- takes its name (several times, then a rerun), right after a submit's job
-- id is recorded, between recording a report's name and the rename, and
-- between recording the intent and sending the submit; Ctrl-C while a
-- submit's answer is on its way; a double Ctrl-C during a plain export's
-- download; and a run through 429s with Retry-After, 503s, downloads cut
-- mid-body and a revoked token. The instants are reached on purpose
-- (AUDITRUN_PAUSE_AT, auditrun.run) or held open by a sandbox delay, not
-- hit by chance.
local helper = require("tests.helper")
local sandbox, host, reports, util = helper.sandbox, helper.host, helper.reports, helper.util
local auditrun = require("auditrun")
local http = sandbox.http()

local read_state = reports.state

-- The workflows, each with its export, where its submit names the subject,
-- and how many subjects the tenant has for it.
local WORKFLOWS = {
  { name = "guest-access", export = "user_permissions_export", subject = "/users/([^/]+)/access/export",
    count = function(t) return t.counts.guests end },
  { name = "external-group-access", export = "group_access_export", subject = "/groups/([^/]+)/access/export",
    count = function(t) return t.counts.groupsWithExternalMembers end },
}

describe("exactly once", function()
  local sb = sandbox.for_describe { token_ttl = 4 }
  local home, env, tenant

  local function control(method, path, body)
    return sb:control(method, path, body)
  end

  -- How many jobs the service started for each subject (from the
  -- sandbox's record of requests: a refused one, 429 or 401, started none).
  local function submits(wf)
    local per = {}
    for _, r in ipairs(control("GET", "/requests?match=/access/export")) do
      local subject = r.url:match(wf.subject)
      if r.status == 200 and subject then
        -- An e-mail is escaped twice in the path, as the API wants it.
        subject = http.unescape(http.unescape(subject))
        per[subject] = (per[subject] or 0) + 1
      end
    end
    return per
  end

  -- Each subject submitted once; a kill -9 while its submit was out may add
  -- one more per kill, and only with the subject flagged.
  local function assert_each_submitted_once(wf, dir, kills)
    local per = submits(wf)
    local st = read_state(dir)
    local n = 0
    for subject, times in pairs(per) do
      n = n + 1
      local rec = st[wf.export .. ":" .. subject]
      assert.is_table(rec, subject)
      if rec.extra_job then
        assert.is_true(times <= 1 + (kills or 0), subject)
      else
        assert.equal(1, times, subject)
      end
    end
    assert.equal(wf.count(tenant), n)
  end

  -- One whole zip per subject, no second copy, nothing temporary left.
  local function assert_one_report_each(wf, dir)
    local names = reports.zips(dir)
    assert.equal(wf.count(tenant), #names)
    for _, n in ipairs(names) do assert.is_nil(n:find("(", 1, true), "a second copy: " .. n) end
    for _, n in ipairs(util.listing(dir)) do assert.is_nil(n:find(".part-", 1, true), "left behind: " .. n) end
    assert.is_true(reports.intact(dir))
  end

  -- Starts the workflow into dir (extra: more arguments) paused at
  -- `instant`; once a task says it is there, sends `sig` and returns the
  -- exit code and stderr.
  local function run_until(wf, dir, instant, sig, extra)
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    e.AUDITRUN_PAUSE_AT = instant
    local args = { wf.name, "--out", dir }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    local h = host.start(args, { env = e })
    local deadline = auditrun.now() + 60
    local marker = "paused at " .. instant
    while not (util.read(h.dir .. "/err") or ""):find(marker, 1, true) and auditrun.now() < deadline do
      auditrun.sleep(0.02)
    end
    assert.is_truthy((util.read(h.dir .. "/err") or ""):find(marker, 1, true), "never reached " .. instant)
    h:signal(sig)
    local code, _, err = h:wait(60)
    return code, err
  end

  -- Runs the workflow into dir to its end (extra: more arguments). A
  -- submit a kill left without an answer holds its slot for --job-length
  -- when no job of its export was seen done (15 minutes by default): here
  -- 5 s, unless the test gives its own.
  local function rerun(wf, dir, extra)
    local args = { wf.name, "--out", dir }
    local length_given = false
    for _, a in ipairs(extra or {}) do
      args[#args + 1] = a
      if a == "--job-length" then length_given = true end
    end
    if not length_given then
      args[#args + 1], args[#args + 2] = "--job-length", "5"
    end
    local code, out, err = host.run(args, { env = env })
    assert.equal(0, code, err)
    return out, err
  end

  -- Reruns the workflow into dir (rerun) to its end: one report per subject, each
  -- submitted once (see assert_each_submitted_once for `kills`).
  local function rerun_finishes(wf, dir, kills)
    local out, err = rerun(wf, dir)
    assert_one_report_each(wf, dir)
    assert_each_submitted_once(wf, dir, kills)
    return out, err
  end

  setup(function()
    tenant = control("GET", "/tenant")
    home, env = sb:new_home()
  end)
  teardown(function() util.remove(home) end)
  before_each(function()
    control("POST", "/reset")
    control("POST", "/config", { jobSeconds = 0.3, listingReverse = false })
  end)

  for _, wf in ipairs(WORKFLOWS) do
    describe(wf.name, function()
      it("kill -9 the moment a report takes its name, three times, then a rerun: one report per subject", function()
        local dir = home .. "/" .. wf.name .. "-placed"
        for _ = 1, 3 do
          local code = run_until(wf, dir, "placed", "KILL")
          assert.equal(137, code)
        end
        rerun_finishes(wf, dir, 3)
      end)

      it("kill -9 between recording a report's name and the rename: the rerun names it once", function()
        local dir = home .. "/" .. wf.name .. "-placing"
        assert.equal(137, (run_until(wf, dir, "placing", "KILL")))
        rerun_finishes(wf, dir, 1)
      end)

      it("kill -9 right after a submit's job id is recorded: the rerun waits for that job", function()
        local dir = home .. "/" .. wf.name .. "-submitted"
        assert.equal(137, (run_until(wf, dir, "submitted", "KILL")))
        local at_kill = read_state(dir)
        rerun_finishes(wf, dir, 1)
        local after = read_state(dir)
        for k, v in pairs(at_kill) do
          if type(v) == "table" and v.job then assert.equal(v.job, after[k].job, k) end
        end
      end)

      it("kill -9 after the intent is recorded and before the submit: submitted once more, flagged", function()
        local dir = home .. "/" .. wf.name .. "-posting"
        assert.equal(137, (run_until(wf, dir, "posting", "KILL")))
        local flagged = {}
        for k, v in pairs(read_state(dir)) do
          if type(v) == "table" and v.state == "posting" then flagged[k] = true end
        end
        assert.is_truthy(next(flagged))
        -- No job was seen done before the kill: each flagged submit keeps a
        -- slot --job-length seconds after it was recorded.
        rerun(wf, dir, { "--job-length", "2" })
        assert_one_report_each(wf, dir)
        -- The service may hold an extra job for each subject whose submit was
        -- out when the process died: the state says so.
        local after = read_state(dir)
        for k in pairs(flagged) do assert.is_true(after[k].extra_job, k) end
        -- And the summary says so.
        local listed = {}
        for _, k in ipairs(reports.summary(dir).extra_jobs) do listed[k] = true end
        assert.same(flagged, listed)
        for k, v in pairs(after) do
          if not flagged[k] and type(v) == "table" then assert.is_nil(v.extra_job, k) end
        end
      end)

      it("Ctrl-C while a submit's answer is on its way: the job is recorded, nothing is submitted twice", function()
        local dir = home .. "/" .. wf.name .. "-interrupted"
        -- The service starts the job at once and answers 1.5 s later.
        control("POST", "/faults", { match = "/access/export", delay_ms = 1500, times = 1 })
        local h = host.start({ wf.name, "--out", dir }, { env = env })
        local deadline = auditrun.now() + 60
        while next(submits(wf)) == nil and auditrun.now() < deadline do auditrun.sleep(0.02) end
        assert.is_truthy(next(submits(wf)), "no submit was sent")
        h:signal("INT")
        local code, _, err = h:wait(60)
        assert.equal(130, code, err)
        local recorded = 0
        for _, v in pairs(read_state(dir)) do
          if type(v) == "table" and v.job then recorded = recorded + 1 end
        end
        assert.is_true(recorded >= 1)
        for _ = 1, 2 do
          -- Interrupted again, each time during a submit's answer.
          control("POST", "/faults", { match = "/access/export", delay_ms = 1000, times = 1 })
          local before = 0
          for _, n in pairs(submits(wf)) do before = before + n end
          h = host.start({ wf.name, "--out", dir }, { env = env })
          deadline = auditrun.now() + 60
          repeat
            auditrun.sleep(0.02)
            local now = 0
            for _, n in pairs(submits(wf)) do now = now + n end
          until now > before or auditrun.now() > deadline
          h:signal("INT")
          assert.equal(130, (h:wait(60)))
        end
        rerun_finishes(wf, dir)
      end)

      it("finish every report once through 429s with Retry-After, 503s, cut downloads and a revoked token", function()
        local dir = home .. "/" .. wf.name .. "-faults"
        control("POST", "/faults", {
          { match = "/access/export", status = 429, retry_after = "1", times = 4 },
          { match = "/exportstatus", status = 503, times = 5 },
          { match = "/exportfile", reset = true, times = 3 },
          { match = "/exportstatus", token_revoked = true, times = 1 },
          { match = "/access/export", token_revoked = true, times = 1 },
        })
        rerun_finishes(wf, dir)
        assert.same({}, control("GET", "/faults"))
      end)
    end)
  end

  it("a submit whose outcome is unknown keeps its slot on the rerun: the tenant never sees a sixth job", function()
    local wf = WORKFLOWS[1]
    local dir = home .. "/unknown-slots"
    control("POST", "/config", { jobSeconds = 2 })
    control("POST", "/stats/reset")
    local function sent()
      local n = 0
      for _, times in pairs(submits(wf)) do n = n + times end
      return n
    end
    -- Killed with five submits out: the tenant started their jobs (they
    -- run 2 s) and the answers are 5 s away. Twice, the second time from
    -- a rerun that holds the first run's five.
    for round = 1, 2 do
      control("POST", "/faults", { match = "/access/export", delay_ms = 5000, times = 5 })
      local before = sent()
      local h = host.start({ wf.name, "--out", dir, "--job-length", "5" }, { env = env })
      local deadline = auditrun.now() + 60
      while sent() < before + 5 and auditrun.now() < deadline do auditrun.sleep(0.02) end
      assert.equal(before + 5, sent(), "round " .. round)
      h:signal("KILL")
      assert.equal(137, (h:wait(60)))
      control("DELETE", "/faults")
      assert.equal(0, control("GET", "/stats").jobs_refused, "round " .. round)
      local unknown = 0
      for _, v in pairs(read_state(dir)) do
        if type(v) == "table" and v.state == "posting" then unknown = unknown + 1 end
      end
      assert.is_true(unknown >= 5, "round " .. round)
    end
    -- Killed twice more, the moment a report lands, then run to its end.
    for _ = 1, 2 do assert.equal(137, (run_until(wf, dir, "placed", "KILL", { "--job-length", "5" }))) end
    local _, err = rerun(wf, dir, { "--job-length", "5" })
    assert_one_report_each(wf, dir)
    assert_each_submitted_once(wf, dir, 4)
    local stats = control("GET", "/stats")
    assert.equal(0, stats.jobs_refused, err)
    assert.is_true(stats.max_jobs_in_flight <= 5)
  end)

  it("jobs an earlier run recorded keep their slots on the rerun, whatever order the listing brings them in", function()
    local wf = WORKFLOWS[2]
    local dir = home .. "/recorded-slots"
    control("POST", "/config", { jobSeconds = 4 })
    control("POST", "/stats/reset")
    -- Killed with five jobs running at the tenant (4 s each), their ids
    -- recorded.
    local h = host.start({ wf.name, "--out", dir }, { env = env })
    local deadline, running = auditrun.now() + 60, 0
    while running < 5 and auditrun.now() < deadline do
      auditrun.sleep(0.02)
      running = 0
      for _, v in pairs(read_state(dir)) do
        if type(v) == "table" and v.state == "submitted" and v.job and not v.path then running = running + 1 end
      end
    end
    assert.equal(5, running)
    h:signal("KILL")
    assert.equal(137, (h:wait(60)))
    -- The rerun lists those five groups last: it must not start a job of
    -- its own while theirs still run.
    -- (The rerun's own jobs are short: the first five keep their 4 s.)
    control("POST", "/config", { listingReverse = true, jobSeconds = 0.05 })
    local _, err = rerun_finishes(wf, dir)
    local stats = control("GET", "/stats")
    assert.equal(0, stats.jobs_refused, err)
    assert.is_true(stats.max_jobs_in_flight <= 5)
  end)

  it("Ctrl-C while a refused submit waits to try again: the rerun flags no extra job", function()
    local wf = WORKFLOWS[1]
    local dir = home .. "/refused"
    control("POST", "/faults", { match = "/access/export", status = 429, retry_after = "30", times = 1000 })
    local h = host.start({ wf.name, "--out", dir }, { env = env })
    local deadline = auditrun.now() + 60
    local function refused()
      for _, r in ipairs(control("GET", "/requests?match=/access/export")) do
        if r.status == 429 then return true end
      end
    end
    while not refused() and auditrun.now() < deadline do auditrun.sleep(0.02) end
    assert.is_true(refused(), "no submit was refused")
    auditrun.sleep(0.2)
    h:signal("INT")
    assert.equal(130, (h:wait(60)))
    for k, v in pairs(read_state(dir)) do
      assert.is_nil(type(v) == "table" and v.state, k)
    end
    control("DELETE", "/faults")
    rerun(wf, dir)
    assert_one_report_each(wf, dir)
    assert.same({}, reports.summary(dir).extra_jobs)
    for k, v in pairs(read_state(dir)) do
      if type(v) == "table" then assert.is_nil(v.extra_job, k) end
    end
  end)

  it("a double Ctrl-C during a plain export's download leaves no temporary file", function()
    local dir = home .. "/double"
    os.execute("mkdir -p " .. dir)
    local script = host.script(([[
      local auditrun = require("auditrun")
      local c = auditrun.try(require("auditrun.insights").connect())
      auditrun.try(c:export("user_permissions_export", { email = %q, data_sources = { "teams" } }, { dir = %q }))
    ]]):format(tenant.guests[1].loginName, dir))
    control("POST", "/faults", { match = "/exportfile", slow_ms = 20000, times = 1 })
    local h = host.start({ script }, { env = env })
    local deadline = auditrun.now() + 60
    local function part()
      for _, n in ipairs(util.listing(dir)) do if n:find(".part-", 1, true) then return n end end
    end
    while not part() and auditrun.now() < deadline do auditrun.sleep(0.02) end
    assert.is_truthy(part(), "the download never started")
    h:signal("INT")
    h:signal("INT")
    assert.equal(130, (h:wait(60)))
    os.remove(script)
    assert.same({}, util.listing(dir))
  end)
end)
