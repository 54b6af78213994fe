-- The host binary as a user meets it: exit codes, messages, arguments,
-- bundled workflows, Ctrl-C.
local helper = require("tests.helper")
local host, util = helper.host, helper.util
local task = require("auditrun.task")

local function wait_for_file(path, seconds)
  local deadline = task.now() + seconds
  while task.now() < deadline do
    local f = io.open(path)
    if f then f:close() return true end
    task.sleep(0.02)
  end
  return false
end

-- Starts the host on a script of source, whose %q is a path the script
-- makes once it is ready, and waits for that file; -> the run (host.start)
-- and a function that removes the script and the file.
local function start_when_ready(source)
  local ready = os.tmpname()
  os.remove(ready)
  local script = host.script(source:format(ready))
  local h = host.start { script }
  assert.is_true(wait_for_file(ready, 60))
  return h, function()
    os.remove(script)
    os.remove(ready)
  end
end

describe("the host", function()
  it("prints its version, and those of the libcurl, OpenSSL and Lua it runs with", function()
    local code, out, err = host.run { "--version" }
    assert.equal(0, code, err)
    assert.equal("", err)
    -- The libraries as this machine has them: the tools built on the same ones say.
    local openssl = util.sh("openssl version"):match("%(Library: (.-)%)") or util.sh("openssl version"):match("^(.-)\n")
    local want = table.concat({
      "auditrun 0.1.0",
      util.sh("curl-config --version"):match("^(libcurl %S+)"),
      openssl,
      util.sh("lua5.4 -v"):match("^(Lua %S+)"),
    }, "\n") .. "\n"
    assert.equal(want, out)
    assert.matches("^auditrun 0%.1%.0\nlibcurl 7%.%d+%.%d+\nOpenSSL 3%.[^\n]+\nLua 5%.4%.%d+\n$", out)
  end)

  it("prints usage for --help (0) and for no arguments (2)", function()
    local code, out = host.run { "--help" }
    assert.equal(0, code)
    assert.matches("usage: auditrun %[%-%-profile NAME%] SCRIPT%.lua", out)
    local code2, _, err = host.run {}
    assert.equal(2, code2)
    assert.matches("usage:", err)
  end)

  it("exits 2 on an unknown option or a missing script", function()
    local code, _, err = host.run { "--frobnicate" }
    assert.equal(2, code)
    assert.matches("unknown option '%-%-frobnicate'", err)
    code, _, err = host.run { "no-such-workflow" }
    assert.equal(2, code)
    assert.matches("no script 'no%-such%-workflow'", err)
    assert.is_nil(err:find("Did you mean", 1, true))
  end)

  it("says 'did you mean' for a mistyped workflow name or host option", function()
    local code, _, err = host.run { "guest-acess", "--out", "x" }
    assert.equal(2, code)
    assert.equal("auditrun: no script 'guest-acess' (and no bundled workflow of that name; see --list)\n"
      .. "Did you mean 'guest-access'?\n", err)
    code, _, err = host.run { "--profle", "x", "config" }
    assert.equal(2, code)
    assert.equal("auditrun: unknown option '--profle'\nDid you mean '--profile'? (auditrun --help lists them)\n", err)
    code, _, err = host.run { "--each-profiles=a", "config" }
    assert.equal(2, code)
    assert.matches("Did you mean '%-%-each%-profile'%?", err)
    -- A path is not a typo of a workflow.
    code, _, err = host.run { "./guest-acess.lua" }
    assert.equal(2, code)
    assert.is_nil(err:find("Did you mean", 1, true))
  end)

  it("runs a script with its arguments in arg and in ...", function()
    local script = host.script [[
      local a, b = ...
      print(arg[0]:match("[^/]+$"), arg[1], arg[2], a, b, #arg)
      print(require("auditrun").version)
    ]]
    local code, out = host.run { script, "one", "two words" }
    assert.equal(0, code)
    local name = script:match("[^/]+$")
    assert.equal(name .. "\tone\ttwo words\tone\ttwo words\t2\n0.1.0\n", out)
    os.remove(script)
  end)

  -- Scripts that fail: exit 1, what they printed, and stderr's patterns.
  for _, case in ipairs {
    { "prints an error value as one line and exits 1", [[
      local auditrun = require("auditrun")
      auditrun.try(auditrun.http.get("https://127.0.0.1:1/nothing", { retry = false }))
    ]], "", { "^auditrun: connect: .*Could.*connect.*%(GET https://127%.0%.0%.1:1/nothing%)\n$" } },
    { "prints an unexpected error with its traceback and exits 1", "local t = nil\nreturn t.x\n", "",
      { "^auditrun: .*:2: attempt to index a nil value", "stack traceback:" } },
    { "reports a syntax error", "this is not lua", "", { "^auditrun: .*syntax error" } },
    { "runs spawned tasks to their end, and fails on one that failed unseen", [[
      local auditrun = require("auditrun")
      auditrun.spawn(function() auditrun.sleep(0.05) print("late task done") end)
      auditrun.spawn(function() auditrun.sleep(0.02) error(auditrun.error("job", "export 42 failed")) end)
      print("main done")
    ]], "main done\nlate task done\n", { "^auditrun: job: export 42 failed\n$" } },
  } do
    local name, source, printed, patterns = table.unpack(case)
    it(name, function()
      local code, out, err = host.run_script(source)
      assert.equal(1, code, err)
      assert.equal(printed, out)
      for _, pattern in ipairs(patterns) do assert.matches(pattern, err) end
    end)
  end

  it("lists the bundled workflows with a line each, from any directory", function()
    local code, out = host.run { "--list" }
    assert.equal(0, code)
    assert.matches("token%-check%s+%S", out)
    local p = io.popen("cd / && " .. host.binary .. " --list")
    local listed = p:read("a")
    p:close()
    assert.equal(out, listed)
  end)

  it("cancels tasks on Ctrl-C so they can save their state, and exits 130", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir " .. dir)
    local script = host.script(([[
      local auditrun = require("auditrun")
      local dir = %q
      for i = 1, 3 do
        auditrun.spawn(function()
          local ok, err = pcall(auditrun.sleep, 60)
          local f = io.open(dir .. "/saved" .. i, "w") f:write(err.kind) f:close()
          error(err, 0)
        end)
      end
      auditrun.spawn(function() io.open(dir .. "/ready", "w"):close() end)
    ]]):format(dir))
    local h = host.start { script }
    assert.is_true(wait_for_file(dir .. "/ready", 60))
    task.sleep(0.1)
    h:signal("INT")
    local code, _, err = h:wait(60)
    assert.equal(130, code)
    for i = 1, 3 do
      assert.equal("cancelled", io.open(dir .. "/saved" .. i):read("a"))
    end
    assert.matches("auditrun: interrupted", err)
    os.execute("rm -rf " .. dir)
    os.remove(script)
  end)

  it("exits 130 on SIGTERM during the main chunk's own wait", function()
    local h, clean = start_when_ready [[
      io.open(%q, "w"):close()
      require("auditrun").sleep(60)
      print("not reached")
    ]]
    h:signal("TERM")
    local code, out, err = h:wait(60)
    assert.equal(130, code)
    assert.equal("", out)
    assert.matches("interrupted", err)
    clean()
  end)

  it("exits at once on a second Ctrl-C while tasks are still saving", function()
    local h, clean = start_when_ready [[
      local auditrun = require("auditrun")
      auditrun.spawn(function()
        local _guard <close> = setmetatable({}, { __close = function() while true do end end })
        auditrun.sleep(60)
      end)
      auditrun.spawn(function() io.open(%q, "w"):close() end)
    ]]
    task.sleep(0.1)
    h:signal("INT")
    task.sleep(0.2)
    h:signal("INT")
    local code = h:wait(30)
    assert.equal(130, code)
    clean()
  end)

  -- Regression: a CPU-bound loop ignored the first Ctrl-C; only a second one
  -- ended the run.
  for _, where in ipairs { "main", "task", "coroutine" } do
    it("stops a CPU-bound loop in the " .. where .. " on the first Ctrl-C, cancels tasks, exits 130", function()
      local dir = util.tempdir()
      local script = host.script(([[
        local auditrun = require("auditrun")
        local dir, where = %q, %q
        auditrun.spawn(function()
          local ok, err = pcall(auditrun.sleep, 60)
          local f = io.open(dir .. "/saved", "w") f:write(ok and "slept" or err.kind) f:close()
        end)
        local function spin() io.open(dir .. "/ready", "w"):close() while true do end end
        if where == "task" then auditrun.spawn(spin)
        elseif where == "coroutine" then auditrun.spawn(coroutine.wrap(function() auditrun.sleep(0.01) spin() end))
        else auditrun.sleep(0.05) spin() end
      ]]):format(dir, where))
      local h = host.start { script }
      assert.is_true(wait_for_file(dir .. "/ready", 60))
      task.sleep(0.1)
      h:signal("INT")
      local code, _, err = h:wait(30)
      assert.equal(130, code)
      assert.matches("interrupted", err)
      if where ~= "main" then assert.equal("cancelled", util.read(dir .. "/saved")) end
      os.execute("rm -rf " .. dir)
      os.remove(script)
    end)
  end
end)
