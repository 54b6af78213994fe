-- Signs in with the configured app (certificate or secret) and calls one API URL with the token
local auditrun = require("auditrun")
local cli = require("auditrun.cli")
local config = require("auditrun.config")
local insights = require("auditrun.insights")

local opts = cli.parse({
  name = "token-check",
  summary = "Signs in with the configured app (certificate or secret) and calls one API URL with the token.",
  examples = {
    "auditrun token-check https://graph-us.avepointonlineservices.com/insights/groups/summary",
    "auditrun token-check --profile contoso https://graph-us.avepointonlineservices.com/insights/sites",
  },
  flags = function(p) p:argument("url", "The URL to call (GET) with the access token.") end,
}, ...)

local try = auditrun.try
local url = opts.url
local cfg = try(config.load(insights.settings, nil, { profile = opts.profile }))
local session = try(insights.session(cfg))
local t0 = auditrun.now()
try(session:token())
-- The token is the identity service's business: it may be a JWT or an
-- opaque string, so what it says comes from the token response.
print(string.format("signed in to %s as %s in %.0f ms; token valid for %d s, scope %s",
  cfg.identity_url, cfg.client_id, (auditrun.now() - t0) * 1000, math.floor(session.expires_at - session.clock()),
  session.scope))
local res = try(session:request { url = url })
print(string.format("GET %s -> %d (%d bytes)", url, res.status, res.bytes))
