-- Signs in with the app certificate or secret and calls a protected API: the smallest end-to-end run
local auditrun = require "auditrun"
local oidc = require "auditrun.oidc"

local api_url, issuer = ...
if not api_url then
  error(auditrun.error("usage", "usage: auditrun sandbox-check API_URL [ISSUER]"))
end
print("placeholder", issuer)
