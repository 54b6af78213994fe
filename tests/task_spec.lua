-- Tasks on one event loop: spawn, join, sleep, cancel, semaphores, and the
-- script's own coroutines waiting through the scheduler.
local task = require("auditrun.task")
local errors = require("auditrun.errors")
local core = require("auditrun.core")

-- Cancels t from another task 20 ms from now and joins it, which must
-- give the cancellation; -> the seconds the join took.
local function join_cancelled_soon(t)
  task.spawn(function() task.sleep(0.02) t:cancel() end)
  local ok, err = t:join()
  assert.is_false(ok)
  assert.equal("cancelled", err.kind)
end

describe("tasks", function()
  it("interleave sleeps on one loop instead of adding them up", function()
    local order = {}
    local tasks = {}
    for i = 1, 50 do
      tasks[i] = task.spawn(function()
        task.sleep((50 - i) * 0.04)
        order[#order + 1] = i
        return i * 2
      end)
    end
    for i = 1, 50 do
      local ok, v = tasks[i]:join()
      assert.is_true(ok)
      assert.equal(i * 2, v)
    end
    -- Sleeps that blocked the loop would end in the order they started;
    -- interleaved, the shortest (started last) wakes first. The 40 ms steps
    -- keep that order under valgrind on a busy machine: no clock is read.
    assert.equal(50, order[1])
    assert.equal(1, order[50])
  end)

  -- Regression: a wait of more than ~24.8 days overflowed the poll timeout
  -- ("event loop failed"), ending every task; a huge Retry-After reaches it.
  it("take a wait of years in their stride: it sleeps, and can be cancelled", function()
    local long = task.spawn(function() task.sleep(3e6) end)
    local forever = task.spawn(function() task.sleep(math.huge) end)
    task.sleep(0.05)
    assert.is_false(long:done())
    long:cancel()
    forever:cancel()
    local ok, err = long:join()
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.equal("cancelled", select(2, forever:join()).kind)
  end)

  it("end the run without waiting for a background task", function()
    local host = require("tests.helper.host")
    -- Had the run waited for it, the background task would have printed too.
    local code, out, err = host.run_script([[
      local task = require("auditrun.task")
      task.background(function() task.sleep(60) print("background done") end)
      task.spawn(function() task.sleep(0.1) print("foreground done") end)
    ]])
    assert.equal(0, code, err)
    assert.equal("foreground done\n", out)
  end)

  it("keep each scope's tasks, failures, end functions and values apart", function()
    local ended = {}
    local function run(name, fail_after)
      return task.spawn_scope({ name = name }, function()
        return task.run_script(function()
          task.at_exit(function(code) ended[#ended + 1] = name .. " " .. code end)
          task.spawn(function()
            task.sleep(fail_after)
            assert(task.scope().name == name, "a task runs in its spawner's scope")
            if name == "bad" then error(errors.new("job", "went wrong")) end
          end)
        end)
      end)
    end
    -- The good run's task ends after the bad one failed: its finish waits
    -- for its own task, and the failure is not its.
    local bad, good = run("bad", 0.01), run("good", 0.05)
    assert.same({ true, 1, "job: went wrong" }, { bad:join() })
    assert.same({ true, 0 }, { good:join() })
    assert.same({ "bad 1", "good 0" }, ended)
    assert.is_nil(task.scope().name)
  end)

  it("wake timers of equal deadline in the order they were set", function()
    local order = {}
    local ts = {}
    for i = 1, 20 do ts[i] = task.spawn(function() task.sleep(0.01) order[#order + 1] = i end) end
    for i = 1, 20 do ts[i]:join() end
    for i = 1, 20 do assert.equal(i, order[i]) end
  end)

  it("report a task's error through join without stopping the others", function()
    local bad = task.spawn(function() task.sleep(0.01) error(errors.new("job", "went wrong")) end)
    local good = task.spawn(function() task.sleep(0.02) return "fine" end)
    local ok, err = bad:join()
    assert.is_false(ok)
    assert.equal("job", err.kind)
    assert.same({ true, "fine" }, { good:join() })
  end)

  it("keep a string error's traceback", function()
    local t = task.spawn(function() local x = nil; return x.field end)
    local ok, err = t:join()
    assert.is_false(ok)
    assert.matches("attempt to index", err)
    assert.matches("stack traceback", err)
  end)

  it("cancel a sleeping task and run its <close> variables", function()
    local closed, reached = false, false
    local t = task.spawn(function()
      local _guard <close> = setmetatable({}, { __close = function() closed = true end })
      task.sleep(30)
      reached = true
    end)
    join_cancelled_soon(t)
    assert.is_true(closed)
    assert.is_false(reached)  -- the sleep was cut short, not waited out
    assert.equal(0, core.pending())  -- its timer left the loop
  end)

  it("cancel a task that never started without running it", function()
    local ran = false
    local t = task.spawn(function() ran = true end)
    t:cancel()
    local ok, err = t:join()
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.is_false(ran)
  end)

  it("let a cancelled task catch the cancellation to save its state", function()
    local saved
    local t = task.spawn(function()
      local ok, err = pcall(task.sleep, 30)
      saved = not ok and err.kind
      error(err, 0)
    end)
    task.sleep(0.01)
    t:cancel()
    t:join()
    assert.equal("cancelled", saved)
  end)

  it("let a shielded wait finish when the task is cancelled, and cancel at the next wait", function()
    local finished, after = false, false
    local t = task.spawn(function()
      task.shield(function()
        task.sleep(0.1)
        finished = true
      end)
      task.sleep(30)
      after = true
    end)
    join_cancelled_soon(t)
    assert.is_true(finished)  -- the shielded sleep ran to its end
    assert.is_false(after)
    assert.equal(0, core.pending())
  end)

  it("pass waits through the script's own coroutines", function()
    local t = task.spawn(function()
      local gen = coroutine.wrap(function()
        for i = 1, 3 do
          task.sleep(0.005)
          coroutine.yield(i)
        end
      end)
      return gen() + gen() + gen()
    end)
    assert.same({ true, 6 }, { t:join() })
    -- and from the main chunk, with coroutine.resume
    local co = coroutine.create(function(a)
      task.sleep(0.005)
      local b = coroutine.yield(a + 1)
      task.sleep(0.005)
      return b * 2
    end)
    assert.same({ true, 11 }, { coroutine.resume(co, 10) })
    assert.same({ true, 14 }, { coroutine.resume(co, 7) })
    assert.equal("dead", coroutine.status(co))
  end)

  it("let a task yield to the others with a plain coroutine.yield", function()
    local log = {}
    local a = task.spawn(function() for i = 1, 3 do log[#log + 1] = "a" .. i coroutine.yield() end end)
    local b = task.spawn(function() for i = 1, 3 do log[#log + 1] = "b" .. i coroutine.yield() end end)
    a:join() b:join()
    assert.equal("a1 b1 a2 b2 a3 b3", table.concat(log, " "))
  end)

  it("limit concurrency with a semaphore and hand permits over in order", function()
    local sem = task.semaphore(3)
    local inside, peak, order = 0, 0, {}
    local ts = {}
    for i = 1, 30 do
      ts[i] = task.spawn(function()
        local _permit <close> = sem:acquire()
        inside = inside + 1
        peak = math.max(peak, inside)
        order[#order + 1] = i
        task.sleep(0.002)
        inside = inside - 1
      end)
    end
    for i = 1, 30 do assert.is_true((ts[i]:join())) end
    assert.equal(3, peak)
    assert.equal(3, sem.peak)
    for i = 1, 30 do assert.equal(i, order[i]) end
    assert.equal(3, sem.count)
  end)

  it("give a cancelled waiter's place on a semaphore to the next task", function()
    local sem = task.semaphore(1)
    local holder = sem:acquire()
    local waiter = task.spawn(function() local _p <close> = sem:acquire() return "got" end)
    local next_in = task.spawn(function() local _p <close> = sem:acquire() return "next" end)
    task.sleep(0.01)
    waiter:cancel()
    holder:release()
    assert.same({ true, "next" }, { next_in:join() })
    assert.equal("cancelled", select(2, waiter:join()).kind)
    assert.equal(1, sem.count)
  end)

  it("lower a semaphore's limit", function()
    local sem = task.semaphore(5)
    sem:set_limit(2)
    local a, b = sem:acquire(), sem:acquire()
    assert.equal(0, sem.count)
    a:release() b:release()
    assert.equal(2, sem.count)
  end)

  it("refuse to wait for what nothing can finish", function()
    local ev = task.event()
    local ok, err = pcall(task.wait, ev)
    assert.is_false(ok)
    assert.equal("deadlock", err.kind)
  end)

  it("give a monotonic clock", function()
    local a = task.now()
    task.sleep(0.01)
    assert.is_true(task.now() - a >= 0.01)
  end)
end)
