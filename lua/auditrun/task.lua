-- auditrun.task: tasks are coroutines scheduled on the C event loop.
--
-- A waiting C call (core.wait) yields the marker core.WAIT and the object
-- it waits on: a transfer, a timer, or a Lua event (a table with `done`).
-- The scheduler parks the task until the loop reports that object finished,
-- then resumes it. Outside any task, a wait runs the scheduler and the loop
-- right there, so the main chunk can wait without spawning anything.
-- task.main is the host's one entry point: it runs a script, then every
-- task the script left, and returns the exit code.
--
-- Scripts that use coroutines themselves keep working: coroutine.resume and
-- coroutine.wrap are replaced (as Nmap's NSE does) so that a wait inside a
-- script's own coroutine is passed up to the task that runs it.
local core = require("auditrun.core")
local errors = require("auditrun.errors")

local M = {}

local WAIT = core.WAIT
local raw_resume, raw_create, raw_status = coroutine.resume, coroutine.create, coroutine.status
local raw_close = coroutine.close
local pack, unpack = table.pack, table.unpack

local runnable = {}      -- FIFO of tasks to resume, runnable[head..tail]
local head, tail = 1, 0
local waiters = {}       -- object -> list of tasks parked on it
local live = {}          -- task -> true until it ends
local foreground = 0     -- live tasks that are not background ones (M.background)
local current            -- the task being resumed, if any
local interrupts_seen = 0

-- A scope is what one run of a script owns: the tasks it spawned that are
-- still going, those that failed unjoined, what runs at its end, and the
-- values modules keep per run (M.scope). The main chunk runs in the root
-- scope; a task runs in its spawner's, and M.spawn_scope starts a task in a
-- scope of its own (auditrun.each: a tenant each, side by side).
local function new_scope(values)
  return { foreground = 0, failures = {}, exit_hooks = {}, values = values or {} }
end
local root = new_scope()

local Task = {}
Task.__index = Task
Task.__name = "auditrun.task"

local function is_done(obj)
  if type(obj) == "table" then return obj.done end
  return obj:done()
end

local function enqueue(t, ...)
  t.resume_args = pack(...)
  tail = tail + 1
  runnable[tail] = t
end

--- An event: a Lua object tasks can wait on until it is signalled.
function M.event()
  return { done = false }
end

-- Makes every task parked on obj runnable again.
local function wake(obj)
  local list = waiters[obj]
  waiters[obj] = nil
  for _, t in ipairs(list or {}) do
    t.waiting_on = nil
    enqueue(t)
  end
end

function M.signal(ev)
  if ev.done then return end
  ev.done = true
  wake(ev)
end

local function cancelled_error()
  return errors.new("cancelled", "task cancelled")
end

local function finish(t, ok, ...)
  live[t] = nil
  if not t.background then
    foreground = foreground - 1
    local home = t.home
    home.foreground = home.foreground - 1
    if home.foreground == 0 and home.idle then M.signal(home.idle) end
  end
  if ok then
    t.results = pack(...)
    t.status = "done"
  else
    local err = ...
    if type(err) == "string" then err = debug.traceback(t.co, err) end
    t.err = err
    t.status = errors.is(err, "cancelled") and "cancelled" or "failed"
    if t.status == "failed" then t.home.failures[#t.home.failures + 1] = t end
    -- An error does not unwind a coroutine's stack: close it so its
    -- <close> variables run.
    raw_close(t.co)
  end
  M.signal(t.ended)
end

local function step(t)
  if t.cancelled and not t.started then
    return finish(t, false, cancelled_error())  -- never ran: nothing to unwind
  end
  t.started = true
  local previous = current
  current = t
  local args = t.resume_args or pack()
  t.resume_args = nil
  core.set_running(t.co)  -- where a Ctrl-C hook must go while it runs
  local r = pack(raw_resume(t.co, unpack(args, 1, args.n)))
  core.set_running(previous and previous.co)
  current = previous
  if raw_status(t.co) == "dead" then
    return finish(t, unpack(r, 1, r.n))
  end
  if r[2] == WAIT then
    local obj = r[3]
    if is_done(obj) then return enqueue(t) end
    t.waiting_on = obj
    local list = waiters[obj]
    if not list then list = {}; waiters[obj] = list end
    list[#list + 1] = t
  else
    enqueue(t)  -- a plain coroutine.yield in a task: let the others run
  end
end

local function cancel_all()
  for t in pairs(live) do t:cancel() end
end

local function check_interrupt()
  local n = core.interrupted()
  if n > interrupts_seen then
    interrupts_seen = n
    cancel_all()
    return true
  end
end

local function any_runnable() return head <= tail end

local function run_ready()
  while head <= tail do
    local t = runnable[head]
    runnable[head] = nil
    head = head + 1
    if t.status == "ready" then step(t) end
  end
end

--- Runs tasks and the loop until done() is true. Raises {kind="interrupted"}
--- after Ctrl-C once the cancelled tasks have ended.
local function run_until(done)
  while true do
    run_ready()
    if check_interrupt() then
      run_ready()
      while next(live) and core.pending() > 0 do
        for _, obj in ipairs(core.poll(0.1)) do wake(obj) end
        run_ready()
      end
      error(errors.new("interrupted", "interrupted"), 0)
    end
    if done() then return end
    if not any_runnable() and core.pending() == 0 then
      error(errors.new("deadlock", "waiting for something no task or transfer can finish"), 0)
    end
    for _, obj in ipairs(core.poll(any_runnable() and 0 or -1)) do wake(obj) end
  end
end

-- Parks the caller until obj is done: a task (or a script's coroutine
-- inside one) yields to the scheduler; the main chunk, or code that cannot
-- yield (a metamethod called from C), runs the scheduler and the loop here.
local function park(obj)
  if coroutine.isyieldable() then return core.wait(obj) end
  run_until(function() return is_done(obj) end)
end

local function cancelled_now(t)
  return t and t.cancelled and not t.shielded
end

--- Waits for a transfer, a timer or an event. Raises {kind="cancelled"} in a
--- cancelled task (outside a shield).
function M.wait(obj)
  local t = current
  if cancelled_now(t) then error(cancelled_error(), 0) end
  if not is_done(obj) then park(obj) end
  if cancelled_now(t) then error(cancelled_error(), 0) end
end

--- shield(fn, ...) -> fn's results.
---
--- Runs fn in the current task so that a cancellation (Ctrl-C included)
--- neither stops what it waits on nor raises inside it: for an action whose
--- answer must not be lost once sent, such as the request that starts an
--- export job. fn must be bounded (a request with a timeout). The
--- cancellation takes effect at the task's next wait after the shield.
function M.shield(fn, ...)
  local t = current
  if not t or t.shielded then return fn(...) end
  t.shielded = true
  local r = pack(pcall(fn, ...))
  t.shielded = nil
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

--- The task running now, or nil in the main chunk.
function M.current() return current end

local function scope_now() return current and current.scope or root end

--- scope() -> the values of the run going on here (a table modules keep
--- per-run state in: the metrics being counted, the log's listener, the
--- profile under --each-profile).
---
--- The main chunk's run has one; each scope started with M.spawn_scope
--- has its own.
function M.scope() return scope_now().values end

-- A task in scope `home` (counted there) whose own tasks go in `scope`.
local function new_task(home, scope, fn, ...)
  assert(type(fn) == "function", "spawn needs a function")
  local t = setmetatable({
    co = raw_create(fn), status = "ready", ended = M.event(), home = home, scope = scope,
  }, Task)
  live[t] = true
  foreground = foreground + 1
  home.foreground = home.foreground + 1
  enqueue(t, ...)
  return t
end

function M.spawn(fn, ...)
  local s = scope_now()
  return new_task(s, s, fn, ...)
end

--- spawn_scope(values, fn, ...) -> task: a task that runs fn in a scope of
--- its own, with `values` as its M.scope(). The task itself is its
--- spawner's to join.
---
--- The tasks it spawns, their failures and its at_exit functions are that
--- scope's, and M.finish and M.run_exit_hooks inside it see only those.
function M.spawn_scope(values, fn, ...)
  return new_task(scope_now(), new_scope(values), fn, ...)
end

--- background(fn, ...) -> task: a task the run does not wait for: finish
--- (and so task.main) returns once every other task has ended, whatever
--- this one still waits on.
---
--- For a timer that keeps something until a moment that only matters
--- while the run goes on (a job slot held for a job that may be running
--- unseen).
function M.background(fn, ...)
  local t = M.spawn(fn, ...)
  t.background = true
  foreground = foreground - 1
  t.home.foreground = t.home.foreground - 1
  return t
end

--- Waits for the task to end: true and its results, or false and its error.
function Task:join()
  M.wait(self.ended)
  self.joined = true
  if self.status == "done" then return true, unpack(self.results, 1, self.results.n) end
  return false, self.err
end

function Task:done() return self.ended.done end

--- Cancels the task: its transfer or timer is stopped, and its next (or
--- current) wait raises {kind="cancelled"}, so its <close> variables and
--- error handlers run.
function Task:cancel()
  if self.ended.done or self.cancelled then return end
  self.cancelled = true
  if self.shielded then return end  -- its wait ends as it would have
  local obj = self.waiting_on
  if obj then
    self.waiting_on = nil
    local list = waiters[obj]
    if list then
      for i = #list, 1, -1 do
        if list[i] == self then table.remove(list, i) end
      end
      if #list == 0 then
        waiters[obj] = nil
        if type(obj) ~= "table" then obj:abort() end
      end
    end
    enqueue(self)
  end
end

function M.sleep(seconds)
  local timer <close> = core.timer(seconds)
  M.wait(timer)
end

M.now = core.now

--- Runs every task of this run (its scope) to its end, background ones
--- aside (they are left where they are). A task that failed and was
--- never joined fails the run: its error is raised.
function M.finish()
  local s = scope_now()
  if s == root then
    run_until(function() return foreground == 0 end)
  else
    -- A scope's own task waits for the tasks it spawned.
    while s.foreground > 0 do
      s.idle = M.event()
      M.wait(s.idle)
    end
    s.idle = nil
  end
  local failures = s.failures
  s.failures = {}
  for _, t in ipairs(failures) do
    if not t.joined then
      local err = t.err
      -- A string error already carries the task's own traceback.
      if not errors.is(err) then err = errors.new("task", tostring(err)) end
      error(err, 0)
    end
  end
end

-- The exit codes are the host's (csrc/exitcode.h, through the core): 1 a
-- run that failed or could not start, 2 a usage error, 3 a run that
-- finished without all it was asked for (an error of kind "incomplete":
-- reports that failed, profiles that failed), 130 interrupted. Which one a
-- run gets is decided here only (exit_code); the host prints the message
-- main returns, as "auditrun: MESSAGE".
M.EXIT_FAILURE, M.EXIT_USAGE = core.EXIT_FAILURE, core.EXIT_USAGE
M.EXIT_INCOMPLETE, M.EXIT_INTERRUPTED = core.EXIT_INCOMPLETE, core.EXIT_INTERRUPTED

--- exit_code(ok, err) -> the exit code of a script that ended so.
function M.exit_code(ok, err)
  if core.interrupted() > 0 then return M.EXIT_INTERRUPTED end
  if ok then return 0 end
  if errors.is(err, "usage") then return M.EXIT_USAGE end
  if errors.is(err, "incomplete") then return M.EXIT_INCOMPLETE end
  return M.EXIT_FAILURE
end

-- A raised error as the one line (an error value) or the message with its
-- traceback (anything else) the host prints.
local function traceback(err)
  if type(err) == "string" then return debug.traceback(err, 2) end
  return err
end

local function message_of(err)
  local mt = getmetatable(err)
  if type(err) ~= "string" and mt and mt.__tostring then return tostring(err) end
  if type(err) ~= "string" then return string.format("(error object is a %s value)", type(err)) end
  return err
end

--- main(chunk, ...) -> exit code[, message]: runs the script `chunk` with
--- its arguments, then the tasks it spawned and did not join, with Ctrl-C
--- handed to the loop.
---
--- The exit code (M.exit_code) and, when something raised, the message.
function M.main(chunk, ...)
  core.handle_signals()
  return M.run_script(chunk, ...)
end

--- run_script(chunk, ...) -> exit code[, message]: main without the
--- signals: the script, the tasks of its scope, what runs at its end.
--- auditrun.each runs one per tenant, each in a scope of its own.
function M.run_script(chunk, ...)
  local ok, err = xpcall(chunk, traceback, ...)
  if ok then ok, err = xpcall(M.finish, traceback) end
  local code = M.exit_code(ok, err)
  local message = not ok and errors.redact(message_of(err)) or nil  -- no secret reaches the terminal
  return M.run_exit_hooks(code, message)
end

--- run_exit_hooks(code, message) -> code, message: runs the at_exit
--- functions once (main does; so does a script that calls os.exit).
function M.run_exit_hooks(code, message)
  local s = scope_now()
  local hooks = s.exit_hooks
  s.exit_hooks = {}
  for _, fn in ipairs(hooks) do
    -- A hook that fails (a metrics file it cannot write) fails a run that
    -- went well, in one line; a run that failed says it after its own.
    local hok, herr = pcall(fn, code)
    if not hok or herr ~= nil then
      local why = errors.redact(message_of(herr))
      if code == 0 then
        code, message = M.EXIT_FAILURE, why
      else
        message = (message and (message .. "\nauditrun: ") or "") .. why
      end
    end
  end
  return code, message
end

--- at_exit(fn): fn(code) runs once the script and its tasks have ended,
--- with the exit code, whatever the outcome (tasks can still wait in it).
--- It returns nil, or an error that makes a run that succeeded fail.
function M.at_exit(fn)
  local hooks = scope_now().exit_hooks
  hooks[#hooks + 1] = fn
end

-- ---- semaphore ------------------------------------------------------------

local Semaphore = {}
Semaphore.__index = Semaphore

local Permit = {}
Permit.__index = Permit
function Permit:release()
  if self.released then return end
  self.released = true
  self.sem:release()
end
Permit.__close = Permit.release

--- A counting semaphore. acquire() returns a permit to release (or to hold
--- in a <close> variable).
function M.semaphore(n)
  assert(math.type(n) == "integer" and n >= 1, "semaphore needs a count of at least 1")
  return setmetatable({ count = n, limit = n, queue = {}, in_use = 0, peak = 0 }, Semaphore)
end

local function take(self)
  self.in_use = self.in_use + 1
  if self.in_use > self.peak then self.peak = self.in_use end
  return setmetatable({ sem = self }, Permit)
end

function Semaphore:acquire()
  if self.count > 0 and #self.queue == 0 then
    self.count = self.count - 1
    return take(self)
  end
  local ev = M.event()
  self.queue[#self.queue + 1] = ev
  local ok, err = pcall(M.wait, ev)
  if not ok then
    for i, e in ipairs(self.queue) do
      if e == ev then table.remove(self.queue, i) break end
    end
    if ev.done then  -- a permit was handed over as we were cancelled
      self.in_use = self.in_use + 1
      self:release()
    end
    error(err, 0)
  end
  return take(self)
end

function Semaphore:release()
  self.in_use = self.in_use - 1
  local ev = table.remove(self.queue, 1)
  if ev then M.signal(ev) else self.count = self.count + 1 end
end

--- Lowers or raises the limit; waiting tasks are let in as room appears.
function Semaphore:set_limit(n)
  assert(math.type(n) == "integer" and n >= 1, "limit must be at least 1")
  self.count = self.count + (n - self.limit)
  self.limit = n
  while self.count > 0 and #self.queue > 0 do
    self.count = self.count - 1
    M.signal(table.remove(self.queue, 1))
  end
end

-- ---- coroutines the script creates ------------------------------------------

local function resume(co, ...)
  -- While it runs, the script's coroutine is where a Ctrl-C hook must go.
  local outer = coroutine.running()
  core.set_running(co)
  local r = pack(raw_resume(co, ...))
  while r[1] and r[2] == WAIT and raw_status(co) == "suspended" do
    -- The script's coroutine waits: wait in our own context (yielding to
    -- the scheduler, or running the loop), then let it go on.
    core.set_running(outer)
    local got = pack(park(r[3]))
    core.set_running(co)
    r = pack(raw_resume(co, unpack(got, 1, got.n)))
  end
  core.set_running(outer)
  return unpack(r, 1, r.n)
end

local function wrap(fn)
  local co = raw_create(fn)
  return function(...)
    local r = pack(resume(co, ...))
    if not r[1] then
      raw_close(co)
      error(r[2], 0)
    end
    return unpack(r, 2, r.n)
  end
end

coroutine.resume = resume -- luacheck: ignore 122
coroutine.wrap = wrap -- luacheck: ignore 122

return M
