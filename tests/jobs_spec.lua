-- variants: plain
-- auditrun.jobs without a service: status codes read through a family's
-- state map, the poll schedule under a fixed clock, and a submit whose
-- answer carries no job id.
local auditrun = require("auditrun")
local jobs = require("auditrun.jobs")

local STATE = { field = "jobStatus", running = { 1 }, done = { 2 }, failed = { 3 } }

local function family()
  return { status = function() return {} end, state = STATE }
end

-- A job whose status polls get `answers` in turn ({body, headers} each)
-- on a clock only its sleeps move (o: timing, name); -> the job and the
-- list of its sleeps.
local function job_with(answers, o)
  local now, sleeps, i = 0, {}, 0
  o = o or {}
  local job = jobs.new {
    id = "42", name = o.name or "group_access_export", family = family(), timing = o.timing, sent = o.timing and 0,
    answered = o.timing and 0,
    request = function()
      i = i + 1
      return { status = 200, body = answers[i][1], headers = answers[i][2] }
    end,
    clock = function() return now end,
    sleep = function(s) sleeps[#sleeps + 1] = s; now = now + s end,
    random = function() return 0.5 end,   -- the middle of the jitter: no change
  }
  return job, sleeps
end

describe("jobs", function()
  it("map status codes to running, done and failed, numbers and strings alike", function()
    local map = { field = "state", running = { "queued", "working" }, done = { "ok" }, failed = { "error", 9 } }
    assert.equal("running", jobs.state_of(map, { state = "queued" }))
    assert.equal("running", jobs.state_of(map, { state = "working" }))
    assert.equal("done", jobs.state_of(map, { state = "ok" }))
    assert.equal("failed", jobs.state_of(map, { state = 9 }))
    assert.equal("failed", jobs.state_of(map, { state = "9" }))
    assert.equal("done", jobs.state_of(STATE, { jobStatus = 2.0 }))
    local none, code = jobs.state_of(map, { state = "paused" })
    assert.is_nil(none)
    assert.equal("paused", code)
    assert.is_nil(jobs.state_of(map, { other = 1 }))
  end)

  it("refuse a status other than those mapped, and a status answer that is not JSON", function()
    local answers = { '{"jobStatus": 7}', "<html>busy</html>" }
    for _, body in ipairs(answers) do
      local job = jobs.new { id = "42", name = "user_permissions_export", family = family(),
                             request = function() return { status = 200, body = body, headers = {} } end }
      local code, err = job:status()
      assert.is_nil(code)
      assert.is_nil(tostring(err):find("\n"))
      if body:find("^{") then
        assert.equal("job", err.kind)
        assert.matches("unknown status 7", err.message)
      else
        assert.equal("json", err.kind)
      end
    end
  end)

  it("poll about 1 s, then 1.5 times longer up to 30 s, unless the service says when", function()
    local answers = {}
    for _ = 1, 12 do answers[#answers + 1] = { '{"jobStatus": 1}', {} } end
    table.insert(answers, 3, { '{"jobStatus": 1}', { ["retry-after"] = "7" } })
    answers[#answers + 1] = { '{"jobStatus": 2}', {} }
    local job, sleeps = job_with(answers, { name = "site_permissions_export" })
    assert.is_true(job:wait())
    assert.same({ 1, 1.5, 7, 3.375, 5.0625, 7.59375, 11.390625, 17.0859375, 25.62890625, 30, 30, 30, 30 }, sleeps)
  end)

  it("wait at most 10 minutes a poll and never past the deadline, whatever Retry-After asks", function()
    local running = '{"jobStatus": 1}'
    local huge = { ["retry-after"] = "999999" }
    local year2100 = { ["retry-after"] = "Fri, 01 Jan 2100 00:00:00 GMT" }
    -- A job an earlier run submitted: the ceiling, then done.
    local job, sleeps = job_with { { running, huge }, { running, year2100 }, { '{"jobStatus": 2}', {} } }
    assert.is_true(job:wait())
    assert.same({ jobs.MAX_POLL_WAIT, jobs.MAX_POLL_WAIT }, sleeps)
    -- The deadline comes first: one last poll at it, then a named error.
    for _, timing in ipairs { false, jobs.timing(auditrun.semaphore(5), "group_access_export") } do
      job, sleeps = job_with({ { running, huge }, { running, year2100 }, { running, huge } }, { timing = timing or nil })
      local ok, err = job:wait { deadline = 100, first_interval = 0 }  -- no nap: the clock is fixed
      assert.is_nil(ok)
      assert.is_true(err.overdue)
      assert.matches("export job 42 %(group_access_export%) was not done after 100 s %(the service asked to wait "
        .. "%d+ s more%)", err.message)
      local slept = 0
      for _, s in ipairs(sleeps) do slept = slept + s end
      assert.is_true(slept <= 100, tostring(slept))
      assert.is_true(slept >= 99, tostring(slept))
    end
  end)

  it("aim polls at what earlier jobs of the export showed of their length", function()
    local tm = jobs.timing(auditrun.semaphore(5), "group_access_export")
    -- Nothing known: first_interval, then each time the job ran 1.5 times longer.
    assert.equal(1, tm:next_poll(0, 0, 1))
    assert.equal(3, tm:next_poll(2, 3, 1))
    assert.equal(60, tm:next_poll(40, 9, 1))   -- at most 30 s apart
    -- Seen running at 7.5 s, done by 11.5 s: the next job probes halfway,
    -- one job at a time; after a probe, or while another probes, the upper end.
    tm:running(7.5)
    tm:done(11.5)
    assert.same({ 9.5, true }, { tm:next_poll(0, 0, 1) })
    tm.probing = true
    assert.equal(11.5, tm:next_poll(0, 0, 1))
    tm.probing = nil
    assert.equal(11.5, tm:next_poll(9.5, 1, 1))
    -- Bounds closer than 1 %: the upper end at once.
    tm:running(11.45)
    assert.same({ 11.5 }, { tm:next_poll(0, 0, 1) })
    -- A job that outlasts every job seen: growing again from its own length.
    assert.equal(18, tm:next_poll(12, 4, 1))
    -- Lengths that differ (seen running longer than another was seen done)
    -- and no lengths kept (no poll times given): growing from the job's own.
    tm:done(20)
    tm:done(30)
    tm:running(25)
    assert.equal(1, tm:next_poll(0, 0, 1))
    assert.equal(37.5, tm:next_poll(25, 2, 1))
    -- Never two polls of a job less than MIN_STEP apart.
    local alike = jobs.timing(auditrun.semaphore(5), "site_permissions_export")
    alike:running(7.5)
    alike:done(11.5)
    assert.near(11.49 + jobs.MIN_STEP, alike:next_poll(11.49, 1, 1), 1e-9)
  end)

  it("poll jobs whose lengths differ from the low end of those seen, a fraction of their spread apart", function()
    local tm = jobs.timing(auditrun.semaphore(5), "user_permissions_export")
    -- Eleven jobs, each seen running at lo and done at lo + 0.1: lengths
    -- (their middles) 0.55, 0.85, 1.05, 1.15, ..., 1.75, 2.05. They cross
    -- (seen running at 2.0, another done by 0.6): lengths differ.
    for _, lo in ipairs { 0.5, 0.8, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 2.0 } do
      tm:running(lo)
      tm:done(lo + 0.1, lo, lo + 0.1)
    end
    -- The low end: the 20th percentile (the third of eleven), 1.05; the
    -- longest 2.05; the step a fifth of their spread, widened by 12/10
    -- for a sample of eleven: 0.24.
    local low, step, top = tm:grid()
    assert.near(1.05, low, 1e-9)
    assert.near(0.24, step, 1e-9)
    assert.near(2.05, top, 1e-9)
    assert.near(1.05, tm:next_poll(0, 0, 1), 1e-9)
    -- Then a step at a time from the grid point last polled, sent a little late.
    assert.near(1.29, tm:next_poll(1.06, 1, 1), 1e-9)
    assert.near(1.53, tm:next_poll(1.31, 2, 1), 1e-9)
    -- Past the longest: the distance past it doubles each poll, a step at least.
    assert.near(2.34, tm:next_poll(2.10, 5, 1), 1e-9)
    assert.near(2.63, tm:next_poll(2.34, 6, 1), 1e-9)
    -- Bounds that do not cross (a slow answer made the shortest done look
    -- long), but two lengths told by close polls 0.2 s apart: they differ.
    local slow = jobs.timing(auditrun.semaphore(5), "group_access_export")
    slow:running(1.0)
    slow:done(1.5, 1.0, 1.05)
    slow:running(1.2)
    slow:done(1.6, 1.2, 1.25)
    assert.near(1.025, slow:next_poll(0, 0, 1), 1e-9)
    assert.near(1.025 + 0.12, slow:next_poll(1.03, 1, 1), 1e-9)
    -- Jobs done at their first poll count a step below it: three of them at
    -- 1.05 bring the low end down to 1.05 - step.
    for _ = 1, 3 do tm:done(1.1, nil, 1.05) end
    low, step = tm:grid()
    assert.near(1.05 - step, low, 1e-9)
    -- Only the last 32 lengths count: 32 more jobs of 3.0 s, alike, make them
    -- all 3.0 s: the first poll at 3.0, the step the least.
    for _ = 1, 32 do tm:done(3.1, 2.95, 3.05) end
    low, step, top = tm:grid()
    assert.same({ 3, jobs.MIN_STEP, 3 }, { low, step, top })
  end)

  it("note the intent before each submit is sent, and withdraw it when the service started nothing", function()
    local notes, answers = {}, { { 429, "{}" }, { 503, "{}" }, { 200, '{"jobId": "4790"}' } }
    local i = 0
    local job = assert(jobs.submit {
      limiter = auditrun.semaphore(1), spec = {}, name = "user_permissions_export",
      job_id = function(b) return b.jobId end, family = family(),
      request = function()
        i = i + 1
        notes[#notes + 1] = "sent"
        return { status = answers[i][1], body = answers[i][2], headers = { ["retry-after"] = "0" } }
      end,
      on_post = function(sending)
        notes[#notes + 1] = sending and "intent" or "withdrawn"
        return true
      end,
      sleep = function() end,
    })
    assert.equal("4790", job.id)
    assert.same({ "intent", "sent", "withdrawn", "intent", "sent", "withdrawn", "intent", "sent" }, notes)
  end)

  it("call an answer without a job id an unknown outcome, and give the slot back", function()
    local slots = auditrun.semaphore(1)
    for _, body in ipairs { '{"status": 200, "message": ""}', "<html>", '{"jobId": ""}' } do
      local job, err = jobs.submit {
        limiter = slots, spec = {}, name = "user_permissions_export", job_id = function(b) return b.jobId end,
        request = function() return { status = 200, body = body, headers = {} } end,
      }
      assert.is_nil(job)
      assert.equal("unknown", err.outcome)
      assert.is_false(err.retryable)
      assert.equal(1, slots.count)
    end
  end)

  it("hold a slot for a job that may be running unseen, as long as jobs of its export take", function()
    local slots = auditrun.semaphore(1)
    jobs.hold(slots, 1)
    auditrun.sleep(0.5)
    assert.equal(0, slots.count)
    local deadline = auditrun.now() + 3
    while slots.count == 0 and auditrun.now() < deadline do auditrun.sleep(0.05) end
    assert.equal(1, slots.count)
    -- No job of the export seen done: the ceiling; else twice the longest plus 5 s.
    assert.equal(jobs.JOB_LENGTH, jobs.held_for(slots, "group_access_export"))
    jobs.timing(slots, "user_permissions_export"):done(10)
    assert.equal(25, jobs.held_for(slots, "user_permissions_export", 900))
    assert.equal(20, jobs.held_for(slots, "user_permissions_export", 20))
  end)

  it("a hold released early gives its slot back at once, and one released while waiting never takes one", function()
    local slots = auditrun.semaphore(1)
    local first = jobs.hold(slots, 60)
    local second = jobs.hold(slots, 60)
    auditrun.sleep(0.05)
    assert.equal(0, slots.count)
    second:release()               -- still waiting for the one slot
    first:release()                -- the job it stood for was seen done
    auditrun.sleep(0.05)
    assert.equal(1, slots.count)
    assert.equal(0, slots.in_use)
    first:release()                -- twice is harmless
    -- A job object can take a hold over as its permit.
    local third = jobs.hold(slots, 60)
    local job = jobs.new { id = "7", name = "group_access_export", permit = third, family = {} }
    auditrun.sleep(0.05)
    assert.equal(0, slots.count)
    job:release()
    auditrun.sleep(0.05)
    assert.equal(1, slots.count)
  end)
end)
