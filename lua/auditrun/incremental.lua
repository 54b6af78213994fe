-- auditrun.incremental: a records workflow run again and again (cron, a
-- timer), each run reading on from where the last completed one ended,
-- every event written exactly once across all runs.
--
--   auditrun exavault-sessions --incremental --out-dir /var/lib/audit --from 2025-01-01
--
-- A run reads the window [bookmark, to) where to is --to (its last second
-- included) or now less SAFETY_LAG, and writes it to its own file,
-- DIR/<workflow>_<from>_<to>.<ext> (times UTC, yyyymmddThhmmssZ, `to` not
-- included), which takes its name only when it is complete. The bookmark
-- (DIR/.auditrun/incremental/<workflow>.json, written atomically) moves
-- only then. The first run starts at --from (or the workflow's default);
-- later ones ignore --from.
--
-- Whatever a service does at the ends of a range (an end included or not,
-- a start taken as "after"), no event is lost or doubled: each run asks for
-- one second more at each end than it keeps, keeps by the event's own time,
-- and the bookmark holds the ids of the events written in the window's
-- last second (with --lookback, the window's last DURATION), so the next
-- run, which reads those again, drops them. An id is the vendor's where it
-- has one, else a digest of the row with its keys sorted; the same row
-- twice in one second is counted, so both come once. A window with no
-- events still moves the bookmark (an empty file says it was read). A
-- killed run leaves its window in the bookmark as pending: the next run
-- finishes it first (resuming the hidden file where it stopped), then
-- reads on. --lookback DURATION reads that much before the bookmark again,
-- for events that reach the service late, and writes only those not
-- written before.
--
-- The settings that define the series (the workflow's filters, profile,
-- schema: auditrun.cli.answer without the range and the output) are kept
-- with the bookmark; a run with others into the same DIR is refused
-- (--fresh sets the bookmark aside and starts a new series).
local core = require("auditrun.core")
local coverage = require("auditrun.coverage")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local json = require("auditrun.json")
local records = require("auditrun.records")
local time = require("auditrun.time")
local util = require("auditrun.util")

local M = {}

--- Seconds before now that a run without --to stops: a service may still
--- be writing the last few seconds of its log.
M.SAFETY_LAG = 300

M.STATE_DIR = ".auditrun/incremental"

-- What a --lookback may keep ids for at most (the bookmark holds one id per
-- event of that trailing window).
M.MAX_LOOKBACK = 7 * 86400

local FORMAT = "auditrun-bookmark/1"

-- Options that are not the series: the range, how it is read and where.
local NOT_THE_SERIES = { ["--from"] = true, ["--to"] = true, ["--format"] = true, ["--csv-raw"] = true }

--- series(answer) -> the options that define a series of runs.
function M.series(answer)
  local out = {}
  for k, v in pairs(answer or {}) do
    if not NOT_THE_SERIES[k] then out[k] = v end
  end
  return out
end

--- stamp(t) -> "20250601T000000Z": a time in a file name.
function M.stamp(t)
  return os.date("!%Y%m%dT%H%M%SZ", math.floor(t))
end

--- file_name(workflow, from, to, ext) -> "<workflow>_<from>_<to>.<ext>"
--- (from nil: the log's beginning).
function M.file_name(workflow, from, to, ext)
  return string.format("%s_%s_%s.%s", workflow, from and M.stamp(from) or "beginning", M.stamp(to), ext)
end

local function usage(fmt, ...)
  return errors.new("usage", string.format(fmt, ...))
end

-- ---- the bookmark -----------------------------------------------------------------

local Series = {}
Series.__index = Series

--- open(dir, workflow, answer, {fresh=}) -> series | nil, err: the bookmark of
--- the workflow's series in dir, locked for this process.
---
--- A series started with other settings is refused (a usage error naming the
--- first that differs).
function M.open(dir, workflow, answer, o)
  o = o or {}
  local sdir = dir .. "/" .. M.STATE_DIR
  local ok, err = files.mkdirs(sdir)
  if not ok then return nil, err end
  local path = sdir .. "/" .. workflow .. ".json"
  local lock, lerr = files.lock(sdir .. "/" .. workflow .. ".lock")
  if not lock then
    if lerr.kind == "locked" then
      return nil, errors.new("usage", string.format("another run of %s is using %s (its bookmark is locked)",
        workflow, dir))
    end
    return nil, lerr
  end
  local s = setmetatable({ dir = dir, path = path, lock = lock, workflow = workflow, series = M.series(answer) }, Series)
  if o.fresh and files.exists(path) then
    for n = 1, 99 do
      local to = files.old_name(path, n)
      if not files.exists(to) then
        local moved, merr = files.rename_noreplace(path, to)
        if not moved then lock:remove() return nil, merr end
        s.set_aside = to
        break
      end
    end
  end
  if files.exists(path) then
    local text, rerr = files.read(path)
    local b = text and json.decode(text)
    if type(b) ~= "table" or b.format ~= FORMAT or not math.tointeger(b.to) then
      lock:remove()
      return nil, errors.new("records", string.format("%s is not a bookmark this auditrun wrote%s; move it away to "
        .. "start the series over", path, rerr and (" (" .. tostring(rerr) .. ")") or ""))
    end
    local why = require("auditrun.cli").answer_change(dir, b.series or {}, s.series)
    if why then
      lock:remove()
      return nil, errors.new("usage", why)
    end
    s.bookmark = b
  end
  return s
end

function Series:save()
  local b = self.bookmark
  b.format, b.workflow, b.series = FORMAT, self.workflow, self.series
  local ok, err = files.write_atomic(self.path, json.encode(b) .. "\n")
  if not ok then return nil, err end
  return true
end

function Series:close()
  self.lock:remove()
end

-- ---- what a window keeps ----------------------------------------------------------

-- A multiset of ids as JSON holds it ({id = count}); the empty one is {}.
local function counts(t)
  local out = {}
  for k, v in pairs(type(t) == "table" and t or {}) do
    if type(k) == "string" and math.tointeger(v) and v > 0 then out[k] = math.tointeger(v) end
  end
  return out
end

--- filter(window, seen, id_of, time_of) -> a filter with admit(row) -> true
--- when the row is to be written, and state() / restore(state): what it has
--- counted (the ids the next run must drop), for a cursor.
---
--- window = {from=, to=, read_from=, retain_from=, prev_to=}.
function M.filter(w, seen, id_of, time_of)
  local f = { used = {}, keep = {} }
  function f.admit(row)
    local t = time_of(row)
    if t and (t >= w.to or (w.read_from and t < w.read_from)) then return false end
    local id = id_of(row)
    local again = t == nil or (w.prev_to and t < w.prev_to)
    local drop = false
    if again and (seen[id] or 0) > (f.used[id] or 0) then
      f.used[id] = (f.used[id] or 0) + 1
      drop = true
    end
    -- An unreadable time: kept too, as the next run may read it again.
    if t == nil or t >= w.retain_from then f.keep[id] = (f.keep[id] or 0) + 1 end
    return not drop
  end
  function f.state() return { used = f.used, keep = f.keep } end
  function f.restore(st)
    if type(st) == "table" then f.used, f.keep = counts(st.used), counts(st.keep) end
  end
  return f
end

--- digest(row) -> a stable id of a row that has none of its own: its JSON
--- with keys sorted, hashed.
function M.digest(row)
  return core.sha256(records.encode(row)):sub(1, 24)
end

-- ---- a run --------------------------------------------------------------------------

local function ext_of(format) return format end  -- jsonl, csv, sqlite

-- The window a new run reads: from the bookmark (or the first --from) to
-- --to or now less the lag. nil when there is nothing to read yet.
local function next_window(s, opts, o)
  local to
  if opts.to then
    to = opts.to + 1
  else
    to = os.time() - M.SAFETY_LAG
  end
  local b = s.bookmark
  local lookback = opts.lookback or 0
  local retain = math.max(lookback, 1)
  if b then
    local from = math.tointeger(b.to)
    if to <= from then return nil, from, to end
    local seen_since = math.tointeger(b.seen_since) or from
    local read_from = math.max(from - retain, seen_since)
    return { from = from, to = to, prev_to = from, read_from = read_from,
             retain_from = math.max(to - retain, read_from), lookback = lookback,
             short = read_from > from - retain and read_from or nil }
  end
  local from = opts.from or (o.default_from and o.default_from(to))
  if not from and o.first_from_required then
    error(usage("the first run of a series in %s needs --from: where the series starts", opts.out_dir), 0)
  end
  if from and to <= from then return nil, from, to end
  return { from = from, to = to, read_from = from, retain_from = math.max(to - retain, from or -math.huge),
           lookback = lookback }
end

--- run(opts, o, records_run): the whole of an incremental run.
---
--- o: source = function(from, to) (seconds) -> the table workflow.records
--- takes (columns, pages or rows, warnings); time_of(row) -> seconds | nil;
--- id_of (row) -> the vendor's id (default: a digest); default_from(to) ->
--- the first run's start without --from (nil: the log's beginning, unless
--- first_from_required). records_run(opts, table) is workflow.records.
--- Raises as it does.
function M.run(opts, o, records_run, say)
  local s = errors.try(M.open(opts.out_dir, opts.name, opts.answer, { fresh = opts.fresh }))
  if s.set_aside then say(string.format("%s: the earlier series' bookmark is now %s", opts.name, s.set_aside)) end
  local ok, err = pcall(function()
    local b = s.bookmark
    if b and b.pending ~= nil and b.pending ~= json.null then
      M.window(s, opts, o, b.pending, records_run, say)
    elseif b and opts.from then
      say(string.format("%s: continuing the series in %s from %s (--from is for the first run)", opts.name,
        opts.out_dir, time.iso(b.to)))
    end
    local w, from, to = next_window(s, opts, o)
    if not w then
      say(string.format("%s: nothing new to read in %s: the series has read up to %s, and this run would end at %s",
        opts.name, opts.out_dir, time.iso(from), time.iso(to)))
      return
    end
    if w.short then
      say(string.format("%s: --lookback reaches before %s, the oldest time whose events the bookmark knows; "
        .. "reading from there", opts.name, time.iso(w.short)))
    end
    if w.lookback > M.MAX_LOOKBACK then
      error(usage("--lookback is at most %d days", M.MAX_LOOKBACK // 86400), 0)
    end
    w.format, w.csv_raw = opts.format, opts.csv_raw or nil
    w.file = M.file_name(opts.name, w.from, w.to, ext_of(opts.format))
    -- The window, recorded before anything is read: a killed run is finished by the next.
    s.bookmark = s.bookmark or { seen = {} }
    s.bookmark.pending = w
    errors.try(s:save())
    M.window(s, opts, o, w, records_run, say)
  end)
  s:close()
  if not ok then error(err, 0) end
end

-- Reads one window into its hidden file, then gives the file its name and
-- moves the bookmark. Each step is one atomic write, in an order a rerun
-- can finish from any instant: the ids to keep (pending.keep), the
-- complete file, its name, the bookmark.
function M.window(s, opts, o, w, records_run, say)
  local final = opts.out_dir .. "/" .. w.file
  local partial = opts.out_dir .. "/." .. w.file .. ".part"
  local b = s.bookmark
  local source = o.source(w.read_from, w.to, partial)
  if not (w.keep and files.exists(final) and not files.exists(partial)) then
    if files.exists(final) and not w.keep then
      error(errors.new("records", string.format("%s exists but the bookmark says its window was not finished: move "
        .. "it away and run again", final)), 0)
    end
    local seen = counts(b.seen)
    local filter = M.filter(w, seen, o.id_of or M.digest, o.time_of)
    local sub = util.copy(source)
    if source.pages then
      -- The cursor carries what the filter counted, so a resumed page walk counts on.
      sub.pages = function(cursor, warn, cov)
        local inner = type(cursor) == "table" and cursor.page or nil
        if type(cursor) == "table" then filter.restore(cursor.filter) end
        local pages = source.pages(inner, warn, cov)
        return function()
          local rows, c = pages()
          if rows == nil then return nil end
          local kept = {}
          for _, row in ipairs(rows) do if filter.admit(row) then kept[#kept + 1] = row end end
          if cov and #kept < #rows then cov:drop(#rows - #kept) end
          return kept, c ~= nil and { page = c, filter = filter.state() } or nil
        end
      end
    else
      sub.rows = function(warn, cov)
        local rows = source.rows(warn, cov)
        return function()
          while true do
            local row = rows()
            if row == nil or filter.admit(row) then return row end
            if cov then cov:drop(1) end
          end
        end
      end
    end
    sub.before_close = function()
      w.keep = filter.keep
      b.pending = w
      errors.try(s:save())
    end
    local ropts = util.copy(opts)
    ropts.out, ropts.format, ropts.csv_raw = partial, w.format, w.csv_raw
    ropts.shown_out = final
    ropts.fresh = nil  -- --fresh is the series' (open), not the window's
    ropts.answer = s.series
    local written = records_run(ropts, sub)
    if written.complete and not w.keep then
      -- Complete, but the ids were never recorded: cannot happen in this order.
      error(errors.new("records", string.format("%s is complete but the bookmark lacks its window's ids: move it "
        .. "away and run again", partial)), 0)
    end
    errors.try(files.rename_noreplace(partial, final))
    errors.try(files.fsync_dir_of(final))
  end
  -- The window's coverage report and run folders (the timeline's Insights
  -- reports) go with its file, named after it.
  local moves = { { coverage.path(partial), coverage.path(final) } }
  local hidden = "." .. w.file .. ".part"
  for _, d in ipairs(source.run_dirs or {}) do
    local at = d:find(hidden, 1, true)
    if at then moves[#moves + 1] = { d, d:sub(1, at - 1) .. w.file .. d:sub(at + #hidden) } end
  end
  for _, m in ipairs(moves) do
    if files.exists(m[1]) then  -- a folder too (io.open opens one)
      errors.try(files.rename_noreplace(m[1], m[2]))
    end
  end
  os.remove(records.state_path(partial))
  b.to, b.seen, b.seen_since, b.pending = w.to, w.keep, w.retain_from ~= -math.huge and w.retain_from or nil, nil
  b.runs = (math.tointeger(b.runs) or 0) + 1
  errors.try(s:save())
  say(string.format("%s: %s holds %s to %s; the next run reads on from there", opts.name, final,
    w.from and time.iso(w.from) or "the beginning", time.iso(w.to)))
end

return M
