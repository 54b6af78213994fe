-- auditrun.activity: activity logs for workflows, whatever the vendor: a
-- vendor's log as pages that a rerun can continue (from the cursor saved
-- after the last page written), and every configured vendor's activity
-- merged into one time-ordered stream in one schema (the activity timeline).
--
-- A timeline event: time (UTC, ISO 8601 with milliseconds), vendor, user,
-- action (the vendor's own name), verb (a common word: login, logout,
-- login_failed, download, upload, delete, share, export ...), source, ip,
-- object, and raw (the original record). Each vendor module gives its
-- records this shape (event(record)); merging holds one record per
-- source, so memory stays flat however long the range.
local config = require "auditrun.config"
local errors = require "auditrun.errors"
local time = require "auditrun.time"
local util = require "auditrun.util"

local M = {}

M.FIELDS = { "time", "vendor", "user", "action", "verb", "source", "ip", "object", "raw" }

--- connect(vendor, opts) -> a client of the vendor module (auditrun.dealcloud,
--- auditrun.exavault ...) with the settings of opts.profile; raises its
--- configuration error (which names the missing settings) otherwise.
function M.connect(vendor, opts)
  return errors.try(vendor.connect(nil, { profile = opts and opts.profile }))
end

--- configured(name, opts) -> true when any of the settings of the vendor
--- (auditrun.vendors) is given (file profile or environment).
function M.configured(name, opts)
  return config.configured(require("auditrun." .. name .. ".settings").schema, { profile = opts and opts.profile })
end

--- range(from, to, inclusive_to) -> from, to as seconds: text or seconds;
--- to defaults to now, from to `default_days` before to. inclusive_to: the
--- given end is the last second wanted (a bare date's 23:59:59).
function M.range(from, to, o)
  o = o or {}
  local function read(v, name)
    if v == nil or math.type(v) then return v end
    local t = time.parse(v)
    if not t then error(errors.new("usage", string.format("%s '%s' is not a time", name, tostring(v))), 0) end
    return t
  end
  local t_to = read(to, "--to")
  if t_to and o.inclusive_to then t_to = t_to + 1 end
  t_to = t_to or os.time()
  local t_from = read(from, "--from") or (o.default_days and t_to - o.default_days * time.DAY)
  if t_from and t_from >= t_to then
    error(errors.new("usage", string.format("--from (%s) must be before --to (%s)", time.iso(t_from),
      time.iso(t_to - (o.inclusive_to and 1 or 0)))), 0)
  end
  return t_from, t_to
end

-- A saved cursor belongs to one range: a rerun continues it, or says why not.
local function same_range(cursor, from, to, given)
  if not cursor then return from, to end
  if (given.from and given.from ~= cursor.from) or (given.to and given.to ~= cursor.to) then
    error(errors.new("usage", string.format("the output was started for %s to %s: give that range again, "
      .. "or another --out", cursor.from and time.iso(cursor.from) or "the beginning", time.iso(cursor.to))), 0)
  end
  return cursor.from, cursor.to
end

--- dealcloud_pages(client, params, given) -> pages(cursor): an iterator over
--- (rows, cursor after them) of the user activity for params (from and to
--- in seconds; given says which of them the user gave), window by window,
--- continuing from cursor = {from=, to=, window=, page=}.
function M.dealcloud_pages(c, params, given)
  return function(cursor)
    local from, to = same_range(cursor, params.from, params.to, given or {})
    local p = util.copy(params)
    p.from, p.to = from, to
    local windows, rest = c:activity_windows(p)
    local wi, page = cursor and cursor.window or 1, cursor and cursor.page or 1
    local pages
    return function()
      while windows[wi] do
        pages = pages or c:window_pages(rest, windows[wi], page)
        local rows, n = pages()
        if rows then return rows, { from = from, to = to, window = wi, page = n + 1 } end
        wi, page, pages = wi + 1, 1, nil
      end
      return nil
    end
  end
end

-- An ExaVault item as one flat record: id, type and its attributes.
local function flat(item)
  local row = util.copy(item.attributes)
  row.id, row.type = item.id, item.type
  return row
end

--- exavault_pages(client, log, params, given) -> pages(cursor): an iterator
--- over (rows, cursor after them) of session_logs or webhook_logs (rows flat:
--- id, type, then the attributes), continuing from cursor = {from=, to=,
--- offset=}. from and to are seconds (to excluded).
function M.exavault_pages(c, log, params, given)
  return function(cursor)
    local from, to = same_range(cursor, params.from, params.to, given or {})
    local p = util.copy(params)
    p.from, p.to = from, to and (to - 1)
    local pages = c:log_pages(log, p, cursor and cursor.offset or 0)
    return function()
      local items, offset = pages()
      if items == nil then return nil end
      local rows = {}
      for i, item in ipairs(items) do rows[i] = flat(item) end
      return rows, { from = from, to = to, offset = offset }
    end
  end
end

-- ---- the timeline ------------------------------------------------------------------

--- source(iter, map, from, to) -> an iterator over the events of a
--- vendor's records (iter gives records in time order), those in [from, to).
function M.source(iter, map, from, to)
  return function()
    while true do
      local rec = iter()
      if rec == nil then return nil end
      local ev = map(rec)
      local t = time.parse(ev.time)
      if t and t >= from and t < to then return ev end
    end
  end
end

--- merge(sources) -> an iterator over the events of every source (each in
--- time order) in time order; ties keep the order of the sources.
function M.merge(sources)
  local heads = {}
  for i, s in ipairs(sources) do heads[i] = s() end
  return function()
    local best
    for i = 1, #sources do
      if heads[i] ~= nil and (best == nil or heads[i].time < heads[best].time) then best = i end
    end
    if best == nil then return nil end
    local ev = heads[best]
    heads[best] = sources[best]()
    return ev
  end
end

return M
