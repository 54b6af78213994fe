-- HTTP on the C core against the sandbox: TLS, statuses, bodies to memory
-- and to files, headers, redirects, timeouts, dropped connections, gzip,
-- connection reuse, concurrency, and the retry policy.
local sandbox = require("tests.helper.sandbox")
local auditrun = require("auditrun")
local http = sandbox.http()
local cjson = require("cjson")

describe("http", function()
  local sb = sandbox.for_describe {}

  local function url(path) return sb.url .. path end

  it("refuses the sandbox's certificate without its CA, and accepts it with it", function()
    local res, err = http.get(url("/test/small"), { ca_file = "/etc/ssl/certs/ca-certificates.crt" })
    assert.is_nil(res)
    assert.equal("tls", err.kind)
    assert.is_false(err.retryable)
    -- The fix is named.
    assert.matches("^SSL certificate problem: [^\n]+; if a private CA or a TLS%-inspecting proxy signs the server's "
      .. "certificate, give its CA bundle as ca_file in the profile or AUDITRUN_CA_FILE$", err.message)
    res = assert(http.get(url("/test/small"), { ca_file = sb.ca_file }))
    assert.equal(200, res.status)
    assert.same({ ok = true }, cjson.decode(res.body))
  end)

  it("sends method, encoded query, headers and a JSON body", function()
    local echo = assert(http.request_json {
      method = "POST", url = url("/test/echo"),
      query = { { "time", "2024-01-02T03:04:05" }, { "type", { "a b", "c&d" } }, { "n", 5 } },
      headers = { ["X-Trace"] = "t-1" },
      json = { name = "x", list = { 1, 2 } },
    })
    assert.equal("POST", echo.method)
    assert.equal("/test/echo?time=2024-01-02T03%3A04%3A05&type=a%20b&type=c%26d&n=5", echo.url)
    assert.equal("t-1", echo.headers["x-trace"])
    assert.equal("application/json", echo.headers["content-type"])
    assert.same({ name = "x", list = { 1, 2 } }, cjson.decode(echo.body))
  end)

  it("sends forms, PUT and PATCH bodies, binary bodies", function()
    local echo = assert(http.request_json { method = "POST", url = url("/test/echo"), form = { a = "1 2", b = "é" } })
    assert.equal("a=1%202&b=%C3%A9", echo.body)
    assert.equal("application/x-www-form-urlencoded", echo.headers["content-type"])
    echo = assert(http.request_json { method = "PATCH", url = url("/test/echo"), body = "x\0y" })
    assert.equal("PATCH", echo.method)
    assert.equal("x\0y", echo.body)
    echo = assert(http.request_json { method = "DELETE", url = url("/test/echo") })
    assert.equal("DELETE", echo.method)
  end)

  it("streams an upload from a file", function()
    local path = os.tmpname()
    local f = io.open(path, "wb")
    f:write(string.rep("0123456789", 300000))
    f:close()
    for _, method in ipairs { "PUT", "POST" } do
      local got = assert(http.request_json { method = method, url = url("/test/upload"), body_file = path })
      assert.equal(3000000, got.bytes)
      assert.equal(auditrun.sha256_file(path), got.sha256)
    end
    os.remove(path)
  end)

  it("lower-cases header names and keeps repeated headers", function()
    local res = assert(http.get(url("/test/headers")))
    assert.equal("one, two", res.headers["x-multi"])
    local cookies = {}
    for _, h in ipairs(res.header_list) do
      if h[1] == "set-cookie" then cookies[#cookies + 1] = h[2] end
    end
    assert.same({ "a=1", "b=2" }, cookies)
  end)

  it("returns statuses of 400 and more as errors with a body excerpt", function()
    local res, err = http.get(url("/test/status/404"))
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal(404, err.status)
    assert.is_false(err.retryable)
    assert.matches('"status":404', err.body)
    assert.matches("^http: HTTP 404 Not Found from GET https://127%.0%.0%.1:%d+/test/status/404", tostring(err))
    res = assert(http.get(url("/test/status/404"), { ok_status = { 404 } }))
    assert.equal(404, res.status)
  end)

  it("streams a large body to a file, never into memory", function()
    local path = os.tmpname()
    local res = assert(http.get(url("/test/bytes/5000000"), { output = path }))
    assert.is_nil(res.body)
    assert.equal(5000000, res.bytes)
    local f = io.open(path, "rb")
    local data = f:read("a")
    f:close()
    assert.equal(5000000, #data)
    assert.equal(string.char(250), data:sub(251, 251))
    assert.equal(string.char(0), data:sub(252, 252))
    os.remove(path)
  end)

  it("refuses a body larger than max_body", function()
    local res, err = http.get(url("/test/bytes/100000"), { max_body = 50000 })
    assert.is_nil(res)
    assert.equal("too_large", err.kind)
  end)

  it("accepts gzip and hands back the decoded body", function()
    local res = assert(http.get(url("/test/bytes/100000?gzip=1")))
    assert.equal("gzip", res.headers["content-encoding"])
    assert.equal(100000, #res.body)
  end)

  it("follows redirects to a limit, within the origin only with credentials, never https to http", function()
    local res = assert(http.get(url("/test/redirect-chain/3")))
    assert.equal(3, res.redirects)
    local _, err = http.get(url("/test/redirect-chain/9"), { max_redirects = 5 })
    assert.equal("redirect", err.kind)
    -- same sandbox, other host name: localhost instead of 127.0.0.1
    local other = sb.url:gsub("127%.0%.0%.1", "localhost") .. "/test/echo"
    local here = "https://127.0.0.1:" .. sb.port
    local function redirect(to, headers, names)
      return http.request_json { url = url("/test/redirect?to=" .. http.escape(to)), headers = headers,
                                 credential_headers = names, retry = false }
    end
    -- Regression: a header other than Authorization went wherever a redirect pointed.
    local echo = assert(redirect(other, { ["X-Api-Key"] = "k-1" }))
    assert.equal("k-1", echo.headers["x-api-key"])
    for _, case in ipairs {
      { other, { Authorization = "Bearer secret-token" }, nil, "https://localhost:" .. sb.port },
      { other, { ["X-Api-Key"] = "k-1" }, { "x-api-key" }, "https://localhost:" .. sb.port },
      { "https://127.0.0.1:1/test/echo", { ["X-Api-Key"] = "k-1" }, { "X-API-Key" }, "https://127.0.0.1:1" },
      { "http://127.0.0.1:" .. sb.port .. "/x", { Authorization = "Bearer t" }, nil, "http://127.0.0.1:" .. sb.port },
    } do
      local none, rerr = redirect(case[1], case[2], case[3])
      assert.is_nil(none)
      assert.equal("redirect", rerr.kind)
      assert.equal(("HTTP 302 redirect from %s to %s, another origin: refusing to send the request's credentials "
        .. "there (GET %s/test/redirect)"):format(here, case[4], here), rerr.message)
    end
    local same = assert(redirect(url("/test/echo"), { Authorization = "Bearer secret-token", ["X-Api-Key"] = "k-1" },
                                 { "X-Api-Key" }))
    assert.equal("Bearer secret-token", same.headers.authorization)
    assert.equal("k-1", same.headers["x-api-key"])
    local plain = "http://127.0.0.1:" .. sb.port .. "/test/echo"
    res, err = http.get(url("/test/redirect?to=" .. http.escape(plain)))
    assert.is_nil(res)
    assert.equal("redirect", err.kind)
  end)

  it("times out: total, and connection dropped mid-body", function()
    local t0 = auditrun.now()
    local res, err = http.get(url("/test/delay/5000"), { timeout = 0.3, retry = false })
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    assert.is_true(err.retryable)
    assert.is_true(auditrun.now() - t0 < 3)
    res, err = http.get(url("/test/drop/100000"), { retry = false })
    assert.is_nil(res)
    assert.equal("connection", err.kind)
    assert.is_true(err.retryable)
  end)

  it("runs many transfers at once on one loop", function()
    local t0 = auditrun.now()
    local tasks = {}
    for i = 1, 20 do
      tasks[i] = auditrun.spawn(function() return assert(http.get(url("/test/delay/300"))).status end)
    end
    for i = 1, 20 do assert.same({ true, 200 }, { tasks[i]:join() }) end
    -- One after another they take 6 s at the least, however fast the machine;
    -- at once, less (valgrind's slow handshakes included).
    local elapsed = auditrun.now() - t0
    assert.is_true(elapsed < 20 * 0.3, "20 transfers of 0.3 s took " .. elapsed)
  end)

  it("removes a cancelled task's transfer from the loop", function()
    local t = auditrun.spawn(function() return http.get(url("/test/delay/10000")) end)
    auditrun.sleep(0.1)
    t:cancel()
    local ok, err = t:join()
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.equal(0, require("auditrun.core").pending())
  end)

  it("reuses one connection and one TLS handshake for sequential requests", function()
    -- The reset travels on the connection already open; it must carry the rest.
    assert(http.post(url("/test/stats/reset"), { idempotent = true }))
    local opened = 0
    for _ = 1, 20 do opened = opened + assert(http.get(url("/test/small"))).new_connections end
    local stats = assert(http.request_json { url = url("/test/stats") })
    assert.equal(0, opened)
    assert.equal(0, stats.tcp_connections)
    assert.equal(0, stats.tls_handshakes)
  end)

  describe("retries", function()
    local function policy(extra)
      local slept = {}
      local p = http.policy {
        attempts = extra.attempts or 5, base = 0.5, cap = 30, deadline = extra.deadline or 300,
        budget = extra.budget or http.budget(), random = function() return 0.5 end,
        sleep = function(s) slept[#slept + 1] = s end, wallclock = extra.wallclock,
      }
      return p, slept
    end
    local key = 0
    local function flaky(q)
      key = key + 1
      return url("/test/flaky/k" .. key .. "?" .. q)
    end

    it("retry GETs on 503 with exponential backoff and full jitter", function()
      local p, slept = policy {}
      local res = assert(http.get(flaky("fail=3&status=503"), { retry = p }))
      assert.equal(200, res.status)
      assert.equal(4, res.attempts)
      assert.same({ 0.25, 0.5, 1.0 }, slept)  -- random 0.5 x 0.5, 1, 2
    end)

    for _, status in ipairs { 408, 429, 500, 502, 504 } do
      it("retry status " .. status, function()
        local p = policy {}
        assert.equal(2, assert(http.get(flaky("fail=1&status=" .. status), { retry = p })).attempts)
      end)
    end

    it("do not retry other statuses", function()
      local p, slept = policy {}
      local res, err = http.get(flaky("fail=1&status=400"), { retry = p })
      assert.is_nil(res)
      assert.equal(400, err.status)
      assert.same({}, slept)
    end)

    it("honour Retry-After in seconds, as an HTTP-date, and retry-after-ms", function()
      local p, slept = policy {}
      assert(http.get(flaky("fail=1&status=429&retry_after=7"), { retry = p }))
      assert.same({ 7 }, slept)
      local now = os.time()
      p, slept = policy { wallclock = function() return now end }
      local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", now + 12)
      assert(http.get(flaky("fail=1&status=503&retry_after=" .. http.escape(date)), { retry = p }))
      assert.same({ 12 }, slept)
      p, slept = policy {}
      assert(http.get(flaky("fail=1&status=503&retry_after_ms=1500"), { retry = p }))
      assert.same({ 1.5 }, slept)
    end)

    -- Found by the retry_after fuzz target: tonumber took "08888E888" (and
    -- "1e999", hex, "inf") as a Retry-After, an infinite wait.
    it("read Retry-After as digits only, and never as an endless wait", function()
      local p = http.policy { wallclock = function() return 1700000000 end }
      for _, v in ipairs { "1e999", "08888E888", "0x10", "inf", "nan", "-5", "1.5", " 12a", "" } do
        assert.is_nil(p:server_delay { ["retry-after"] = v }, v)
      end
      assert.equal(120, p:server_delay { ["retry-after"] = " 120 " })
      assert.equal(2 ^ 31, p:server_delay { ["retry-after"] = string.rep("9", 400) })
      assert.equal(2 ^ 31, p:server_delay { ["retry-after-ms"] = string.rep("9", 400) })
      assert.is_nil(p:server_delay { ["retry-after-ms"] = "1e999" })
    end)

    it("give up at the attempt cap and say so", function()
      local p = policy { attempts = 3 }
      local res, err = http.get(flaky("fail=10&status=503"), { retry = p })
      assert.is_nil(res)
      assert.equal(3, err.attempts)
      assert.matches("gave up after 3 attempts", err.message)
    end)

    it("stop before a wait that would pass the deadline", function()
      local p = policy { deadline = 5 }
      local _, err = http.get(flaky("fail=1&status=503&retry_after=60"), { retry = p })
      assert.matches("retry deadline reached", err.message)
    end)

    it("share one budget so an outage does not become a storm", function()
      local budget = http.budget { max = 3 }
      local p = policy { budget = budget }
      local _, err = http.get(flaky("fail=100&status=503"), { retry = p })
      assert.equal(4, err.attempts)  -- three retries, then the budget is dry
      assert.matches("retry budget exhausted", err.message)
      _, err = http.get(flaky("fail=100&status=503"), { retry = p })
      assert.equal(1, err.attempts)
    end)

    it("never retry an action, only a POST marked as a query", function()
      local p, slept = policy {}
      local _, err = http.post(flaky("fail=1&status=503"), { retry = p })
      assert.equal(503, err.status)
      assert.is_true(err.retryable)
      assert.same({}, slept)
      assert.equal(2, assert(http.post(flaky("fail=1&status=503"), { retry = p, idempotent = true })).attempts)
    end)

    it("retry a dropped connection on a GET", function()
      local p = policy { attempts = 2 }
      local _, err = http.get(url("/test/drop/1000"), { retry = p })
      assert.equal("connection", err.kind)
      assert.equal(2, err.attempts)
    end)

    it("decode malformed JSON into a clear error", function()
      local v, err = http.request_json { url = url("/test/bytes/10") }
      assert.is_nil(v)
      assert.equal("json", err.kind)
      assert.matches("malformed JSON in the answer from https://127", err.message)
    end)
  end)
end)
