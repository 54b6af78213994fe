-- auditrun.dealcloud: the DealCloud client: the user activity audit log.
--
--   local dealcloud = require("auditrun.dealcloud")
--   local c = auditrun.try(dealcloud.connect())      -- settings: auditrun.dealcloud.settings
--   for row in c:user_activity { from = "2025-01-01", to = "2026-01-01", activity = "login failed" } do
--     print(row.eventDate, row.userName, row.activityType, row.ip)
--   end
--
-- Sign-in is OAuth client credentials against the site's token endpoint
-- (tokens last about 15 minutes and are renewed ahead of expiry by one
-- task; a 401 renews once). A range of any length is walked in windows of
-- at most 90 days (the API's limit), each sent as whole days (the API
-- evaluates dates to the nearest date) and cut back to the exact range on
-- this side: a row on a window's edge comes once, from the window that
-- starts there. Within a window, pages follow pageNumber until
-- totalRecords. Activities, sources and export types go by id or by name
-- (dealcloud.name / dealcloud.id translate both ways); each row gets `ip`,
-- its ipAddress integer as a dotted quad.
local activity = require("auditrun.activity")
local auth = require("auditrun.auth")
local client = require("auditrun.client")
local core = require("auditrun.core")
local coverage = require("auditrun.coverage")
local data = require("auditrun.dealcloud.endpoints")
local errors = require("auditrun.errors")
local json = require("auditrun.json")
local log = require("auditrun.log")
local paging = require("auditrun.paging")
local records = require("auditrun.records")
local settings = require("auditrun.dealcloud.settings")
local time = require("auditrun.time")
local util = require("auditrun.util")

local M = {}

M.MAX_DAYS = data.max_days

-- The client's methods over the generic ones (auditrun.client), below.
local Client = {}

--- connect(settings, {profile=, getenv=}) -> client | nil, err.
---
--- Settings (dealcloud_url, dealcloud_client_id, dealcloud_client_secret
--- or _file, dealcloud_scope, ca_file) come from auditrun.config; sign-in
--- is OAuth client credentials at the site's token endpoint. Also
--- M.catalogue, M.settings, and name(kind, id) -> the documented name of
--- an activity, source or export_data id, or nil; id(kind, name_or_id) ->
--- the id a name (any documented or sample spelling, without regard to
--- case) or id stands for (auditrun.client.vendor).
client.vendor(M, {
  name = "dealcloud", title = "DealCloud", endpoints = data, settings = settings, base = "dealcloud_url",
  methods = Client,
  session = function(cfg)
    return auth.session {
      token_url = cfg.dealcloud_url .. data.token_path, client_id = cfg.dealcloud_client_id,
      secret = cfg.dealcloud_client_secret, scope = cfg.dealcloud_scope, ca_file = cfg.ca_file,
    }
  end,
})

--- dotted(n) -> "a.b.c.d" for an IPv4 address given as an integer.
function M.dotted(n)
  n = math.tointeger(tonumber(n))
  if not n or n < 0 or n > 0xffffffff then return nil end
  return string.format("%d.%d.%d.%d", n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255)
end

local function invalid(fmt, ...)
  return errors.new("invalid", "dealcloud user_activity: " .. string.format(fmt, ...),
    { endpoint = "user_activity", api = "dealcloud" })
end

local function instant(v, name)
  if v == nil then return nil end
  local t = math.type(v) and v or time.parse(v)
  if not t then error(invalid("'%s' must be a time (ISO 8601) or seconds since the epoch, not %s", name, tostring(v)), 0) end
  return t
end

local function ceil_day(t)
  local d = time.day(t)
  return d == t and d or d + time.DAY
end

--- windows(from, to) -> the windows of at most MAX_DAYS covering [from,
--- to): {index=, from=, to= (the exact part this window owns), send_from=,
--- send_to= (the whole days asked for, at least one)}.
function M.windows(from, to)
  local out = {}
  local ws = from
  while ws < to do
    local we = math.min(time.day(ws) + M.MAX_DAYS * time.DAY, to)
    local send_from = time.day(ws)
    out[#out + 1] = { index = #out + 1, from = ws, to = we, send_from = send_from,
                      send_to = math.max(ceil_day(we), send_from + time.DAY) }
    ws = we
  end
  return out
end

-- The documented parameters with the range taken out: from, to (seconds),
-- the rest as given. Every value is checked before anything is sent.
local function split_range(params)
  local named = util.copy(assert(M.catalogue:named("user_activity", params or {})))
  local to = instant(named.dateTo, "dateTo") or os.time()
  local from = instant(named.dateFrom, "dateFrom") or to - M.MAX_DAYS * time.DAY
  named.dateFrom, named.dateTo = nil, nil
  if from >= to then error(invalid("dateFrom (%s) must be before dateTo (%s)", time.iso(from), time.iso(to)), 0) end
  local probe = util.copy(named)
  probe.dateFrom, probe.dateTo = time.day(from), time.day(from) + time.DAY
  local _, err = M.catalogue:canonical("user_activity", probe)
  if err then error(err, 0) end
  return named, from, to
end

--- activity_windows(params) -> the windows the range of params falls into
--- (see windows), and the other parameters by their documented names.
function Client.activity_windows(_, params)
  local rest, from, to = split_range(params)
  return M.windows(from, to), rest
end

-- Rows whose eventDate cannot be read: digest -> the window (its index)
-- that wrote them, for the window after it, whose answer overlaps on the
-- day between them. At most this many are remembered.
local UNREAD_REMEMBERED = 10000

-- The rows of one page that belong to the window, each with its ip. A row
-- whose eventDate cannot be read is no window's by its time: the first
-- window whose answer holds it keeps it, with a warning, and `unread`
-- (shared by the windows of one walk, and saved in its cursor) keeps the
-- next window from writing it again. Also returns the times of the first
-- and last of them, as far as they can be read (for the coverage).
local function window_rows(body, w, unread)
  local out, first, last = {}, nil, nil
  for _, row in ipairs(type(body) == "table" and type(body.rows) == "table" and body.rows or {}) do
    local t = time.read(row.eventDate)
    local keep = t and t >= w.from and t < w.to
    if not t then
      -- Keys sorted: the same row gives the same digest in a rerun too.
      local key = core.sha256(records.encode(row)):sub(1, 16)
      if unread[key] == nil then
        unread[key] = w.index
        log.warn("unparsed_times", 1, "DealCloud user_activity: eventDate %s (%s, session %s) is not a time; "
          .. "the row is written as it came", json.encode(row.eventDate), tostring(row.userName),
          tostring(row.sessionId))
        keep = true
      end
    end
    if keep then
      if row.ipAddress ~= nil then row.ip = M.dotted(row.ipAddress) end
      out[#out + 1] = row
      if t and (not first or t < first) then first = t end
      if t and (not last or t > last) then last = t end
    end
  end
  return out, first, last
end

-- Forgets the unreadable rows of windows before the one before `index`.
local function forget_unread(unread, index)
  for key, wi in pairs(unread) do
    if wi < index - 1 then unread[key] = nil end
  end
end

--- unread_list(unread) / unread_set(list): the rows with unreadable times
--- a walk remembers, as a cursor holds them ({{digest, window}, ...}, nil
--- when none; at most UNREAD_REMEMBERED) and back.
function M.unread_list(unread)
  local list = {}
  for key, wi in pairs(unread) do
    if #list >= UNREAD_REMEMBERED then break end
    list[#list + 1] = { key, wi }
  end
  if #list == 0 then return nil end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  return list
end

function M.unread_set(list)
  local unread = {}
  for _, e in ipairs(type(list) == "table" and list or {}) do
    if type(e) == "table" and type(e[1]) == "string" and math.tointeger(e[2]) then unread[e[1]] = math.tointeger(e[2]) end
  end
  return unread
end

-- The coverage window (auditrun.coverage) of a window, declared.
local function coverage_window(cov, w)
  return cov and cov:window { vendor = "dealcloud", source = "user_activity", from = w.from, to = w.to }
end

--- window_pages(rest, window, at[, unread, coverage]) -> iterator over
--- (rows of the window on that page, page number, where the next page
--- starts: paging.pages), from `at` (a position paging.pages gave; nil: the first page).
---
--- `rest` holds the other parameters by their documented names; `unread`
--- is the table the windows of one walk share (window_rows); `coverage`
--- (auditrun.coverage) is told of each page, of the window's end, and of an
--- error that stops its walk.
function Client:window_pages(rest, w, at, unread, cov)
  local p = util.copy(rest)
  p.dateFrom, p.dateTo = time.iso(w.send_from), time.iso(w.send_to)
  local pages = self:pages("user_activity", p, string.format("window %s to %s", p.dateFrom, p.dateTo), at)
  local win = coverage_window(cov, w)
  unread = unread or {}
  forget_unread(unread, w.index)
  pages = coverage.watch(win, pages)
  return function()
    local body, n, after = pages()
    if body == nil then return nil end
    local rows, first, last = window_rows(body, w, unread)
    if win then win:page(type(body.rows) == "table" and #body.rows or 0, #rows, first, last) end
    return rows, n, after
  end
end

-- The walk of the user activity (auditrun.paging.walk): the windows, each
-- paged by pageNumber; unread is kept in the token.
local function activity_walk(c, windows, rest, cov, unread)
  return {
    { items = windows },
    { pages = function(w, at) return c:window_pages(rest, w, at, unread, cov) end },
  }
end

--- user_activity(params[, coverage]) -> iterator over every row of the
--- range, in order, window after window.
---
--- params: userIds (or users), dateFrom (or from) and dateTo (or to) as
--- ISO 8601 or seconds (default: the last 90 days), activity, source,
--- exportDataType by id or name. coverage: the auditrun.coverage the
--- windows are declared in and walked.
function Client:user_activity(params, cov)
  local windows, rest = self:activity_windows(params)
  for _, w in ipairs(windows) do coverage_window(cov, w) end
  return paging.each_row(paging.walk { levels = activity_walk(self, windows, rest, cov, {}) }())
end

-- The cursor the version before the resume token saved ({from=, to=,
-- window=, page=, unread=}), as a token: the same window and page.
local function old_cursor(c)
  local wi, page = math.tointeger(c.window), math.tointeger(c.page)
  if not (wi and page and math.tointeger(c.to)) then return nil end
  return { range = { from = c.from, to = c.to }, at = { wi, { page = page } }, carry = { unread = c.unread } }
end

--- event(row) -> the row in the activity timeline's schema.
---
--- pages(client, params, given) -> pages(token[, warn, coverage]): an
--- iterator over (rows, token after them) of the user activity for params
--- (from and to in seconds; given says which of them the user gave),
--- window by window (auditrun.paging.walk: the token holds the range, the
--- window and page, and the rows with unreadable times); coverage
--- (auditrun.coverage) gets the range and every window.
function M.pages(c, params, given)
  return paging.walk {
    range = { from = params.from, to = params.to, given = given },
    old = old_cursor,
    start = function(walk)
      local p = util.copy(params)
      p.from, p.to = walk.range.from, walk.range.to
      local windows, rest = c:activity_windows(p)
      local cov = walk.coverage
      if cov then
        cov:set_range(p.from, p.to)
        for _, w in ipairs(windows) do coverage_window(cov, w) end
      end
      local unread = M.unread_set(walk.carried.unread)
      walk.carry.unread = function() return M.unread_list(unread) end
      return activity_walk(c, windows, rest, cov, unread)
    end,
  }
end

function M.event(row)
  local t = time.read(row.eventDate)
  local kind = math.tointeger(row.activityTypeId)
  local verb = data.verbs[kind] or "other"
  if kind == 8 and data.export_verbs[math.tointeger(row.exportDataType)] then
    verb = data.export_verbs[math.tointeger(row.exportDataType)]
  end
  return {
    time = t and time.iso(t, 3), vendor = "dealcloud", user = row.userName,
    action = M.name("activity", kind) or row.activityType, verb = verb,
    source = M.name("source", row.sourceTypeId) or row.sourceType, ip = row.ip or M.dotted(row.ipAddress),
    object = row.exportDataType ~= nil and M.name("export_data", row.exportDataType) or nil, raw = row,
  }
end

--- timeline(client, from, to, {coverage=}) -> the sources of the activity
--- timeline (auditrun.activity): the user activity of [from, to), in time
--- order, its windows walked in opts.coverage (auditrun.coverage).
function M.timeline(c, from, to, opts)
  return { activity.source(c:user_activity({ from = from, to = to }, opts and opts.coverage), M.event, from, to,
    "user_activity") }
end

-- The columns of a records file, in the order of the document's sample,
-- with ip after ipAddress.
M.COLUMNS = { "eventDate", "userName", "fullName", "userId", "activityTypeId", "activityType", "sourceTypeId",
              "sourceType", "exportDataType", "ipAddress", "ip", "sessionId" }

return M
