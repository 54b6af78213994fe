-- The ExaVault client against the sandbox's account: requests built as the
-- document names them, the key and token headers, every filter and sort,
-- offset paging that ends on a short page, on a capped page size and on an
-- empty page (the total is always 0), the operation table both ways, the
-- API's 400 message, 429 with Retry-After, and secrets kept out of errors.
local sandbox = require("tests.helper.sandbox")
local auditrun = require("auditrun")
local exavault = require("auditrun.exavault")
local http = sandbox.http()
local time = require("auditrun.time")

local NO_ENV = { getenv = function() end }

describe("exavault", function()
  local sb = sandbox.for_describe()
  local t

  local function control(method, path, body) return sb:activity_control(method, path, body) end
  local function requests(match)
    return control("GET", "/requests?match=" .. http.escape(match or "/exavault/"))
  end
  local function fault(f) control("POST", "/faults", f) end

  local function connect(extra)
    local s = { exavault_url = sb.url .. "/exavault/api/v2", exavault_api_key = t.api_key,
                exavault_access_token = t.access_token, ca_file = sb.ca_file }
    for k, v in pairs(extra or {}) do s[k] = v end
    return auditrun.try(exavault.connect(s, NO_ENV))
  end

  local function collect(iter)
    local out = {}
    for item in iter do out[#out + 1] = item end
    return out
  end

  before_each(function()
    control("POST", "/reset")
    t = control("GET", "/tenant").exavault
  end)

  describe("catalogue", function()
    it("builds the document's example calls, by its names and the API's", function()
      local req = assert(exavault.catalogue:build("session_logs", {
        start_date = "2019-10-18T06:48:40Z", end_date = "2019-10-18T06:48:40Z", ip_address = "127.0.0.1",
        username = "jdoe", path = "/folder*", type = "EDIT_SHARE", offset = 100, limit = 10, sort = "-date" }))
      assert.equal("GET", req.method)
      assert.equal("/activity/session", req.path)
      assert.equal("startDate=2019-10-18T06%3A48%3A40Z&endDate=2019-10-18T06%3A48%3A40Z&ipAddress=127.0.0.1"
        .. "&username=jdoe&path=%2Ffolder%2A&type=EDIT_SHARE&offset=100&limit=10&sort=-date", req.query)
      req = assert(exavault.catalogue:build("webhook_logs", {
        start_date = "2013-10-20T19:20:30+01:00", end_date = "2013-10-20T19:20:30+01:00",
        endpoint_url = "endpoint_url_example", event = "resources.upload", status_code = 200,
        var_resource_path = "/folder*", username = "exampleuser", offset = 100, limit = 10, sort = "-date,event" }))
      assert.equal("/activity/webhooks", req.path)
      assert.equal("startDate=2013-10-20T19%3A20%3A30%2B01%3A00&endDate=2013-10-20T19%3A20%3A30%2B01%3A00"
        .. "&endpointUrl=endpoint_url_example&event=resources.upload&statusCode=200&resourcePath=%2Ffolder%2A"
        .. "&username=exampleuser&offset=100&limit=10&sort=-date%2Cevent", req.query)
    end)

    it("maps operation types both ways and refuses an unknown one before sending", function()
      assert.equal("RETR", exavault.id("operation", "Download"))
      assert.equal("RETR", exavault.id("operation", "retr"))
      assert.equal("Download", exavault.name("operation", "RETR"))
      assert.equal("EDIT_SHARE", exavault.id("operation", "update share"))
      assert.equal("Deactivate Direct Link", exavault.name("operation", "DELE_DFA"))
      local req = assert(exavault.catalogue:build("session_logs", { type = "create folder" }))
      assert.equal("type=MKD", req.query)
      local none, err = exavault.catalogue:build("session_logs", { type = "teleport" })
      assert.is_nil(none)
      assert.matches("type' must be one of 'PASS'", err.message)
      none, err = exavault.catalogue:build("webhook_logs", { event = "resources.explode" })
      assert.is_nil(none)
      assert.equal("invalid", err.kind)
    end)
  end)

  describe("against the account", function()
    it("sends the key and token on every request, and reads every session log oldest first", function()
      local c = connect()
      local items = collect(c:session_logs())
      assert.equal(t.sessions, #items)
      local last = -math.huge
      for _, item in ipairs(items) do
        local at = time.parse(item.attributes.date)
        assert.is_true(at >= last)
        last = at
      end
      local sent = requests("/activity/session")
      assert.equal(t.api_key, sent[1].headers["ev-api-key"])
      assert.equal(t.access_token, sent[1].headers["ev-access-token"])
      assert.matches("sort=date", sent[1].url)
    end)

    it("reads on past a capped page size and a short page, and ends on an empty page", function()
      local c = connect()
      -- Asked for 1000 a page, capped at 500: 3000 rows are six full pages and an empty one.
      assert.equal(t.sessions, #collect(c:session_logs()))
      local offsets = {}
      for _, r in ipairs(requests("/activity/session")) do offsets[#offsets + 1] = tonumber(r.url:match("offset=(%d+)")) end
      assert.same({ 0, 500, 1000, 1500, 2000, 2500, 3000 }, offsets)
      -- 700 webhook rows, 300 a page: the short third page does not prove the end (a page may end early
      -- with rows after it); the empty fourth does.
      control("DELETE", "/requests")
      assert.equal(t.webhooks, #collect(c:webhook_logs { limit = 300 }))
      offsets = {}
      for _, r in ipairs(requests("/activity/webhooks")) do offsets[#offsets + 1] = tonumber(r.url:match("offset=(%d+)")) end
      assert.same({ 0, 300, 600, 700 }, offsets)
      -- Nothing at all: one request.
      control("DELETE", "/requests")
      assert.same({}, collect(c:session_logs { username = "nobody" }))
      assert.equal(1, #requests("/activity/session"))
    end)

    it("filters by user, operation (by name), path, time and, for webhooks, event and status", function()
      local c = connect()
      local from = time.parse(t.first) + 86400 * 30
      local items = collect(c:session_logs { username = "jdoe", type = "download" })
      assert.is_true(#items > 0)
      for _, item in ipairs(items) do
        assert.equal("jdoe", item.attributes.userName)
        assert.equal("RETR", item.attributes.operation)
      end
      items = collect(c:session_logs { path = "/folder3*", from = from, to = from + 86400 * 200 })
      assert.is_true(#items > 0)
      for _, item in ipairs(items) do
        local a = item.attributes
        assert.matches("^/folder3", a.fileSource)
        local at = time.parse(a.date)
        assert.is_true(at >= from and at <= from + 86400 * 200)
      end
      local hooks = collect(c:webhook_logs { event = "resources.upload", status_code = 200, sort = "-date" })
      assert.is_true(#hooks > 0)
      local last = math.huge
      for _, h in ipairs(hooks) do
        assert.equal("resources.upload", h.attributes.event)
        assert.equal(200, h.attributes.statusCode)
        local at = time.parse(h.attributes.created)
        assert.is_true(at <= last)
        last = at
      end
    end)

    it("resumes a walk from an offset", function()
      local c = connect()
      local all = collect(c:session_logs { limit = 250 })
      local rest = {}
      for rows, next_offset in c:log_pages("session_logs", { limit = 250 }, 1000) do
        for _, r in ipairs(rows) do rest[#rest + 1] = r end
        assert.equal(1000 + #rest, next_offset)
      end
      assert.equal(#all - 1000, #rest)
      assert.equal(all[1001].id, rest[1].id)
    end)

    it("surfaces the API's 400 message, and waits out a 429", function()
      local c = connect()
      local ok, err = pcall(collect, c:session_logs { sort = "colour" })
      assert.is_false(ok)
      assert.equal(400, err.status)
      assert.equal("ExaVault: Cannot sort by 'colour'. (HTTP 400)", err.message)
      fault { match = "GET /exavault/api/v2/activity/webhooks", status = 429, retry_after = "1" }
      local started = auditrun.now()
      assert.equal(t.webhooks, #collect(c:webhook_logs()))
      assert.is_true(auditrun.now() - started >= 0.9)
    end)

    it("keeps the key and token out of errors, and names missing settings", function()
      local c = connect { exavault_api_key = "not-the-key-0042" }
      local ok, err = pcall(collect, c:session_logs())
      assert.is_false(ok)
      assert.equal(401, err.status)
      assert.is_nil(tostring(err):find("not%-the%-key%-0042"))
      assert.is_nil(tostring(err):find(t.access_token, 1, true))
      local none, cerr = exavault.connect({ exavault_api_key = "k" }, NO_ENV)
      assert.is_nil(none)
      assert.equal("ExaVault is not configured: set AUDITRUN_EXAVAULT_URL, AUDITRUN_EXAVAULT_ACCESS_TOKEN (or _FILE)",
        cerr.message)
    end)
  end)
end)
