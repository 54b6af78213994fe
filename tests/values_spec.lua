-- Values a script handles as it would plain Lua ones: error values read as
-- strings, JSON integers come back as integers, and misuse raises a
-- message naming the function.
local sandbox = require("tests.helper.sandbox")
local auditrun = require("auditrun")
local http = sandbox.http()
local json = require("auditrun.json")
local jwt = require("auditrun.jwt")

describe("error values", function()
  local err = auditrun.error("http", "HTTP 404 from https://example.test/x", { status = 404 })

  it("concatenate as their one line, on either side", function()
    assert.equal("failed: http: HTTP 404 from https://example.test/x", "failed: " .. err)
    assert.equal("http: HTTP 404 from https://example.test/x!", err .. "!")
    assert.equal("[http: HTTP 404 from https://example.test/x]", "[" .. err .. "]")
  end)

  it("take string methods, applied to their one line", function()
    assert.equal("404", err:match("HTTP (%d+)"))
    assert.equal(1, (err:find("http:", 1, true)))
    assert.equal("HTTP: HTTP 404 FROM HTTPS://EXAMPLE.TEST/X", err:upper())
    assert.equal(#tostring(err), err:len())
  end)

  it("keep their own fields, and nil for fields they lack", function()
    assert.equal("http", err.kind)
    assert.equal(404, err.status)
    assert.is_nil(err.body)
    assert.is_nil(err.retryable)
  end)
end)

describe("JSON numbers", function()
  local sb = sandbox.for_describe {}

  local cases = {
    { "16", 16, "integer" }, { "-3", -3, "integer" }, { "0", 0, "integer" }, { "1.5", 1.5, "float" },
    { "1e3", 1000, "integer" }, { "9007199254740991", 9007199254740991, "integer" },
    { "1e300", 1e300, "float" },
  }
  for _, c in ipairs(cases) do
    it("decode " .. c[1] .. " as " .. c[3] .. " " .. tostring(c[2]), function()
      local v = json.decode("[" .. c[1] .. "]")[1]
      assert.equal(c[3], math.type(v))
      assert.equal(c[2], v)
    end)
  end

  it("nested in objects and arrays print as integers", function()
    local v = json.decode('{"a": {"b": [1, 2.0, {"c": 30}]}, "n": null}')
    assert.equal("1 2 30", string.format("%s %s %s", v.a.b[1], v.a.b[2], v.a.b[3].c))
    assert.equal(http.null, v.n)
  end)

  it("from a server come back as integers (request_json)", function()
    local v = auditrun.try(http.request_json { url = sb.url .. "/test/flaky/integers" })
    assert.equal("integer", math.type(v.attempts))
    assert.equal("1", tostring(v.attempts))
  end)

  it("in a JWT's claims come back as integers", function()
    local key = auditrun.try(jwt.load_key { cert = "tests/fixtures/app-cert.pem", key = "tests/fixtures/app-key.pem" })
    local token = jwt.sign(key, { alg = "RS256", typ = "JWT" }, { exp = 1700000000, iat = 1699999700 })
    local claims = auditrun.try(jwt.decode(token))
    assert.equal("integer", math.type(claims.exp))
    assert.equal("1700000000", tostring(claims.exp))
  end)
end)

-- Regression: one row with a lone surrogate escape failed its whole page
-- as malformed JSON, at the same page on every rerun.
describe("JSON text with lone UTF-16 surrogates", function()
  local FFFD = "\u{FFFD}"
  local cases = {
    { [["a\ud800b"]], "a" .. FFFD .. "b", 1 },                  -- a high half alone
    { [["a\uDC00b"]], "a" .. FFFD .. "b", 1 },                  -- a low half alone
    { [["\ud800\u0041"]], FFFD .. "A", 1 },                     -- a high half before something else
    { [["\ud83d\ude00"]], "\u{1F600}", 0 },                      -- a valid pair stays
    { [["\ud800\ud83d\ude00"]], FFFD .. "\u{1F600}", 1 },          -- a lone half before a valid pair
    { [["a\\ud800"]], "a\\ud800", 0 },                         -- an escaped backslash: no escape
    { [["a\\\ud800"]], "a\\" .. FFFD, 1 },                     -- an escaped backslash, then an escape
  }
  for _, c in ipairs(cases) do
    it("decode " .. c[1] .. " with " .. c[3] .. " replaced", function()
      local counts = {}
      assert.equal(c[2], json.decode(c[1], counts))
      assert.equal(c[3], counts.surrogates)
    end)
  end

  it("still refuse JSON that is malformed otherwise", function()
    local v, err = json.decode([[{"a": "\ud800", ]])
    assert.is_nil(v)
    assert.is_string(err)
  end)
end)

-- Regression: rows whose time was not ISO 8601 ("01/05/2022 10:00:00") were
-- dropped from DealCloud's activity without a word.
describe("times as the services write them", function()
  local time = require("auditrun.time")
  local cases = {
    { "2022-01-06T06:27:55.6", "2022-01-06T06:27:55.600Z" }, { "2013-10-20T19:20:30+01:00", "2013-10-20T18:20:30.000Z" },
    { "01/05/2022 10:00:00", "2022-01-05T10:00:00.000Z" }, { "1/5/2022 10:00:00 AM", "2022-01-05T10:00:00.000Z" },
    { "1/5/2022 12:00:00 AM", "2022-01-05T00:00:00.000Z" }, { "12/31/2022 1:02:03 PM", "2022-12-31T13:02:03.000Z" },
    { "1/5/2022 10:00", "2022-01-05T10:00:00.000Z" }, { "2022/01/06 06:27:55", "2022-01-06T06:27:55.000Z" },
    { "/Date(1641450475600)/", "2022-01-06T06:27:55.600Z" }, { "/Date(1641450475600+0100)/", "2022-01-06T06:27:55.600Z" },
  }
  for _, c in ipairs(cases) do
    it("read " .. c[1], function()
      assert.equal(c[2], time.iso(time.read(c[1]), 3))
    end)
  end

  it("refuse what is no time, and leave what people type to ISO 8601", function()
    for _, s in ipairs { "sometime", "13/01/2022 10:00:00", "1/5/2022 13:00:00 PM", "2022-13-01", "" } do
      assert.is_nil(time.read(s), s)
    end
    assert.is_nil(time.parse("01/05/2022 10:00:00"))
    assert.is_nil(time.parse("2022-01-06T6:27"))
  end)
end)

describe("misuse", function()
  local cases = {
    { "http.get{url=...}", function() return http.get { url = "https://example.test/" } end,
      "http%.get%(url, opts%): url must be a string, not a table %(http%.get takes the URL first; " ..
      "http%.request takes one table%)" },
    { "http.post(url, 5)", function() return http.post("https://example.test/", 5) end,
      "http%.post%(url, opts%): opts must be a table of request options, not a number" },
    { "http.request(url)", function() return http.request("https://example.test/") end,
      "http%.request{%.%.%.}: takes one table of options" },
    { "http.request{} without url", function() return http.request { method = "GET" } end,
      "http%.request{%.%.%.}: url must be a string" },
    { "auth.session without client_id", function()
        return require("auditrun.auth").session { identity_url = "https://id.example.test", scope = "s", secret = "x" }
      end, "auth%.session{%.%.%.}: needs identity_url or token_url, client_id and scope" },
    { "auth.session with key and secret", function()
        return require("auditrun.auth").session { identity_url = "https://id.example.test", client_id = "c",
          scope = "s", secret = "x", key = {} }
      end, "auth%.session{%.%.%.}: give exactly one of key and secret" },
  }
  for _, c in ipairs(cases) do
    it("raises naming the function: " .. c[1], function()
      local ok, msg = pcall(c[2])
      assert.is_false(ok)
      assert.is_string(msg)
      assert.matches(c[3], msg)
    end)
  end
end)
