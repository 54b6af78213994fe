-- auditrun.exavault: the ExaVault client: session logs and webhook logs.
--
--   local exavault = require("auditrun.exavault")
--   local c = auditrun.try(exavault.connect())        -- settings: auditrun.exavault.settings
--   for item in c:session_logs { from = "2025-01-01", type = "download" } do
--     print(item.attributes.date, item.attributes.userName, item.attributes.operation)
--   end
--
-- Every request carries the ev-api-key and ev-access-token headers. Logs
-- page by offset/limit: the API reports a total of 0 and may cap the page
-- size below what was asked, or send one page shorter than the others with
-- rows after it, so a walk ends on an empty page only. Logs come oldest
-- first (sort=date) unless
-- a sort is given. Operation types go by API value or by the file
-- manager's name (exavault.name / exavault.id translate both ways).
local activity = require("auditrun.activity")
local auth = require("auditrun.auth")
local client = require("auditrun.client")
local coverage = require("auditrun.coverage")
local data = require("auditrun.exavault.endpoints")
local errors = require("auditrun.errors")
local http = require("auditrun.http")
local log = require("auditrun.log")
local paging = require("auditrun.paging")
local settings = require("auditrun.exavault.settings")
local time = require("auditrun.time")
local util = require("auditrun.util")

local M = {}


-- A session carrying the account's key and token on every request; they
-- are credential headers, so no redirect takes them to another origin.
local Session = {}
Session.__index = Session

local CREDENTIAL_HEADERS = { "ev-api-key", "ev-access-token" }

function Session:request(opts)
  local ok, herr = auth.check_https(opts.url or "", "the API URL")
  if not ok then return nil, herr end
  local o = util.copy(opts)
  o.headers = util.copy(opts.headers)
  o.headers["ev-api-key"], o.headers["ev-access-token"] = self.api_key, self.access_token
  o.credential_headers = CREDENTIAL_HEADERS
  o.ca_file = o.ca_file or self.ca_file
  return http.request(o)
end

local Client = {}

-- Logs oldest first unless asked otherwise: a rerun's offsets then point
-- at the same rows.
local function sorted(params)
  local p = util.copy(params)
  if p.sort == nil then p.sort = "date" end
  return p
end

--- session_logs(params) / webhook_logs(params) -> iterator over the log
--- items ({type=, id=, attributes={...}}), oldest first by default.
function Client:session_logs(params)
  return self:rows("session_logs", sorted(params or {}))
end

function Client:webhook_logs(params)
  return self:rows("webhook_logs", sorted(params or {}))
end

--- log_pages(name, params, from[, window]) -> iterator over (items,
--- offset of the next page, where the next page starts: paging.pages),
--- for a walk that resumes.
---
--- It starts at `from` (an offset, 0 by default, or a position
--- paging.pages gave). window: the auditrun.coverage window of the walk,
--- told of each page, of its end, and of an error that stops it.
function Client:log_pages(name, params, from, win)
  local p = util.copy(sorted(assert(M.catalogue:named(name, params or {}))))
  local at_page = type(from) == "table" and from or nil
  p.offset = at_page and math.tointeger(at_page.offset) or from or 0
  local pages = self:pages(name, p, nil, at_page)
  local at = p.offset
  local field = data.fields[name].time
  -- A page shorter than the longest before it, until the next page shows rows came after it.
  local longest, short = 0, nil
  pages = coverage.watch(win, pages)
  return function()
    local body, _, after = pages()
    if body == nil then return nil end
    local rows = type(body.data) == "table" and body.data or {}
    if win and short and #rows > 0 then
      win:note(string.format("the page at offset %d held %d rows, fewer than the %d of the pages before, and rows "
        .. "came after it: the walk read on", short.offset, short.rows, longest))
    end
    short = #rows < longest and { offset = at, rows = #rows } or nil
    longest = math.max(longest, #rows)
    at = at + #rows
    if win then
      local first, last
      for _, item in ipairs(rows) do
        local t = time.read(type(item) == "table" and type(item.attributes) == "table" and item.attributes[field] or nil)
        if t and (not first or t < first) then first = t end
        if t and (not last or t > last) then last = t end
      end
      win:page(#rows, #rows, first, last)
    end
    return rows, at, after
  end
end

-- The coverage window (auditrun.coverage) of a log's walk over [from, to);
-- an open end is the moment the walk starts.
local function coverage_window(cov, which, from, to)
  return cov and cov:window { vendor = "exavault", source = which, from = from, to = to or os.time() }
end

--- event(item, which) -> a log item in the activity timeline's schema;
--- which is "session_logs" or "webhook_logs". An item whose time cannot be
--- read gets no time, and a warning.
function M.event(item, which)
  local f = data.fields[which]
  local a = type(item) == "table" and type(item.attributes) == "table" and item.attributes or {}
  local t = time.read(a[f.time])
  if not t then
    log.warn("unparsed_times", 1, "ExaVault %s: time %s of entry %s is not a time; the event is written without one",
      which, tostring(a[f.time]), tostring(item.id))
  end
  local action = a[f.action]
  return {
    time = t and time.iso(t, 3), vendor = "exavault", user = a[f.user],
    action = action, verb = data.verbs[action] or "other", source = f.source and a[f.source] or nil,
    ip = f.ip and a[f.ip] or nil, object = a[f.object], raw = item,
  }
end

--- timeline(client, from, to) -> the sources of the activity timeline
--- (auditrun.activity): session logs and webhook logs of [from, to), each
--- in time order.
function M.timeline(c, from, to, opts)
  local cov = opts and opts.coverage
  local out = {}
  for _, which in ipairs { "session_logs", "webhook_logs" } do
    local pages = c:log_pages(which, { from = from, to = to - 1 }, 0, coverage_window(cov, which, from, to))
    local items, i = {}, 0
    local function next_item()
      while true do
        i = i + 1
        if items[i] ~= nil then return items[i] end
        items, i = pages(), 0
        if items == nil then return nil end
      end
    end
    out[#out + 1] = activity.source(next_item, function(item) return M.event(item, which) end, from, to, which)
  end
  return out
end

-- An item as one flat record: id, type and its attributes (the item's own
-- attributes table, which nothing reads after this).
local function flat(item)
  local a = item.attributes
  local row = type(a) == "table" and getmetatable(a) == nil and a or util.copy(a)
  row.id, row.type = item.id, item.type
  return row
end

-- The cursor the version before the resume token saved ({from=, to=,
-- offset=}), as a token: the same offset.
local function old_cursor(c)
  local offset = math.tointeger(c.offset)
  if not offset then return nil end
  return { range = { from = c.from, to = c.to }, at = { { offset = offset } } }
end

--- pages(client, which, params, given) -> pages(token[, warn, coverage]):
--- an iterator over (rows, token after them) of session_logs or
--- webhook_logs (rows flat: id, type, then the attributes).
---
--- It is one offset walk (auditrun.paging.walk: the token holds the range
--- and the offset). from and to are seconds (to excluded; none: up to the
--- moment the walk starts). coverage (auditrun.coverage) gets the range and
--- the walk.
function M.pages(c, which, params, given)
  return paging.walk {
    range = { from = params.from, to = params.to, given = given },
    old = old_cursor,
    start = function(walk)
      local from, to = walk.range.from, walk.range.to
      local p = util.copy(params)
      p.from, p.to = from, to and (to - 1)
      local cov = walk.coverage
      local win = coverage_window(cov, which, from, to)
      if cov then cov:set_range(from, win.to) end
      return { {
        pages = function(at) return c:log_pages(which, p, at, win) end,
        rows = function(items)
          local rows = {}
          for i, item in ipairs(items) do rows[i] = flat(item) end
          return rows
        end,
      } }
    end,
  }
end

-- The columns of a records file: the item's id and type, then its attributes.
M.COLUMNS = {
  session_logs = { "id", "date", "userName", "operation", "ipAddress", "protocol", "fileSource", "fileDest",
                   "bytesTransferred", "duration", "sessionId", "type" },
  webhook_logs = { "id", "created", "username", "event", "statusCode", "endpointUrl", "resourcePath", "attempt",
                   "response", "type" },
}

--- log_workflow(client, which, filters) -> what auditrun.workflow.windowed
--- takes to write session_logs or webhook_logs, oldest first.
---
--- It reads the range given (to included; no --to: up to the moment the
--- walk starts), the log's filters (its query parameters) applied, rows
--- keyed by their id.
function M.log_workflow(c, which, filters)
  local column = data.fields[which].time
  return {
    time_of = function(row) return time.read(row[column]) end,
    id_of = function(row) return row.id end,
    source = function(given_from, given_to)
      local from, to = activity.range(given_from, given_to, { inclusive_to = true })
      if not given_to then to = nil end
      local params = util.copy(filters)
      params.from, params.to = from, to
      return {
        range = { from = from, to = to },
        columns = M.COLUMNS[which],
        pages = M.pages(c, which, params, { from = given_from and from, to = given_to and to }),
      }
    end,
  }
end

--- connect(settings, {profile=, getenv=}) -> client | nil, err. Settings
--- (exavault_url, exavault_api_key, exavault_access_token or _file,
--- ca_file) come from auditrun.config.
---
--- Also M.catalogue, M.settings, and name(kind, value) -> the file
--- manager's name of an operation type ("RETR" -> "Download"); id(kind,
--- name) -> the API value for a name or value ("download" -> "RETR")
--- (auditrun.client.vendor).
client.vendor(M, {
  name = "exavault", title = "ExaVault", endpoints = data, settings = settings, base = "exavault_url",
  methods = Client,
  session = function(cfg)
    errors.secret(cfg.exavault_api_key)
    errors.secret(cfg.exavault_access_token)
    return setmetatable({ api_key = cfg.exavault_api_key, access_token = cfg.exavault_access_token,
                          ca_file = cfg.ca_file }, Session)
  end,
})

return M
