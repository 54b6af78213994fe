-- auditrun.auth: app sign-in with OAuth 2 client credentials.
--
-- The identity service is found by OIDC discovery (its issuer must be the
-- URL we asked). A certificate signs a fresh private_key_jwt assertion for
-- every token request, retries included; a client secret is sent as the
-- form fields AvePoint documents. Tokens are cached per identity, client and
-- scope, and renewed ahead of expiry by one task while the others wait. A
-- 401 from an API drops the token, gets a new one and retries once.
local config = require("auditrun.config")
local errors = require("auditrun.errors")
local log = require("auditrun.log")
local http = require("auditrun.http")
local jwt = require("auditrun.jwt")
local task = require("auditrun.task")

local M = {}

local ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

local discovered = {}   -- identity URL -> provider metadata
local sessions = {}     -- identity \0 client \0 scope -> session

local function trim_slash(url) return (url:gsub("/+$", "")) end

-- scheme://host:port, lower-cased, the port always given.
local function origin(url)
  local scheme, authority = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then return nil end
  scheme, authority = scheme:lower(), authority:gsub("^.*@", ""):lower()
  if not authority:match(":%d+$") then authority = authority .. (scheme == "https" and ":443" or ":80") end
  return scheme .. "://" .. authority
end
M.origin = origin

--- Refuses a URL that credentials or a token would travel to in the clear
--- (config.cleartext_refusal: plain http:// but to loopback, outside a lab).
local function check_https(url, what)
  local why = config.cleartext_refusal(url)
  if not why then return true end
  return nil, errors.new("auth", string.format("%s %s %s", what, url, why))
end
M.check_https = check_https

local REDIRECTS = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

-- The target of a redirect answer, made absolute, or nil.
local function redirect_target(res, from)
  if not REDIRECTS[res.status] then return nil end
  local loc = res.headers.location
  if not loc then return nil end
  if loc:match("^%a[%w+.-]*://") then return loc end
  if loc:sub(1, 2) == "//" then return from:match("^(%a[%w+.-]*:)") .. loc end
  if loc:sub(1, 1) == "/" then return origin(from) .. loc end
  return (from:gsub("[?#].*$", ""):gsub("[^/]*$", "")) .. loc
end

--- discover(identity_url, {ca_file=}) -> metadata | nil, err (kind "auth").
--- Redirects are followed within the identity service's own origin only.
function M.discover(identity_url, opts)
  opts = opts or {}
  local base = trim_slash(identity_url)
  if discovered[base] then return discovered[base] end
  local ok, herr = check_https(base, "the identity URL")
  if not ok then return nil, herr end
  local url, res = base .. "/.well-known/openid-configuration", nil
  for _ = 1, 6 do
    local err
    res, err = http.request { url = url, ca_file = opts.ca_file, retry = opts.retry, max_redirects = 0 }
    if not res then
      err.message = "OIDC discovery at " .. base .. " failed: " .. err.message
      return nil, err
    end
    local target = redirect_target(res, url)
    if not target then break end
    if origin(target) ~= origin(base) then
      return nil, errors.new("auth", string.format(
        "OIDC discovery at %s redirected to %s, another origin: refusing to follow", base, target))
    end
    url, res = target, nil
  end
  if not res then return nil, errors.new("auth", "OIDC discovery at " .. base .. " redirected too many times") end
  local meta, derr = http.decode(res, "the OIDC discovery answer of " .. base)
  if not meta then return nil, derr end
  if type(meta) ~= "table" or type(meta.issuer) ~= "string" or type(meta.token_endpoint) ~= "string" then
    return nil, errors.new("auth", "OIDC discovery at " .. base .. " gave no issuer and token endpoint")
  end
  if trim_slash(meta.issuer) ~= base then
    return nil, errors.new("auth", string.format(
      "OIDC discovery at %s names another issuer (%s): refusing to sign in there", base, meta.issuer))
  end
  ok, herr = check_https(meta.token_endpoint, "the token endpoint of " .. base .. ",")
  if not ok then return nil, herr end
  discovered[base] = meta
  return meta
end

local Session = {}
Session.__index = Session

local function refusal(res, body)
  local code = type(body) == "table" and body.error or nil
  local desc = type(body) == "table" and body.error_description or nil
  local msg = "token request refused (HTTP " .. res.status .. ")"
  if code then msg = msg .. ": " .. tostring(code) end
  if desc then msg = msg .. ": " .. tostring(desc) end
  return errors.new("auth", msg, { status = res.status, error = code, retryable = false })
end

--- session{identity_url=|token_url=, client_id=, scope=, key=|secret=, ...}
--- -> the shared session for that identity service, client and scope.
---
--- The identity service is found by OIDC discovery (identity_url) or its
--- token endpoint given as is (token_url). Other fields: audience=, kid=,
--- alg=, ca_file=, clock=, retry=.
function M.session(o)
  if type(o) ~= "table" then
    error("auth.session{...}: takes one table (identity_url = ..., client_id = ..., scope = ..., key = ...)", 2)
  end
  if not ((o.identity_url or o.token_url) and o.client_id and o.scope) then
    error("auth.session{...}: needs identity_url or token_url, client_id and scope", 2)
  end
  if (o.key ~= nil) == (o.secret ~= nil) then error("auth.session{...}: give exactly one of key and secret", 2) end
  errors.secret(o.secret)
  local id = table.concat({ trim_slash(o.identity_url or o.token_url), o.client_id, o.scope }, "\0")
  local s = sessions[id]
  if s then
    s.key, s.secret = o.key, o.secret  -- the newest credentials win
    return s
  end
  s = setmetatable({
    identity_url = o.identity_url and trim_slash(o.identity_url), token_url = o.token_url,
    client_id = o.client_id, scope = o.scope,
    key = o.key, secret = o.secret, audience = o.audience, kid = o.kid, alg = o.alg,
    ca_file = o.ca_file, clock = o.clock or task.now, retry = o.retry,
    tokens_fetched = 0,
  }, Session)
  sessions[id] = s
  return s
end

--- Forgets every cached session and discovery (tests; a config change).
function M.reset()
  discovered, sessions = {}, {}
end

--- A fresh client assertion for one token request.
function Session:assertion(meta)
  return jwt.client_assertion {
    key = self.key, client_id = self.client_id, audience = self.audience or meta.token_endpoint,
    kid = self.kid, alg = self.alg, lifetime = 300,
  }
end

function Session:request_token()
  local meta, err
  if self.token_url then
    local ok, herr = check_https(self.token_url, "the token endpoint")
    if not ok then return nil, herr end
    meta = { token_endpoint = self.token_url }
  else
    meta, err = M.discover(self.identity_url, { ca_file = self.ca_file, retry = self.retry })
    if not meta then return nil, err end
  end
  -- Each assertion is a secret while its answer is read (a refusal may
  -- quote it); it is single-use, so it is forgotten after.
  local assertions = {}
  local form = function()
    local f = { grant_type = "client_credentials", client_id = self.client_id, scope = self.scope }
    if self.key then
      f.client_assertion_type = ASSERTION_TYPE
      f.client_assertion = errors.secret(self:assertion(meta))
      assertions[#assertions + 1] = f.client_assertion
    else
      f.client_secret = self.secret
    end
    return f
  end
  local res, rerr = self:post_token(meta, form)
  for _, a in ipairs(assertions) do errors.forget(a) end
  return res, rerr
end

-- The token request itself: never redirected (libcurl would post the
-- credentials again to wherever the answer points).
function Session:post_token(meta, form)
  -- Token requests are safe to repeat: a fresh assertion each time.
  local res, rerr = http.request {
    method = "POST", url = meta.token_endpoint, form = form, idempotent = true, max_redirects = 0,
    ca_file = self.ca_file, retry = self.retry, ok_status = { 400, 401, 403 },
  }
  if not res then
    rerr.message = "cannot get a token from " .. (self.identity_url or self.token_url) .. ": " .. rerr.message
    return nil, rerr
  end
  if res.status >= 300 and res.status < 400 then
    return nil, errors.new("auth", string.format(
      "the token endpoint %s answered HTTP %d, a redirect to %s: credentials are never sent on",
      meta.token_endpoint, res.status, tostring(res.headers.location or "nowhere")), { status = res.status })
  end
  local body = http.decode(res, "the token response")
  if res.status >= 400 then return nil, refusal(res, body) end
  if type(body) ~= "table" or type(body.access_token) ~= "string" then
    return nil, errors.new("auth", "the token response from " .. (self.identity_url or self.token_url)
      .. " has no access_token")
  end
  local lifetime = tonumber(body.expires_in) or 3600
  local now = self.clock()
  -- The token in use and the one before it are kept out of every message.
  errors.forget(self.previous_token)
  self.previous_token = self.access_token
  self.access_token = errors.secret(body.access_token)
  self.expires_at = now + lifetime
  -- Renew 5 minutes before expiry, or at half the lifetime when that is
  -- shorter.
  self.renew_at = now + lifetime - math.min(300, lifetime / 2)
  self.tokens_fetched = self.tokens_fetched + 1
  log.debug("token", "%s from %s, valid for %d s", self.tokens_fetched == 1 and "signed in" or "token renewed",
    self.identity_url or self.token_url, math.floor(lifetime))
  return self.access_token
end

--- token() -> a valid access token | nil, err. One task renews while the
--- others wait for its answer.
function Session:token()
  if self.access_token and self.clock() < self.renew_at then return self.access_token end
  if self.renewing then
    task.wait(self.renewing)
    if self.access_token then return self.access_token end
    return nil, self.last_error
  end
  local ev = task.event()
  self.renewing = ev
  local ok, token, err = pcall(self.request_token, self)
  self.renewing = nil
  task.signal(ev)
  if not ok then error(token, 0) end
  if not token then
    -- An expired token is no use; one still valid is kept until it expires.
    if self.access_token and self.clock() >= self.expires_at then self.access_token = nil end
    self.last_error = err
    if self.access_token then return self.access_token end
    return nil, err
  end
  return token
end

--- Drops the token if it is still the one given (a 401 said it is bad).
function Session:invalidate(token)
  if self.access_token == token then
    self.access_token, self.renew_at = nil, 0
  end
end

--- request(opts): http.request with the bearer token; a 401 gets a new
--- token and one more try.
function Session:request(opts)
  local ok, herr = check_https(opts.url or "", "the API URL")
  if not ok then return nil, herr end
  for attempt = 1, 2 do
    local token, err = self:token()
    if not token then return nil, err end
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    local headers = {}
    for k, v in pairs(opts.headers or {}) do headers[k] = v end
    headers.Authorization = "Bearer " .. token
    o.headers = headers
    o.ca_file = o.ca_file or self.ca_file
    local res, rerr = http.request(o)
    if res or rerr.status ~= 401 or attempt == 2 then return res, rerr end
    self:invalidate(token)
  end
end

return M
