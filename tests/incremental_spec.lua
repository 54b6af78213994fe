-- --incremental runs by the host against the sandbox's ExaVault and
-- DealCloud logs: a series of runs into one --out-dir writes every event
-- exactly once, with events stamped in the second a window ends and the
-- one the next starts, whether the service takes its end date as included
-- or not; an empty window still moves the bookmark; a run killed with
-- kill -9 is finished by the next one; --lookback collects events that
-- arrived late without writing the others again.
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local cjson = require("cjson")
local time = require("auditrun.time")

local DAY = 86400

local lines = util.file_lines

local ls = util.listing

local function iso(t) return time.iso(t):sub(1, 19) end

-- The files of a series of `workflow` with Insights reports in out: their
-- names and their text joined, each file's reports named after it, no part
-- file left.
local function insights_series(out, workflow)
  local names = ls(out, "^" .. workflow:gsub("%p", "%%%0") .. "_.*%.jsonl$")
  local joined = {}
  for _, name in ipairs(names) do
    joined[#joined + 1] = util.read(out .. "/" .. name)
    assert.equal(1, #ls(out, "^%." .. name:gsub("%p", "%%%0") .. "%.insights$"), table.concat(ls(out, "."), " "))
  end
  assert.same({}, ls(out, "%.part"))
  return names, table.concat(joined)
end

describe("--incremental", function()
  local sb = sandbox.for_describe()
  local t, dir

  local function control(method, path, body) return sb:activity_control(method, path, body) end

  local function env() return sb:activity_env(t) end

  before_each(function()
    t, dir = sb:reset_activity(), util.tempdir()
  end)
  after_each(function() util.remove(dir) end)

  local today = os.time() // DAY * DAY
  local B = today - DAY + 43200  -- a boundary second, yesterday noon
  local FIRST = iso(today - 401 * DAY)

  local function add(at, count) return control("POST", "/exavault/sessions", { date = time.iso(at), count = count }).ids end

  local function run(out, ...)
    local args = { "exavault-sessions", "--incremental", "--out-dir", out, "-q", ... }
    local code, _, err = host.run(args, { env = env() })
    return code, err
  end

  -- Every id of every file of the series, with the file it is in; each once.
  local function series(out)
    local where, n = {}, 0
    for _, name in ipairs(ls(out, "^exavault%-sessions_.*%.jsonl$")) do
      for _, l in ipairs(lines(out .. "/" .. name)) do
        local id = cjson.decode(l).id
        assert.is_nil(where[id], "written twice: " .. id .. " in " .. name .. " and " .. tostring(where[id]))
        where[id] = name
        n = n + 1
      end
    end
    return where, n
  end

  local function bookmark(out, workflow)
    local text = assert(util.read(out .. "/.auditrun/incremental/" .. (workflow or "exavault-sessions") .. ".json"))
    return cjson.decode(text)
  end

  for _, ends in ipairs { { 0, 0, "end date included" }, { 0, 1, "end date not included" },
                          { 1, 0, "start date taken as after" }, { 1, 1, "both ends left out" } } do
    it("writes each event once across runs, at the boundary second too (" .. ends[3] .. ")", function()
      control("POST", "/config", { evStartExclusive = ends[1], evEndExclusive = ends[2] })
      local at_b, after_b = add(B, 3), add(B + 1, 3)
      local out = dir .. "/series"
      local code, err = run(out, "--from", FIRST, "--to", iso(B))
      assert.equal(0, code, err)
      local first = "exavault-sessions_" .. os.date("!%Y%m%dT%H%M%SZ", today - 401 * DAY) .. "_"
        .. os.date("!%Y%m%dT%H%M%SZ", B + 1) .. ".jsonl"
      assert.same({ first }, ls(out, "^exavault.*%.jsonl$"))
      -- Its coverage report takes the file's name with it.
      assert.same({ first .. ".coverage.json" }, ls(out, "^exavault.*%.coverage%.json$"))
      assert.equal(B + 1, bookmark(out).to)
      -- --from again (as a cron line has it): the series goes on from its bookmark.
      code, err = run(out, "--from", FIRST, "--to", iso(B + 10))
      assert.equal(0, code, err)
      assert.matches("continuing the series", err)
      -- A window with nothing in it: an empty file, and the bookmark moves.
      code, err = run(out, "--to", iso(B + 20))
      assert.equal(0, code, err)
      local empty = out .. "/exavault-sessions_" .. os.date("!%Y%m%dT%H%M%SZ", B + 11) .. "_"
        .. os.date("!%Y%m%dT%H%M%SZ", B + 21) .. ".jsonl"
      assert.equal("", util.read(empty))
      assert.equal(B + 21, bookmark(out).to)
      -- Up to now less the safety lag.
      code, err = run(out)
      assert.equal(0, code, err)
      assert.is_true(bookmark(out).to <= os.time() - 300 and bookmark(out).to > os.time() - 400)
      local where, n = series(out)
      assert.equal(t.exavault.sessions + 6, n)
      for _, id in ipairs(at_b) do assert.equal(first, where[id]) end
      for _, id in ipairs(after_b) do assert.matches("_" .. os.date("!%Y%m%dT%H%M%SZ", B + 1) .. "_", where[id]) end
      -- Nothing new: no file, no change.
      local before = #ls(out, "^exavault.*%.jsonl$")
      code, err = run(out, "--to", iso(B + 5))
      assert.equal(0, code, err)
      assert.matches("nothing new to read", err)
      assert.equal(before, #ls(out, "^exavault.*%.jsonl$"))
    end)
  end

  it("finishes a window killed with kill -9 in the next run, each event once", function()
    local out = dir .. "/series"
    local code, err = run(out, "--from", FIRST, "--to", iso(today - 200 * DAY))
    assert.equal(0, code, err)
    control("POST", "/faults", { match = "GET /exavault/api/v2/activity/session", delay_ms = 300, times = 1000 })
    local h = host.start({ "exavault-sessions", "--incremental", "--out-dir", out, "-q", "--to", iso(B) },
      { env = env() })
    local partial
    for _ = 1, 600 do
      partial = ls(out, "%.part$")[1]
      if partial and #lines(out .. "/" .. partial) >= 500 then break end
      os.execute("sleep 0.05")
    end
    h:signal("KILL")
    h:wait(20)
    assert.is_truthy(partial, "no hidden file while the window was read")
    -- The killed run's locks (its series', its window file's) stay; the next run takes them over.
    assert.same({ "." .. partial .. ".auditrun.lock", ".auditrun/incremental/exavault-sessions.lock" },
      util.locks(out))
    assert.equal(1, #ls(out, "^exavault.*%.jsonl$"), "a file took its name before its window was read")
    assert.is_table(bookmark(out).pending)
    control("DELETE", "/faults")
    -- The next run (with another --to) finishes the killed window first, then reads on.
    code, err = run(out, "--to", iso(B + 100))
    assert.equal(0, code, err)
    assert.same({}, ls(out, "%.part"))
    assert.same({}, util.locks(out))
    assert.equal(3, #ls(out, "^exavault.*%.jsonl$"))
    assert.equal(B + 101, bookmark(out).to)
    assert.equal(cjson.null, bookmark(out).pending or cjson.null)
    series(out)
    code, err = run(out)
    assert.equal(0, code, err)
    local _, n = series(out)
    assert.equal(t.exavault.sessions, n)
  end)

  it("--lookback writes events that arrived late once, and the others not again", function()
    local out = dir .. "/series"
    local at_b = add(B, 2)
    local code, err = run(out, "--from", FIRST, "--to", iso(B), "--lookback", "1m")
    assert.equal(0, code, err)
    -- Late arrivals: one inside the lookback, one before it.
    local late = add(B - 30, 1)
    local too_late = add(B - 200, 1)
    code, err = run(out, "--to", iso(B + 5), "--lookback", "1m")
    assert.equal(0, code, err)
    local where = series(out)
    assert.matches("_" .. os.date("!%Y%m%dT%H%M%SZ", B + 1) .. "_", where[late[1]])
    assert.is_nil(where[too_late[1]])
    for _, id in ipairs(at_b) do assert.is_truthy(where[id]) end
    -- Again with nothing new: nothing written twice.
    code, err = run(out, "--to", iso(B + 10), "--lookback", "1m")
    assert.equal(0, code, err)
    series(out)
  end)

  it("DealCloud: a series across a day boundary writes each row once", function()
    local from = time.parse(t.dealcloud.start)
    local out = dir .. "/dc"
    local ends = { from + 100 * DAY, from + 100 * DAY + 1, from + 200 * DAY - 1, from + 365 * DAY }
    local code, _, err = host.run({ "dealcloud-activity", "--incremental", "--out-dir", out, "-q", "--from", iso(from),
                                    "--to", iso(ends[1] - 1) }, { env = env() })
    assert.equal(0, code, err)
    for i = 2, #ends do
      code, _, err = host.run({ "dealcloud-activity", "--incremental", "--out-dir", out, "-q",
                                "--to", iso(ends[i] - 1) }, { env = env() })
      assert.equal(0, code, err)
    end
    local want = control("GET", ("/dealcloud/rows?from=%s&to=%s"):format(time.iso(from), time.iso(ends[#ends])))
    local got, names = {}, ls(out, "^dealcloud%-activity_.*%.jsonl$")
    assert.equal(#ends, #names)
    for _, name in ipairs(names) do
      for _, l in ipairs(lines(out .. "/" .. name)) do got[#got + 1] = cjson.decode(l).sessionId end
    end
    assert.same(want.sessions, got)
  end)

  it("activity-timeline: the files of a series hold what one run over the whole range holds", function()
    local from, to = today - 400 * DAY, today - 330 * DAY
    local split = today - 365 * DAY + 12345
    local code, _, err = host.run({ "activity-timeline", "--from", iso(from), "--to", iso(to - 1), "--out",
                                    dir .. "/all.jsonl", "-q" }, { env = env() })
    assert.equal(0, code, err)
    local out = dir .. "/tl"
    code, _, err = host.run({ "activity-timeline", "--incremental", "--out-dir", out, "-q" }, { env = env() })
    assert.equal(2, code)
    assert.matches("needs %-%-from", err)
    for _, args in ipairs { { "--from", iso(from), "--to", iso(split - 1) }, { "--to", iso(split) },
                            { "--to", iso(to - 1) } } do
      code, _, err = host.run({ "activity-timeline", "--incremental", "--out-dir", out, "-q", table.unpack(args) },
        { env = env() })
      assert.equal(0, code, err)
    end
    local names = ls(out, "^activity%-timeline_.*%.jsonl$")
    assert.equal(3, #names)
    local joined = {}
    for _, name in ipairs(names) do joined[#joined + 1] = util.read(out .. "/" .. name) end
    local all = util.read(dir .. "/all.jsonl")
    assert.is_true(#lines(dir .. "/all.jsonl") > 100)
    assert.equal(all, table.concat(joined))
  end)

  it("activity-timeline with Insights: each user's activity once across the series, its reports named after "
    .. "each file", function()
    local tenant = sb:control("GET", "/tenant")
    -- A history that does not depend on the range asked (the sandbox draws one per range otherwise).
    sb:control("POST", "/config", { jobSeconds = 0.05, activityHistory = "stable" })
    local users = dir .. "/users.txt"
    util.write(users, tenant.users[1].loginName .. "\n" .. tenant.users[2].loginName .. "\n")
    local e = sb:activity_env(t, sb:secret_client_env(), { HOME = dir, AUDITRUN_EXAVAULT_URL = "",
                                 AUDITRUN_EXAVAULT_API_KEY = "", AUDITRUN_EXAVAULT_ACCESS_TOKEN = "" })
    local from = time.parse(t.dealcloud.last) - 60 * DAY
    local to, split = from + 30 * DAY, from + 13 * DAY + 4321
    local code, _, err = host.run({ "activity-timeline", "--from", iso(from), "--to", iso(to - 1), "--insights-users",
                                    users, "--out", dir .. "/all.jsonl", "-q" }, { env = e })
    assert.equal(0, code, err)
    local out = dir .. "/tl"
    for _, args in ipairs { { "--from", iso(from), "--to", iso(split - 1) }, { "--to", iso(to - 1) } } do
      code, _, err = host.run({ "activity-timeline", "--incremental", "--out-dir", out, "--insights-users", users,
                                "-q", table.unpack(args) }, { env = e })
      assert.equal(0, code, err)
    end
    local names, joined = insights_series(out, "activity-timeline")
    assert.equal(2, #names)
    local all = util.read(dir .. "/all.jsonl")
    assert.matches('"vendor":"insights"', all)
    assert.equal(all, joined)
    sb:control("POST", "/config", { activityHistory = "per-request" })
  end)

  -- user-activities and object-activities as a series: each window's file
  -- holds its reports' events, and the files of a two-run series hold what
  -- one run over the whole range holds (the boundary inside the range).
  for _, case in ipairs {
    { "user-activities", function(tenant) return { "--user", tenant.users[1].loginName, "--user",
      tenant.users[2].loginName } end },
    { "object-activities", function(tenant) return { "--path", tenant.sites[1].url } end },
  } do
    local workflow, subjects = case[1], case[2]
    it(workflow .. " --incremental: each event once across the series, its reports named after each file", function()
      local tenant = sb:control("GET", "/tenant")
      sb:control("POST", "/config", { jobSeconds = 0.05, activityHistory = "stable" })
      local e = {
        HOME = dir, AUDITRUN_CA_FILE = sb.ca_file, AUDITRUN_INSIGHTS_URL = sb.url .. "/insights",
        AUDITRUN_IDENTITY_URL = sb.issuer, AUDITRUN_CLIENT_ID = sb.clients.secret,
        AUDITRUN_CLIENT_SECRET = sb.clients.secret_value, XDG_STATE_HOME = dir .. "/state",
      }
      local from = time.parse(t.dealcloud.last) - 60 * DAY
      local to, split = from + 30 * DAY, from + 13 * DAY + 4321
      local function run_series(out, ranges)
        for _, args in ipairs(ranges) do
          local argv = { workflow, "--incremental", "--out-dir", out, "-q" }
          for _, a in ipairs(subjects(tenant)) do argv[#argv + 1] = a end
          for _, a in ipairs(args) do argv[#argv + 1] = a end
          local code, _, err = host.run(argv, { env = e })
          assert.equal(0, code, err)
        end
        return insights_series(out, workflow)
      end
      local names, whole = run_series(dir .. "/whole", { { "--from", iso(from), "--to", iso(to - 1) } })
      assert.equal(1, #names)
      local parts
      names, parts = run_series(dir .. "/parts", { { "--from", iso(from), "--to", iso(split - 1) }, { "--to", iso(to - 1) } })
      assert.equal(2, #names)
      local n = 0
      for l in whole:gmatch("[^\n]+") do
        local ev = cjson.decode(l)
        assert.equal("insights", ev.vendor)
        assert.is_true(ev.time >= iso(from) and ev.time < iso(to), ev.time)
        assert.is_table(ev.raw)
        n = n + 1
      end
      assert.is_true(n > 0, "the window holds events")
      assert.equal(whole, parts)
      -- A single run still writes the vendor's reports into --out.
      local argv = { workflow, "--from", iso(from), "--to", iso(split - 1), "--out", dir .. "/single", "-q" }
      for _, a in ipairs(subjects(tenant)) do argv[#argv + 1] = a end
      local code, _, err = host.run(argv, { env = e })
      assert.equal(0, code, err)
      assert.is_true(#ls(dir .. "/single", "%.zip$") > 0)
      -- The series' flags are refused where they do not belong.
      for _, bad in ipairs { { "--incremental", "--out", dir .. "/x" }, { "--format", "csv" },
                             { "--out-dir", dir .. "/y" } } do
        argv = { workflow, "--from", iso(from) }
        for _, a in ipairs(subjects(tenant)) do argv[#argv + 1] = a end
        for _, a in ipairs(bad) do argv[#argv + 1] = a end
        code, _, err = host.run(argv, { env = e })
        assert.equal(2, code, err)
      end
      sb:control("POST", "/config", { activityHistory = "per-request" })
    end)
  end

  it("refuses --out with --incremental, --out-dir without it, and another series' settings", function()
    local code, _, err = host.run({ "exavault-sessions", "--incremental", "--out", dir .. "/x.jsonl" }, { env = env() })
    assert.equal(2, code)
    assert.matches("%-%-incremental", err)
    code, _, err = host.run({ "exavault-sessions", "--out-dir", dir }, { env = env() })
    assert.equal(2, code)
    assert.matches("%-%-out%-dir is for %-%-incremental", err)
    local out = dir .. "/series"
    local c
    c, err = run(out, "--from", FIRST, "--to", iso(B), "--user", "jdoe")
    assert.equal(0, c, err)
    c, err = run(out, "--to", iso(B + 10), "--user", "asmith")
    assert.equal(2, c)
    assert.matches("%-%-user", err)
  end)
end)
