-- Values a script handles as it would plain Lua ones: error values read as
-- strings, JSON integers come back as integers, and misuse raises a
-- message naming the function.
local sandbox = require "tests.helper.sandbox"
local auditrun = require "auditrun"
local http = sandbox.http()
local json = require "auditrun.json"
local jwt = require "auditrun.jwt"

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
