-- The DealCloud client against the sandbox's site: the documented request
-- built from its sample, every filter, the three tables both ways, ranges
-- walked in windows of at most 90 days with rows exactly on a window's
-- edge coming once, paging until totalRecords (a capped page size too),
-- token renewal mid-run, a 401 renewed once, 429 with Retry-After, the
-- API's 400 message, and secrets kept out of errors.
local sandbox = require("tests.helper.sandbox")
local auditrun = require("auditrun")
local auth = require("auditrun.auth")
local cjson = require("cjson")
local dealcloud = require("auditrun.dealcloud")
local http = sandbox.http()
local time = require("auditrun.time")

local NO_ENV = { getenv = function() end }
local DAY = 86400

describe("dealcloud", function()
  local sb = sandbox.for_describe()
  local t

  local function control(method, path, body) return sb:activity_control(method, path, body) end
  local function requests(match)
    return control("GET", "/requests?match=" .. http.escape(match or "/dealcloud/"))
  end
  local function fault(f) control("POST", "/faults", f) end

  local function settings(extra)
    local s = { dealcloud_url = sb.url .. "/dealcloud", dealcloud_client_id = t.client_id,
                dealcloud_client_secret = t.client_secret, ca_file = sb.ca_file }
    for k, v in pairs(extra or {}) do s[k] = v or nil end
    return s
  end
  local function connect(extra) return auditrun.try(dealcloud.connect(settings(extra), NO_ENV)) end

  local function collect(iter)
    local out = {}
    for row in iter do out[#out + 1] = row end
    return out
  end

  setup(function() t = control("GET", "/tenant").dealcloud end)
  before_each(function()
    auth.reset()
    control("POST", "/reset")
    t = control("GET", "/tenant").dealcloud
  end)

  describe("catalogue", function()
    it("builds the documented sample request byte for byte", function()
      local req = assert(dealcloud.catalogue:build("user_activity", {
        userIds = { 1 }, dateFrom = "2022-01-05T19:54:08.704Z", dateTo = "2022-05-05T19:54:08.704Z",
        activity = 8, exportDataType = 0, source = 1 }))
      assert.equal("POST", req.method)
      assert.equal("/api/rest/v1/management/user/activity", req.path)
      assert.same(cjson.decode([[{ "userIds": [1], "dateFrom": "2022-01-05T19:54:08.704Z",
        "dateTo": "2022-05-05T19:54:08.704Z", "activity": 8, "exportDataType": 0, "source": 1 }]]),
        cjson.decode(cjson.encode(req.body)))
      -- Friendly spellings and names build the same request.
      local same = assert(dealcloud.catalogue:build("user_activity", {
        users = 1, from = "2022-01-05T19:54:08.704Z", to = "2022-05-05T19:54:08.704Z",
        activity = "export data", export_type = "Export Data", source = "web ui" }))
      assert.same(req, same)
    end)

    it("checks parameters before anything is sent", function()
      local function refused(params, pattern)
        local req, err = dealcloud.catalogue:build("user_activity", params)
        assert.is_nil(req)
        assert.equal("invalid", err.kind)
        assert.matches(pattern, err.message)
      end
      refused({ activity = "dancing" }, "activity' must be one of 1 %(Login Successful%)")
      refused({ userIds = { "x" } }, "value 1 must be an integer")
      refused({ exportDataType = 1 }, "needs 'activity' 8")
      refused({ dateFrom = "2022-02-01T00:00:00Z", dateTo = "2022-01-01T00:00:00Z" }, "must not be later")
      refused({ colour = "red" }, "unknown parameter 'colour'")
    end)

    it("maps the three tables both ways, sample spellings included", function()
      assert.equal(4, dealcloud.id("activity", "SessionExpired"))
      assert.equal(4, dealcloud.id("activity", "session expired"))
      assert.equal("Session Expired", dealcloud.name("activity", 4))
      assert.equal(5, dealcloud.id("activity", "Login Failed (Locked Out)"))
      assert.equal(9, dealcloud.id("activity", "user proxy / switch"))
      assert.equal(1, dealcloud.id("source", "Web"))
      assert.equal("Web UI", dealcloud.name("source", 1))
      assert.equal(9, dealcloud.id("source", "Intapp Mobile 2.0"))
      assert.equal(3, dealcloud.id("export_data", "download document"))
      assert.equal("Template Report", dealcloud.name("export_data", 4))
      for id = 1, 11 do assert.equal(id, dealcloud.id("activity", dealcloud.name("activity", id))) end
      for id = 1, 11 do assert.equal(id, dealcloud.id("source", dealcloud.name("source", id))) end
      for id = 0, 4 do assert.equal(id, dealcloud.id("export_data", dealcloud.name("export_data", id))) end
      assert.is_nil(dealcloud.id("activity", "nope"))
      assert.equal("10.255.241.240", dealcloud.dotted(184545776))
    end)

    it("splits a range into windows of one to 90 whole days that meet exactly", function()
      local from = time.parse("2025-01-01T10:30:00Z")
      local to = time.parse("2025-12-31T06:00:00Z")
      local ws = dealcloud.windows(from, to)
      assert.equal(5, #ws)
      assert.equal(from, ws[1].from)
      assert.equal(to, ws[#ws].to)
      for i, w in ipairs(ws) do
        assert.equal(0, w.send_from % DAY)
        assert.equal(0, w.send_to % DAY)
        assert.is_true(w.send_to - w.send_from >= DAY and w.send_to - w.send_from <= 90 * DAY)
        assert.is_true(w.send_from <= w.from and w.to <= w.send_to)
        if i > 1 then assert.equal(ws[i - 1].to, w.from) end
      end
      -- A range shorter than a day is still asked for as one whole day.
      local short = dealcloud.windows(from, from + 600)
      assert.equal(1, #short)
      assert.equal(DAY, short[1].send_to - short[1].send_from)
    end)
  end)

  describe("against the site", function()
    it("signs in with client credentials and sends every filter", function()
      local c = connect()
      local rows = collect(c:user_activity { from = t.first, to = time.iso(time.parse(t.first) + 30 * DAY),
                                             users = { 1, 2 }, activity = "export", export_type = "download document",
                                             source = "web" })
      for _, row in ipairs(rows) do
        assert.is_true(row.userId == 1 or row.userId == 2)
        assert.equal(8, row.activityTypeId)
        assert.equal(3, row.exportDataType)
        assert.equal(1, row.sourceTypeId)
      end
      local sent = requests("/management/user/activity")
      assert.equal(1, #sent)
      local body = cjson.decode(sent[1].body)
      assert.same({ 1, 2 }, body.userIds)
      assert.equal(8, body.activity)
      assert.equal(3, body.exportDataType)
      assert.equal(1, body.source)
      assert.matches("T00:00:00Z$", body.dateFrom)
      assert.matches("pageNumber=1", sent[1].url)
      assert.matches("pageSize=1000", sent[1].url)
      local token = requests("/oauth/token")[1]
      assert.matches("grant_type=client_credentials", token.body)
      assert.matches("scope=user_management", token.body)
    end)

    it("walks a year in windows, rows on every window edge exactly once, in order", function()
      local c = connect()
      local from = time.parse(t.start) + 10 * DAY          -- a midnight with a row on it
      local to = from + 365 * DAY
      local want = control("GET", ("/dealcloud/rows?from=%s&to=%s"):format(time.iso(from), time.iso(to)))
      local rows = collect(c:user_activity { from = from, to = to })
      assert.equal(want.count, #rows)
      local seen, last = {}, -math.huge
      for i, row in ipairs(rows) do
        assert.is_nil(seen[row.sessionId], "a row came twice: " .. row.eventDate)
        seen[row.sessionId] = true
        assert.equal(want.sessions[i], row.sessionId)
        local at = time.parse(row.eventDate)
        assert.is_true(at >= last)
        last = at
        if row.ipAddress then assert.equal(dealcloud.dotted(row.ipAddress), row.ip) end
      end
      -- Five windows; the sandbox takes the end date whole, so each window
      -- after the first is asked from the day its predecessor's rows ended.
      local bodies = {}
      for _, r in ipairs(requests("/management/user/activity")) do
        local b = cjson.decode(r.body)
        if r.url:match("pageNumber=1&") or r.url:match("pageNumber=1$") then bodies[#bodies + 1] = b end
      end
      assert.equal(5, #bodies)
      for i = 2, #bodies do assert.equal(bodies[i - 1].dateTo, bodies[i].dateFrom) end
      assert.is_true(want.midnight >= 365)
    end)

    it("pages until totalRecords, also when the site caps the page size", function()
      control("POST", "/config", { dcPageCap = 100 })
      local c = connect()
      local from = time.parse(t.start)
      local to = from + 60 * DAY
      local want = control("GET", ("/dealcloud/rows?from=%s&to=%s"):format(time.iso(from), time.iso(to)))
      local rows = collect(c:user_activity { from = from, to = to })
      assert.equal(want.count, #rows)
      local pages = requests("/management/user/activity")
      -- The whole last day is asked for too (the end date counts whole).
      assert.is_true(#pages >= math.ceil(want.count / 100) and #pages <= math.ceil(want.count / 100) + 1)
      for i, r in ipairs(pages) do assert.matches("pageNumber=" .. i .. "&", r.url .. "&") end
      -- An empty range is one request and no rows.
      control("DELETE", "/requests")
      local future = time.parse(t.last) + 10 * DAY
      assert.same({}, collect(c:user_activity { from = future, to = future + DAY }))
      assert.equal(1, #requests("/management/user/activity"))
    end)

    it("renews its token ahead of expiry mid-run, by one task", function()
      control("POST", "/config", { tokenTtl = 2 })
      local c = connect()
      -- Slow pages: the walk outlives the first token.
      fault { match = "POST /dealcloud/api/rest/v1/management/user/activity", delay_ms = 400, times = 8 }
      local from = time.parse(t.start)
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = auditrun.spawn(function()
          return #collect(c:user_activity { from = from + (i - 1) * 20 * DAY, to = from + i * 20 * DAY, page_size = 40 })
        end)
      end
      for _, task in ipairs(tasks) do assert.is_true((task:join())) end
      local stats = control("GET", "/stats")
      assert.is_true(stats.dc_tokens >= 2, "no renewal: " .. stats.dc_tokens)
      for _, r in ipairs(requests("/management/user/activity")) do assert.equal(200, r.status) end
    end)

    it("renews once on a 401, and gives up after the second", function()
      local c = connect()
      fault { match = "POST /dealcloud/api/rest/v1/management/user/activity", token_revoked = true }
      local from = time.parse(t.start)
      assert.is_true(#collect(c:user_activity { from = from, to = from + DAY }) > 0)
      assert.equal(2, control("GET", "/stats").dc_tokens)
      fault { match = "POST /dealcloud/api/rest/v1/management/user/activity", token_revoked = true, times = 2 }
      local ok, err = pcall(collect, c:user_activity { from = from, to = from + DAY })
      assert.is_false(ok)
      assert.equal(401, err.status)
    end)

    it("waits out a 429 for as long as Retry-After says", function()
      local c = connect()
      fault { match = "POST /dealcloud/api/rest/v1/management/user/activity", status = 429, retry_after = "1" }
      local from = time.parse(t.start)
      local started = auditrun.now()
      assert.is_true(#collect(c:user_activity { from = from, to = from + DAY }) > 0)
      assert.is_true(auditrun.now() - started >= 0.9)
      local statuses = {}
      for _, r in ipairs(requests("/management/user/activity")) do statuses[#statuses + 1] = r.status end
      assert.same({ 429, 200 }, statuses)
    end)

    it("surfaces the API's 400 message as it is", function()
      local c = connect()
      -- The document's own sample asks for 120 days.
      local body, err = c:call("user_activity", { dateFrom = "2022-01-05T19:54:08.704Z",
                                                   dateTo = "2022-05-05T19:54:08.704Z" })
      assert.is_nil(body)
      assert.equal(400, err.status)
      assert.equal("The date range cannot be longer than 90 days.", err.api_message)
      assert.equal("DealCloud: The date range cannot be longer than 90 days. (HTTP 400)", err.message)
    end)

    it("keeps the client secret out of every error, and names missing settings", function()
      local c = connect { dealcloud_client_secret = "wrong-secret-value-42" }
      local ok, err = pcall(collect, c:user_activity { from = t.first, to = time.iso(time.parse(t.first) + DAY) })
      assert.is_false(ok)
      assert.equal("auth", err.kind)
      assert.is_nil(tostring(err):find("wrong%-secret%-value%-42"))
      assert.is_nil(cjson.encode(err.message):find("wrong%-secret%-value%-42"))
      local none, cerr = dealcloud.connect({ dealcloud_url = sb.url .. "/dealcloud" }, NO_ENV)
      assert.is_nil(none)
      assert.equal("DealCloud is not configured: set AUDITRUN_DEALCLOUD_CLIENT_ID, "
        .. "AUDITRUN_DEALCLOUD_CLIENT_SECRET (or _FILE)", cerr.message)
    end)
  end)
end)
