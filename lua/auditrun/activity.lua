-- auditrun.activity: activity logs for workflows, whatever the vendor: the
-- range a resumed log continues, and every configured vendor's activity
-- merged into one time-ordered stream in one schema (the activity timeline).
--
-- Each vendor module's pages(...) reads its log on from the cursor saved
-- after the last page written; resume_range says which range that is.
--
-- A timeline event: time (UTC, ISO 8601 with milliseconds), vendor, user,
-- action (the vendor's own name), verb (a common word: login, logout,
-- login_failed, download, upload, delete, share, export ...), source, ip,
-- object, and raw (the original record). Each vendor module gives its
-- records this shape (event(record)); merging holds one record per
-- source, so memory stays flat however long the range.
local config = require("auditrun.config")
local core = require("auditrun.core")
local errors = require("auditrun.errors")
local time = require("auditrun.time")

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

--- range(from, to, {inclusive_to=, default_days=}) -> from, to: the range
--- a records workflow reads, in seconds (the command line read the times,
--- auditrun.cli: every check of what the user gave is there).
---
--- to defaults to now, from to `default_days` before to (else nil: the
--- log's beginning). inclusive_to: the given end is the last second
--- wanted (a bare date's 23:59:59), so the range runs to the second after
--- it.
function M.range(from, to, o)
  o = o or {}
  assert(from == nil or math.type(from), "range: from must be seconds")
  assert(to == nil or math.type(to), "range: to must be seconds")
  local t_to = to and o.inclusive_to and to + 1 or to or os.time()
  local t_from = from or (o.default_days and t_to - o.default_days * time.DAY)
  assert(not t_from or t_from < t_to, "range: from must be before to")
  return t_from, t_to
end

-- ---- the timeline ------------------------------------------------------------------

--- source(iter, map, from, to, log[, window]) -> an iterator over (event,
--- tag) of a vendor's records (iter gives records in time order), those in
--- [from, to).
---
--- tag = {log=} names the vendor's log they come from (the schemas of
--- auditrun.schemas are told by it; the timeline adds the tenant). An event
--- without a time (the vendor could not read it, and warned) is no range's
--- to drop: it comes as it is. window: the auditrun.coverage window these
--- records are, told of each and of the end.
function M.source(iter, map, from, to, log, window)
  local tag = { log = log }
  return function()
    while true do
      local rec = iter()
      if rec == nil then
        if window then window:done() end
        return nil
      end
      local ev = map(rec)
      local t = ev.time and time.parse(ev.time)
      local given = ev.time == nil or (t and t >= from and t < to)
      if window then window:row(t, given) end
      if given then return ev, tag end
    end
  end
end

--- merge(sources) -> an iterator over (event, tag) of every source (each
--- in time order) in time order; ties keep the order of the sources.
---
--- An event without a time goes out as soon as it is its source's next (the
--- first such source's first). The heads wait in a tournament tree in C
--- (csrc/lmerge.c): each event costs log2(sources) comparisons and one
--- call of its source.
M.merge = core.merge

return M
