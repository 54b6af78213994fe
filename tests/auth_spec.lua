-- Sign-in against the sandbox's real oidc-provider: discovery, tokens from
-- a certificate (.pfx and PEM) and from a client secret, caching and
-- renewal, and the provider's refusals as clear, non-retryable errors.
local sandbox = require("tests.helper.sandbox")
local auditrun = require("auditrun")
local auth = require("auditrun.auth")
local http = sandbox.http()
local jwt = require("auditrun.jwt")

local FX = "tests/fixtures/"

describe("sign-in", function()
  local sb = sandbox.for_describe { token_ttl = 4 }
  before_each(function() auth.reset() end)

  local function cert_session(extra)
    local o = { identity_url = sb.issuer, client_id = sb.clients.cert, scope = sb.scope,
                key = assert(jwt.load_key { cert = FX .. "app.pfx", password = "sandbox-pass" }) }
    for k, v in pairs(extra or {}) do o[k] = v end
    o.ca_file = o.ca_file or sb.ca_file
    return auth.session(o)
  end

  local function call_protected(token)
    return http.request_json { url = sb.url .. "/test/protected", headers = { Authorization = "Bearer " .. token } }
  end

  it("discovers the provider and checks its issuer", function()
    local meta = assert(auth.discover(sb.issuer, { ca_file = sb.ca_file }))
    assert.equal(sb.token_endpoint, meta.token_endpoint)
    local wrong = sb.issuer:gsub("127%.0%.0%.1", "localhost")
    local m, err = auth.discover(wrong, { ca_file = sb.ca_file })
    assert.is_nil(m)
    assert.equal("auth", err.kind)
    assert.matches("names another issuer", err.message)
  end)

  it("gets a JWT access token with a .pfx certificate and uses it", function()
    local s = cert_session()
    local token = assert(s:token())
    local claims = assert(jwt.decode(token))
    assert.matches(sb.scope, claims.scope)
    local who = assert(call_protected(token))
    assert.equal(sb.scope, who.scope)
  end)

  it("gets a token with a PEM certificate and key, and with PS256", function()
    local key = assert(jwt.load_key { cert = FX .. "app-cert.pem", key = FX .. "app-key-encrypted.pem",
                                      password = "sandbox-pass" })
    for _, alg in ipairs { "RS256", "PS256" } do
      auth.reset()
      local s = auth.session { ca_file = sb.ca_file, identity_url = sb.issuer, client_id = sb.clients.cert, scope = sb.scope,
                               key = key, alg = alg }
      assert(call_protected(assert(s:token())))
    end
  end)

  it("gets a token with a client secret", function()
    local s = auth.session { ca_file = sb.ca_file, identity_url = sb.issuer, client_id = sb.clients.secret, scope = sb.scope,
                             secret = sb.clients.secret_value }
    assert(call_protected(assert(s:token())))
  end)

  it("caches the token and renews it at half its lifetime, once for many tasks", function()
    local s = cert_session()
    local first = assert(s:token())
    assert.equal(first, s:token())
    assert.equal(1, s.tokens_fetched)
    auditrun.sleep(2.2)  -- lifetime 4 s: renewal is due after 2
    local tasks = {}
    for i = 1, 10 do tasks[i] = auditrun.spawn(function() return assert(s:token()) end) end
    local second
    for i = 1, 10 do
      local ok, token = tasks[i]:join()
      assert.is_true(ok)
      second = second or token
      assert.equal(second, token)
    end
    assert.are_not.equal(first, second)
    assert.equal(2, s.tokens_fetched)
  end)

  it("shares one session per identity, client and scope", function()
    assert.equal(cert_session(), cert_session())
  end)

  local function refused(s)
    local token, err = s:token()
    assert.is_nil(token)
    assert.equal("auth", err.kind)
    assert.is_false(err.retryable)
    assert.is_nil(tostring(err):find("\n"))
    return err
  end

  it("surfaces a replayed assertion (jti) as a clear refusal", function()
    local s = cert_session()
    local fixed
    s.assertion = function(self, meta)
      fixed = fixed or jwt.client_assertion { key = self.key, client_id = self.client_id,
                                              audience = meta.token_endpoint, jti = "same-jti-twice" }
      return fixed
    end
    assert(s:token())
    s:invalidate(s.access_token)
    local err = refused(s)
    assert.matches("invalid_client", err.message)
    assert.matches("only be used once", err.message)
  end)

  it("surfaces a wrong audience, an expired assertion and an unknown key", function()
    local err = refused(cert_session { audience = "https://elsewhere.example/token" })
    assert.matches("invalid_client", err.message)
    auth.reset()
    local s = cert_session()
    s.assertion = function(self, meta)
      return jwt.client_assertion { key = self.key, client_id = self.client_id, audience = meta.token_endpoint,
                                    now = os.time() - 3600, lifetime = 300 }
    end
    err = refused(s)
    assert.matches("invalid_client", err.message)
    assert.matches("expired", err.message)
    auth.reset()
    err = refused(cert_session { key = assert(jwt.load_key { cert = FX .. "other-cert.pem", key = FX .. "other-key.pem" }) })
    assert.matches("invalid_client", err.message)
  end)

  it("surfaces a wrong secret, an unknown client and an unknown scope", function()
    local err = refused(auth.session { identity_url = sb.issuer, client_id = sb.clients.secret, scope = sb.scope,
                                       secret = "not-the-secret", ca_file = sb.ca_file })
    assert.matches("invalid_client", err.message)
    assert.is_nil(err.message:find("not%-the%-secret"))
    err = refused(auth.session { identity_url = sb.issuer, client_id = "nobody", scope = sb.scope, secret = "x",
                                 ca_file = sb.ca_file })
    assert.matches("invalid_client", err.message)
    err = refused(cert_session { scope = "no.such.scope" })
    assert.matches("invalid_scope", err.message)
  end)

  it("retries a token request that met a 503, with a fresh assertion each time", function()
    local s = cert_session()
    local seen = {}
    local real = s.assertion
    s.assertion = function(self, meta)
      local a = real(self, meta)
      seen[#seen + 1] = jwt.decode(a).jti
      return a
    end
    assert(http.post(sb.url .. "/test/identity-fail/2", { idempotent = true }))
    assert(call_protected(assert(s:token())))
    assert.equal(3, #seen)
    assert.are_not.equal(seen[1], seen[2])
    assert.are_not.equal(seen[2], seen[3])
  end)
end)
