-- auditrun.http: HTTP requests for scripts, with JSON, error values and the
-- retry policy.
--
-- http.request{...} returns a response, or nil and an error value. A status
-- of 400 or more is an error of kind "http" unless listed in `ok_status`.
-- Requests that are safe to repeat (GET, HEAD, OPTIONS, or any request the
-- caller marks `idempotent = true`, such as a POST that only queries) are
-- retried on connection failures and on 408/429/500/502/503/504, with
-- exponential backoff and full jitter, Retry-After honoured, an attempt cap,
-- an overall deadline, and one retry budget shared by every task so that an
-- outage does not become a retry storm.
local core = require("auditrun.core")
local json = require("auditrun.json")
local errors = require("auditrun.errors")
local log = require("auditrun.log")
local metrics = require("auditrun.metrics")
local task = require("auditrun.task")
local time = require("auditrun.time")

local M = {}

M.null = json.null

local function env(name)
  local v = os.getenv(name)
  if v == "" then return nil end
  return v
end

-- A request that names no CA bundle trusts AUDITRUN_CA_FILE, read from the
-- environment each time, else the system's: there is no module-wide
-- setting to change; sessions and clients pass their own (ca_file).

local SAFE_METHODS = { GET = true, HEAD = true, OPTIONS = true }
-- A service that says it is busy: the waits count as throttled (metrics).
local THROTTLE_STATUS = { [429] = true, [503] = true }
local RETRY_STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }
local RETRY_KINDS = { timeout = true, connect = true, connection = true }
local REASONS = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [413] = "Payload Too Large", [415] = "Unsupported Media Type", [422] = "Unprocessable Entity",
  [429] = "Too Many Requests", [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

-- Every request default, in one place; the C core applies what it is
-- given. Seconds, bytes per second, bytes. A request held in memory has an
-- overall timeout; a download to a file (output) has none (a big report
-- takes what it takes) but must keep moving.
M.DEFAULTS = {
  connect_timeout = 30, timeout = 120, low_speed_limit = 1, low_speed_time = 60, max_redirects = 5,
  max_body = 64 * 1024 * 1024,
}
-- A download stops at 4 GiB, counted after decompression.
M.DOWNLOAD_DEFAULTS = { connect_timeout = 30, low_speed_limit = 1, low_speed_time = 120, max_redirects = 5,
                        max_body = 64 * 1024 * 1024, max_download = 4 * 1024 ^ 3 }

-- Options passed to the C core as they are.
local CORE_OPTIONS = {
  "body_file", "ca_file", "connect_timeout", "low_speed_limit", "low_speed_time", "max_body", "max_download",
  "max_redirects", "output", "timeout",
}
local KNOWN = {
  method = true, url = true, query = true, headers = true, body = true, json = true, form = true,
  retry = true, idempotent = true, ok_status = true, credential_headers = true,
}
for _, k in ipairs(CORE_OPTIONS) do KNOWN[k] = true end

-- ---- encoding ------------------------------------------------------------

M.escape = core.url_escape
M.unescape = core.url_unescape

local function pairs_in_order(t)
  -- A list of {name, value} keeps its order; a map is sorted by name so the
  -- same call always sends the same bytes.
  if t[1] ~= nil then return t end
  local list = {}
  for k, v in pairs(t) do list[#list + 1] = { k, v } end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  return list
end

local function scalar(v, name)
  local ty = type(v)
  if ty == "string" then return v end
  if ty == "number" then
    return math.type(v) == "integer" and string.format("%d", v) or tostring(v)
  end
  if ty == "boolean" then return tostring(v) end
  error(string.format("value of '%s' must be a string, number or boolean, not %s", name, ty), 4)
end

--- Encodes a table as name=value&... (percent-encoding everything but
--- RFC 3986 unreserved characters); a list value repeats the name.
function M.encode_query(t)
  local out = {}
  for _, kv in ipairs(pairs_in_order(t)) do
    local name, v = kv[1], kv[2]
    if type(v) == "table" then
      for _, item in ipairs(v) do
        out[#out + 1] = M.escape(name) .. "=" .. M.escape(scalar(item, name))
      end
    elseif v ~= nil then
      out[#out + 1] = M.escape(name) .. "=" .. M.escape(scalar(v, name))
    end
  end
  return table.concat(out, "&")
end

--- URL without its query string: what messages show, in case the query
--- carries something private.
local function display_url(url)
  return (url:gsub("[?#].*$", ""))
end

-- ---- retry policy ----------------------------------------------------------

local Budget = {}
Budget.__index = Budget

--- A retry budget shared by many requests: each retry spends a token, each
--- success earns `ratio` of one, up to `max`.
function M.budget(opts)
  opts = opts or {}
  local max = opts.max or 20
  return setmetatable({ tokens = opts.tokens or max, max = max, ratio = opts.ratio or 0.2 }, Budget)
end

function Budget:withdraw()
  if self.tokens < 1 then return false end
  self.tokens = self.tokens - 1
  return true
end

function Budget:deposit()
  self.tokens = math.min(self.max, self.tokens + self.ratio)
end

M.shared_budget = M.budget()

local Policy = {}
Policy.__index = Policy

--- A retry policy. Every field may be replaced, clock and randomness
--- included, which is how the tests make it deterministic.
function M.policy(opts)
  opts = opts or {}
  local p = setmetatable({
    attempts = opts.attempts or 5,     -- tries in all, the first included
    base = opts.base or 0.5,           -- first backoff ceiling, seconds
    cap = opts.cap or 30,              -- largest backoff ceiling
    deadline = opts.deadline or 300,   -- no retry starts after this many seconds
    budget = opts.budget or M.shared_budget,
    clock = opts.clock or core.now,
    wallclock = opts.wallclock or os.time,
    random = opts.random or math.random,
    sleep = opts.sleep or task.sleep,
  }, Policy)
  return p
end

M.default_policy = M.policy()
M.no_retry = M.policy { attempts = 1 }

local MAX_SERVER_DELAY = 2 ^ 31  -- seconds, some 68 years

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
                 Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

--- Seconds to wait that the server asked for, from retry-after-ms or
--- Retry-After (seconds or an HTTP-date), or nil.
function Policy:server_delay(headers)
  if not headers then return nil end
  -- Digits only (tonumber would take "1e999", hex, "inf"), and never more
  -- than MAX_SERVER_DELAY: the retry deadline decides what to do with it.
  local ms = tonumber(tostring(headers["retry-after-ms"] or ""):match("^%s*(%d+%.?%d*)%s*$"))
  if ms then return math.min(ms / 1000, MAX_SERVER_DELAY) end
  local ra = headers["retry-after"]
  if not ra then return nil end
  local secs = tonumber(ra:match("^%s*(%d+)%s*$"))
  if secs then return math.min(secs, MAX_SERVER_DELAY) end
  local d, mon, y, h, mi, s = ra:match("^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  local at = time.utc { year = tonumber(y), month = MONTHS[mon], day = tonumber(d),
                        hour = tonumber(h), min = tonumber(mi), sec = tonumber(s) }
  return math.max(0, at - self.wallclock())
end

--- Full jitter: a uniform pick between 0 and the exponential ceiling.
function Policy:backoff(attempt)
  local ceiling = math.min(self.cap, self.base * 2 ^ (attempt - 1))
  return self.random() * ceiling
end

-- ---- requests ------------------------------------------------------------

local function header_lines(headers)
  local lines = {}
  if headers then
    for _, kv in ipairs(pairs_in_order(headers)) do
      lines[#lines + 1] = kv[1] .. ": " .. scalar(kv[2], kv[1])
    end
  end
  return lines
end

local function has_header(lines, name)
  local prefix = name:lower() .. ":"
  for _, l in ipairs(lines) do
    if l:lower():sub(1, #prefix) == prefix then return true end
  end
  return false
end

-- True when one of the header lines carries a credential: Authorization,
-- or a header the caller names in credential_headers (a vendor's API key).
-- Such a request follows no redirect to another origin (the C core ends
-- it with kind "redirect", naming both origins): libcurl would send every
-- header but Authorization to wherever a redirect points.
local function carries_credentials(lines, names)
  local marked = { authorization = true }
  if names ~= nil and type(names) ~= "table" then
    error("http.request{...}: credential_headers must be a list of header names", 5)
  end
  for _, name in ipairs(names or {}) do marked[tostring(name):lower()] = true end
  for _, line in ipairs(lines) do
    if marked[line:match("^([^:]*)"):lower()] then return true end
  end
  return false
end

local function build(opts)
  for k in pairs(opts) do
    if not KNOWN[k] then error("unknown request option '" .. tostring(k) .. "'", 4) end
  end
  if type(opts.url) ~= "string" then error("http.request{...}: url must be a string", 4) end
  local method = (opts.method or "GET"):upper()
  local url = opts.url
  if opts.query then
    local q = M.encode_query(opts.query)
    if q ~= "" then url = url .. (url:find("?", 1, true) and "&" or "?") .. q end
  end
  local lines = header_lines(opts.headers)
  local body = opts.body
  local nbodies = (body and 1 or 0) + (opts.json ~= nil and 1 or 0) + (opts.form and 1 or 0)
    + (opts.body_file and 1 or 0)
  if nbodies > 1 then error("give one of body, json, form and body_file", 4) end
  if opts.json ~= nil then
    body = json.encode(opts.json)
    if not has_header(lines, "content-type") then lines[#lines + 1] = "Content-Type: application/json" end
  elseif opts.form then
    body = M.encode_query(opts.form)
    if not has_header(lines, "content-type") then
      lines[#lines + 1] = "Content-Type: application/x-www-form-urlencoded"
    end
  end
  if not has_header(lines, "accept") then lines[#lines + 1] = "Accept: application/json, */*;q=0.5" end
  local spec = { method = method, url = url, headers = lines, body = body,
                 same_origin = carries_credentials(lines, opts.credential_headers) }
  for _, k in ipairs(CORE_OPTIONS) do spec[k] = opts[k] end
  spec.ca_file = spec.ca_file or env("AUDITRUN_CA_FILE")
  for k, v in pairs(spec.output and M.DOWNLOAD_DEFAULTS or M.DEFAULTS) do
    if spec[k] == nil then spec[k] = v end
  end
  return spec
end

-- One transfer, waited for in this task.
local function once(spec)
  local req, err = core.request(spec)
  if not req then return nil, err end
  local ok, werr = pcall(task.wait, req)
  if not ok then
    req:close()
    error(werr, 0)
  end
  local res, rerr = req:result()
  req:close()
  return res, rerr
end

local function status_error(spec, res)
  local excerpt = errors.excerpt(res.body)
  local msg = string.format("HTTP %d%s from %s %s", res.status,
    REASONS[res.status] and (" " .. REASONS[res.status]) or "", spec.method, display_url(spec.url))
  if excerpt then msg = msg .. ": " .. excerpt:sub(1, 200) end
  return errors.new("http", msg, {
    status = res.status, retryable = RETRY_STATUS[res.status] or false, body = excerpt,
    url = display_url(spec.url), method = spec.method, response = res,
  })
end

local function accepted(opts, status)
  if status < 400 then return true end
  local ok = opts.ok_status
  if not ok then return false end
  for _, s in ipairs(ok) do if s == status then return true end end
  return false
end

--- request{method=, url=, query=, headers=, body=|json=|form=|body_file=, ...}
--- -> response | nil, err: one HTTP request on the loop, retried by its policy.
---
--- Other fields: output=, timeout=, connect_timeout=, low_speed_limit=,
--- low_speed_time=, max_redirects=, max_body=, max_download=, ca_file=,
--- retry=policy|false, idempotent=, ok_status={...}, credential_headers={...}.
--- credential_headers names the headers besides Authorization that carry
--- a secret: a request carrying one never follows a redirect to another
--- origin.
function M.request(opts)
  if type(opts) ~= "table" then
    error(string.format("http.request{...}: takes one table of options (url = ..., method = ...), not a %s",
      type(opts)), 2)
  end
  -- A body given as a function is made anew for every attempt (a client
  -- assertion must never be sent twice).
  local dynamic = type(opts.form) == "function" or type(opts.json) == "function"
    or type(opts.body) == "function"
  local spec = not dynamic and build(opts)
  local policy = opts.retry == false and M.no_retry or opts.retry or M.default_policy
  local safe = SAFE_METHODS[(opts.method or "GET"):upper()] or opts.idempotent == true
  local started = policy.clock()
  local attempt = 0
  while true do
    attempt = attempt + 1
    if dynamic then
      local o = {}
      for k, v in pairs(opts) do o[k] = v end
      for _, k in ipairs { "form", "json", "body" } do
        if type(o[k]) == "function" then o[k] = o[k](attempt) end
      end
      spec = build(o)
    end
    local res, err = once(spec)
    if res and accepted(opts, res.status) then
      policy.budget:deposit()
      res.attempts = attempt
      return res
    end
    if res then
      err = status_error(spec, res)
    else
      errors.scrub(err)
      err.retryable = RETRY_KINDS[err.kind] or false
      err.method, err.url = spec.method, display_url(spec.url)
      err.message = string.format("%s (%s %s)", err.message, spec.method, display_url(spec.url))
      if err.kind == "tls" and err.message:find("certificate problem", 1, true) then
        err.message = err.message .. "; if a private CA or a TLS-inspecting proxy signs the server's certificate, "
          .. "give its CA bundle as ca_file in the profile or AUDITRUN_CA_FILE"
      end
    end
    err.attempts = attempt
    if not (err.retryable and safe) then return nil, err end
    if attempt >= policy.attempts then
      if attempt > 1 then err.message = err.message .. string.format(" (gave up after %d attempts)", attempt) end
      return nil, err
    end
    local delay = policy:server_delay(res and res.headers) or policy:backoff(attempt)
    if policy.clock() - started + delay > policy.deadline then
      err.message = err.message .. " (retry deadline reached)"
      return nil, err
    end
    if not policy.budget:withdraw() then
      err.message = err.message .. " (retry budget exhausted)"
      return nil, err
    end
    log.debug("retry", "%s; retry %d of %d in %.1f s", err.message, attempt, policy.attempts - 1, delay)
    metrics.add("retries", 1)
    if res and THROTTLE_STATUS[res.status] then metrics.add("throttled_seconds", delay) end
    policy.sleep(delay)
  end
end

-- Misuse is a programmer's mistake: it raises, naming the function and
-- what it takes, at the caller's line.
local function check_call(name, url, opts)
  if type(url) ~= "string" then
    error(string.format("http.%s(url, opts): url must be a string, not a %s%s", name, type(url),
      type(url) == "table" and string.format(" (http.%s takes the URL first; http.request takes one table)", name)
        or ""), 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("http.%s(url, opts): opts must be a table of request options, not a %s", name, type(opts)), 3)
  end
end

-- The function http.NAME(url, opts): request{} with the URL and method set.
local function with_method(name, method)
  return function(url, opts)
    check_call(name, url, opts)
    opts = opts or {}
    opts.url, opts.method = url, method
    return M.request(opts)
  end
end

--- get(url, opts) -> response | nil, err: request{} with method GET.
M.get = with_method("get", "GET")

--- post(url, opts) -> response | nil, err: request{} with method POST.
M.post = with_method("post", "POST")

--- Decodes a response body as JSON: value, or nil and an error of kind
--- "json". Lone UTF-16 surrogates are replaced (auditrun.json) with a
--- warning ("replaced_surrogates").
function M.decode(res, what)
  local counts = {}
  local value, derr = json.decode(res.body or "", counts)
  local name = what or ("the answer from " .. display_url(res.url or "?"))
  if value == nil then
    return nil, errors.new("json", string.format("malformed JSON in %s: %s", name, tostring(derr)),
      { body = errors.excerpt(res.body) })
  end
  if counts.surrogates > 0 then
    log.warn("replaced_surrogates", counts.surrogates, "%s: %d lone UTF-16 surrogate escape(s) (such as \\ud800) "
      .. "replaced by U+FFFD", name, counts.surrogates)
  end
  return value
end

--- request_json(opts): the request, its body decoded: value, response.
function M.request_json(opts)
  local res, err = M.request(opts)
  if not res then return nil, err end
  if res.status == 204 or res.body == "" then return M.null, res end
  local value, derr = M.decode(res)
  if value == nil then return nil, derr end
  return value, res
end

return M
