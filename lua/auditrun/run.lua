-- auditrun.run: exports that happen exactly once per subject, whatever
-- moment the process is killed, interrupted or rerun.
--
--   local run = require("auditrun.run")
--   local r = auditrun.try(run.open("reports"))     -- state in reports/.auditrun/
--   local file = auditrun.try(r:export(client, "jane@contoso.com",
--     "user_permissions_export", { email = "jane@contoso.com" }))   -- the report lands in reports/
--   -- file = {path, name, size, sha256, job, reused, extra_job, submits}
--   r:close()
--
-- `client` is any vendor client that exports through auditrun.jobs:
--   client.api                               a name for the API (recorded)
--   client:submit(name, params, opts) -> job | nil, err   (passes opts.on_post
--                                            and opts.deadline to jobs.submit)
--   client:job(id, name, {slot = true | permit = hold}) -> job   (a job an earlier run submitted)
--
-- What is recorded for a key, and when (each an fsynced journal line,
-- auditrun.state), so that a kill -9 at any instant is recovered:
--   state "posting"    the slot is held and the submit is about to be sent
--                      (posted_at: when, os.time);
--   state "submitted"  the job id, the moment the answer arrives (nothing
--                      runs between the answer and this record; Ctrl-C lets
--                      the submit finish, auditrun.task.shield);
--   path/size/sha256   the report's final name, before it takes that name.
-- A rerun returns a file already in place (same SHA-256) without a request,
-- waits for and downloads a recorded job, and submits again only when the
-- job failed, the service no longer knows it, or the submit's outcome is
-- unknown ("posting" when killed, or "unknown": no usable answer). Then the
-- service may hold a job nobody will fetch: the record and the result say
-- so (extra_job = true), and ExportRun:extra_jobs() lists them for a summary.
-- Such a job still takes one of the tenant's slots while it runs: the
-- record keeps when each unknown submit was sent (posted_at, unknown_at),
-- the state keeps the longest job of each export seen done, and a rerun
-- holds a slot for each unknown submit as long as its job could run
-- (ExportRun:hold_slots, auditrun.jobs.held_for) while the workflow submits
-- those subjects again last, so the tenant never has to refuse a job.
-- A job an earlier run submitted and recorded (its id known, its report
-- not yet in place) holds a slot from the rerun's start as well, whatever
-- order the listing brings its subject in: the export that picks the job
-- up takes that hold over as its own slot, and gives it back the moment
-- the job is seen done.
--
-- The worst instants can be hit on purpose: with AUDITRUN_PAUSE_AT=NAME in
-- the environment, a task that reaches instant NAME says
-- "auditrun: paused at NAME" on stderr and waits there (other tasks go
-- on), for a test to kill -9 or interrupt the process right then. NAME is
-- "posting" (intent recorded, submit not sent), "submitted" (job id
-- recorded), "placing" (final name recorded, not yet renamed) or "placed"
-- (the report under its final name); auditrun.access adds "access-built"
-- (the new table written, not yet in place) and "access-placed" (the new
-- access.sqlite in place, access.csv not yet).
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local jobs = require("auditrun.jobs")
local state = require("auditrun.state")
local task = require("auditrun.task")

local M = {}

--- Where run.open keeps the state: a hidden folder an admin can leave out
--- when sharing the reports.
M.STATE_DIR = ".auditrun"
M.STATE_FILE = "state.jsonl"

local ExportRun = {}
ExportRun.__index = ExportRun
ExportRun.__name = "auditrun.run"

--- open(dir) -> run | nil, err: the run state of output folder `dir`
--- (created if missing), locked for this process; the temporary files a
--- crashed run left in dir are removed.
function M.open(dir)
  assert(type(dir) == "string" and dir ~= "", "run.open needs a folder")
  local ok, err = files.mkdirs(dir)
  if not ok then return nil, err end
  local st, serr = state.open(dir .. "/" .. M.STATE_DIR .. "/" .. M.STATE_FILE, { sweep = { dir } })
  if not st then return nil, serr end
  return setmetatable({ dir = dir, state = st }, ExportRun)
end

--- set_aside(dir) -> the name the folder now has | nil (it holds no run
--- state) | nil, err: an output folder an earlier run wrote, renamed whole
--- so that a new run starts over in dir.
---
--- The new name is DIR.old-<UTC time>, with its reports, manifest, summary
--- and state. A folder without run state is not auditrun's to move, and is
--- left alone.
function M.set_aside(dir)
  assert(type(dir) == "string" and dir ~= "", "run.set_aside needs a folder")
  local state_dir = dir .. "/" .. M.STATE_DIR
  if not files.exists(state_dir .. "/" .. M.STATE_FILE) then return nil end
  local base = dir:gsub("/+$", ""):match("[^/]*$")
  if base == "" or base == "." or base == ".." then
    return nil, errors.new("file", string.format("cannot set %s aside: give --out as the folder's own name", dir))
  end
  local lock, lerr = files.lock(state_dir .. "/" .. M.STATE_FILE .. ".lock")
  if not lock then
    if lerr.kind == "locked" then return nil, errors.new("state", "another run is using " .. dir) end
    return nil, lerr
  end
  local moved, err
  local from = dir:gsub("/+$", "")
  for n = 1, 99 do
    local to = files.old_name(dir, n)
    local ok, rerr = files.rename_noreplace(from, to)
    if ok then moved = to break end
    if rerr.kind ~= "exists" then err = rerr break end
  end
  -- The lock file went with the folder: removed under its new name.
  lock:remove(moved and (moved .. "/" .. M.STATE_DIR .. "/" .. M.STATE_FILE .. ".lock") or nil)
  if err then return nil, err end
  if not moved then return nil, errors.new("file", "no free name to set " .. dir .. " aside") end
  return moved
end

--- record(key) -> what is recorded for key (a table), or nil
function ExportRun:record(key)
  return self.state:get(key)
end

--- extra_jobs() -> sorted keys whose submit was repeated after an unknown
--- outcome: the service may hold an extra job for each.
function ExportRun:extra_jobs()
  local keys = {}
  for k, v in self.state:each() do
    if type(v) == "table" and v.extra_job then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

function ExportRun:close()
  self.state:close()
end

local PAUSE_AT = os.getenv("AUDITRUN_PAUSE_AT")

--- instant(name): waits there for good when AUDITRUN_PAUSE_AT names it.
function M.instant(name)
  if PAUSE_AT ~= name then return end
  io.stderr:write("auditrun: paused at " .. name .. "\n")
  io.stderr:flush()
  task.sleep(24 * 3600)
end

local function with(rec, fields)
  local out = {}
  for k, v in pairs(rec) do out[k] = v end
  for k, v in pairs(fields) do out[k] = v end
  return out
end

local function placed(rec)
  return rec.path and files.exists(rec.path) and files.sha256(rec.path) == rec.sha256
end

-- The longest job seen done of each export, in seconds from its submit
-- ({[export] = seconds}), kept under this key for reruns.
local JOB_LENGTHS = "~job_lengths"

local function unknown(rec)
  return type(rec) == "table" and not rec.job and (rec.state == "posting" or rec.state == "unknown")
end

--- unknown_submit(key) -> true when the last submit for key has an unknown
--- outcome (the process died while it was out, or it got no usable
--- answer): the service may be running a job for it nobody can name.
function ExportRun:unknown_submit(key)
  return unknown(self.state:get(key))
end

-- When the submits for rec whose outcome is unknown were sent (os.time):
-- the last one if it is still unknown, and those before it (unknown_at).
local function unknown_times(rec, now)
  local times = {}
  if type(rec) ~= "table" then return times end
  for _, t in ipairs(type(rec.unknown_at) == "table" and rec.unknown_at or {}) do
    if math.tointeger(t) then times[#times + 1] = t end
  end
  -- A record of an older version has no posted_at: as if posted now.
  if unknown(rec) then times[#times + 1] = math.tointeger(rec.posted_at) or now end
  return times
end

-- At most this many unknown submits are remembered per key.
local UNKNOWN_KEPT = 5

-- A job an earlier run submitted whose report is not in place: it may be
-- running at the service. (One whose final name was recorded was seen
-- done; its slot was given back then.)
local function in_flight(rec)
  return type(rec) == "table" and rec.job ~= nil and rec.state == "submitted" and not rec.path
end

--- hold_slots(limiter, job_length) -> how many slots are held for unknown
--- submits, until when (os.time), and how many for recorded jobs: the
--- tenant's slots that earlier runs' jobs may still occupy.
---
--- Each submit with an unknown outcome keeps one slot of `limiter` from
--- now until it was sent + jobs.held_for (from the longest job of its
--- export this folder's runs have seen, kept in the state; else
--- job_length); each recorded job not yet downloaded keeps one for as
--- long, or until this run's export of its key takes the hold over (see
--- export). So this run never starts a job the tenant would have to
--- refuse. Also gives the limiter the job lengths the state keeps.
function ExportRun:hold_slots(limiter, job_length)
  local lengths = self.state:get(JOB_LENGTHS)
  for name, seconds in pairs(type(lengths) == "table" and lengths or {}) do
    local t = jobs.timing(limiter, name)
    if type(seconds) == "number" then t.longest = math.max(t.longest or 0, seconds) end
  end
  local n, known, last, now = 0, 0, nil, os.time()
  self.job_holds = self.job_holds or {}
  -- posted_at is a whole second: up to one more.
  local function till(rec, sent) return sent + 1 + math.ceil(jobs.held_for(limiter, rec.export, job_length)) end
  for key, rec in self.state:each() do
    if key ~= JOB_LENGTHS and type(rec) == "table" and type(rec.export) == "string" then
      for _, sent in ipairs(unknown_times(rec, now)) do
        local at = till(rec, sent)
        if at > now then
          jobs.hold(limiter, at - now)
          n, last = n + 1, math.max(last or at, at)
        end
      end
      if in_flight(rec) then
        -- A record of an older version has no posted_at: as if sent now.
        local at = till(rec, math.tointeger(rec.posted_at) or now)
        if at > now then
          self.job_holds[key] = jobs.hold(limiter, at - now)
          known, last = known + 1, math.max(last or at, at)
        end
      end
    end
  end
  return n, last, known
end

-- Keeps the longest job of export `name` seen so far, for reruns.
local function note_length(st, name, seconds)
  local lengths = st:get(JOB_LENGTHS)
  lengths = type(lengths) == "table" and lengths or {}
  if (tonumber(lengths[name]) or 0) >= seconds then return true end
  local out = {}
  for k, v in pairs(lengths) do out[k] = v end
  out[name] = seconds
  return st:set(JOB_LENGTHS, out)
end

--- export(st, client, key, name, params, opts) -> file | nil, err. `st` is a
--- run (from open) or a state (auditrun.state).
---
--- opts: dir, deadline, first_interval, max_attempts (submits for a job that
--- ends failed, 1 by default). A failure leaves what a rerun needs: a job
--- still running or not yet downloaded is waited for again, a failed one
--- submitted again.
function M.export(st, client, key, name, params, opts)
  -- The slot held since this run started for key's recorded job, if any.
  local hold
  if getmetatable(st) == ExportRun then
    hold = st.job_holds and st.job_holds[key]
    if hold then st.job_holds[key] = nil end
    st = st.state
  end
  opts = opts or {}
  local function save(value) return st:set(key, value) end
  local rec = st:get(key)
  if type(rec) ~= "table" or rec.export ~= name or rec.api ~= client.api then rec = nil end
  if rec and placed(rec) then
    return { path = rec.path, name = rec.path:match("[^/]*$"), size = rec.size, sha256 = rec.sha256, job = rec.job,
             reused = true, extra_job = rec.extra_job, submits = rec.submits }
  end
  -- Killed while a submit was out, or it got no usable answer: the service
  -- may have started a job we cannot name. Submit again, and say so.
  local extra = rec and (rec.extra_job or unknown(rec))
  -- When those unknown submits were sent, kept until the key is done with:
  -- a rerun holds a slot for each while its job could be running.
  local earlier = rec and unknown_times(rec, os.time()) or {}
  while #earlier > UNKNOWN_KEPT do table.remove(earlier, 1) end
  local base = { export = name, api = client.api, extra_job = extra or nil, submits = rec and rec.submits or 0,
                 unknown_at = #earlier > 0 and earlier or nil }
  if not (rec and rec.job) then rec = nil end
  local max_attempts = opts.max_attempts or 1
  local attempts = 0
  while true do
    local job
    if rec then
      -- The recorded job's slot: the hold kept for it since the run
      -- started (taken over, so it ends when the job is seen done), or a
      -- slot it waits for as a new submit would.
      job = client:job(rec.job, name, { slot = not hold, permit = hold })
      hold = nil
    else
      attempts = attempts + 1
      local sub = {}
      for k, v in pairs(opts) do sub[k] = v end
      local before = (base.extra_job or base.unknown_at) and base or nil
      local posted_at
      sub.on_post = function(sending)
        -- Refused (nothing started): back to what was recorded before.
        if not sending then return save(before) end
        posted_at = os.time()
        local noted, nerr = save(with(base, { state = "posting", submits = base.submits + 1, posted_at = posted_at }))
        if noted then M.instant("posting") end
        return noted, nerr
      end
      local err
      job, err = client:submit(name, params, sub)
      if job or err.outcome == "unknown" then base.submits = base.submits + 1 end
      if not job then
        -- Refused before or without sending: nothing at the service.
        local noted, nerr = save(err.outcome == "unknown" and with(base, { state = "unknown", posted_at = posted_at })
          or before)
        if not noted then return nil, nerr end
        return nil, err
      end
      rec = with(base, { state = "submitted", job = job.id, posted_at = posted_at })
      local saved, serr = save(rec)
      if not saved then
        job:release()
        return nil, serr
      end
      M.instant("submitted")
    end
    local cur = rec
    local file, err = job:finish {
      dir = opts.dir, deadline = opts.deadline, first_interval = opts.first_interval,
      before_rename = function(f)
        local noted, nerr = save(with(cur, { path = f.path, size = f.size, sha256 = f.sha256 }))
        if noted then M.instant("placing") end
        return noted, nerr
      end,
    }
    if file then
      -- The longest job seen, for a rerun's bound on an unknown submit
      -- (advisory: a write refused here costs only a longer bound).
      if job.timing and job.timing.longest then note_length(st, name, job.timing.longest) end
      M.instant("placed")
      file.extra_job, file.submits = base.extra_job, rec.submits
      return file
    end
    -- A failed or forgotten job is no use to anyone: submit afresh, here
    -- while attempts remain, else in a rerun.
    if not (errors.is(err, "job") and err.retryable == false or err.status == 404) then return nil, err end
    base.submits = rec.submits
    local noted, nerr = save((base.extra_job or base.unknown_at) and base or nil)
    if not noted then return nil, nerr end
    rec = nil
    if attempts >= max_attempts then return nil, err end
  end
end

--- ExportRun:export(client, key, name, params, opts): export(run, ...)
--- above; the report lands in the run's folder unless opts.dir says
--- otherwise.
function ExportRun:export(client, key, name, params, opts)
  opts = opts or {}
  if opts.dir == nil then
    local o = { dir = self.dir }
    for k, v in pairs(opts) do o[k] = v end
    opts = o
  end
  return M.export(self, client, key, name, params, opts)
end

return M
