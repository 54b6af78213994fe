-- The activity workflows run by the host against the sandbox: DealCloud
-- activity and ExaVault session and webhook logs to JSON Lines and CSV,
-- resumed after kill -9 from the last page written with each row once, the
-- activity timeline's order and schema, and what an unconfigured vendor
-- does (left out of the timeline; its own workflow names what is missing).
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local activity = require("auditrun.activity")
local auditrun = require("auditrun")
local cjson = require("cjson")
local dealcloud = require("auditrun.dealcloud")
local http = sandbox.http()
local time = require("auditrun.time")

local DAY = 86400

local lines = util.file_lines

-- Asserts that a JSON line's keys come in the given order (those it has;
-- none of its text values holds a quoted key and a colon).
local function assert_key_order(line, keys)
  local at = 0
  for _, k in ipairs(keys) do
    local i = line:find('"' .. k .. '":', 1, true)
    if i then
      assert.is_true(i > at, ("%s out of order in %s"):format(k, line))
      at = i
    end
  end
end

describe("activity workflows", function()
  local sb = sandbox.for_describe()
  local t, dir

  local function control(method, path, body) return sb:activity_control(method, path, body) end
  local function requests(match) return control("GET", "/requests?match=" .. http.escape(match)) end

  -- The environment of a user with DealCloud and ExaVault set up (and no
  -- config file); further tables are set over it.
  local function env(...) return sb:activity_env(t, ...) end
  local NO_DEALCLOUD = { AUDITRUN_DEALCLOUD_URL = "", AUDITRUN_DEALCLOUD_CLIENT_ID = "", AUDITRUN_DEALCLOUD_CLIENT_SECRET = "" }
  local NO_EXAVAULT = { AUDITRUN_EXAVAULT_URL = "", AUDITRUN_EXAVAULT_API_KEY = "", AUDITRUN_EXAVAULT_ACCESS_TOKEN = "" }

  before_each(function()
    t, dir = sb:reset_activity(), util.tempdir()
  end)
  after_each(function() util.remove(dir) end)

  it("write a year of DealCloud activity as JSON Lines, and as CSV with a header", function()
    local from = time.parse(t.dealcloud.start)
    local want = control("GET", ("/dealcloud/rows?from=%s&to=%s"):format(time.iso(from), time.iso(from + 365 * DAY)))
    local out = dir .. "/dc.jsonl"
    local code, _, err = host.run({ "dealcloud-activity", "--from", os.date("!%Y-%m-%d", from),
                                    "--to", os.date("!%Y-%m-%d", from + 364 * DAY), "--out", out, "-q" }, { env = env() })
    assert.equal(0, code, err)
    local rows = lines(out)
    assert.equal(want.count, #rows)
    for i, l in ipairs(rows) do
      assert.equal(want.sessions[i], cjson.decode(l).sessionId)
      -- Keys in the documented column order, so two runs diff cleanly.
      assert.matches('^{"eventDate":', l)
      assert_key_order(l, dealcloud.COLUMNS)
    end
    local csv = dir .. "/dc.csv"
    code, _, err = host.run({ "dealcloud-activity", "--from", os.date("!%Y-%m-%d", from), "--to",
                              os.date("!%Y-%m-%d", from + 29 * DAY), "--activity", "login failed", "--out", csv,
                              "--format", "csv", "-q" }, { env = env() })
    assert.equal(0, code, err)
    local got = lines(csv)
    -- A clean finish leaves no lock file behind.
    assert.same({}, util.locks(dir))
    assert.matches("^eventDate,userName,fullName,userId,activityTypeId,activityType,", got[1])
    assert.is_true(#got > 1)
    for i = 2, #got do assert.matches(",2,Login Failed,", got[i]) end
  end)

  it("continue DealCloud activity after kill -9 from the last page written, each row once", function()
    control("POST", "/config", { dcPerDay = 30, dcPageCap = 200 })
    t = control("GET", "/tenant")
    local from = time.parse(t.dealcloud.start)
    local to = from + 200 * DAY
    local want = control("GET", ("/dealcloud/rows?from=%s&to=%s"):format(time.iso(from), time.iso(to)))
    local out = dir .. "/dc.jsonl"
    local args = { "dealcloud-activity", "--from", time.iso(from):sub(1, 19), "--to", time.iso(to - 1):sub(1, 19),
                   "--out", out, "-q" }
    control("POST", "/faults", { match = "POST /dealcloud/api/rest/v1/management/user/activity", delay_ms = 150,
                                 times = 1000 })
    local run = host.start(args, { env = env() })
    for _ = 1, 600 do
      if #lines(out) > 1500 then break end
      auditrun.sleep(0.05)
    end
    run:signal("KILL")
    run:wait(20)
    local before = #lines(out)
    assert.is_true(before > 0 and before < want.count, "killed too late or too early: " .. before)
    -- The killed run's lock stays; the rerun takes it over and removes it.
    assert.same({ ".dc.jsonl.auditrun.lock" }, util.locks(dir))
    control("DELETE", "/faults")
    control("DELETE", "/requests")
    local code, _, err = host.run(args, { env = env() })
    assert.equal(0, code, err)
    assert.same({}, util.locks(dir))
    local rows = lines(out)
    assert.equal(want.count, #rows)
    for i, l in ipairs(rows) do assert.equal(want.sessions[i], cjson.decode(l).sessionId, "row " .. i) end
    -- The rerun asked for no page the first run had written.
    local first = requests("/management/user/activity")[1]
    local body = cjson.decode(first.body)
    assert.is_true(body.dateFrom ~= time.iso(from) or tonumber(first.url:match("pageNumber=(%d+)")) > 1,
      "the rerun started over: " .. first.url .. " " .. first.body)
  end)

  it("write ExaVault session and webhook logs, and continue them after kill -9", function()
    local out = dir .. "/sessions.jsonl"
    control("POST", "/faults", { match = "GET /exavault/api/v2/activity/session", delay_ms = 300, times = 1000 })
    local run = host.start({ "exavault-sessions", "--out", out, "-q" }, { env = env() })
    for _ = 1, 600 do
      if #lines(out) >= 1000 then break end
      auditrun.sleep(0.05)
    end
    run:signal("KILL")
    run:wait(20)
    assert.is_true(#lines(out) < t.exavault.sessions)
    control("DELETE", "/faults")
    control("DELETE", "/requests")
    local code, _, err = host.run({ "exavault-sessions", "--out", out, "-q" }, { env = env() })
    assert.equal(0, code, err)
    local rows, ids = lines(out), {}
    assert.equal(t.exavault.sessions, #rows)
    for _, l in ipairs(rows) do
      local r = cjson.decode(l)
      assert.is_nil(ids[r.id])
      ids[r.id] = true
      assert.is_string(r.operation)
    end
    assert.is_true(tonumber(requests("/activity/session")[1].url:match("offset=(%d+)")) > 0)

    local hooks = dir .. "/hooks.csv"
    code, _, err = host.run({ "exavault-webhooks", "--event", "resources.upload", "--out", hooks, "--format", "csv",
                              "-q" }, { env = env() })
    assert.equal(0, code, err)
    local got = lines(hooks)
    assert.matches("^id,created,username,event,statusCode,", got[1])
    assert.is_true(#got > 10)
    for i = 2, #got do assert.matches(",resources.upload,", got[i]) end
  end)

  -- Regression: a 301 from the ExaVault API to another port was followed
  -- with the ev-api-key and ev-access-token headers, and the other server's
  -- rows were taken, exit 0.
  it("refuse an ExaVault redirect to another origin, sending the key and token nowhere else", function()
    local other = sandbox.start()
    local ok, perr = pcall(function()
      -- The host trusts both sandboxes, so TLS is no reason to stop.
      local bundle = dir .. "/both-ca.pem"
      util.write(bundle, util.read(sb.ca_file) .. util.read(other.ca_file))
      control("POST", "/faults", { match = "GET /exavault/api/v2/activity/", redirect = other.url, times = 1000 })
      local e = env()
      e.AUDITRUN_CA_FILE = bundle
      local out = dir .. "/sessions.jsonl"
      local code, stdout, err = host.run({ "exavault-sessions", "--out", out, "-q" }, { env = e })
      assert.equal(1, code, err)
      assert.equal(("auditrun: redirect: HTTP 301 redirect from %s to %s, another origin: refusing to send "
        .. "the request's credentials there (GET %s/exavault/api/v2/activity/session)\n")
        :format(sb.url, other.url, sb.url), err)
      assert.equal("", stdout)
      assert.same({}, lines(out))
      assert.same({}, other:activity_control("GET", "/requests"))
      assert.equal(1, #requests("/exavault/"))
    end)
    other:stop()
    assert(ok, perr)
  end)

  -- Regression: pages that come back A, B, A, B ... were written for ever
  -- (ExaVault: 1,211,700 rows, 200 distinct, in 60 s), and DealCloud's were
  -- written until totalRecords, each row again and again, with exit 0.
  it("stop a log whose pages go round at the first page of rows already read, and resume it exactly", function()
    control("POST", "/config", { dcPerDay = 30, dcPageCap = 200, dcRepeatPages = 2 })
    t = control("GET", "/tenant")
    local from = time.parse(t.dealcloud.start)
    local to = from + 60 * DAY
    local want = control("GET", ("/dealcloud/rows?from=%s&to=%s"):format(time.iso(from), time.iso(to)))
    local out = dir .. "/dc.jsonl"
    local args = { "dealcloud-activity", "--from", time.iso(from):sub(1, 19), "--to", time.iso(to - 1):sub(1, 19),
                   "--out", out, "-q" }
    local code, _, err = host.run(args, { env = env() })
    assert.equal(1, code, err)
    assert.matches("auditrun: paging: DealCloud user_activity, window " .. time.iso(from):sub(1, 10):gsub("%-", "%%-")
      .. "T00:00:00Z to [%dT:Z-]+: page 3 repeats rows of page 1 %(the service sent rows already read%)", err)
    -- Exactly the two pages before it, once each, and a rerun against a
    -- mended service writes the rest.
    local rows = lines(out)
    assert.equal(400, #rows)
    control("POST", "/config", { dcRepeatPages = 0 })
    code, _, err = host.run(args, { env = env() })
    assert.equal(0, code, err)
    rows = lines(out)
    assert.equal(want.count, #rows)
    for i, l in ipairs(rows) do assert.equal(want.sessions[i], cjson.decode(l).sessionId, "row " .. i) end

    -- ExaVault, alternating (offset paging, full pages for ever), then
    -- shifting (each page starts 100 rows before the last one ended).
    for _, case in ipairs { { { evRepeatPages = 2 }, "page 3 %(offset 1000%) repeats rows of page 1 %(offset 0%)", 1000 },
                            { { evShiftRows = 100 }, "page 2 %(offset 500%) repeats rows of page 1 %(offset 0%)", 500 } } do
      control("POST", "/config", { evRepeatPages = 0, evShiftRows = 0 })
      control("POST", "/config", case[1])
      local ev = dir .. "/sessions-" .. case[3] .. ".jsonl"
      code, _, err = host.run({ "exavault-sessions", "--out", ev, "-q" }, { env = env() })
      assert.equal(1, code, err)
      assert.matches("auditrun: paging: ExaVault session_logs: " .. case[2], err)
      rows = lines(ev)
      assert.equal(case[3], #rows)
      for i, l in ipairs(rows) do assert.equal(tostring(100000 + i - 1), cjson.decode(l).id) end
    end
  end)

  -- Regression: a row with a lone surrogate escape (\ud800) failed its page
  -- as malformed JSON on every rerun, and rows dated "01/05/2022 10:00:00"
  -- were dropped without a word (1,172 of 1,200 written, exit 0).
  it("write every row of a log with odd rows: a lone surrogate replaced, other date formats read, "
    .. "unreadable times written once and counted", function()
    local today = os.time() // DAY * DAY
    control("POST", "/config", { dcStart = (today - 120 * DAY) * 1000, dcDays = 120, dcUsDates = 10,
                                 dcBadDates = 25, dcSurrogateRow = 5 })
    t = control("GET", "/tenant")
    local from = today - 120 * DAY
    local want = control("GET", ("/dealcloud/rows?from=%s&to=%s"):format(time.iso(from), time.iso(today)))
    local out = dir .. "/dc.jsonl"
    local code, _, err = host.run({ "dealcloud-activity", "--from", os.date("!%Y-%m-%d", from), "--to",
                                    os.date("!%Y-%m-%d", today - DAY), "--out", out, "-q" }, { env = env() })
    assert.equal(0, code, err)
    local unreadable = 0
    for i = 0, want.count - 1 do
      if i % 25 == 3 then unreadable = unreadable + 1 end
    end
    assert.matches(("; replaced_surrogates 1, unparsed_times %d; coverage: "):format(unreadable), err)
    -- Every row once (two windows, whose answers overlap on the day between them).
    local got, sessions, odd = {}, {}, { us = 0, bad = 0, fffd = 0 }
    for _, l in ipairs(lines(out)) do
      local row = cjson.decode(l)
      got[#got + 1] = row.sessionId
      if row.eventDate:find("/", 1, true) then odd.us = odd.us + 1 end
      if row.eventDate == "sometime" then odd.bad = odd.bad + 1 end
      if row.fullName:find("\u{FFFD}", 1, true) then odd.fffd = odd.fffd + 1 end
    end
    for i, id in ipairs(want.sessions) do sessions[i] = id end
    table.sort(got)
    table.sort(sessions)
    assert.same(sessions, got)
    assert.equal(unreadable, odd.bad)
    assert.equal(1, odd.fffd)
    assert.is_true(odd.us > 100, "rows in US date format: " .. odd.us)
  end)

  it("write a row with an unreadable time on the day two windows share once, also across kill -9", function()
    local today = os.time() // DAY * DAY
    -- Rows 3 and 630: row 630 is the first of day 90, in the answers of both windows.
    control("POST", "/config", { dcStart = (today - 120 * DAY) * 1000, dcDays = 120, dcBadDates = 627 })
    local from = today - 120 * DAY
    local want = control("GET", ("/dealcloud/rows?from=%s&to=%s"):format(time.iso(from), time.iso(today)))
    assert.equal(840, want.count)
    local out = dir .. "/dc.jsonl"
    local args = { "dealcloud-activity", "--from", os.date("!%Y-%m-%d", from), "--to",
                   os.date("!%Y-%m-%d", today - DAY), "--out", out, "-q" }
    -- The second window's first page waits: the kill lands between the windows.
    control("POST", "/faults", { match = "POST /dealcloud/api/rest/v1/management/user/activity", delay_ms = 1500,
                                 times = 1000 })
    local run = host.start(args, { env = env() })
    for _ = 1, 1200 do
      if #lines(out) >= 631 then break end
      auditrun.sleep(0.02)
    end
    run:signal("KILL")
    run:wait(20)
    assert.equal(631, #lines(out))
    control("DELETE", "/faults")
    local code, _, err = host.run(args, { env = env() })
    assert.equal(0, code, err)
    local got, sessions = {}, {}
    for _, l in ipairs(lines(out)) do got[#got + 1] = cjson.decode(l).sessionId end
    for i, id in ipairs(want.sessions) do sessions[i] = id end
    table.sort(got)
    table.sort(sessions)
    assert.equal(#sessions, #got)
    assert.same(sessions, got)
  end)

  it("merge every configured vendor into one time-ordered timeline in one schema", function()
    local from = time.parse(t.exavault.first) - DAY
    local to = from + 120 * DAY
    local out = dir .. "/timeline.jsonl"
    local args = { "activity-timeline", "--from", time.iso(from):sub(1, 19), "--to", time.iso(to - 1):sub(1, 19),
                   "--out", out, "-q" }
    local code, _, err = host.run(args, { env = env() })
    assert.equal(0, code, err)
    local last, vendors, n = "", {}, 0
    for _, l in ipairs(lines(out)) do
      local ev = cjson.decode(l)
      n = n + 1
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", ev.time)
      assert.matches('^{"time":"[^"]+","vendor":', l)
      assert_key_order(l:match('^(.-),"raw":{'), activity.FIELDS)
      assert.is_true(ev.time >= last, "out of order at line " .. n)
      last = ev.time
      local at = time.parse(ev.time)
      assert.is_true(at >= from and at < to)
      vendors[ev.vendor] = (vendors[ev.vendor] or 0) + 1
      assert.is_string(ev.user)
      assert.is_string(ev.action)
      assert.is_string(ev.verb)
      assert.is_table(ev.raw)
    end
    assert.is_true(vendors.dealcloud > 100 and vendors.exavault > 100)
    -- Webhook times carry +01:00 and land in UTC where they belong.
    local dc = control("GET", ("/dealcloud/rows?from=%s&to=%s"):format(time.iso(from), time.iso(to)))
    assert.equal(dc.count, vendors.dealcloud)

    -- ExaVault unconfigured: left out. DealCloud half configured: an error naming what is missing.
    local only = dir .. "/only-dc.jsonl"
    args[#args - 1] = only
    code, _, err = host.run(args, { env = env(NO_EXAVAULT) })
    assert.equal(0, code, err)
    assert.equal(vendors.dealcloud, #lines(only))
    code, _, err = host.run({ "dealcloud-activity", "--out", dir .. "/x.jsonl" },
      { env = env { AUDITRUN_DEALCLOUD_CLIENT_SECRET = "" } })
    assert.equal(1, code)
    assert.equal("auditrun: config: DealCloud is not configured: set AUDITRUN_DEALCLOUD_CLIENT_SECRET (or _FILE) in "
      .. "the environment, or dealcloud_client_secret in profile 'default' of /nonexistent/.config/auditrun/config.lua\n",
      err)
  end)

  it("put Insights user activity, read from each user's export, into the timeline", function()
    local tenant = auditrun.try(http.request_json { url = sb.url .. "/insights-control/tenant", ca_file = sb.ca_file })
    auditrun.try(http.request_json { method = "POST", url = sb.url .. "/insights-control/config",
                                     json = { jobSeconds = 0.05 }, ca_file = sb.ca_file })
    local users = dir .. "/users.txt"
    local f = assert(io.open(users, "w"))
    f:write(tenant.users[1].loginName, "\n", tenant.users[2].loginName, "\n")
    f:close()
    local e = env(NO_EXAVAULT, sb:secret_client_env())
    local from = time.parse(t.dealcloud.last) - 60 * DAY
    local out = dir .. "/timeline.jsonl"
    local args = { "activity-timeline", "--from", time.iso(from):sub(1, 19), "--to", time.iso(from + 30 * DAY - 1):sub(1, 19),
                   "--insights-users", users, "--out", out, "-q" }
    local code, _, err = host.run(args, { env = e })
    assert.equal(0, code, err)
    local last, counts, who = "", {}, {}
    for _, l in ipairs(lines(out)) do
      local ev = cjson.decode(l)
      assert.is_true(ev.time >= last)
      last = ev.time
      counts[ev.vendor] = (counts[ev.vendor] or 0) + 1
      if ev.vendor == "insights" then
        who[ev.user] = true
        assert.is_string(ev.action)
        assert.is_string(ev.raw["Time (UTC)"])
        assert.matches("^10%.", ev.ip)
      end
    end
    assert.is_true(counts.insights > 50 and counts.dealcloud > 50, cjson.encode(counts))
    assert.is_true(who[tenant.users[1].loginName] and who[tenant.users[2].loginName])
    -- A rerun of the finished file asks for nothing.
    local before = auditrun.try(http.request_json { url = sb.url .. "/insights-control/stats", ca_file = sb.ca_file })
    code, _, err = host.run(args, { env = e })
    assert.equal(0, code, err)
    local after = auditrun.try(http.request_json { url = sb.url .. "/insights-control/stats", ca_file = sb.ca_file })
    assert.equal(before.jobs_submitted, after.jobs_submitted)
    -- Another --to is another answer: refused before any export is submitted.
    local other = { table.unpack(args) }
    other[5] = time.iso(from + 20 * DAY - 1):sub(1, 19)
    code, _, err = host.run(other, { env = e })
    assert.equal(2, code, err)
    assert.matches("timeline%.jsonl was started with %-%-to [%d:T-]+; this run is with %-%-to [%d:T-]+", err)
    local refused = auditrun.try(http.request_json { url = sb.url .. "/insights-control/stats", ca_file = sb.ca_file })
    assert.equal(after.jobs_submitted, refused.jobs_submitted)
    -- --fresh sets the file and its Insights reports aside, and exports again.
    other[#other + 1] = "--fresh"
    code, _, err = host.run(other, { env = e })
    assert.equal(0, code, err)
    os.execute("ls -A " .. dir .. " > " .. dir .. "/names")
    local names = table.concat(lines(dir .. "/names"), " ")
    assert.matches("timeline%.jsonl%.old%-%d+T%d+Z", names)
    assert.matches("%.timeline%.jsonl%.insights%.old%-%d+T%d+Z", names)
    local fresh = auditrun.try(http.request_json { url = sb.url .. "/insights-control/stats", ca_file = sb.ca_file })
    assert.equal(after.jobs_submitted + 2, fresh.jobs_submitted)
  end)

  -- Insights alone: the timeline of the first `n` users of the tenant for 30
  -- days, written to `name` in dir -> code, stdout, stderr, its events.
  local function insights_timeline(name, n, extra)
    local tenant = sb:control("GET", "/tenant")
    sb:control("POST", "/config", { jobSeconds = 0.05 })
    local users = dir .. "/users.txt"
    local f = assert(io.open(users, "w"))
    for i = 1, n do f:write(tenant.users[i].loginName, "\n") end
    f:close()
    local e = env(NO_DEALCLOUD, NO_EXAVAULT, sb:secret_client_env())
    local from = time.parse(t.dealcloud.last) - 60 * DAY
    local args = { "activity-timeline", "--from", time.iso(from):sub(1, 19), "--to",
                   time.iso(from + 30 * DAY - 1):sub(1, 19), "--insights-users", users, "--out", dir .. "/" .. name }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    local code, out, err = host.run(args, { env = e })
    local evs = {}
    for _, l in ipairs(lines(dir .. "/" .. name)) do evs[#evs + 1] = cjson.decode(l) end
    return code, out, err, evs, tenant
  end

  describe("with Insights reports served as CSV", function()
    after_each(function() sb:control("POST", "/config", { activityFormat = "xlsx" }) end)

    it("read the same events from CSV members as from XLSX ones", function()
      local code, _, err, xlsx = insights_timeline("xlsx.jsonl", 2, { "-q" })
      assert.equal(0, code, err)
      assert.is_true(#xlsx > 50, "events: " .. #xlsx)
      sb:control("POST", "/config", { activityFormat = "csv" })
      local csv
      code, _, err, csv = insights_timeline("csv.jsonl", 2, { "-q" })
      assert.equal(0, code, err)
      assert.matches("unreadable 0", err)
      assert.equal(#xlsx, #csv)
      for i = 1, #xlsx do assert.same(xlsx[i], csv[i], "event " .. i) end
    end)

    it("name each report with no readable events sheet, count it and exit 3 (incomplete), on every rerun", function()
      -- mix: user 1 CSV members, 2 XLSX (each with a summary sheet first),
      -- 3 only a summary sheet, 4 a member that is not a workbook, 5 CSV.
      local code, _, err, want, tenant = insights_timeline("xlsx.jsonl", 5, { "-q" })
      assert.equal(0, code, err)
      sb:control("POST", "/config", { activityFormat = "mix" })
      local got
      code, _, err, got = insights_timeline("mix.jsonl", 5, { "--log-format", "json" })
      assert.equal(3, code, err)
      local summary, warned = nil, {}
      for l in err:gmatch("[^\n]+") do
        local ok, rec = pcall(cjson.decode, l)
        if ok and type(rec) == "table" and rec.event == "summary" then summary = rec end
        if ok and type(rec) == "table" and rec.event == "unreadable" then warned[#warned + 1] = rec.message end
      end
      assert.is_table(summary, err)
      assert.equal(2, summary.unreadable)
      assert.equal(2, #warned, err)
      table.sort(warned)
      local bad = { tenant.users[3].loginName, tenant.users[4].loginName }
      local joined = table.concat(warned, "\n")
      for _, u in ipairs(bad) do assert.truthy(joined:find(u, 1, true), joined) end
      assert.matches("%.zip", warned[1])
      assert.matches("auditrun: incomplete: 2 Insights report", err)
      -- Every event of the readable reports, none of the others.
      local expect = {}
      for _, ev in ipairs(want) do
        if ev.user ~= bad[1] and ev.user ~= bad[2] then expect[#expect + 1] = ev end
      end
      assert.is_true(#expect > 100, "events: " .. #expect)
      assert.equal(#expect, #got)
      for i = 1, #expect do assert.same(expect[i], got[i], "event " .. i) end
      -- A rerun reads the same reports (no job again) and fails the same way.
      local before = sb:control("GET", "/stats")
      code, _, err = insights_timeline("mix.jsonl", 5, { "-q" })
      assert.equal(3, code, err)
      assert.matches("unreadable 2", err)
      assert.matches("auditrun: incomplete: ", err)
      assert.equal(before.jobs_submitted, sb:control("GET", "/stats").jobs_submitted)
      assert.equal(#expect, #lines(dir .. "/mix.jsonl"))
    end)
  end)

  it("finish a timeline killed with -9 into the same events an uninterrupted run writes", function()
    local from = time.parse(t.exavault.first)
    local args = function(out)
      return { "activity-timeline", "--from", time.iso(from):sub(1, 19), "--to", time.iso(from + 200 * DAY):sub(1, 19),
               "--out", out, "-q" }
    end
    local whole = dir .. "/whole.jsonl"
    local code, _, err = host.run(args(whole), { env = env() })
    assert.equal(0, code, err)
    local out = dir .. "/killed.jsonl"
    control("POST", "/faults", { match = "GET /exavault/api/v2/activity/", delay_ms = 300, times = 1000 })
    control("POST", "/config", { evLimitCap = 100 })
    local run = host.start(args(out), { env = env() })
    for _ = 1, 600 do
      if #lines(out) >= 600 then break end
      auditrun.sleep(0.05)
    end
    run:signal("KILL")
    run:wait(20)
    local before = #lines(out)
    control("DELETE", "/faults")
    code, _, err = host.run(args(out), { env = env() })
    assert.equal(0, code, err)
    local a, b = lines(whole), lines(out)
    assert.is_true(before > 0 and before < #a, "killed at " .. before .. " of " .. #a)
    assert.equal(#a, #b)
    for i = 1, #a do assert.same(cjson.decode(a[i]), cjson.decode(b[i]), "line " .. i) end
  end)
end)
