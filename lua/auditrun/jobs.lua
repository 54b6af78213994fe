-- auditrun.jobs: export jobs, from submit to a file on disk.
--
-- A tenant runs at most a few export jobs at once (Insights: 5, across its
-- APIs), so a job takes a slot from the tenant's limiter before it is
-- submitted and holds it until it is seen done or failed. A submit is an
-- action, not a query: it is repeated only when the answer proves the job
-- was not started (429 or 503, or a connection that was never made); after
-- a timeout, a dropped connection, a 500, 502 or 504, or an answer without
-- a job id nobody knows, and the caller is told so.
-- A slot is held until the job is seen done, so a late poll idles a slot.
-- Polls aim at the expected finish, from what the jobs of the same export
-- have shown of their lengths: alike, or spread (see "how long jobs take").
-- With nothing known yet a job polls after first_interval (1 s), then each
-- time it has run 1.5 times longer, at most 30 s apart. A status answer that carries Retry-After sets the next wait, up
-- to MAX_POLL_WAIT (10 minutes): a service that asks for days is asked
-- again then. A job an earlier run submitted polls at once, then 1 s,
-- growing 1.5 times up to 30 s, with jitter. Every wait ends by the job's
-- deadline: a job not done by then is an error that says what was awaited.
local core = require("auditrun.core")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local log = require("auditrun.log")
local metrics = require("auditrun.metrics")
local download = require("auditrun.download")
local http = require("auditrun.http")
local json = require("auditrun.json")
local task = require("auditrun.task")

local M = {}

-- A job is running, done or failed; each vendor's catalogue says which of
-- its status codes mean which (family.state = {field=, running={...},
-- done={...}, failed={...}}).
M.RUNNING, M.DONE, M.FAILED = "running", "done", "failed"

--- state_of(map, body) -> "running" | "done" | "failed" | nil, and the
--- code found: the status answer read through a family's state map. Codes
--- compare as strings, so 2 and "2" are the same code.
function M.state_of(map, body)
  local code = type(body) == "table" and body[map.field] or nil
  if code == nil then return nil, nil end
  local key = math.type(code) == "float" and code == math.floor(code) and string.format("%d", code) or tostring(code)
  for _, state in ipairs { M.RUNNING, M.DONE, M.FAILED } do
    for _, c in ipairs(map[state]) do
      if tostring(c) == key then return state, code end
    end
  end
  return nil, code
end

local limiters = {}

--- The longest wait between two status polls of a job, whatever its
--- Retry-After asks: 10 minutes.
M.MAX_POLL_WAIT = 600
-- A wait longer than the usual poll gap is told (log.info): the person
-- sees what the run waits for.
local TOLD_WAIT = 30

-- ---- how long jobs take ------------------------------------------------------

-- Polls aim where the jobs of the export so far say a job will be done: at
-- their common length when they take alike, else on a grid learnt from the
-- spread of their lengths (first near the low end, then a fraction apart).
--
-- Each poll bounds how long jobs take (seen running x s after the submit
-- was answered: longer than x; seen done y s after it was sent: at most y).
-- Each job done gives a length, the middle of its last running poll and
-- the poll that found it done; the export keeps the last SPREAD of them.
-- While the longest seen running is shorter than the shortest seen done,
-- and no two lengths told by close polls are far apart (close()), the
-- jobs take alike: a job polls first where those bounds say, halving them
-- once when they are wide (one job probes at a time), then at their upper
-- end. Otherwise the lengths differ, and a job polls
-- first at their LOW_QUANTILE (low), then every (longest - low) / STEPS,
-- widened by (n + 1) / (n - 1) while only n lengths are known (what the
-- range of n draws falls short of the spread by); past the longest, each
-- poll doubles the distance past it. A job found done at its first poll
-- counts a step below that poll, as it may have been done a while: when
-- too many are, the low end moves down. On lengths spread uniformly that
-- is about 3.5 polls a job, a finished job idling its slot about a tenth
-- of the spread. With nothing known, or past what is known of jobs alike,
-- a job polls after first_interval (1 s), then each time it has run 1.5
-- times longer, at most 30 s apart. Polls of a job are at least MIN_STEP
-- apart, and a job napping till its poll wakes when another of its export
-- teaches something.
local Timing = {}
Timing.__index = Timing

local KEEP = 16           -- bounds kept per export
local SPREAD = 32         -- lengths kept per export
local LOW_QUANTILE = 0.2  -- where the grid's first poll goes among them
local STEPS = 5           -- the grid's steps from there to the longest
M.MIN_STEP = 0.05         -- the least gap between two polls of a job (s)

--- timing(limiter, name) -> what jobs of export `name` on the limiter's
--- tenant have shown of their length (shared by those jobs).
function M.timing(limiter, name)
  limiter.timings = limiter.timings or {}
  local t = limiter.timings[name]
  if not t then
    t = setmetatable({ los = {}, his = {}, lengths = {}, nappers = {} }, Timing)
    limiter.timings[name] = t
  end
  return t
end

local function keep(list, v, n)
  list[#list + 1] = v
  if #list > (n or KEEP) then table.remove(list, 1) end
end

-- Wakes the jobs napping on this timing: what they aim at may have moved.
function Timing:learnt()
  local list = self.nappers
  self.nappers = {}
  for ev in pairs(list) do task.signal(ev) end
end

--- running(x): a job was seen running x s after its submit was answered.
function Timing:running(x)
  keep(self.los, x)
  self:learnt()
end

-- How near two lengths of about `at` s are taken as alike, and how close
-- a job's last two polls must be for its length to tell: 2 MIN_STEP or 5 %.
local function close(at) return math.max(2 * M.MIN_STEP, at * 0.05) end

--- done(y, lo, at): a job was seen done at most y s after its submit was
--- sent. longest: the longest such y ever seen (or given by an earlier
--- run).
---
--- at: the poll that found it done, s after the submit was answered, and
--- lo its last poll that found it running (nil: none did); with them the
--- job's length joins those the grid is made from.
function Timing:done(y, lo, at)
  keep(self.his, y)
  self.longest = math.max(self.longest or 0, y)
  if at then
    keep(self.lengths, lo and { (lo + at) / 2, close = at - lo <= close(at) } or { at, early = true }, SPREAD)
  end
  self:learnt()
end

-- lo (the longest seen running), hi (the shortest seen done) and the
-- median of the dones, or nil when no job has been seen done.
function Timing:bounds()
  if #self.his == 0 then return nil end
  local lo = 0
  for _, x in ipairs(self.los) do lo = math.max(lo, x) end
  local sorted = table.move(self.his, 1, #self.his, 1, {})
  table.sort(sorted)
  return lo, sorted[1], sorted[(#sorted + 1) // 2]
end

--- alike() -> false when two lengths told closely differ by more than that.
function Timing:alike()
  local min, max
  for _, l in ipairs(self.lengths) do
    if l.close then min, max = math.min(min or l[1], l[1]), math.max(max or l[1], l[1]) end
  end
  return not min or max - min <= close(max)
end

--- grid() -> low, step, top: where the first poll of a job goes when
--- lengths differ, how far apart its next ones, and the longest length
--- kept; nil when none is kept.
function Timing:grid()
  local n = #self.lengths
  if n == 0 then return nil end
  -- The low end and the longest, with the jobs done at their first poll
  -- counted `early` s below it.
  local function ends(early)
    local list = {}
    for i, l in ipairs(self.lengths) do list[i] = l.early and l[1] - early or l[1] end
    table.sort(list)
    return list[math.max(1, math.ceil(n * LOW_QUANTILE))], list[n]
  end
  local low, top = ends(0)
  local step = math.max((top - low) * (n > 1 and (n + 1) / (n - 1) or 1) / STEPS, M.MIN_STEP)
  low = ends(step)
  return math.max(low, 0), step, top
end

local function grown(own_lo, polls, first)
  if polls == 0 then return first end
  return own_lo + math.min(math.max(own_lo * 0.5, 0.1), 30)
end

local function aim(self, own_lo, polls, first)
  local lo, hi, typical = self:bounds()
  if not lo then return grown(own_lo, polls, first) end
  if lo < hi and self:alike() then
    -- Alike so far: somewhere in (lo, hi]. Halve a wide gap once, else hi.
    -- One job probes at a time; the others wait for what it learns. A job
    -- that outlasts them: the typical length, then growing.
    if own_lo >= typical then return grown(own_lo, polls, first) end
    if own_lo >= hi then return typical end
    lo = math.max(lo, own_lo)
    if polls > 0 or self.probing or hi - lo <= math.max(0.02, hi * 0.01) then return hi end
    return lo + (hi - lo) / 2, true
  end
  -- Lengths differ: the grid, from its low end a step at a time; past the
  -- longest, each poll doubles the distance past it, at most as far apart
  -- as for a job nothing is known of.
  local low, step, top = self:grid()
  if not low then return grown(own_lo, polls, first) end
  if polls == 0 then return low end
  if own_lo >= top then return math.min(own_lo + math.max(step, own_lo - top), grown(own_lo, polls, first)) end
  return low + math.max(0, math.floor((own_lo - low) / step + 0.5) + 1) * step
end

--- next_poll(own_lo, polls, first) -> when to poll a job next: seconds
--- after its submit's answer, and true when that poll probes below the
--- upper bound of jobs alike.
---
--- The job has been polled `polls` times and was seen running own_lo s
--- after that answer.
function Timing:next_poll(own_lo, polls, first)
  local at, probe = aim(self, own_lo, polls, first)
  if polls > 0 then at = math.max(at, own_lo + M.MIN_STEP) end
  return at, probe
end

--- nap(seconds): sleeps, or less when another job teaches something.
function Timing:nap(seconds)
  local mine = task.event()
  self.nappers[mine] = true
  local alarm = task.spawn(function()
    task.sleep(seconds)
    task.signal(mine)
  end)
  local ok, err = pcall(task.wait, mine)
  self.nappers[mine] = nil
  alarm:cancel()
  if not ok then error(err, 0) end
end

-- ---- the tenant's slots, shared by the processes of a machine --------------

-- A limiter whose permits each hold one of the tenant's slot files as well:
-- slot-1 ... slot-N in its folder, each locked (flock) by the process whose
-- job holds it. A lock dies with its process, kill -9 included, so a slot is
-- never lost. In the process, a semaphore (the `sem` field: limit, peak)
-- orders this process's tasks first; in_use counts the jobs that hold a
-- slot file (not those waiting for another process to free one).
local Shared = {}
Shared.__index = function(l, k) return Shared[k] or l.sem[k] end

local SharedPermit = {}
SharedPermit.__index = SharedPermit
function SharedPermit:release()
  if self.released then return end
  self.released = true
  self.lock:close()
  self.owner.in_use = self.owner.in_use - 1
  self.permit:release()
end
SharedPermit.__close = SharedPermit.release

-- One of the tenant's slot files, locked: waits (polling, at most 0.5 s
-- apart) while other processes hold all of them.
function Shared:take_file()
  -- Made at the first job, so that a run that starts none needs no folder.
  if not self.dir then self.dir = errors.try(M.slots_dir(self.key)) end
  local wait, told = 0.05, false
  while true do
    for i = 1, self.sem.limit do
      local lock, err = files.lock(string.format("%s/slot-%d", self.dir, i))
      if lock then return lock end
      if err.kind ~= "locked" then error(errors.new("file", "the tenant's job slots: " .. err.message), 0) end
    end
    if not told then
      log.debug("wait", "all %d job slots of the tenant are held by other auditrun processes (%s): waiting",
        self.sem.limit, self.dir)
      told = true
    end
    task.sleep(wait * (0.5 + math.random()))
    wait = math.min(wait * 2, 0.5)
  end
end

function Shared:acquire()
  local permit = self.sem:acquire()
  local ok, lock = pcall(self.take_file, self)
  if not ok then
    permit:release()
    error(lock, 0)
  end
  self.in_use = self.in_use + 1
  return setmetatable({ permit = permit, lock = lock, owner = self }, SharedPermit)
end

function Shared:set_limit(n) self.sem:set_limit(n) end

--- slots_dir(key) -> the folder of the slot files of the tenant named by
--- key (made, with a note of the key: the tenant's identity URL, API URL
--- and client id, nothing secret) | nil, err
function M.slots_dir(key)
  local base, err = files.state_dir()
  if not base then return nil, err end
  local dir = base .. "/slots/" .. core.sha256(key):sub(1, 24)
  local ok, merr = files.mkdirs(dir)
  if not ok then
    return nil, errors.new("file", string.format("cannot make the folder of the tenant's job slots %s (%s): set "
      .. "XDG_STATE_HOME to a folder this user can write", dir, tostring(merr and merr.message or merr)))
  end
  if not files.exists(dir .. "/tenant") then files.write_atomic(dir .. "/tenant", key .. "\n") end
  return dir
end

--- How long a job may run at the service when no job of its export has
--- been seen done (the default of --job-length): 15 minutes.
M.JOB_LENGTH = 900

--- held_for(limiter, name, ceiling) -> seconds after it was sent that a
--- submit of export `name` whose outcome is unknown is taken to keep a
--- slot of the tenant busy.
---
--- That is twice the longest job of that export seen on the limiter
--- (timing.longest, which a rerun seeds from its run state) plus 5 s, at
--- most `ceiling` (M.JOB_LENGTH by default); the ceiling when none has been
--- seen.
function M.held_for(limiter, name, ceiling)
  ceiling = ceiling or M.JOB_LENGTH
  local longest = M.timing(limiter, name).longest
  if not longest then return ceiling end
  return math.min(ceiling, 2 * longest + 5)
end

local Hold = {}
Hold.__index = Hold

--- hold:release(): ends the hold now (the job it stood for was seen done,
--- or a job object took it over); a hold still waiting for its slot never
--- takes one. Safe twice.
function Hold:release()
  self.task:cancel()
end

--- hold(limiter, seconds, permit) -> a hold: a background task that keeps
--- one of the limiter's slots (`permit`, or one it waits for) for
--- `seconds` from now, or until hold:release().
---
--- For a job that may be running at the service though nobody here polls
--- it yet: one whose submit's outcome is unknown, or one an earlier run
--- submitted. A job nobody fetches still counts against the tenant's
--- limit. A hold can stand in for a job's permit (jobs.new{permit=hold}).
function M.hold(limiter, seconds, permit)
  local till = task.now() + seconds
  local h = setmetatable({}, Hold)
  h.task = task.background(function()
    if not permit then
      local ok, p = pcall(limiter.acquire, limiter)
      if not ok then return end  -- released (cancelled) while waiting
      permit = p
    end
    local left = till - task.now()
    if left > 0 then pcall(task.sleep, left) end
    permit:release()
  end)
  return h
end

--- The job limiter of a tenant (key: what names it, e.g. its identity URL,
--- API base URL and client id). The first caller sets the limit; a lower
--- limit given later lowers it.
---
--- With {shared = true} the processes of this machine that use the tenant
--- share its slots (files under the user's state folder,
--- auditrun.files.state_dir, made at the first job; a folder that cannot
--- be made fails that job).
function M.limiter(key, limit, o)
  local l = limiters[key]
  if not l then
    l = task.semaphore(limit)
    if o and o.shared then l = setmetatable({ sem = l, key = key, in_use = 0 }, Shared) end
    limiters[key] = l
  elseif limit < l.limit then
    l:set_limit(limit)
  end
  return l
end

local NOT_STARTED_STATUS = { [429] = true, [503] = true }
local NOT_SENT_KINDS = { connect = true, dns = true }
-- A server error or a gateway's timeout may come after the job started.
local UNKNOWN_STATUS = { [500] = true, [502] = true, [504] = true }

-- The error for a submit that may or may not have started a job: the
-- caller must look before submitting again, so it is never retryable.
local function unknown_outcome(name, why, fields)
  fields.outcome, fields.retryable = "unknown", false
  return errors.new("job", string.format("the export request for %s got no usable answer (%s): the job may or "
    .. "may not have started; check the service before submitting it again", name, why), fields)
end

local Job = {}
Job.__index = Job
M.Job = Job

--- new{id=, name=, family=, request=, permit=} -> a job object, for one just
--- submitted or one submitted by an earlier run (then it holds no slot).
---
--- A job submit() made also has timing (M.timing), sent and answered (the
--- clock when its submit was sent and answered).
function M.new(o)
  return setmetatable({
    id = o.id, name = o.name or "export", family = o.family, request = o.request, permit = o.permit,
    clock = o.clock or task.now, sleep = o.sleep or task.sleep, random = o.random or math.random,
    timing = o.timing, sent = o.sent, answered = o.answered, state = M.RUNNING,
  }, Job)
end

--- submit{limiter=, request=fn(spec)->res|nil,err, spec=, job_id=fn(body)->id,
--- family=, name=, deadline=, on_post=, clock=, sleep=, random=} -> job | nil, err:
--- one export job submitted, in a slot of the limiter.
---
--- `family` says how to ask for status and file: {status=fn(id)->spec|nil,err,
--- file=fn(id)->spec|nil,err, state={field=, running=, done=, failed=},
--- zip=bool, extension=}.
--- on_post(true) -> true | nil, err is called once the slot is held, before
--- each request that may start the job (to record the intent first); an
--- error stops the submit before anything is sent. on_post(false) follows
--- an answer that proves no job started (429, 503, no connection), before
--- the wait to try again: the intent can be withdrawn.
--- The request itself is shielded (auditrun.task.shield): a cancellation
--- lets it finish, bounded by its timeout, and the job comes back to the
--- caller, who records it before its next wait raises "cancelled". The
--- job is returned with no wait in between, so nothing else runs before
--- the caller sees its id.
function M.submit(o)
  local clock = o.clock or task.now
  local sleep = o.sleep or task.sleep
  local random = o.random or math.random
  local started = clock()
  local deadline = o.deadline or 3600
  local permit = o.limiter:acquire()
  local backoff = 1
  while true do
    local spec = {}
    for k, v in pairs(o.spec) do spec[k] = v end
    spec.retry = false
    spec.ok_status = { 429, 503 }
    if o.on_post then
      local noted, nerr = o.on_post(true)
      if not noted then
        permit:release()
        return nil, nerr
      end
    end
    local sent = clock()
    local res, err = task.shield(o.request, spec)
    if res and not NOT_STARTED_STATUS[res.status] then
      local body, derr = http.decode(res, "the answer to the export request")
      local id = body and o.job_id(body)
      if id == nil or id == json.null or id == "" then
        permit:release()
        return nil, unknown_outcome(o.name, derr and derr.message or "the answer has no job id",
          { status = res.status, body = errors.excerpt(res.body) })
      end
      return M.new { id = id, name = o.name, family = o.family, request = o.request, permit = permit,
                     clock = clock, sleep = sleep, random = random, timing = M.timing(o.limiter, o.name),
                     sent = sent, answered = clock() }
    end
    if not res and not NOT_SENT_KINDS[err.kind] then
      permit:release()
      if err.kind == "timeout" or err.kind == "connection" or UNKNOWN_STATUS[err.status] then
        return nil, unknown_outcome(o.name, err.message, { status = err.status, body = err.body, cause = err })
      end
      return nil, err
    end
    -- Not started: the service is busy (too many jobs) or unreachable.
    -- That is back-pressure, not failure: wait and try again.
    if o.on_post then
      local noted, nerr = o.on_post(false)
      if not noted then
        permit:release()
        return nil, nerr
      end
    end
    local wait = res and http.default_policy:server_delay(res.headers) or backoff * (0.5 + random())
    backoff = math.min(backoff * 2, 30)
    if clock() - started + wait > deadline then
      permit:release()
      local why = res and ("HTTP " .. res.status) or err.message
      return nil, errors.new("job", string.format("could not start the export %s within %d s (%s)",
        o.name, deadline, why), { retryable = true })
    end
    log.debug("wait", "the service did not start %s (%s): trying again in %.1f s", o.name,
      res and ("HTTP " .. res.status) or err.message, wait)
    metrics.add("retries", 1)
    if res then metrics.add("throttled_seconds", wait) end
    local slept, serr = pcall(sleep, wait)
    if not slept then
      permit:release()
      error(serr, 0)
    end
  end
end

function Job:release()
  if self.permit then
    self.permit:release()
    self.permit = nil
  end
end

--- status() -> "running", "done" or "failed" | nil, err. The job's slot is
--- given back as soon as it is seen done or failed.
function Job:status()
  self.asked_wait = nil
  local spec, serr = self.family.status(self.id)
  if not spec then return nil, serr end
  local res, err = self.request(spec)
  if not res then return nil, err end
  local body, derr = http.decode(res, "the job status")
  if body == nil then return nil, derr end
  local state, code = M.state_of(self.family.state, body)
  if not state then
    return nil, errors.new("job", string.format("job %s of %s has an unknown status %s", tostring(self.id),
      self.name, tostring(code)), { body = errors.excerpt(res.body) })
  end
  self.state = state
  -- A service that says when to ask again is taken at its word, up to
  -- MAX_POLL_WAIT (asked_wait keeps what it asked, for messages).
  self.asked_wait = http.default_policy:server_delay(res.headers)
  self.retry_after = self.asked_wait and math.min(self.asked_wait, M.MAX_POLL_WAIT)
  if state ~= M.RUNNING then self:release() end
  return state
end

local function failed(self)
  return nil, errors.new("job", string.format("export job %s (%s) failed on the service", tostring(self.id),
    self.name), { job = self.id, retryable = false })
end

-- Not done by the deadline: a rerun may wait for the same job again, this
-- run does not (overdue = true).
local function overdue(self, deadline)
  local asked = self.asked_wait and self.asked_wait > TOLD_WAIT
    and string.format(" (the service asked to wait %s s more)", string.format("%.0f", self.asked_wait)) or ""
  return nil, errors.new("job", string.format("export job %s (%s) was not done after %d s%s", tostring(self.id),
    self.name, deadline, asked), { job = self.id, retryable = true, overdue = true })
end

-- Sleeps until the next poll, `wait` s from now but no later than the
-- deadline (`left` s from now, so the last poll is at the deadline); false
-- when the deadline has passed. A long wait is told (log.info).
local function wait_to_poll(self, wait, left)
  if left <= 0 then return false end
  wait = math.min(wait, left)
  if wait > TOLD_WAIT or (self.asked_wait or 0) > TOLD_WAIT then
    log.info("wait", "export job %s (%s) is still running%s: polling again in %.0f s (at most %d s a poll; "
      .. "%.0f s left before it is given up)", tostring(self.id), self.name,
      self.asked_wait and string.format(" and the service asked to wait %.0f s", self.asked_wait) or "", wait,
      M.MAX_POLL_WAIT, left)
  end
  self.sleep(wait)
  return true
end

-- A job submitted here: polls aimed by its export's timing. After a wait
-- the service asked for (or an error's backoff) it polls at once.
local function wait_aimed(self, first, deadline)
  local tm, t0, t1 = self.timing, self.sent, self.answered
  local own_lo, polls, errs, asked = nil, 0, 0, false
  while true do
    local at, probe = tm:next_poll(own_lo or 0, polls, first)
    local now = self.clock()
    if not asked and now - t1 > deadline then return overdue(self, deadline) end
    if not asked and t1 + at > now + 0.001 then
      tm:nap(math.min(t1 + at, t1 + deadline + 0.001) - now)
    else
      asked = false
      tm.probing = probe
      local ok, code, err = pcall(self.status, self)
      tm.probing = nil
      if not ok then error(code, 0) end
      polls = polls + 1
      if code == M.DONE then
        tm:done(self.clock() - t0, own_lo, now - t1)
        return true
      end
      if code == M.FAILED then return failed(self) end
      if not code and not err.retryable then return nil, err end
      local wait
      if code then
        own_lo = now - t1
        tm:running(own_lo)
        wait = self.retry_after
      else
        errs = errs + 1
        wait = math.min(2 ^ (errs - 1), 30) * (0.8 + 0.4 * self.random())
      end
      if wait then
        if not wait_to_poll(self, wait, t1 + deadline - self.clock()) then return overdue(self, deadline) end
        asked = true
      end
    end
  end
end

--- wait{deadline=, first_interval=} -> true | nil, err (kind "job": failed, or
--- not done in time)
function Job:wait(o)
  o = o or {}
  local deadline = o.deadline or 6 * 3600
  local interval = o.first_interval or 1
  if self.timing and self.answered then return wait_aimed(self, interval, deadline) end
  local start = self.clock()
  while true do
    local code, err = self:status()
    if code == M.DONE then return true end
    if code == M.FAILED then return failed(self) end
    if not code and not err.retryable then return nil, err end
    local wait = code and self.retry_after or interval * (0.8 + 0.4 * self.random())
    if not wait_to_poll(self, wait, start + deadline - self.clock()) then return overdue(self, deadline) end
    interval = math.min(interval * 1.5, 30)
  end
end

--- finish{dir=, deadline=, first_interval=, before_rename=} -> file | nil, err:
--- waits for the job and downloads its file (file.job is the job id). The
--- job's slot is given back however this ends, cancellation included.
function Job:finish(o)
  local ok, done, err = pcall(self.wait, self, o)
  if not (ok and done) then self:release() end
  if not ok then error(done, 0) end
  if not done then return nil, err end
  local file, derr = self:download { dir = o.dir or ".", before_rename = o.before_rename }
  if not file then return nil, derr end
  file.job = self.id
  return file
end

--- download{dir=, before_rename=} -> {path, name, size, sha256, reused} |
--- nil, err (before_rename: see auditrun.download.save)
function Job:download(o)
  local spec, err = self.family.file(self.id)
  if not spec then return nil, err end
  return download.save {
    url = spec.url, dir = o.dir, zip = self.family.zip, before_rename = o.before_rename,
    fallback_name = string.format("%s-%s.%s", self.name, tostring(self.id), self.family.extension or "bin"),
    request = function(r)
      for k, v in pairs(spec) do if r[k] == nil then r[k] = v end end
      return self.request(r)
    end,
  }
end

return M
