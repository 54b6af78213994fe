-- Smoke test of the sandbox tenant itself, through the curl command line so
-- that it does not depend on the project's own HTTP client.
local cjson = require("cjson")
local sandbox = require("tests.helper.sandbox")

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- curl(args...) -> body, HTTP status (0 if none), curl's exit code.
local function curl(...)
  local args = { "curl", "-sS", "--max-time", "20", "-w", quote("\n%{http_code}") }
  for _, a in ipairs({ ... }) do args[#args + 1] = quote(a) end
  local p = assert(io.popen(table.concat(args, " ") .. " 2>/dev/null"))
  local out = p:read("a")
  local _, _, code = p:close()
  local body, status = out:match("^(.*)\n(%d+)$")
  return body or out, tonumber(status) or 0, code
end

local function b64url(s)
  local p = assert(io.popen("printf %s " .. quote(s) .. " | openssl base64 -A"))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s", ""):gsub("+", "-"):gsub("/", "_"):gsub("=", ""))
end

-- RS256 over data with a PEM key, through the openssl command line.
local function rs256(data, key_file)
  local p = assert(io.popen("printf %s " .. quote(data) .. " | openssl dgst -sha256 -sign " .. quote(key_file)
    .. " | openssl base64 -A"))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s", ""):gsub("+", "-"):gsub("/", "_"):gsub("=", ""))
end

describe("sandbox tenant", function()
  local sb = sandbox.for_describe { token_ttl = 600 }

  local function token_with_secret(secret, scope)
    local body, status = curl("--cacert", sb.ca_file, "-X", "POST", sb.token_endpoint,
      "--data-urlencode", "grant_type=client_credentials",
      "--data-urlencode", "client_id=" .. sb.clients.secret,
      "--data-urlencode", "client_secret=" .. secret,
      "--data-urlencode", "scope=" .. (scope or sb.scope))
    return cjson.decode(body), status
  end

  it("prints a ready line naming the server, its CA and the identity", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", sb.url)
    assert.are.equal(sb.url .. "/identity", sb.issuer)
    assert.are.equal(sb.issuer .. "/connect/token", sb.token_endpoint)
    assert.are.equal("auditrun-cert", sb.clients.cert)
    assert.are.equal("auditrun-secret", sb.clients.secret)
    assert.are.equal("insights.graph.readwrite.all", sb.scope)
    assert.truthy(io.open(sb.ca_file)):close()
  end)

  it("serves discovery whose issuer is the sandbox's", function()
    local body, status = curl("--cacert", sb.ca_file, sb.issuer .. "/.well-known/openid-configuration")
    assert.are.equal(200, status)
    local doc = cjson.decode(body)
    assert.are.equal(sb.issuer, doc.issuer)
    assert.are.equal(sb.token_endpoint, doc.token_endpoint)
  end)

  it("issues a JWT access token for the client secret that /test/protected accepts", function()
    local tok, status = token_with_secret(sb.clients.secret_value)
    assert.are.equal(200, status)
    assert.are.equal("Bearer", tok.token_type)
    assert.are.equal(600, tok.expires_in)
    assert.are.equal(sb.scope, tok.scope)
    assert.matches("^[%w_-]+%.[%w_-]+%.[%w_-]+$", tok.access_token)

    local body, pstatus = curl("--cacert", sb.ca_file, "-H", "Authorization: Bearer " .. tok.access_token,
      sb.url .. "/test/protected")
    assert.are.equal(200, pstatus)
    local claims = cjson.decode(body)
    assert.are.equal(sb.clients.secret, claims.sub)
    assert.are.equal(sb.scope, claims.scope)
  end)

  it("refuses a wrong client secret and an unknown scope", function()
    local err, status = token_with_secret("wrong")
    assert.are.equal(401, status)
    assert.are.equal("invalid_client", err.error)
    err, status = token_with_secret(sb.clients.secret_value, "insights.graph.read.all")
    assert.are.equal(400, status)
    assert.are.equal("invalid_scope", err.error)
  end)

  it("issues a token for the certificate client's private_key_jwt assertion, once per jti", function()
    local now = os.time()
    local header = b64url(cjson.encode { alg = "RS256", typ = "JWT" })
    local payload = b64url(cjson.encode {
      iss = sb.clients.cert, sub = sb.clients.cert, aud = sb.token_endpoint,
      jti = "smoke-" .. now .. "-" .. math.random(1 << 30), iat = now, exp = now + 60,
    })
    local assertion = header .. "." .. payload .. "." .. rs256(header .. "." .. payload, "tests/fixtures/app-key.pem")
    local function ask()
      local body, status = curl("--cacert", sb.ca_file, "-X", "POST", sb.token_endpoint,
        "--data-urlencode", "grant_type=client_credentials",
        "--data-urlencode", "client_id=" .. sb.clients.cert,
        "--data-urlencode", "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "--data-urlencode", "client_assertion=" .. assertion,
        "--data-urlencode", "scope=" .. sb.scope)
      return cjson.decode(body), status
    end
    local tok, status = ask()
    assert.are.equal(200, status)
    assert.matches("^[%w_-]+%.[%w_-]+%.[%w_-]+$", tok.access_token)
    local err, again = ask()
    assert.are.equal(401, again)
    assert.are.equal("invalid_client", err.error)
    assert.matches("only be used once", err.error_description)
  end)

  it("echoes a request as it came", function()
    local body, status = curl("--cacert", sb.ca_file, "-X", "PUT", "-H", "X-Probe: 1", "--data-binary", "a=b&c",
      sb.url .. "/test/echo?q=1&r=%2F")
    assert.are.equal(200, status)
    local echo = cjson.decode(body)
    assert.are.equal("PUT", echo.method)
    assert.are.equal("/test/echo", echo.path)
    assert.are.equal("/test/echo?q=1&r=%2F", echo.url)
    assert.are.equal("1", echo.headers["x-probe"])
    assert.are.equal("a=b&c", echo.body)
  end)

  it("answers unknown paths with 404", function()
    local body, status = curl("--cacert", sb.ca_file, sb.url .. "/nowhere")
    assert.are.equal(404, status)
    assert.are.equal("not_found", cjson.decode(body).error)
  end)

  it("is not trusted without its CA", function()
    local _, status, code = curl(sb.url .. "/test/small")
    assert.are.equal(0, status)
    assert.are.equal(60, code)   -- CURLE_PEER_FAILED_VERIFICATION
  end)

  it("serves plain HTTP with --http, and stops leaving nothing behind", function()
    local plain = sandbox.start { http = true }
    local pid, dir = plain.pid, plain.dir
    local ok, err = pcall(function()
      assert.matches("^http://127%.0%.0%.1:%d+$", plain.url)
      assert.is_nil(plain.ca_file)
      local body, status = curl(plain.url .. "/test/small")
      assert.are.equal(200, status)
      assert.is_true(cjson.decode(body).ok)
    end)
    plain:stop()
    assert(ok, err)
    local stat = io.open("/proc/" .. pid .. "/stat")
    local state = stat and stat:read("a"):match("^%d+ %b() (%a)")
    if stat then stat:close() end
    assert.is_true(state == nil or state == "Z")
    assert.is_nil(io.open(dir .. "/ready.json"))
  end)
end)
