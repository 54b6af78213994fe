-- auditrun.coverage: what a records run walked, as an auditor checks it,
-- written beside its output as <out>.coverage.json, and only as a true
-- statement: a run that failed or was cut short says where it is not covered.
--
-- The walkers (a DealCloud window, an ExaVault log, an Insights user's
-- report) report each window they read and each page of it; the records
-- workflow writes the account atomically.
--
--   local cov = coverage.new { from = t0, to = t1 }
--   local win = cov:window { vendor = "dealcloud", source = "user_activity", from = w.from, to = w.to }
--   win:page(#body.rows, #kept, first, last)  -- rows the API sent, those given out, their times
--   win:done()                   -- walked to its end; or win:stop(why): refused, or ended early
--   local report = cov:report { status = "complete", files = {...} }
--
-- Windows are declared (cov:window) before they are walked, so one never
-- walked shows as a gap. A gap is a part of the asked range no window
-- covered, or one a window did not finish (from the last event it gave,
-- which is kept, to its end), with why. Times are seconds here and UTC ISO
-- 8601 with milliseconds in the report.
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local json = require("auditrun.json")
local records = require("auditrun.records")
local time = require("auditrun.time")

local M = {}

M.FORMAT = "auditrun-coverage/1"

local REPORT_FIELDS = { "format", "workflow", "status", "complete", "error", "range", "written", "files",
                        "rows_dropped", "sources", "gaps" }

--- path(out) -> the coverage file of an output file: <out>.coverage.json.
function M.path(out) return out .. ".coverage.json" end

--- NAME: the coverage file of an export run, in its folder.
M.NAME = "coverage.json"

local Coverage = {}
Coverage.__index = Coverage

local Window = {}
Window.__index = Window

--- new({from=, to=}) -> an empty account of a run over [from, to) (either
--- end nil: open; no range at all for a read that has none).
function M.new(range)
  return setmetatable({ range = range, windows = {}, by_key = {} }, Coverage)
end

--- set_range(from, to): the range the walk reads (a resumed walk: the one it was started for).
function Coverage:set_range(from, to)
  self.range = { from = from, to = to }
end

-- A window's identity: its source and start (a number read back from JSON, integer or not, the same key).
local function key(o)
  local from = tonumber(o.from)
  return table.concat({ o.vendor, o.source, o.subject or "", from and string.format("%.3f", from) or "" }, "\0")
end

--- window({vendor=, source=, subject=, from=, to=, report=}) -> the window
--- (the same one when it was declared before, in this run or the one it
--- resumes).
---
--- report: the window is one export's report (done(file)), with no rows
--- counted.
function Coverage:window(o)
  local k = key(o)
  local w = self.by_key[k]
  if w then
    if o.to ~= nil then w.to = o.to end
    return w
  end
  local counted = not o.report or nil
  w = setmetatable({ vendor = o.vendor, source = o.source, subject = o.subject, from = o.from, to = o.to,
                     status = "not_walked", pages = counted and 0, received = counted and 0,
                     written = counted and 0 }, Window)
  self.by_key[k] = w
  self.windows[#self.windows + 1] = w
  return w
end

--- page(received, written, first, last): a page of the window: how many
--- rows the API sent, how many of them were given out for writing, and the
--- times of the first and last of those (nil when none had a time).
function Window:page(received, written, first, last)
  self.pages = self.pages + 1
  self.received = self.received + received
  self.written = self.written + written
  if self.status == "not_walked" then self.status = "walking" end
  if first and (not self.first or first < self.first) then self.first = first end
  if last and (not self.last or last > self.last) then self.last = last end
end

--- row(t, written): one row the source sent, at time t (nil: unreadable),
--- and whether it was given out for writing (in the range).
function Window:row(t, written)
  self.received = self.received + 1
  if self.status == "not_walked" then self.status = "walking" end
  if not written then return end
  self.written = self.written + 1
  if t then
    if not self.first or t < self.first then self.first = t end
    if not self.last or t > self.last then self.last = t end
  end
end

--- drop(n): rows the walk handed on that the run did not write, as read
--- again (an incremental run reads one second more at each end of its
--- window, and drops what the run before wrote).
function Coverage:drop(n)
  self.dropped = (self.dropped or 0) + (n or 1)
end

--- note(text): something an auditor should know about the walk that is
--- no gap (a page that ended early, and the rows after it read on).
function Window:note(text)
  self.notes = self.notes or {}
  self.notes[#self.notes + 1] = text
end

--- done([file]): walked to its end; file: the report an export wrote
--- ({file=, bytes=, sha256=}).
function Window:done(file)
  if self.status ~= "stopped" then self.status, self.reason = "walked", nil end
  if file then self.file = file end
end

--- stop(why): the walk of the window ended before its end: the API
--- refused it, a page failed, a report could not be read, the run was
--- interrupted; why says which.
function Window:stop(why)
  self.status, self.reason = "stopped", tostring(errors.is(why) and why.message or why)
end

-- ---- the state a resumed walk continues ---------------------------------------------

local STATE_FIELDS = { "vendor", "source", "subject", "from", "to", "status", "pages", "received", "written",
                       "first", "last", "reason", "notes" }

local function told(win, ok, body, ...)
  if not ok then
    win:stop(body)
    error(body, 0)
  end
  if body == nil then win:done() end
  return body, ...
end

--- watch(win, pages) -> pages, the iterator of a window's pages (nil at
--- the end), that tells win of the end and of an error that stops the
--- walk (raised on as it was); no win: pages itself.
function M.watch(win, pages)
  if not win then return pages end
  return function() return told(win, pcall(pages)) end
end

--- state() -> the account as plain data (kept beside the output with each
--- page's cursor, so a rerun that resumes the walk continues it).
function Coverage:state()
  local out = {}
  for i, w in ipairs(self.windows) do
    local s = {}
    for _, f in ipairs(STATE_FIELDS) do s[f] = w[f] end
    -- A window cut short by this run is walked on by the next.
    if s.status == "stopped" then s.status, s.reason = "walking", nil end
    out[i] = s
  end
  return { range = self.range, windows = out, dropped = self.dropped }
end

--- restore(state): an earlier run's account, which this run continues.
function Coverage:restore(state)
  if type(state) ~= "table" or type(state.windows) ~= "table" then return end
  if math.tointeger(state.dropped) then self.dropped = math.tointeger(state.dropped) end
  if not self.range and type(state.range) == "table" then
    self.range = { from = tonumber(state.range.from), to = tonumber(state.range.to) }
  end
  for _, s in ipairs(state.windows) do
    if type(s) == "table" and s.vendor then
      local w = self:window(s)
      for _, f in ipairs(STATE_FIELDS) do
        if s[f] ~= nil and s[f] ~= json.null then w[f] = s[f] end
      end
    end
  end
end

-- ---- the report ---------------------------------------------------------------------

-- Every time in the report alike: UTC, ISO 8601 with milliseconds.
local function iso(t) return t and time.iso(t, 3) or nil end

-- The gaps of one source's windows (in the order of their start) in [from, to).
local function gaps_of(windows, from, to, failure)
  table.sort(windows, function(a, b) return (a.from or -math.huge) < (b.from or -math.huge) end)
  local out, at = records.array(), from
  local function gap(a, b, why)
    if a == nil or b == nil or a < b then out[#out + 1] = { from = iso(a), to = iso(b), reason = why } end
  end
  for _, w in ipairs(windows) do
    if at ~= nil and w.from ~= nil and w.from > at then gap(at, w.from, "no window covered it") end
    if w.status ~= "walked" then
      local why = w.reason or (w.status == "not_walked" and "not walked" or "the walk stopped before its end")
      if w.status ~= "stopped" and failure then why = why .. ": " .. failure end
      -- Rows come in time order: those before the last one given were all read.
      gap(w.last or w.from, w.to, why)
    end
    if w.to ~= nil and (at == nil or w.to > at) then at = w.to end
  end
  if at ~= nil and to ~= nil and at < to then gap(at, to, "no window covered it") end
  return out
end

--- report({workflow=, status=, error=, files=}) -> the coverage report:
--- per vendor and source its windows, the gaps in the asked range, and
--- `complete`.
---
--- A window tells its rows received and written, first and last event and
--- status. `complete`: the run finished (status "complete") and no source
--- has a gap.
function Coverage:report(o)
  local sources, order, all_gaps = {}, {}, records.array()
  for _, w in ipairs(self.windows) do
    local k = table.concat({ w.vendor, w.source, w.subject or "" }, "\0")
    if not sources[k] then
      sources[k] = { vendor = w.vendor, source = w.source, subject = w.subject, windows = {} }
      order[#order + 1] = k
    end
    table.insert(sources[k].windows, w)
  end
  local range = self.range or {}
  local out = records.array()
  for _, k in ipairs(order) do
    local s = sources[k]
    local received, written, first, last = 0, 0, nil, nil
    local wins = records.array()
    local gaps = gaps_of(s.windows, range.from, range.to, o.error)
    for i, w in ipairs(s.windows) do
      if w.received then received, written = received + w.received, written + w.written end
      if w.first and (not first or w.first < first) then first = w.first end
      if w.last and (not last or w.last > last) then last = w.last end
      wins[i] = { from = iso(w.from), to = iso(w.to), status = w.status, pages = w.pages, rows_received = w.received,
                  rows_written = w.written, first_event = iso(w.first), last_event = iso(w.last),
                  reason = w.reason, notes = w.notes, report = w.file }
    end
    for _, g in ipairs(gaps) do
      all_gaps[#all_gaps + 1] = { vendor = s.vendor, source = s.source, subject = s.subject, from = g.from,
                                  to = g.to, reason = g.reason }
    end
    local counted = s.windows[1].received ~= nil
    out[#out + 1] = { vendor = s.vendor, source = s.source, subject = s.subject,
                      rows_received = counted and received or nil, rows_written = counted and written or nil,
                      first_event = iso(first), last_event = iso(last), windows = wins, gaps = gaps }
  end
  return {
    format = M.FORMAT, workflow = o.workflow, status = o.status, error = o.error,
    complete = o.status == "complete" and #all_gaps == 0,
    range = self.range and { from = iso(range.from), to = iso(range.to) } or nil,
    written = time.iso(os.time()), files = records.array(o.files), sources = out, gaps = all_gaps,
    rows_dropped = self.dropped,
  }
end

--- file_entry(path, {rows=, complete=}) -> {file, bytes, rows, sha256,
--- complete} of an output file, its SHA-256 from the C core (OpenSSL).
function M.file_entry(path, o)
  local digest, err = files.sha256(path)
  if not digest then return nil, err end
  local f = io.open(path, "rb")
  local bytes = f and f:seek("end")
  if f then f:close() end
  return { file = path:match("([^/]*)$"), bytes = bytes, rows = o.rows, sha256 = digest, complete = o.complete }
end

--- write(out, report) -> path | nil, err: <out>.coverage.json, atomically;
--- write_to(path, report): to that path.
function M.write(out, report)
  return M.write_to(M.path(out), report)
end

function M.write_to(path, report)
  local ok, err = files.write_atomic(path, records.encode_object(REPORT_FIELDS, report) .. "\n")
  if not ok then return nil, err end
  return path
end

return M
