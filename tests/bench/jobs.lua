-- make bench, export jobs: makespan against the bound (total job time / 5
-- slots) and status polls per job, for jobs of fixed and of varying length
-- in the sandbox; the same jobs one at a time, as the vendor samples run
-- them; and what one run-state record costs at 10,000 jobs against
-- rewriting the whole state file.
local auditrun = require("auditrun")
local cjson = require("cjson")
local files = require("auditrun.files")
local insights = require("auditrun.insights")
local state = require("auditrun.state")
local util = require("tests.helper.util")

local M = {}

local SLOTS = 5
local NO_ENV = { getenv = function() end }

-- Runs n exports of jobs lasting `seconds` (a number, or {min, max}: each
-- job's length drawn uniformly in that range by the sandbox, seeded),
-- `at_once` at a time; returns the makespan, the status polls sent and the
-- bound: the jobs' lengths summed, over the 5 slots.
local function exports(sb, c, n, seconds, at_once)
  sb:control("POST", "/reset")
  sb:control("POST", "/config", { jobSeconds = seconds, jobSeed = 1, maxJobs = SLOTS })
  -- Each case starts knowing nothing of how long the jobs take, as with a
  -- new tenant.
  c.limiter.timings = nil
  local guests = sb:control("GET", "/tenant").guests
  local dir = util.tempdir()
  local gate = auditrun.semaphore(at_once)
  local t0 = auditrun.now()
  local tasks = {}
  for i = 1, n do
    tasks[i] = auditrun.spawn(function()
      local _ <close> = gate:acquire()
      local login = guests[(i - 1) % #guests + 1].loginName
      return auditrun.try(c:export("user_permissions_export", { email = login, data_sources = { "teams" } },
        { dir = dir }))
    end)
  end
  for i = 1, n do assert(tasks[i]:join()) end
  local makespan = auditrun.now() - t0
  local polls = #sb:control("GET", "/requests?match=/exportstatus")
  local bound = sb:control("GET", "/stats").job_seconds / SLOTS
  os.execute("rm -rf " .. dir)
  return makespan, polls, bound
end

local function jobs_line(label, makespan, bound, polls, n, note)
  print(string.format("%-44s makespan %7.2f s  bound %6.2f s  ratio %5.2f (%s)   polls/job %4.2f%s", label,
    makespan, bound, makespan / bound, note and "5 at once: the line above" or "goal: at most 1.10", polls / n,
    note and "" or " (goal: at most 4)"))
end

local function lengths(seconds)
  if type(seconds) == "table" then return string.format("%g-%g s", seconds[1], seconds[2]) end
  return string.format("%g s", seconds)
end

--- jobs(sb, cases): the makespan cases; by default 100 jobs of 1 s, of
--- 0.7-1.3 s and 20 of 10 s, 5 at once, and the first few of each one at
--- a time (serial = how many).
function M.jobs(sb, cases)
  local c = auditrun.try(insights.connect({
    insights_url = sb.url .. "/insights", identity_url = sb.issuer, client_id = sb.clients.cert,
    cert = os.getenv("PWD") .. "/tests/fixtures/app.pfx", cert_password = "sandbox-pass", ca_file = sb.ca_file,
  }, NO_ENV))
  cases = cases or { { n = 100, seconds = 1, serial = 20 }, { n = 100, seconds = { 0.7, 1.3 }, serial = 20 },
                     { n = 20, seconds = 10, serial = 4 } }
  for _, case in ipairs(cases) do
    local makespan, polls, bound = exports(sb, c, case.n, case.seconds, case.n)
    jobs_line(string.format("%d jobs of %s, 5 at once:", case.n, lengths(case.seconds)), makespan, bound, polls, case.n)
    if (case.serial or 0) > 0 then
      -- One at a time, as the vendor samples do: fewer of them, for time.
      makespan, polls, bound = exports(sb, c, case.serial, case.seconds, 1)
      jobs_line(string.format("  the first %d of them one at a time:", case.serial), makespan, bound, polls,
        case.serial, true)
    end
  end
end

-- A job's record as auditrun.run writes it.
local function record(i)
  return { export = "user_permissions_export", api = "graph", state = "submitted", submits = 1,
           job = tostring(4790 + i), path = string.format("reports/UserAccessReport_%d.zip", 4790 + i),
           size = 19218, sha256 = string.rep("ab", 32) }
end

function M.state_records()
  local dir = util.tempdir()
  local st = auditrun.try(state.open(dir .. "/state.jsonl"))
  local entries = {}
  for i = 1, 10000 do
    local key = "user_permissions_export:user" .. i .. "@contoso.com"
    entries[key] = record(i)
    auditrun.try(st:set(key, entries[key]))
  end
  -- Each record a transition of a run 10,000 jobs long, timed one by one:
  -- the median is the cost, the 99th percentile what a busy disk adds.
  local n = 2000
  local times = {}
  local cpu0 = os.clock()
  for i = 1, n do
    local t0 = auditrun.now()
    auditrun.try(st:set("user_permissions_export:user" .. i .. "@contoso.com", record(i + 1)))
    times[i] = auditrun.now() - t0
  end
  local ours_cpu = (os.clock() - cpu0) / n
  table.sort(times)
  local ours, p99 = times[n // 2], times[math.ceil(n * 0.99)]
  st:close()
  -- The whole-file rewrite the journal replaced, at the same size.
  local whole = dir .. "/whole.json"
  local m = 20
  local t0 = auditrun.now()
  for _ = 1, m do auditrun.try(files.write_atomic(whole, cjson.encode { format = "auditrun-state/1", entries = entries })) end
  local peer = (auditrun.now() - t0) / m
  print(string.format("%-44s auditrun %10.4f ms   peer %10.4f ms   ratio %6.3f   (goal: well under 1 ms; "
    .. "99th percentile %.4f ms, CPU %.4f ms, the rest fsync)", "state record at 10,000 jobs vs whole rewrite",
    ours * 1000, peer * 1000, ours / peer, p99 * 1000, ours_cpu * 1000))
  os.execute("rm -rf " .. dir)
end

return M
