-- auditrun.metrics: what a run did, for a monitoring system.
--
--   metrics.start { file = "/var/lib/node_exporter/auditrun.prom", workflow = "dealcloud-activity",
--                   profile = "contoso" }
--   metrics.add("retries", 1)              -- the library counts as it goes
--   metrics.set("rows_written", 1200)      -- the workflow says what it wrote
--   metrics.finish(exit_code)              -- at the end of the run, failed ones too
--
-- The file is Prometheus text exposition format, as node_exporter's textfile
-- collector reads it, written atomically (never half a file). Every series
-- carries the labels workflow and profile; a file that several workflows or
-- profiles share keeps each one's series, and only those of this run are
-- replaced (under a lock beside the file, so two runs ending at once both
-- land). auditrun_last_success_timestamp_seconds keeps its earlier value
-- when a run fails, so "time() - it > 2 days" alerts on a run that stopped
-- working as well as on one that stopped running.
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local task = require("auditrun.task")
local util = require("auditrun.util")

local M = {}

-- The series a run writes: name, type, help, in the file's order.
M.SERIES = {
  { "last_run_timestamp_seconds", "gauge", "Unix time the last run ended, whatever its outcome." },
  { "last_success_timestamp_seconds", "gauge", "Unix time the last run that succeeded ended." },
  { "last_exit_code", "gauge",
    "Exit code of the last run (0 success, 1 failure, 2 usage error, 3 incomplete, 130 interrupted)." },
  { "run_duration_seconds", "gauge", "Seconds the last run took." },
  { "rows_written", "gauge", "Rows the last run of a records workflow wrote." },
  { "reports_written", "gauge", "Reports the last run of an export workflow saved." },
  { "failures", "gauge", "Things that failed in the last run (reports, listings, unreadable sources; "
    .. "at least 1 when the run failed)." },
  { "retries", "gauge", "Requests the last run sent again (retries, and submits after a busy answer)." },
  { "throttled_seconds", "gauge", "Seconds the last run waited because a service said it was busy (429, 503)." },
}

local PREFIX = "auditrun_"

-- The run being measured is its scope's (task.scope().metrics), so that
-- the tenants of --each-profile, side by side, count apart.
local function current() return task.scope().metrics end

--- start{file=, workflow=, profile=}: measures a run from here. The counters
--- start at 0; finish() writes them.
function M.start(o)
  task.scope().metrics = { file = o.file, workflow = o.workflow or "script", profile = o.profile or "default",
              started = task.now(), values = { retries = 0, throttled_seconds = 0, failures = 0 } }
end

--- add(name, n): adds n to a counter of the run being measured (none: ignored).
function M.add(name, n)
  local run = current()
  if run then run.values[name] = (run.values[name] or 0) + n end
end

--- set(name, value): sets a value of the run being measured.
function M.set(name, value)
  local run = current()
  if run then run.values[name] = value end
end

--- get(name) -> a value of the run being measured, or nil.
function M.get(name)
  local run = current()
  return run and run.values[name]
end

-- ---- the text format -----------------------------------------------------------

local function escape(v)
  return (tostring(v):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"'))
end

local function unescape(v)
  return (v:gsub("\\(.)", { n = "\n", ["\\"] = "\\", ['"'] = '"' }))
end

-- The labels of a sample, {name = value}, from the text between its braces;
-- nil when they cannot be read.
local function parse_labels(s)
  local labels, i = {}, 1
  while i <= #s do
    local name, after = s:match("^%s*([%a_][%w_]*)%s*=%s*\"()", i)
    if not name then
      if s:match("^%s*,?%s*$", i) then break end
      return nil
    end
    local j, value = after, {}
    while true do
      local c = s:sub(j, j)
      if c == "" then return nil end
      if c == "\\" then
        value[#value + 1] = s:sub(j, j + 1)
        j = j + 2
      elseif c == '"' then
        break
      else
        value[#value + 1] = c
        j = j + 1
      end
    end
    labels[name] = unescape(table.concat(value))
    i = j + 1
    local comma = s:match("^%s*,()", i)
    if comma then i = comma end
  end
  return labels
end

--- parse(text) -> samples {{name=, labels={...}, value=text}, ...}, help
--- {name = text}, types {name = text} | nil, "line N: why".
---
--- The text format of Prometheus: # HELP and # TYPE lines, other comments,
--- samples with an optional timestamp.
function M.parse(text)
  local samples, help, types = {}, {}, {}
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:match("^%s*$") then goto next end
    if line:sub(1, 1) == "#" then
      local kind, name, rest = line:match("^#%s+(%u+)%s+([%a_:][%w_:]*)%s*(.*)$")
      if kind == "HELP" then help[name] = rest elseif kind == "TYPE" then types[name] = rest end
      goto next
    end
    do
      local name, rest = line:match("^([%a_:][%w_:]*)(.*)$")
      if not name then return nil, string.format("line %d is not a sample: %s", n, line) end
      local labels = {}
      if rest:sub(1, 1) == "{" then
        -- A } inside a label value: take the last } before the value.
        local inner, after = rest:match("^{(.*)}%s+(%S+.*)$")
        labels = inner and parse_labels(inner)
        if not labels then return nil, string.format("line %d has labels that cannot be read: %s", n, line) end
        rest = " " .. after
      end
      local value = rest:match("^%s+(%S+)")
      if not value or not (tonumber(value) or value == "NaN" or value:match("^[+-]Inf$")) then
        return nil, string.format("line %d has no number for %s: %s", n, name, line)
      end
      samples[#samples + 1] = { name = name, labels = labels, value = value }
    end
    ::next::
  end
  return samples, help, types
end

local function number(v)
  if math.type(v) == "integer" then return string.format("%d", v) end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", math.tointeger(v)) end
  return string.format("%.3f", v)
end

local function label_text(labels)
  local names = util.sorted_keys(labels)
  local parts = {}
  for i, k in ipairs(names) do parts[i] = string.format('%s="%s"', k, escape(labels[k])) end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- The file's text: every auditrun series, ours replacing those of the same
-- workflow and profile, grouped under one HELP and TYPE each; other
-- samples (another exporter's) kept after them as they were.
local function render(samples, mine)
  local by_name, others, order = {}, {}, {}
  for _, s in ipairs(samples) do
    if s.name:sub(1, #PREFIX) == PREFIX then
      if not by_name[s.name] then by_name[s.name] = {}; order[#order + 1] = s.name end
      local l = s.labels
      if not (l.workflow == mine.workflow and l.profile == mine.profile) then
        table.insert(by_name[s.name], s)
      end
    else
      others[#others + 1] = s
    end
  end
  local out, known = {}, {}
  local function block(name, kind, help)
    local list = by_name[name] or {}
    for _, s in ipairs(mine.samples) do if s.name == name then list[#list + 1] = s end end
    if #list == 0 then return end
    table.sort(list, function(a, b) return label_text(a.labels) < label_text(b.labels) end)
    out[#out + 1] = "# HELP " .. name .. " " .. help
    out[#out + 1] = "# TYPE " .. name .. " " .. kind
    for _, s in ipairs(list) do out[#out + 1] = name .. label_text(s.labels) .. " " .. s.value end
  end
  for _, d in ipairs(M.SERIES) do
    known[PREFIX .. d[1]] = true
    block(PREFIX .. d[1], d[2], d[3])
  end
  -- Series a later version wrote that this one does not know: kept.
  for _, name in ipairs(order) do
    if not known[name] then block(name, "untyped", "Written by another version of auditrun.") end
  end
  for _, s in ipairs(others) do
    out[#out + 1] = s.name .. (next(s.labels) and label_text(s.labels) or "") .. " " .. s.value
  end
  return table.concat(out, "\n") .. "\n"
end

local LOCK_WAIT = 10  -- seconds another run may hold the file's lock

--- check(file) -> nil, or why the file cannot be a metrics file (its
--- folder is missing or refuses writing; it holds something else).
function M.check(file)
  local lock, err = files.lock(file .. ".lock")
  if not lock then
    if err.kind == "locked" then return nil end
    return string.format("--metrics %s: %s", file, err.message)
  end
  lock:remove()
  local f = io.open(file, "rb")
  if f then
    local text = f:read("a")
    f:close()
    local parsed, why = M.parse(text or "")
    if not parsed then return string.format("--metrics %s is not a metrics file (%s): remove it, or give another "
      .. "file", file, why) end
  end
end

--- write(file, workflow, profile, values, code) -> true | nil, err: this
--- run's series into the file, keeping everyone else's.
function M.write(file, workflow, profile, values, code)
  local lock
  local waited = 0
  while true do
    local l, err = files.lock(file .. ".lock")
    if l then lock = l break end
    if err.kind ~= "locked" or waited >= LOCK_WAIT then
      return nil, errors.new("file", string.format("--metrics %s: %s", file, err.message))
    end
    task.sleep(0.1)
    waited = waited + 0.1
  end
  local samples = {}
  local old = io.open(file, "rb")
  if old then
    local text = old:read("a")
    old:close()
    local parsed, why = M.parse(text or "")
    if not parsed then
      lock:remove()
      return nil, errors.new("file", string.format("--metrics %s is not a metrics file (%s): remove it, or give "
        .. "another file", file, why))
    end
    samples = parsed
  end
  local labels = { workflow = workflow, profile = profile }
  local previous_success
  for _, s in ipairs(samples) do
    if s.name == PREFIX .. "last_success_timestamp_seconds" and s.labels.workflow == workflow
      and s.labels.profile == profile then
      previous_success = s.value
    end
  end
  local mine = { workflow = workflow, profile = profile, samples = {} }
  local function put(name, value)
    if value ~= nil then mine.samples[#mine.samples + 1] = { name = PREFIX .. name, labels = labels, value = value } end
  end
  local now = os.time()
  put("last_run_timestamp_seconds", number(now))
  put("last_success_timestamp_seconds", code == 0 and number(now) or previous_success)
  put("last_exit_code", number(code))
  for _, d in ipairs(M.SERIES) do
    local v = values[d[1]]
    if type(v) == "number" then put(d[1], number(v)) end
  end
  local ok, werr = files.write_atomic(file, render(samples, mine))
  lock:remove()
  if not ok then return nil, errors.new("file", string.format("--metrics %s: %s", file, tostring(werr))) end
  return true
end

--- finish(code) -> true | nil, err: writes the run's series (see above) with
--- its exit code; a run that failed counts at least one failure. Ends the
--- measurement.
function M.finish(code)
  local run = current()
  task.scope().metrics = nil
  if not (run and run.file) then return true end
  local v = run.values
  v.run_duration_seconds = task.now() - run.started
  if code ~= 0 and (v.failures or 0) == 0 then v.failures = 1 end
  return M.write(run.file, run.workflow, run.profile, v, code)
end

return M
