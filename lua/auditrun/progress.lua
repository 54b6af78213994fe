-- auditrun.progress: what a person sees while a workflow runs.
--
-- On a terminal, one live line on stderr redrawn in place (listed, queued,
-- running, done, failed, bytes, elapsed, ETA), with failures and -v events
-- printed above it. Anywhere else one timestamped line per event, as text
-- or JSON (--log-format json). Results go to stdout, a line each, as they
-- finish; a closed stdout (`| head`) is ignored, never fatal.
--
--   local p = progress.new { quiet = false, verbose = false, format = "text" }
--   p.counts.listed = p.counts.listed + 1; p:update()
--   p:event("info", "done", "AccessReport.zip", { bytes = 1234 })
--   p:result("reports/AccessReport.zip")
--   p:close()
local records = require("auditrun.records")
local task = require("auditrun.task")
local util = require("auditrun.util")

local M = {}

local Progress = {}
Progress.__index = Progress

-- notice: a step the person should see even on a terminal (a long wait).
local LEVELS = { error = 3, warning = 2.5, notice = 2.5, info = 2, debug = 1 }
-- Warnings of one kind printed in full; the rest are counted.
local WARNINGS_SHOWN = 10
local REDRAW_EVERY = 0.1

--- True when stderr is a terminal (the live line makes sense there).
function M.stderr_is_terminal()
  if os.getenv("TERM") == "dumb" then return false end
  return os.execute("test -t 2") == true
end

--- The terminal's width in columns (80 when it cannot be told): a live
--- line longer than that would wrap, and \r would redraw only its tail.
function M.terminal_width()
  local cols = tonumber(os.getenv("COLUMNS") or "")
  if not cols then
    local p = io.popen("stty size < /dev/tty 2>/dev/null")
    local out = p and p:read("a") or ""
    if p then p:close() end
    cols = tonumber(out:match("^%d+%s+(%d+)"))
  end
  if not cols or cols < 20 then return 80 end
  return cols
end

--- new{quiet=, verbose=, format="text"|"json", live=bool, sample=, rows=,
--- every=, out=, err=, clock=, now=} -> progress: a run's live line, log
--- lines and summary.
---
--- live defaults to whether stderr is a terminal. sample=fn(counts) fills
--- in counts before a redraw; rows=true: a records run, the line counts
--- rows, not reports; every=seconds: off a terminal, a progress line when
--- nothing else was printed for that long (nil or 0: none).
function M.new(o)
  o = o or {}
  local live = o.live
  if live == nil then live = not o.quiet and M.stderr_is_terminal() end
  -- Under --each-profile the tenants run side by side: no live line, and
  -- each line says whose it is.
  local each = task.scope().each
  if each then live = false end
  local p = setmetatable({
    profile = each and each.profile, prefix = each and (each.profile .. ": ") or "",
    quiet = o.quiet, verbose = o.verbose, format = o.format or "text",
    live = live and not o.quiet,
    out = o.out or io.stdout, err = o.err or io.stderr, clock = o.clock or task.now,
    wall = o.now or os.time, sample = o.sample, rows = o.rows,
    counts = { listed = 0, queued = 0, running = 0, done = 0, failed = 0, bytes = 0, skipped = 0 },
    warnings = {},
    listing = true, drawn = false, last_draw = -math.huge,
  }, Progress)
  p.started = p.clock()
  p.last_output = p.started
  if not p.live and not o.quiet and (o.every or 0) > 0 then
    -- Off a terminal (cron, systemd, a pod's log): a line at least every
    -- `every` seconds, so a long quiet phase still shows the run is alive.
    p.ticker = task.spawn(function()
      while true do
        local wait = p.last_output + o.every - p.clock()
        if wait <= 0 then
          p:event("info", "progress", p:line(), p:fields())
          wait = o.every
        end
        task.sleep(wait)
      end
    end)
  elseif p.live then
    p.width = o.width or M.terminal_width()
    -- Elapsed time and ETA move even when nothing finishes.
    p.ticker = task.spawn(function()
      while true do
        task.sleep(1)
        p:update(true)
      end
    end)
  end
  return p
end

--- "1:05", "1:02:03"
function M.duration(s)
  s = math.max(0, math.floor(s + 0.5))
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end

--- "512 B", "12.3 KB", "4.0 MB"
function M.bytes(n)
  if n < 1000 then return string.format("%d B", n) end
  local units = { "KB", "MB", "GB", "TB" }
  local i = 0
  repeat
    n = n / 1000
    i = i + 1
  until n < 1000 or i == #units
  return string.format("%.1f %s", n, units[i])
end

function Progress:elapsed()
  return self.clock() - self.started
end

-- Seconds left, from the pace so far; nil while nothing has finished or
-- the listing is still growing the work.
function Progress:eta()
  local c = self.counts
  local finished = c.done + c.failed
  if self.listing or finished == 0 then return nil end
  local left = c.listed - finished
  return self:elapsed() / finished * left
end

--- fields() -> the counts a progress line shows, for a JSON log line.
function Progress:fields()
  local c = self.counts
  if self.sample then self.sample(c) end
  local f = { elapsed = math.floor(self:elapsed() + 0.5), done = c.done, bytes = c.bytes }
  if self.rows then
    f.earlier = c.skipped
  else
    f.listed, f.queued, f.running, f.failed = c.listed, c.queued, c.running, c.failed
  end
  return f
end

function Progress:line()
  local c = self.counts
  if self.sample then self.sample(c) end
  if self.rows then
    return string.format("%s rows %d%s  %s", M.duration(self:elapsed()), c.done,
      c.skipped > 0 and string.format(" (%d from an earlier run)", c.skipped) or "", M.bytes(c.bytes))
  end
  local eta = self:eta()
  return string.format("%s listed %d  queued %d  running %d  done %d  failed %d  %s  ETA %s",
    M.duration(self:elapsed()), c.listed, c.queued, c.running, c.done, c.failed, M.bytes(c.bytes),
    eta and M.duration(eta) or "-")
end

-- Writes ignore errors: a reader that went away must not stop the run.
local function write(f, ...)
  pcall(f.write, f, ...)
  pcall(f.flush, f)
end

function Progress:clear_line()
  if self.drawn then
    write(self.err, "\r\27[K")
    self.drawn = false
  end
end

--- update(force): redraws the live line (at most ten times a second).
function Progress:update(force)
  if not self.live or self.closed then return end
  local now = self.clock()
  if not force and now - self.last_draw < REDRAW_EVERY then return end
  self.last_draw = now
  local line = self:line()
  if #line >= self.width then line = line:gsub("  ", " "):sub(1, self.width - 1) end
  write(self.err, "\r", line, "\27[K")
  self.drawn = true
end

local function stamp(self)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", self.wall())
end

-- One JSON log line on stderr: time, level, event, message, then fields.
local function json_line(self, level, name, message, fields)
  local rec = { time = stamp(self), level = level, profile = self.profile, event = name, message = message }
  for k, v in pairs(fields or {}) do if rec[k] == nil then rec[k] = v end end
  write(self.err, records.encode(rec), "\n")
end

--- event(level, name, message, fields): one thing the run says, at a level.
---
--- The levels: a failure ("error"), something mended or let through
--- ("warning": shown unless -q), something to see even over the live line
--- ("notice": a long wait), a step ("info": shown as log lines when not
--- live) or a detail ("debug": -v).
function Progress:event(level, name, message, fields)
  local lv = LEVELS[level] or LEVELS.info
  if lv < LEVELS.error then
    if self.quiet or self.live and lv == LEVELS.info then return self:update() end
    if lv == LEVELS.debug and not self.verbose then return end
  end
  self:clear_line()
  self.last_output = self.clock()
  if self.format == "json" and not self.live then
    json_line(self, level, name, message, fields)
  elseif self.live then
    write(self.err, level == "error" and "failed: " or level == "warning" and "warning: " or "", message, "\n")
  else
    write(self.err, stamp(self), " ", self.prefix, name, " ", message, "\n")
  end
  self:update(true)
end

--- warn(name, message, n): a warning counted n times under its name
--- (summary() says how many of each); the first few of a name are shown.
function Progress:warn(name, message, n)
  local before = self.warnings[name] or 0
  self.warnings[name] = before + (n or 1)
  if before < WARNINGS_SHOWN then
    self:event("warning", name, message .. (before + 1 == WARNINGS_SHOWN and " (more of these are only counted)" or ""))
  end
end

--- warning_summary() -> "" or "; replaced_surrogates 1, unparsed_times 3".
function Progress:warning_summary()
  local names = util.sorted_keys(self.warnings)
  if #names == 0 then return "" end
  for i, name in ipairs(names) do names[i] = string.format("%s %d", name, self.warnings[name]) end
  return "; " .. table.concat(names, ", ")
end

--- listener() -> a listener for auditrun.log: warnings counted (warn),
--- what a person should see ("info") as notices, the rest as -v details.
function Progress:listener()
  return function(event, message, level, n)
    if level == "warning" then return self:warn(event, message, n) end
    if level == "info" then return self:event("notice", event, message) end
    self:event("debug", event, message)
  end
end

--- result(line): one finished result on stdout.
function Progress:result(line)
  if self.quiet then return end
  self:clear_line()
  write(self.out, line, "\n")
  self:update(true)
end

--- say(text): a plain message for the person (the summary), on stderr.
function Progress:say(text)
  self:clear_line()
  write(self.err, self.prefix, text, "\n")
end

--- summary(text, fields): the run's summary, on stderr: text, or under
--- --log-format json (when not live) a JSON line, event "summary", with
--- text as its message and fields beside it.
function Progress:summary(text, fields)
  if self.format == "json" and not self.live then
    self:clear_line()
    json_line(self, "info", "summary", text, fields)
  else
    self:say(text)
  end
end

function Progress:close()
  if self.closed then return end
  self:update(true)
  if self.drawn then write(self.err, "\n") end
  self.drawn = false
  self.closed = true
  if self.ticker then self.ticker:cancel() end
end

return M
