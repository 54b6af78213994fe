-- Runs nobody watches (cron, systemd timers, a CronJob), by the host against
-- the sandbox: --metrics as Prometheus text format (read here by a parser
-- of its own), kept per workflow and profile in a shared file, last success
-- kept when a run fails; a progress line at a steady pace when stderr is
-- not a terminal.
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local cjson = require("cjson")

-- A strict reader of the Prometheus text format: every sample's family has
-- one HELP and one TYPE line before its first sample, label values are
-- quoted with \\, \" and \n escapes, values are numbers.
local function prometheus(text)
  local families, samples, seen_sample = {}, {}, {}
  local n = 0
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    local kind, name, rest = line:match("^# (%u+) ([%a_:][%w_:]*) (.*)$")
    if kind then
      families[name] = families[name] or {}
      assert.is_nil(families[name][kind], "a second " .. kind .. " for " .. name)
      assert.is_nil(seen_sample[name], kind .. " after a sample of " .. name)
      families[name][kind] = rest
    else
      local sname, labels, value = line:match('^([%a_:][%w_:]*){(.-)} (%S+)$')
      assert(sname, "line " .. n .. " is not a sample: " .. line)
      assert(tonumber(value), "line " .. n .. ": not a number")
      local f = assert(families[sname], "no HELP/TYPE before " .. sname)
      assert(f.HELP and f.TYPE, "no HELP/TYPE before " .. sname)
      assert.is_truthy(({ gauge = true, counter = true, untyped = true })[f.TYPE])
      seen_sample[sname] = true
      local l = {}
      for k, v in labels:gmatch('([%a_][%w_]*)="(.-)"') do l[k] = v end
      local key = sname .. "/" .. (l.workflow or "?") .. "/" .. (l.profile or "?")
      assert.is_nil(samples[key], "two samples for " .. key)
      samples[key] = tonumber(value)
    end
  end
  assert.equal("\n", text:sub(-1), "the file ends with a newline")
  return samples, families
end

describe("unattended runs", function()
  local sb = sandbox.for_describe()
  local t, dir

  local function control(method, path, body) return sb:activity_control(method, path, body) end

  local function env(extra) return sb:activity_env(t, extra) end

  before_each(function()
    t, dir = sb:reset_activity(), util.tempdir()
  end)
  after_each(function() util.remove(dir) end)

  describe("--metrics", function()
    it("writes each run's series, keeps every workflow's, and keeps the last success when a run fails", function()
      local prom = dir .. "/auditrun.prom"
      -- Two busy answers first: two retries, and the seconds waited for them.
      control("POST", "/faults", { match = "GET /exavault/api/v2/activity/session", status = 429, retry_after = "1",
                                   times = 2 })
      local before = os.time()
      local code, _, err = host.run({ "exavault-sessions", "--out", dir .. "/s.jsonl", "--metrics", prom, "-q" },
        { env = env() })
      assert.equal(0, code, err)
      local s, families = prometheus(assert(util.read(prom)))
      local function get(name, wf, profile) return s["auditrun_" .. name .. "/" .. wf .. "/" .. (profile or "default")] end
      local ev = "exavault-sessions"
      assert.equal(t.exavault.sessions, get("rows_written", ev))
      assert.equal(2, get("retries", ev))
      assert.is_true(get("throttled_seconds", ev) >= 2)
      assert.equal(0, get("failures", ev))
      assert.equal(0, get("last_exit_code", ev))
      assert.is_true(get("last_run_timestamp_seconds", ev) >= before)
      assert.equal(get("last_run_timestamp_seconds", ev), get("last_success_timestamp_seconds", ev))
      assert.is_true(get("run_duration_seconds", ev) >= 2)
      for _, name in ipairs { "last_success_timestamp_seconds", "last_run_timestamp_seconds", "run_duration_seconds",
                              "rows_written", "failures", "retries", "throttled_seconds" } do
        assert.equal("gauge", families["auditrun_" .. name].TYPE)
        assert.is_true(#families["auditrun_" .. name].HELP > 10)
      end
      local success = get("last_success_timestamp_seconds", ev)

      -- Another workflow, and another profile of the first, into the same file: every series stays.
      code, _, err = host.run({ "dealcloud-activity", "--out", dir .. "/d.jsonl", "--metrics", prom, "-q" },
        { env = env() })
      assert.equal(0, code, err)
      util.write(dir .. "/config.lua", ([[return { other = { exavault_url = %q, exavault_api_key = %q,
        exavault_access_token = "wrong" } }]]):format(sb.url .. "/exavault/api/v2", t.exavault.api_key))
      os.execute("sleep 1")
      code, _, err = host.run({ "exavault-sessions", "--profile", "other", "--out", dir .. "/o.jsonl",
                                "--metrics", prom, "-q" },
        { env = env { AUDITRUN_CONFIG = dir .. "/config.lua", AUDITRUN_EXAVAULT_ACCESS_TOKEN = "" } })
      assert.equal(1, code, err)
      s = prometheus(assert(util.read(prom)))
      assert.is_true(get("rows_written", "dealcloud-activity") > 0)
      assert.equal(t.exavault.sessions, get("rows_written", ev))
      assert.equal(success, get("last_success_timestamp_seconds", ev))
      assert.equal(1, get("last_exit_code", ev, "other"))
      assert.is_true(get("failures", ev, "other") >= 1)
      assert.is_nil(get("last_success_timestamp_seconds", ev, "other"))

      -- The same profile failing: its last success stays, its last run moves.
      os.execute("sleep 1")
      code, _, err = host.run({ "exavault-sessions", "--out", dir .. "/s2.jsonl", "--metrics", prom, "-q" },
        { env = env { AUDITRUN_EXAVAULT_ACCESS_TOKEN = "wrong" } })
      assert.equal(1, code, err)
      s = prometheus(assert(util.read(prom)))
      assert.equal(success, get("last_success_timestamp_seconds", ev))
      assert.is_true(get("last_run_timestamp_seconds", ev) > success)
      assert.equal(1, get("last_exit_code", ev))
      assert.is_true(get("rows_written", "dealcloud-activity") > 0)
      -- Neither the metrics file's lock nor those of the records files stay.
      assert.same({}, util.locks(dir))
    end)

    it("says in one line when the file cannot be written, and the run fails", function()
      local code, _, err = host.run({ "exavault-sessions", "--out", dir .. "/s.jsonl", "--metrics",
                                      dir .. "/missing/auditrun.prom", "-q" }, { env = env() })
      assert.equal(2, code)
      assert.matches("auditrun: exavault%-sessions: %-%-metrics .*missing/auditrun.prom", err)
      assert.not_matches("traceback", err)
      assert.is_nil(util.read(dir .. "/s.jsonl"))
      -- A file that is not metrics is left alone, and said so.
      util.write(dir .. "/notes.prom", "hello world, this is not a metrics file\n")
      code, _, err = host.run({ "exavault-sessions", "--out", dir .. "/s.jsonl", "--metrics", dir .. "/notes.prom",
                                "-q" }, { env = env() })
      assert.equal(2, code)
      assert.matches("is not a metrics file", err)
      assert.equal("hello world, this is not a metrics file\n", util.read(dir .. "/notes.prom"))
    end)
  end)

  -- A new home with its own state folder and the host environment for it,
  -- the Insights tenant reset with export jobs of `job_seconds`.
  local function insights_home(job_seconds)
    local home, ienv = sb:new_home()
    ienv.XDG_STATE_HOME = home .. "/state"
    sb:control("POST", "/reset")
    sb:control("POST", "/config", { jobSeconds = job_seconds })
    return home, ienv
  end

  -- Waits (up to 20 s) until the tenant runs five jobs at once.
  local function until_five_jobs()
    for _ = 1, 400 do
      if sb:control("GET", "/stats").jobs_in_flight >= 5 then return end
      os.execute("sleep 0.05")
    end
  end

  -- The folder of the tenant's slot files under a home's state folder ("" while there is none).
  local function slots_dir(home)
    return (util.sh("ls -d " .. home .. "/state/auditrun/slots/*/ 2>/dev/null"):match("^%s*(.-)%s*$"))
  end

  describe("one tenant's five slots", function()
    it("are shared by two processes at once: never more than five jobs, none refused, both complete", function()
      local home, ienv = insights_home(0.6)
      local a = host.start({ "external-group-access", "--out", home .. "/a", "-q" }, { env = ienv })
      local b = host.start({ "external-group-access", "--out", home .. "/b", "-q" }, { env = ienv })
      local code_a, _, err_a = a:wait(180)
      local code_b, _, err_b = b:wait(180)
      assert.equal(0, code_a, err_a)
      assert.equal(0, code_b, err_b)
      local stats = sb:control("GET", "/stats")
      assert.is_true(stats.max_jobs_in_flight <= 5, "jobs at once: " .. stats.max_jobs_in_flight)
      assert.equal(5, stats.max_jobs_in_flight)
      assert.equal(0, stats.jobs_refused)
      local ma, mb = util.read(home .. "/a/manifest.jsonl"), util.read(home .. "/b/manifest.jsonl")
      assert.is_true(#util.lines(ma) > 10)
      assert.equal(#util.lines(ma), #util.lines(mb))
      assert.equal(2 * #util.lines(ma), stats.jobs_submitted)
      -- The slot files live in the user's state folder, one set for the tenant.
      local slots = util.sh("ls " .. home .. "/state/auditrun/slots/*/")
      assert.matches("slot%-1", slots)
      assert.matches("tenant", slots)
      util.remove(home)
    end)

    it("a run waiting for another process's slots says so, and counts its jobs queued, not running", function()
      local home, ienv = insights_home(10)
      -- The first run holds all five slots with legacy batches of 10 groups
      -- (some twenty jobs of 10 s), so the second waits for the first of
      -- them to end: long enough for its progress lines (one a second) to
      -- show it waiting even when it starts slowly (valgrind), and not long.
      local a = host.start({ "external-group-access", "--api", "legacy", "--batch-size", "10", "--out", home .. "/a",
        "-q" }, { env = ienv })
      until_five_jobs()
      -- The second run asks for few jobs (legacy batches of 100 groups), so
      -- it ends soon after it gets slots; the first is stopped then (or has
      -- just finished).
      local code, _, err = host.run({ "external-group-access", "--api", "legacy", "--batch-size", "100", "--out",
        home .. "/b", "-v", "--progress-every", "1" }, { env = ienv })
      assert.equal(0, code, err)
      a:signal("INT")
      local code_a = a:wait(60)
      assert.is_true(code_a == 0 or code_a == 130, "the first run ended with " .. tostring(code_a))
      assert.matches("all 5 job slots of the tenant are held by other auditrun processes", err)
      assert.matches("progress [^\n]*queued [1-9]%d*  running 0  done 0", err)
      assert.equal(0, sb:control("GET", "/stats").jobs_refused)
      util.remove(home)
    end)

    it("hold a slot of the tenant's five for each submit a killed run left without an answer", function()
      local home, ienv = insights_home(1)
      -- Killed with five submits recorded as about to be sent: their outcome is unknown.
      local paused = {}
      for k, v in pairs(ienv) do paused[k] = v end
      paused.AUDITRUN_PAUSE_AT = "posting"
      local a = host.start({ "external-group-access", "--out", home .. "/a", "-q" }, { env = paused })
      local n = 0
      for _ = 1, 400 do
        local text = util.read(a.dir .. "/err") or ""
        n = select(2, text:gsub("paused at posting", ""))
        if n >= 5 then break end
        os.execute("sleep 0.05")
      end
      assert.equal(5, n)
      a:signal("KILL")
      a:wait(20)
      -- The rerun keeps a slot for each while its job could run: the tenant's slot files.
      local b = host.start({ "external-group-access", "--out", home .. "/a", "-q", "--job-length", "20" },
        { env = ienv })
      local files = require("auditrun.files")
      local locked
      for _ = 1, 100 do
        os.execute("sleep 0.1")
        local dirs = slots_dir(home)
        locked = 0
        for i = 1, 5 do
          local lock = dirs ~= "" and files.lock(dirs .. "slot-" .. i)
          if lock then lock:close() elseif dirs ~= "" then locked = locked + 1 end
        end
        if locked == 5 then break end
      end
      assert.equal(5, locked)
      assert.equal(0, sb:control("GET", "/stats").jobs_in_flight)
      b:signal("KILL")
      b:wait(20)
      util.remove(home)
    end)

    it("are freed when a process holding them is killed with kill -9", function()
      local home, ienv = insights_home(30)
      local a = host.start({ "external-group-access", "--out", home .. "/a", "-q" }, { env = ienv })
      until_five_jobs()
      assert.equal(5, sb:control("GET", "/stats").jobs_in_flight)
      local files = require("auditrun.files")
      local dirs = slots_dir(home)
      assert.matches("/slots/%x+/$", dirs)
      for i = 1, 5 do
        local lock, err = files.lock(dirs .. "slot-" .. i)
        assert.is_nil(lock, "slot " .. i .. " is free while the run holds it")
        assert.equal("locked", err.kind)
      end
      a:signal("KILL")
      a:wait(20)
      for i = 1, 5 do
        local lock, err = files.lock(dirs .. "slot-" .. i)
        assert(lock, err)
        lock:close()
      end
      sb:control("POST", "/reset")
      util.remove(home)
    end)
  end)

  describe("off a terminal", function()
    it("prints a progress line at a steady pace while nothing else is said", function()
      control("POST", "/faults", { match = "GET /exavault/api/v2/activity/session", delay_ms = 1500, times = 1000 })
      local code, _, err = host.run({ "exavault-sessions", "--out", dir .. "/s.jsonl", "--progress-every", "1" },
        { env = env() })
      assert.equal(0, code, err)
      local stamps = {}
      for stamp, line in err:gmatch("(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ) progress ([^\n]*)") do
        stamps[#stamps + 1] = stamp
        assert.matches("rows %d+", line)
      end
      assert.is_true(#stamps >= 2, "progress lines: " .. err)

      -- As JSON log lines, with the counts as fields.
      code, _, err = host.run({ "exavault-sessions", "--out", dir .. "/j.jsonl", "--progress-every", "1",
                                "--log-format", "json" }, { env = env() })
      assert.equal(0, code, err)
      local n = 0
      for line in err:gmatch("[^\n]+") do
        local rec = cjson.decode(line)
        if rec.event == "progress" then
          n = n + 1
          assert.is_number(rec.done)
          assert.is_number(rec.elapsed)
        end
      end
      assert.is_true(n >= 2, err)

      -- An export run whose jobs take a while: the line says what is running.
      local home, ienv = insights_home(2.5)
      code, _, err = host.run({ "external-group-access", "--out", home .. "/out", "--progress-every", "1",
                                "--batch-size", "100", "--api", "legacy" }, { env = ienv })
      util.remove(home)
      assert.equal(0, code, err)
      assert.matches("Z progress [^\n]*listed %d+  queued %d+  running [1-5]  done", err)

      -- 0: none; -q: none.
      for _, flags in ipairs { { "--progress-every", "0" }, { "-q" } } do
        os.remove(dir .. "/z.jsonl")
        os.execute("rm -f " .. dir .. "/.z.jsonl.auditrun")
        local args = { "exavault-sessions", "--out", dir .. "/z.jsonl", table.unpack(flags) }
        code, _, err = host.run(args, { env = env() })
        assert.equal(0, code, err)
        assert.not_matches(" progress ", err)
      end
    end)
  end)
end)
