-- auditrun.jwt: app certificates and signed JWTs. The header and claims are
-- built here (auditrun.json); the signature comes from the C core (OpenSSL).
-- There is no way to make an unsigned ("alg": "none") token.
local core = require("auditrun.core")
local json = require("auditrun.json")
local errors = require("auditrun.errors")

local M = {}

local ALGS = { RS256 = true, PS256 = true }
M.MAX_LIFETIME = 600

M.b64url_encode = core.b64url_encode
M.b64url_decode = core.b64url_decode

--- load_key{cert=, key=, password=, now=} -> key | nil, err (kind "key").
--- A certificate that expires within 30 days is loaded, with a warning on
--- stderr (key:warning() gives it too).
function M.load_key(opts)
  local key, err = core.load_key(opts)
  if not key then return nil, err end
  local warning = key:warning()
  if warning and not opts.quiet then io.stderr:write("auditrun: warning: ", warning, "\n") end
  return key
end

--- The claims and header of a token, without checking the signature.
function M.decode(token)
  local h, c = token:match("^([%w_-]+)%.([%w_-]+)%.[%w_-]*$")
  if not h then return nil, errors.new("jwt", "not a JWT") end
  local hj, cj = core.b64url_decode(h), core.b64url_decode(c)
  local header = hj and json.decode(hj)
  local claims = cj and json.decode(cj)
  if type(header) ~= "table" or type(claims) ~= "table" then
    return nil, errors.new("jwt", "not a JWT: header or claims are not JSON")
  end
  return claims, header
end

--- sign(key, header, claims) -> compact JWT. header.alg must be RS256 or PS256.
function M.sign(key, header, claims)
  assert(ALGS[header.alg], "JWT alg must be RS256 or PS256")
  local input = core.b64url_encode(json.encode(header)) .. "." .. core.b64url_encode(json.encode(claims))
  return input .. "." .. core.b64url_encode(key:sign(header.alg, input))
end

--- client_assertion{key=, client_id=, audience=, lifetime=, kid=, alg=, now=}
--- -> a private_key_jwt assertion: iss = sub = client id, a fresh jti, times
--- as integers, x5t and x5t#S256 from the certificate.
function M.client_assertion(o)
  assert(o.key and o.client_id and o.audience, "client_assertion needs key, client_id and audience")
  local lifetime = o.lifetime or 300
  assert(lifetime > 0 and lifetime <= M.MAX_LIFETIME, "assertion lifetime must be 1..600 seconds")
  local now = math.floor(o.now or os.time())
  local header = {
    alg = o.alg or "RS256",
    typ = "JWT",
    x5t = core.b64url_encode(o.key:thumbprint("sha1")),
    ["x5t#S256"] = core.b64url_encode(o.key:thumbprint("sha256")),
    kid = o.kid,
  }
  local claims = {
    iss = o.client_id,
    sub = o.client_id,
    aud = o.audience,
    jti = o.jti or core.uuid4(),
    iat = now,
    nbf = now,
    exp = now + math.floor(lifetime),
  }
  return M.sign(o.key, header, claims)
end

return M
