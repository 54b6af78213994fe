-- auditrun.jobs: export jobs, from submit to a file on disk.
--
-- A tenant runs at most a few export jobs at once (Insights: 5, across its
-- APIs), so a job takes a slot from the tenant's limiter before it is
-- submitted and holds it until it is seen done or failed. A submit is an
-- action, not a query: it is repeated only when the answer proves the job
-- was not started (429 or 503, or a connection that was never made); after
-- a timeout, a dropped connection, a 500, 502 or 504, or an answer without
-- a job id nobody knows, and the caller is told so.
-- Waiting polls adaptively: about 1 s at first, 1.5 times longer each time
-- up to 30 s, with jitter, within a deadline; a status answer that carries
-- Retry-After sets the next wait instead.
local errors = require "auditrun.errors"
local log = require "auditrun.log"
local download = require "auditrun.download"
local http = require "auditrun.http"
local task = require "auditrun.task"

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

--- The job limiter of a tenant (key: its API base URL). The first caller
--- sets the limit; a lower limit given later lowers it.
function M.limiter(key, limit)
  local l = limiters[key]
  if not l then
    l = task.semaphore(limit)
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

--- new{id=, name=, family=, request=, permit=} -> a job object, for one
--- just submitted or one submitted by an earlier run (then it holds no slot).
function M.new(o)
  return setmetatable({
    id = o.id, name = o.name or "export", family = o.family, request = o.request, permit = o.permit,
    clock = o.clock or task.now, sleep = o.sleep or task.sleep, random = o.random or math.random,
    state = M.RUNNING,
  }, Job)
end

--- submit{limiter=, request=fn(spec)->res|nil,err, spec=, job_id=fn(body)->id,
--- family=, name=, deadline=, on_post=, clock=, sleep=, random=} -> job | nil, err
--- `family` says how to ask for status and file: {status=fn(id)->spec|nil,err,
--- file=fn(id)->spec|nil,err, state={field=, running=, done=, failed=},
--- zip=bool, extension=}.
--- on_post() -> true | nil, err is called once the slot is held, before each
--- request that may start the job (to record the intent first); an error
--- stops the submit before anything is sent.
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
      local noted, nerr = o.on_post()
      if not noted then
        permit:release()
        return nil, nerr
      end
    end
    local res, err = task.shield(o.request, spec)
    if res and not NOT_STARTED_STATUS[res.status] then
      local body, derr = http.decode(res, "the answer to the export request")
      local id = body and o.job_id(body)
      if id == nil or id == http.null or id == "" then
        permit:release()
        return nil, unknown_outcome(o.name, derr and derr.message or "the answer has no job id",
          { status = res.status, body = errors.excerpt(res.body) })
      end
      return M.new { id = id, name = o.name, family = o.family, request = o.request, permit = permit,
                     clock = clock, sleep = sleep, random = random }
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
  -- A service that says when to ask again is taken at its word.
  self.retry_after = http.default_policy:server_delay(res.headers)
  if state ~= M.RUNNING then self:release() end
  return state
end

--- wait{deadline=, first_interval=} -> true | nil, err (kind "job": failed, or
--- not done in time)
function Job:wait(o)
  o = o or {}
  local deadline = o.deadline or 6 * 3600
  local interval = o.first_interval or 1
  local start = self.clock()
  while true do
    local code, err = self:status()
    if code == M.DONE then return true end
    if code == M.FAILED then
      return nil, errors.new("job", string.format("export job %s (%s) failed on the service", tostring(self.id),
        self.name), { job = self.id, retryable = false })
    end
    if not code and not err.retryable then return nil, err end
    local wait = code and self.retry_after or interval * (0.8 + 0.4 * self.random())
    if self.clock() - start + wait > deadline then
      return nil, errors.new("job", string.format("export job %s (%s) was not done after %d s", tostring(self.id),
        self.name, deadline), { job = self.id, retryable = true })
    end
    self.sleep(wait)
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
