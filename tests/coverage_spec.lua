-- The coverage report beside every records file (<out>.coverage.json), run
-- by the host against the sandbox: a DealCloud range walked end to end in
-- its 90-day windows, the file's SHA-256 and the rows of each window; a
-- window the API refused part way (a gap from its last event, the windows
-- after it never walked), and the rerun that finishes the walk and the
-- report; an ExaVault log refused from its first page; the timeline's
-- vendors and an Insights report that cannot be read (a gap named so).
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local auditrun = require("auditrun")
local cjson = require("cjson")
local time = require("auditrun.time")

local DAY = 86400

-- A time as the report gives it.
local function iso(t) return time.iso(t, 3) end

local lines = util.file_lines

local function report_of(out)
  local text = util.read(out .. ".coverage.json")
  if not text then error("no coverage report beside " .. out) end
  return cjson.decode(text)
end

-- The sum of a field over a list.
local function sum(list, field)
  local n = 0
  for _, x in ipairs(list) do n = n + x[field] end
  return n
end

describe("the coverage report", function()
  local sb = sandbox.for_describe()
  local t, dir

  local function control(method, path, body) return sb:activity_control(method, path, body) end

  local function env(insights) return sb:activity_env(t, insights and sb:secret_client_env()) end

  before_each(function()
    t = sb:reset_activity()
    control("DELETE", "/faults")
    dir = util.tempdir()
  end)
  after_each(function() util.remove(dir) end)

  it("say a DealCloud range was walked end to end, window by window, with the file's SHA-256", function()
    local from = time.parse(t.dealcloud.start)
    local to = from + 200 * DAY
    local out = dir .. "/dc.jsonl"
    local code, _, err = host.run({ "dealcloud-activity", "--from", iso(from):sub(1, 19), "--to",
                                    iso(to - 1):sub(1, 19), "--out", out, "--log-format", "json" },
                                  { env = env() })
    assert.equal(0, code, err)
    local rows = lines(out)
    local r = report_of(out)
    assert.equal("auditrun-coverage/1", r.format)
    assert.equal("dealcloud-activity", r.workflow)
    assert.equal("complete", r.status)
    assert.is_true(r.complete)
    assert.same({ from = iso(from), to = iso(to) }, r.range)
    assert.same({}, r.gaps)
    assert.equal(1, #r.files)
    assert.same({ file = "dc.jsonl", rows = #rows, complete = true, sha256 = auditrun.sha256_file(out),
                  bytes = #util.read(out) }, r.files[1])
    assert.equal(1, #r.sources)
    local s = r.sources[1]
    assert.same({ "dealcloud", "user_activity" }, { s.vendor, s.source })
    -- Three windows of at most 90 days, end to end over the range.
    assert.equal(3, #s.windows)
    assert.equal(iso(from), s.windows[1].from)
    for i, w in ipairs(s.windows) do
      assert.equal("walked", w.status)
      if i > 1 then assert.equal(s.windows[i - 1].to, w.from) end
      assert.is_true(w.rows_received >= w.rows_written and w.pages >= 1)
    end
    assert.equal(iso(to), s.windows[3].to)
    assert.equal(#rows, s.rows_written)
    assert.equal(#rows, sum(s.windows, "rows_written"))
    assert.equal(iso(time.read(cjson.decode(rows[1]).eventDate), 3), s.first_event)
    assert.equal(iso(time.read(cjson.decode(rows[#rows]).eventDate), 3), s.last_event)
    -- The summary has a section naming it.
    local summary = cjson.decode(err:match("[^\n]*\"summary\"[^\n]*"))
    assert.same({ file = out .. ".coverage.json", complete = true, gaps = 0 }, summary.coverage)
  end)

  it("name the gap a refused page leaves and the windows never walked, then the rerun covers them", function()
    control("POST", "/config", { dcPerDay = 30, dcPageCap = 200 })
    t = control("GET", "/tenant")
    local from = time.parse(t.dealcloud.start)
    local to = from + 200 * DAY
    local out = dir .. "/dc.jsonl"
    local args = { "dealcloud-activity", "--from", iso(from):sub(1, 19), "--to", iso(to - 1):sub(1, 19),
                   "--out", out, "-q" }
    -- The first window's third page is refused: pages 1 and 2 are written.
    control("POST", "/faults", { match = "POST /dealcloud/api/rest/v1/management/user/activity?pageNumber=3",
                                 status = 400, times = 1 })
    local code, _, err = host.run(args, { env = env() })
    assert.equal(1, code, err)
    local rows = lines(out)
    assert.equal(400, #rows)
    local r = report_of(out)
    assert.equal("failed", r.status)
    assert.is_false(r.complete)
    assert.matches("HTTP 400", r.error)
    assert.is_false(r.files[1].complete)
    assert.equal(auditrun.sha256_file(out), r.files[1].sha256)
    local wins = r.sources[1].windows
    assert.same({ "stopped", "not_walked", "not_walked" }, { wins[1].status, wins[2].status, wins[3].status })
    assert.equal(2, wins[1].pages)
    assert.equal(400, wins[1].rows_written)
    assert.matches("HTTP 400", wins[1].reason)
    -- The gaps: the first window from its last event written, the two others whole.
    local last = iso(time.read(cjson.decode(rows[#rows]).eventDate), 3)
    assert.equal(last, wins[1].last_event)
    assert.equal(3, #r.gaps)
    assert.same({ last, wins[1].to }, { r.gaps[1].from, r.gaps[1].to })
    assert.matches("HTTP 400", r.gaps[1].reason)
    assert.same({ wins[2].from, wins[2].to }, { r.gaps[2].from, r.gaps[2].to })
    assert.matches("^not walked", r.gaps[2].reason)
    assert.same({ wins[3].from, iso(to) }, { r.gaps[3].from, r.gaps[3].to })

    -- The rerun goes on from page 3 and its report counts every row once.
    code, _, err = host.run(args, { env = env() })
    assert.equal(0, code, err)
    rows = lines(out)
    local want = control("GET", ("/dealcloud/rows?from=%s&to=%s"):format(iso(from), iso(to)))
    assert.equal(want.count, #rows)
    r = report_of(out)
    assert.is_true(r.complete)
    assert.same({}, r.gaps)
    assert.equal(#rows, r.sources[1].rows_written)
    assert.equal(auditrun.sha256_file(out), r.files[1].sha256)
    for _, w in ipairs(r.sources[1].windows) do assert.equal("walked", w.status) end
    -- Written again from the file's record when the file is complete (the report lost, or a kill before it).
    os.remove(out .. ".coverage.json")
    code, _, err = host.run(args, { env = env() })
    assert.equal(0, code, err)
    assert.same(r.sources, report_of(out).sources)
    assert.is_true(report_of(out).complete)
  end)

  it("say an ExaVault log the API refused is not covered, from the start of the range", function()
    local from = time.parse(t.exavault.first)
    local out = dir .. "/ev.jsonl"
    control("POST", "/faults", { match = "GET /exavault/api/v2/activity/session", status = 403, times = 1 })
    local code, _, err = host.run({ "exavault-sessions", "--from", iso(from):sub(1, 10), "--to",
                                    iso(from + 30 * DAY):sub(1, 10), "--out", out, "-q" }, { env = env() })
    assert.equal(1, code, err)
    local r = report_of(out)
    assert.is_false(r.complete)
    assert.equal("failed", r.status)
    assert.equal(1, #r.gaps)
    assert.same({ "exavault", "session_logs", iso(time.day(from)) },
      { r.gaps[1].vendor, r.gaps[1].source, r.gaps[1].from })
    assert.matches("HTTP 403", r.gaps[1].reason)
    assert.equal(0, r.files[1].rows)
  end)

  it("read an ExaVault log on past a page that ended early, and say so", function()
    -- The third page of 500 ends at row 1200: a walk that stopped there left 1,800 rows out.
    control("POST", "/config", { evShortAt = 1200 })
    local out = dir .. "/ev.jsonl"
    local code, _, err = host.run({ "exavault-sessions", "--out", out, "-q" }, { env = env() })
    assert.equal(0, code, err)
    local rows = lines(out)
    assert.equal(t.exavault.sessions, #rows)
    for i, l in ipairs(rows) do assert.equal(tostring(100000 + i - 1), cjson.decode(l).id) end
    local r = report_of(out)
    assert.is_true(r.complete)
    local w = r.sources[1].windows[1]
    assert.equal(t.exavault.sessions, w.rows_written)
    assert.same({ "the page at offset 1000 held 200 rows, fewer than the 500 of the pages before, and rows came "
      .. "after it: the walk read on" }, w.notes)
  end)

  it("cover each vendor of the timeline, and name an Insights report that cannot be read", function()
    local tenant = sb:control("GET", "/tenant")
    sb:control("POST", "/config", { jobSeconds = 0.05, activityFormat = "mix" })
    local users = {}
    for i = 1, 5 do users[i] = tenant.users[i].loginName end
    util.write(dir .. "/users.txt", table.concat(users, "\n") .. "\n")
    local from = math.floor(time.parse(t.dealcloud.last)) - 60 * DAY
    local out = dir .. "/timeline.jsonl"
    local code, _, err = host.run({ "activity-timeline", "--from", iso(from):sub(1, 19), "--to",
                                    iso(from + 30 * DAY - 1):sub(1, 19), "--insights-users", dir .. "/users.txt",
                                    "--out", out, "-q" }, { env = env(true) })
    sb:control("POST", "/config", { activityFormat = "xlsx" })
    assert.equal(3, code, err)
    local r = report_of(out)
    assert.equal("incomplete", r.status)
    assert.is_false(r.complete)
    local by = {}
    for _, s in ipairs(r.sources) do by[s.vendor .. "/" .. s.source .. (s.subject and ("/" .. s.subject) or "")] = s end
    assert.is_truthy(by["dealcloud/user_activity"] and by["exavault/session_logs"] and by["exavault/webhook_logs"])
    local written, unreadable = 0, 0
    for _, s in pairs(by) do
      written = written + s.rows_written
      for _, w in ipairs(s.windows) do
        if w.status == "stopped" then
          unreadable = unreadable + 1
          assert.equal("insights", s.vendor)
          assert.matches("^the report could not be read", w.reason)
        else
          assert.equal("walked", w.status)
        end
      end
    end
    assert.equal(#lines(out), written)
    assert.is_true(unreadable >= 1)
    assert.equal(unreadable, #r.gaps)
    for _, g in ipairs(r.gaps) do
      assert.same({ "insights", iso(from), iso(from + 30 * DAY) }, { g.vendor, g.from, g.to })
    end
    assert.matches("unreadable " .. unreadable, err)
  end)

  it("say which users' activity an export run holds, with each report's SHA-256, and which it lacks and why", function()
    local tenant = sb:control("GET", "/tenant")
    sb:control("POST", "/reset")
    sb:control("POST", "/config", { jobSeconds = 0.05 })
    -- The first export submitted ends failed, and is not tried again.
    sb:control("POST", "/faults", { { match = "GET /insights/users/", job_fails = true, times = 1 } })
    local users = {}
    for i = 1, 3 do users[i] = tenant.users[i].loginName end
    util.write(dir .. "/users.txt", table.concat(users, "\n") .. "\n")
    local out = dir .. "/acts"
    local e = sb:host_env(dir)
    local code, _, err = host.run({ "user-activities", "--users", dir .. "/users.txt", "--from", "2025-01-01",
                                    "--to", "2025-06-30", "--max-attempts", "1", "--out", out }, { env = e })
    assert.equal(3, code, err)
    assert.matches("coverage: " .. out:gsub("%p", "%%%0") .. "/coverage%.json %(not complete: 1 gap%(s%)%)", err)
    local r = cjson.decode(util.read(out .. "/coverage.json"))
    assert.equal("incomplete", r.status)
    assert.is_false(r.complete)
    assert.same({ from = "2025-01-01T00:00:00.000Z", to = "2025-07-01T00:00:00.000Z" }, r.range)
    assert.equal(3, #r.sources)
    local walked, shas = 0, {}
    for _, f in ipairs(r.files) do shas[f.file] = f.sha256 end
    for _, s in ipairs(r.sources) do
      assert.same({ "insights", "user_activities_export" }, { s.vendor, s.source })
      local w = s.windows[1]
      if w.status == "walked" then
        walked = walked + 1
        assert.equal(auditrun.sha256_file(out .. "/" .. w.report.file), w.report.sha256)
        assert.equal(w.report.sha256, shas[w.report.file])
      else
        assert.equal("stopped", w.status)
        assert.same({ s.subject, "2025-01-01T00:00:00.000Z", "2025-07-01T00:00:00.000Z" },
          { r.gaps[1].subject, r.gaps[1].from, r.gaps[1].to })
        assert.is_string(r.gaps[1].reason)
      end
    end
    assert.equal(2, walked)
    assert.equal(1, #r.gaps)
    -- summary.json has the section too.
    local summary = cjson.decode(util.read(out .. "/summary.json"))
    assert.same({ file = "coverage.json", complete = false, gaps = 1 }, summary.coverage)
  end)

  it("go with each window of an incremental series, naming its file, and count the rows read again", function()
    local today = os.time() // DAY * DAY
    local out = dir .. "/series"
    local function run(to)
      return host.run({ "exavault-sessions", "--incremental", "--out-dir", out, "--from",
                        iso(today - 401 * DAY):sub(1, 19), "--to", iso(to):sub(1, 19), "-q" }, { env = env() })
    end
    local code, _, err = run(today - 200 * DAY - 1)
    assert.equal(0, code, err)
    code, _, err = run(today - 100 * DAY - 1)
    assert.equal(0, code, err)
    local names = {}
    for name in util.sh("ls -A " .. out):gmatch("[^\n]+") do names[#names + 1] = name end
    table.sort(names)
    local files = {}
    for _, name in ipairs(names) do
      if name:match("^exavault%-sessions_.*%.jsonl$") then files[#files + 1] = name end
      assert.is_nil(name:find(".part", 1, true), "left behind: " .. name)
    end
    assert.equal(2, #files)
    for _, name in ipairs(files) do
      local r = report_of(out .. "/" .. name)
      assert.is_true(r.complete)
      assert.same({ name, #lines(out .. "/" .. name), auditrun.sha256_file(out .. "/" .. name) },
        { r.files[1].file, r.files[1].rows, r.files[1].sha256 })
      assert.equal(r.files[1].rows, r.sources[1].rows_written - (r.rows_dropped or 0))
    end
  end)
end)
