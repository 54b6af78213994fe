-- Signs in with the configured app (certificate or secret) and calls one API URL with the token
local auditrun = require "auditrun"
local auth = require "auditrun.auth"
local config = require "auditrun.config"

local try = auditrun.try
local url = ...
if not url then error(auditrun.error("usage", "usage: auditrun token-check URL")) end

local cfg = try(config.load())
if cfg.ca_file then auditrun.http.ca_file = cfg.ca_file end
local session = try(auth.from_config(cfg))
local t0 = auditrun.now()
local token = try(session:token())
local claims = try(auditrun.jwt.decode(token))
print(string.format("signed in to %s as %s in %.0f ms; token valid for %d s, scope %s",
  cfg.identity_url, cfg.client_id, (auditrun.now() - t0) * 1000, math.floor(claims.exp - os.time()),
  tostring(claims.scope)))
local res = try(session:request { url = url })
print(string.format("GET %s -> %d (%d bytes)", url, res.status, res.bytes))
