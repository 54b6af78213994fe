-- Keys, signatures and client assertions: known answers from the openssl
-- command line, and one clear error for every bad key file.
local jwt = require("auditrun.jwt")
local core = require("auditrun.core")
local cjson = require("cjson")

local FX = "tests/fixtures/"
local PASSWORD = "sandbox-pass"

local util = require("tests.helper.util")

local function sh(cmd)
  local out, ok = util.run(cmd)
  assert(ok, "command failed: " .. cmd)
  return out
end

local function write_temp(data)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path
end

-- What `openssl dgst -sha256 -sign` makes of the same input, base64url.
local function openssl_rs256(input, keyfile)
  local inpath = write_temp(input)
  local sig = sh("openssl dgst -sha256 -sign " .. keyfile .. " " .. inpath)
  os.remove(inpath)
  return core.b64url_encode(sig)
end

local function load(opts)
  opts.quiet = true
  return jwt.load_key(opts)
end

describe("keys", function()
  local cases = {
    { "PEM certificate and PKCS#8 key", { cert = FX .. "app-cert.pem", key = FX .. "app-key.pem" } },
    { "one PEM with both", { cert = FX .. "app-combined.pem" } },
    { "encrypted PKCS#8 key", { cert = FX .. "app-cert.pem", key = FX .. "app-key-encrypted.pem", password = PASSWORD } },
    { "traditional RSA key", { cert = FX .. "app-cert.pem", key = FX .. "app-key-traditional.pem" } },
    { ".pfx with password", { cert = FX .. "app.pfx", password = PASSWORD } },
    { "legacy RC2 .p12", { cert = FX .. "app-legacy.p12", password = PASSWORD } },
  }
  local expected_x5t = core.b64url_encode(sh("openssl x509 -in " .. FX .. "app-cert.pem -outform DER"
    .. " | openssl dgst -sha1 -binary"))
  local expected_s256 = core.b64url_encode(sh("openssl x509 -in " .. FX .. "app-cert.pem -outform DER"
    .. " | openssl dgst -sha256 -binary"))

  for _, case in ipairs(cases) do
    it("load from a " .. case[1], function()
      local key, err = load(case[2])
      assert.is_nil(err)
      assert.equal(expected_x5t, core.b64url_encode(key:thumbprint("sha1")))
      assert.equal(expected_s256, core.b64url_encode(key:thumbprint("sha256")))
      assert.matches("CN=auditrun sandbox app", key:subject())
      assert.is_nil(key:warning())
    end)
  end

  local failures = {
    { "wrong .pfx password", { cert = FX .. "app.pfx", password = "nope" }, "wrong password for tests/fixtures/app.pfx" },
    { "missing .pfx password", { cert = FX .. "app.pfx" }, "wrong password for tests/fixtures/app.pfx" },
    { "wrong key password", { cert = FX .. "app-cert.pem", key = FX .. "app-key-encrypted.pem", password = "nope" },
      "wrong password for tests/fixtures/app%-key%-encrypted.pem" },
    { "encrypted key without password", { cert = FX .. "app-cert.pem", key = FX .. "app-key-encrypted.pem" },
      "is encrypted: a password is needed" },
    { "certificate without key", { cert = FX .. "app-cert.pem" }, "no private key found in tests/fixtures/app%-cert.pem" },
    { ".pfx without key", { cert = FX .. "cert-only.pfx", password = PASSWORD }, "no private key found in" },
    { "key file without certificate", { cert = FX .. "app-key.pem" }, "no certificate found in tests/fixtures/app%-key.pem" },
    { "garbage", { cert = FX .. "garbage.pem" }, "no certificate found in tests/fixtures/garbage.pem" },
    { "garbage .pfx", { cert = FX .. "garbage.pem.pfx" }, "garbage.pem.pfx" },
    { "key of another certificate", { cert = FX .. "app-cert.pem", key = FX .. "other-key.pem" },
      "does not match the certificate" },
    -- Regression: the message named the key file, not the certificate.
    { "expired certificate", { cert = FX .. "expired-cert.pem", key = FX .. "app-key.pem" },
      "^the certificate in tests/fixtures/expired%-cert.pem expired on 2021%-01%-01 00:00:00 UTC$" },
    { "EC key", { cert = FX .. "ec-cert.pem", key = FX .. "ec-key.pem" }, "not an RSA key" },
    { "missing file", { cert = FX .. "no-such.pem" }, "no%-such.pem: No such file" },
  }
  for _, case in ipairs(failures) do
    it("refuse a " .. case[1] .. " with one clear line", function()
      local key, err = load(case[2])
      assert.is_nil(key)
      assert.equal("key", err.kind)
      assert.matches(case[3], err.message)
      assert.is_nil(tostring(err):find("\n"))
    end)
  end

  it("warn when the certificate expires within 30 days", function()
    local probe = load { cert = FX .. "app-cert.pem", key = FX .. "app-key.pem" }
    local key = load { cert = FX .. "app-cert.pem", key = FX .. "app-key.pem", now = probe:not_after() - 10 * 86400 }
    assert.matches("expires on .* in 10 days", key:warning())
    local later = load { cert = FX .. "app-cert.pem", key = FX .. "app-key.pem", now = probe:not_after() + 1 }
    assert.is_nil(later)
  end)

  it("say a closed key is closed", function()
    local key = load { cert = FX .. "app.pfx", password = PASSWORD }
    key:close()
    key:close()
    assert.has_error(function() key:sign("RS256", "x") end, "attempt to use a closed key")
  end)
end)

describe("signatures", function()
  local key = load { cert = FX .. "app-cert.pem", key = FX .. "app-key.pem" }

  it("RS256 equals openssl dgst -sign byte for byte", function()
    for _, input in ipairs { "", "a", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0", string.rep("\0\255", 5000) } do
      assert.equal(openssl_rs256(input, FX .. "app-key.pem"), core.b64url_encode(key:sign("RS256", input)))
    end
  end)

  it("PS256 verifies with openssl", function()
    local input = "header.claims"
    local sig = key:sign("PS256", input)
    assert.equal(256, #sig)
    assert.are_not.equal(sig, key:sign("PS256", input))  -- salted
    local inpath, sigpath = write_temp(input), write_temp(sig)
    local pub = write_temp(sh("openssl x509 -in " .. FX .. "app-cert.pem -pubkey -noout"))
    local out = sh("openssl dgst -sha256 -verify " .. pub .. " -sigopt rsa_padding_mode:pss"
      .. " -sigopt rsa_pss_saltlen:32 -signature " .. sigpath .. " " .. inpath)
    assert.matches("Verified OK", out)
    os.remove(inpath) os.remove(sigpath) os.remove(pub)
  end)

  it("refuse algorithms other than RS256 and PS256, none included", function()
    assert.has_error(function() key:sign("none", "x") end)
    assert.has_error(function() jwt.sign(key, { alg = "none" }, {}) end)
    assert.has_error(function() jwt.sign(key, { alg = "HS256" }, {}) end)
  end)
end)

describe("client assertions", function()
  local key = load { cert = FX .. "app.pfx", password = PASSWORD }

  it("carry the claims as numbers, a fresh jti and the thumbprints", function()
    local a = jwt.client_assertion { key = key, client_id = "app-1", audience = "https://id/connect/token",
                                     now = 1700000000, lifetime = 300, kid = "k1" }
    local b = jwt.client_assertion { key = key, client_id = "app-1", audience = "https://id/connect/token",
                                     now = 1700000000 }
    local claims, header = jwt.decode(a)
    assert.same({ alg = "RS256", typ = "JWT", kid = "k1",
                  x5t = core.b64url_encode(key:thumbprint("sha1")),
                  ["x5t#S256"] = core.b64url_encode(key:thumbprint("sha256")) }, header)
    assert.equal("app-1", claims.iss)
    assert.equal("app-1", claims.sub)
    assert.equal("https://id/connect/token", claims.aud)
    assert.equal(1700000000, claims.iat)
    assert.equal(1700000000, claims.nbf)
    assert.equal(1700000300, claims.exp)
    assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", claims.jti)
    assert.are_not.equal(claims.jti, (jwt.decode(b)).jti)
    -- the exp in the raw JSON is a bare number, not a string or a float
    local raw = core.b64url_decode(a:match("^[^.]+%.([^.]+)"))
    assert.matches('"exp":1700000300[,}]', raw)
    -- and the signature is what openssl makes of the same input
    local input = a:match("^(.*)%.[^.]+$")
    assert.equal(openssl_rs256(input, FX .. "app-key.pem"), a:match("%.([^.]+)$"))
    assert.is_table(cjson.decode(raw))
  end)

  it("refuse a lifetime over 10 minutes", function()
    assert.has_error(function()
      jwt.client_assertion { key = key, client_id = "a", audience = "b", lifetime = 601 }
    end)
  end)
end)

describe("encodings and randomness", function()
  it("round-trip base64url without padding", function()
    for _, s in ipairs { "", "f", "fo", "foo", "foob", "\255\254\253", string.rep("x", 1000) } do
      local e = core.b64url_encode(s)
      assert.is_nil(e:find("[=+/]"))
      assert.equal(s, core.b64url_decode(e))
    end
    assert.equal("_-8", core.b64url_encode("\255\239"))
    local v, err = core.b64url_decode("a+b=")
    assert.is_nil(v)
    assert.equal("decode", err.kind)
  end)

  -- Found by the b64url fuzz target: whitespace around the input was
  -- skipped (EVP_DecodeBlock trims it), so "    AAAA" decoded.
  it("refuse anything outside the base64url alphabet, whitespace included", function()
    for _, s in ipairs { "    AAAA", "AAAA\t\t\t\t", "AA AA", "AAA\n", "\0AAA" } do
      assert.is_nil(core.b64url_decode(s), s)
    end
  end)

  it("hash strings and files with SHA-256", function()
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", core.sha256(""))
    local path = write_temp(string.rep("abc", 100000))
    local expected = sh("sha256sum " .. path):match("^(%x+)")
    assert.equal(expected, core.sha256_file(path))
    assert.equal(expected, core.sha256(string.rep("abc", 100000)))
    os.remove(path)
    local v, err = core.sha256_file("/no/such/file")
    assert.is_nil(v)
    assert.equal("file", err.kind)
  end)

  it("make random bytes and version-4 UUIDs", function()
    assert.equal(32, #core.random(32))
    assert.are_not.equal(core.random(16), core.random(16))
    local seen = {}
    for _ = 1, 1000 do
      local u = core.uuid4()
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", u)
      assert.is_nil(seen[u])
      seen[u] = true
    end
  end)
end)
