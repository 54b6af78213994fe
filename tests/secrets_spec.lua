-- Credentials stay where they belong: no token request or discovery follows
-- a redirect to another origin, every error value and the host's own line
-- are redacted whatever a server echoes, config errors never quote a value,
-- no OpenSSL read ever prompts, and TLS keys or plain http:// to anything
-- but loopback are refused outside a lab. One regression spec per finding of the security review.
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local auth = require("auditrun.auth")
local config = require("auditrun.config")
local errors = require("auditrun.errors")
local jwt = require("auditrun.jwt")

local FX = "tests/fixtures/"

-- Every place an error shows its text.
local function shown(err)
  local parts = { err.message, tostring(err), err.body or "" }
  if type(err.response) == "table" then parts[#parts + 1] = err.response.body or "" end
  return table.concat(parts, "\n")
end

local function assert_hidden(err, secret)
  local text = shown(err)
  assert.is_nil(text:find(secret, 1, true), "the secret shows in: " .. text)
  local escaped = require("auditrun.http").escape(secret)
  assert.is_nil(text:find(escaped, 1, true), "the encoded secret shows in: " .. text)
end

describe("secrets", function()
  local sb = sandbox.for_describe {}
  before_each(function() auth.reset() end)

  local function oidc(name) return sb.url .. "/test/oidc/" .. name end

  local function secret_session(identity, secret)
    return auth.session { identity_url = identity, client_id = "app", scope = "s", secret = secret, ca_file = sb.ca_file }
  end

  -- Regression: the token request followed a 307 and re-posted the client
  -- secret or assertion to wherever it pointed, another host included.
  it("never follows a redirect of the token request, and names its target", function()
    local s = secret_session(oidc("redirect-token"), "never-sent-on-s3cret")
    local token, err = s:token()
    assert.is_nil(token)
    assert.equal("auth", err.kind)
    assert.matches("answered HTTP 307, a redirect to https://localhost:%d+/test/echo", err.message)
    assert.matches("credentials are never sent on", err.message)
  end)

  it("follows discovery's redirects within its origin only", function()
    assert(auth.discover(oidc("same-origin"), { ca_file = sb.ca_file }))
    local meta, err = auth.discover(oidc("redirect-discovery"), { ca_file = sb.ca_file })
    assert.is_nil(meta)
    assert.matches("redirected to https://localhost:%d+/test/echo, another origin: refusing to follow", err.message)
  end)

  -- Regression: a token endpoint's error_description carried the secret or
  -- the whole assertion into the error value.
  it("redacts the client secret a token endpoint echoes, as sent and form-encoded", function()
    local secret = "s3cret/with+plus and space"
    local _, err = secret_session(oidc("echo"), secret):token()
    assert.equal("auth", err.kind)
    assert.matches("invalid_client", err.message)
    assert.matches("[redacted]", err.message, 1, true)
    assert_hidden(err, secret)
  end)

  it("redacts the client assertion a token endpoint echoes", function()
    local key = assert(jwt.load_key { cert = FX .. "app.pfx", password = "sandbox-pass" })
    local s = auth.session { identity_url = oidc("echo"), client_id = "app", scope = "s", key = key, ca_file = sb.ca_file }
    local sent
    local real = s.assertion
    s.assertion = function(self, meta) sent = real(self, meta) return sent end
    local _, err = s:token()
    assert.truthy(sent)
    assert.matches("client_assertion=[redacted]", err.message, 1, true)
    assert_hidden(err, sent)
    -- single-use: forgotten once its answer is read
    assert.equal(sent, errors.redact(sent))
  end)

  -- Regression: an API answer echoing the request put the bearer token in
  -- err.message, tostring(err), err.body, err.response.body and on stderr.
  it("redacts the bearer token an API error echoes, in the error value and on the host's stderr", function()
    local s = auth.session { identity_url = sb.issuer, client_id = sb.clients.secret, scope = sb.scope,
                             secret = sb.clients.secret_value, ca_file = sb.ca_file }
    local token = assert(s:token())
    local res, err = s:request { url = sb.url .. "/test/echo?status=403", retry = false }
    assert.is_nil(res)
    assert.equal(403, err.status)
    assert.matches("[redacted]", err.response.body, 1, true)
    assert_hidden(err, token)

    local code, out, stderr = host.run_script(([[
      local auth = require("auditrun.auth")
      local s = auth.session { ca_file = %q, identity_url = %q, client_id = %q, scope = %q, secret = %q }
      io.stdout:write(assert(s:token()))
      local _, err = s:request { url = %q, retry = false }
      error(err, 0)
    ]]):format(sb.ca_file, sb.issuer, sb.clients.secret, sb.scope, sb.clients.secret_value, sb.url .. "/test/echo?status=500"))
    assert.equal(1, code)
    assert.truthy(#out > 20, stderr)
    assert.matches("^auditrun: http: HTTP 500", stderr)
    assert.is_nil(stderr:find(out, 1, true))
    assert.is_nil(stderr:find(sb.clients.secret_value, 1, true))
  end)

  -- Regression: a secret shorter than four bytes was never registered, and
  -- a server echoing it had it printed verbatim.
  it("redacts a secret shorter than four bytes where it stands as a value, on the host's line too", function()
    errors.secret("k3y")
    assert.equal('{"key":"[redacted]","note":"k3yboard sk3y"}', errors.redact('{"key":"k3y","note":"k3yboard sk3y"}'))
    assert.equal("ev-api-key: [redacted]\r\nx: k3y-1", errors.redact("ev-api-key: k3y\r\nx: k3y-1"))
    assert.equal("a=[redacted]&b=[redacted] (k3y.)", errors.redact("a=k3y&b=k3y (k3y.)"))
    assert.equal("[redacted]", errors.redact("k3y"))
    errors.forget("k3y")
    assert.equal("a=k3y", errors.redact("a=k3y"))
    errors.secret("a b")
    assert.equal("q=[redacted]&r=[redacted] s=[redacted]", errors.redact("q=a%20b&r=a+b s=a b"))
    errors.forget("a b")

    local code, _, stderr = host.run_script(([[
      local auth = require("auditrun.auth")
      local s = auth.session { ca_file = %q, identity_url = %q, client_id = "app", scope = "s", secret = "x9z" }
      local _, err = s:token()
      error(err, 0)
    ]]):format(sb.ca_file, oidc("echo")))
    assert.equal(1, code)
    assert.matches("^auditrun: auth: token request refused %(HTTP 400%): invalid_client: cannot accept .*"
      .. "client_secret=%[redacted%]", stderr)
    assert.is_nil(stderr:find("x9z", 1, true), stderr)
  end)

  it("redacts a registered secret in any error value, and in a string error the host prints", function()
    errors.secret("dealcloud-key-0123456789")
    local err = errors.new("http", "echo: dealcloud-key-0123456789", { body = "x dealcloud-key-0123456789" })
    assert.equal("http: echo: [redacted]", tostring(err))
    assert.equal("x [redacted]", err.body)
    errors.forget("dealcloud-key-0123456789")
    local code, _, stderr = host.run_script([[
      require("auditrun.errors").secret("exavault-token-abcdef")
      error("the server said exavault-token-abcdef")
    ]])
    assert.equal(1, code)
    assert.matches("the server said %[redacted%]", stderr)
    assert.is_nil(stderr:find("exavault-token-abcdef", 1, true))
  end)

  -- Regression: a syntax error printed "unfinished string near '"s3cret } }'".
  local cases = {
    { 'return { contoso = { cert_password = "s3cret } }', "line 1 (key 'cert_password'): unfinished string" },
    { 'return { contoso = {\n  client_id = "x",\n  cert_password = s3cret x } }',
      "line 3 (key 'cert_password'): '}' expected" },
    { 'return { contoso = { client_secret = s3cret() } }', "line 1 (key 'client_secret'): attempt to call a nil value" },
    { "return { contoso = { client_secret = 'a=s3cret' .. x.y } }",
      "line 1 (key 'client_secret'): attempt to index a nil value" },
    { 'return { contoso = { cert_password = "s3cret" }', "line 1 (key 'cert_password'): '}' expected" },
    { 'return { contoso = { cert_password = {} .. "s3cret" } }',
      "line 1 (key 'cert_password'): attempt to concatenate a table value" },
  }
  for _, case in ipairs(cases) do
    it("names file, line and key of a config error, never its value: " .. case[2], function()
      local dir = util.tempdir()
      local path = dir .. "/config.lua"
      util.write(path, case[1])
      local _, err = config.read_file(path, "contoso", true)
      os.execute("rm -rf " .. dir)
      assert.equal("config", err.kind)
      assert.equal("config file " .. path .. ", " .. case[2], err.message)
      assert.is_nil(tostring(err):find("s3cret", 1, true))
    end)
  end

  -- Regression: OpenSSL prompted "Enter PEM pass phrase:" on the terminal for
  -- an encrypted-looking certificate, and an unattended run hung.
  it("never prompts for a password, even on a terminal", function()
    local dir = util.tempdir()
    local pem = util.read(FX .. "app-cert.pem"):gsub("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n",
      "%0Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n", 1)
    util.write(dir .. "/cert.pem", pem)
    local script = dir .. "/load.lua"
    util.write(script, ([[
      local jwt = require("auditrun.jwt")
      local key, err = jwt.load_key { cert = %q, key = %q }
      print(key, err)
    ]]):format(dir .. "/cert.pem", FX .. "app-key.pem"))
    -- script(1) gives the host a terminal to prompt on.
    local out = util.sh(("timeout 20 script -qec %s /dev/null < /dev/null 2>&1; echo \"exit=$?\"")
      :format(host.quote(host.binary .. " " .. script)))
    os.execute("rm -rf " .. dir)
    assert.is_nil(out:find("pass phrase", 1, true), out)
    assert.matches("no certificate found in", out)
    assert.matches("exit=0", out)
  end)

  -- Regression: `auditrun config` called a profile with a plain http://
  -- URL ready, while sign-in refused even the loopback sandbox over http.
  it("refuses plain http:// for sign-in and API calls but to loopback, outside a lab", function()
    local meta, err = auth.discover("http://10.0.0.1:9/identity")
    assert.is_nil(meta)
    assert.equal("the identity URL http://10.0.0.1:9/identity is not https: credentials and tokens are never "
      .. "sent in the clear but to loopback (AUDITRUN_LAB=1 allows it for a lab)", err.message)
    local s = secret_session(sb.issuer, "lab-secret-value")
    local res, rerr = s:request { url = "http://10.0.0.1:9/api" }
    assert.is_nil(res)
    assert.matches("the API URL http://10.0.0.1:9/api is not https", rerr.message)
    for url, allowed in pairs {
      ["http://127.0.0.1:9/x"] = true, ["HTTP://LOCALHOST/x"] = true, ["http://[::1]:8080/x"] = true,
      ["http://127.1.2.3/x"] = true, ["http://u:p@localhost:1/x"] = true,
      ["http://127.0.0.1.example.com/x"] = false, ["http://localhost.example.com/x"] = false,
      ["http://localhost@10.0.0.1/x"] = false, ["http://10.0.0.1/x"] = false, ["ftp://localhost/x"] = false,
    } do
      assert.equal(allowed, auth.check_https(url, "u") == true, url)
    end
    local code, out = host.run_script([[print(require("auditrun.auth").check_https("http://10.0.0.1/x", "lab"))]],
      { env = { AUDITRUN_LAB = "1" } })
    assert.equal(0, code)
    assert.equal("true\n", out)
  end)

  it("signs in and calls an API over plain http on loopback, with no lab setting", function()
    local plain = sandbox.start { http = true }
    local ok, perr = pcall(function()
      local s = auth.session { identity_url = plain.issuer, client_id = plain.clients.secret, scope = plain.scope,
                               secret = plain.clients.secret_value }
      local res = assert(s:request { url = plain.url .. "/test/protected", retry = false })
      assert.equal(plain.clients.secret, require("cjson").decode(res.body).client_id)
    end)
    plain:stop()
    assert(ok, perr)
  end)

  -- Regression: libcurl wrote TLS session keys to $SSLKEYLOGFILE, 0644.
  it("refuses to run with SSLKEYLOGFILE set, unless in a lab where the key file is 0600", function()
    local dir = util.tempdir()
    local script = host.script(([[
      local http = require("auditrun.http")
      local ca_file, url = %q, %q
      local _, err = http.get(url, { retry = false, ca_file = ca_file })
      if err then error(err, 0) end
      print("fetched")
    ]]):format(sb.ca_file, sb.url .. "/test/small"))
    local code, _, stderr = host.run({ script }, { env = { SSLKEYLOGFILE = dir .. "/keys" } })
    assert.equal(1, code)
    assert.matches("^auditrun: tls: SSLKEYLOGFILE is set: TLS session keys would be written to " .. dir
      .. "/keys; unset it %(AUDITRUN_LAB=1 allows it for a lab%)", stderr)
    assert.is_nil(util.read(dir .. "/keys"))
    local out
    code, out, stderr = host.run({ script }, { env = { SSLKEYLOGFILE = dir .. "/keys", AUDITRUN_LAB = "1" } })
    os.remove(script)
    assert.equal(0, code, stderr)
    assert.equal("fetched\n", out)
    assert.matches("warning: SSLKEYLOGFILE is set", stderr)
    assert.equal("600", (util.sh("stat -c %a " .. dir .. "/keys"):gsub("%s+$", "")))
    os.execute("rm -rf " .. dir)
  end)
end)
