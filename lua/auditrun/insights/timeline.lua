-- auditrun.insights.timeline: Insights user activity for the activity
-- timeline, read from the content of user_activities_export reports: one
-- export per user, exactly once across reruns, its rows become events.
--
-- The users are every user of the tenant's user summaries, or those given.
-- The exports run within the tenant's limit through auditrun.run (its state
-- and the reports in a hidden folder beside the timeline's file); each
-- report's rows are read as a stream (auditrun.sheets), in time order.
local activity = require("auditrun.activity")
local errors = require("auditrun.errors")
local log = require("auditrun.log")
local runs = require("auditrun.run")
local sheets = require("auditrun.sheets")
local task = require("auditrun.task")
local time = require("auditrun.time")

local M = {}

-- Columns by their header, compared without case: the first that matches.
local COLUMNS = {
  time = { "^time", "date" }, user = { "^user", "actor", "e%-?mail" }, action = { "operation", "activity", "event" },
  object = { "object url", "url", "path", "object name" }, ip = { "ip" }, source = { "client", "source", "app" },
}

-- Operations by the words they contain, in order: the timeline's verbs.
local VERBS = {
  { "download", "download" }, { "upload", "upload" }, { "delet", "delete" }, { "trash", "delete" },
  { "link", "share" }, { "shar", "share" }, { "invitation", "share" }, { "access", "view" }, { "view", "view" },
  { "renam", "rename" }, { "move", "move" }, { "creat", "create" }, { "modif", "modify" }, { "edit", "modify" },
  { "updat", "modify" }, { "login", "login" }, { "loggedin", "login" }, { "added", "member_add" },
}

--- verb(operation) -> the timeline's common word for an Insights operation.
function M.verb(operation)
  local op = tostring(operation or ""):lower()
  for _, v in ipairs(VERBS) do
    if op:find(v[1], 1, true) then return v[2] end
  end
  return "other"
end

-- A sheet as warnings name it: its member, its name in a workbook, and
-- the first cells of its header row.
local function sheet_label(member, sheet, header)
  local cells = {}
  for i = 1, 6 do cells[#cells + 1] = header[i] and tostring(header[i]) or nil end
  return string.format("%s%s [%s]", member, sheet and (" sheet " .. sheet) or "", table.concat(cells, ", "))
end

-- The events of one report, in its order (the service sorts by time): the
-- rows of every sheet whose header row (its first with a cell) has time
-- and operation columns. Other sheets, and summaries (a sheet, or a CSV
-- member, named so) whatever their columns, are passed by; seen counts
-- the events sheets (seen.events) and lists the others (seen.other). An
-- event whose time cannot be read comes too, without a time, and with a
-- warning when `warn` (the pass whose events are given out).
local function report_events(path, dir, seen, warn)
  local rows = sheets.rows(path, dir)
  local key, header, at
  return function()
    while true do
      local row, member, sheet = rows()
      if row == nil then return nil end
      local this = member .. "\0" .. (sheet or "")
      if this ~= key then key, header, at = this, nil, nil end
      if not header then
        if next(row) ~= nil then
          header = row
          local l = sheets.layout(row, COLUMNS)
          if l.time and l.action and not (sheet or member):lower():find("summary", 1, true) then
            at = l
            seen.events = seen.events + 1
          else
            seen.other[#seen.other + 1] = sheet_label(member, sheet, row)
          end
        end
      elseif at then
        local raw = {}
        for i, name in pairs(header) do raw[name] = row[i] end
        local t = time.read(row[at.time])
        if not t and warn then
          log.warn("unparsed_times", 1, "%s: time %s of a row (user %s) is not a time; the event is written "
            .. "without one", path, tostring(row[at.time]), tostring(at.user and row[at.user]))
        end
        return {
          time = t and time.iso(t, 3), vendor = "insights", user = at.user and row[at.user],
          action = row[at.action], verb = M.verb(row[at.action]), source = at.source and row[at.source],
          ip = at.ip and row[at.ip], object = at.object and row[at.object], raw = raw,
        }
      end
    end
  end
end

--- events(report, tmpdir) -> iterator over a report's events in time
--- order | nil, err.
---
--- The report is read through once first: one that cannot be read (a
--- damaged zip or member) or has no sheet with time and operation columns
--- is an error value of kind "report" naming it, before any event is
--- given. Then the events are streamed when the report is in order (the
--- service sorts it: memory stays flat), else read whole and sorted (one
--- user's report for the range), so the merge stays right either way.
--- Events without a time keep their place when streamed and come first
--- when sorted.
function M.events(path, dir)
  local seen = { events = 0, other = {} }
  local last, in_order = "", true
  local ok, err = pcall(function()
    for ev in report_events(path, dir, seen, false) do
      if ev.time and ev.time < last then in_order = false end
      last = ev.time or last
    end
  end)
  if not ok then
    if errors.is(err, "report") then return nil, err end
    error(err, 0)
  end
  if seen.events == 0 then
    return nil, errors.new("report", #seen.other == 0 and (path .. ": no CSV or XLSX sheet in it")
      or string.format("%s: no sheet of events with time and operation columns (only %s)", path, table.concat(seen.other, "; ")))
  end
  local fresh = { events = 0, other = {} }
  if in_order then return report_events(path, dir, fresh, true) end
  local all = {}
  for ev in report_events(path, dir, fresh, true) do all[#all + 1] = ev end
  table.sort(all, function(a, b) return (a.time or "") < (b.time or "") end)
  local i = 0
  return function()
    i = i + 1
    return all[i]
  end
end

-- Every user's login name, from the user summaries.
local function all_users(c)
  local out = {}
  for u in c:user_summaries {} do
    if type(u.loginName) == "string" then out[#out + 1] = u.loginName end
  end
  return out
end

--- export_sources(api, from, to, o, subjects, export) -> one source per
--- subject, each the events of that subject's activity export for [from,
--- to).
---
--- api: the client (or its .legacy); o: {insights_dir=, warn=, coverage=}
--- as sources takes them; export: {name= (the export), params=
--- function(subject, start, finish) -> its parameters (start and finish as
--- yyyy-MM-ddTHH:mm:ss), source= (the coverage's name for it)}. Exports
--- start at once, within the job limit; a source waits for its own. A
--- report that cannot be read gives no events and warn("unreadable",
--- message naming the subject and the file) (auditrun.workflow's records);
--- without warn it raises. Each subject's export is a window of o.coverage
--- (auditrun.coverage).
function M.export_sources(api, from, to, o, subjects, export)
  local dir = assert(o.insights_dir, "the Insights activity needs a folder for its reports")
  local run = errors.try(runs.open(dir))
  local start, finish = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(from)), os.date("!%Y-%m-%dT%H:%M:%S", math.ceil(to))
  local out = {}
  for _, subject in ipairs(subjects) do
    local key = string.format("%s:%s:%s:%s", export.source == "user_activities" and "activity" or export.name, subject,
      start, finish)
    local job = task.spawn(function()
      return errors.try(run:export(api, key, export.name, export.params(subject, start, finish)))
    end)
    local events
    local win = o.coverage and o.coverage:window { vendor = "insights", source = export.source, subject = subject,
                                                   from = from, to = to }
    out[#out + 1] = activity.source(function()
      if not events then
        local ok, file = job:join()
        if not ok then error(file, 0) end
        local err
        events, err = M.events(file.path, dir)
        if not events then
          if not o.warn then error(err, 0) end
          o.warn("unreadable", string.format("the Insights activity of %s is not read: %s", subject, err.message))
          if win then win:stop("the report could not be read: " .. err.message) end
          events = function() return nil end
        end
      end
      return events()
    end, function(ev) return ev end, from, to, export.source, win)
  end
  return out
end

-- The timeline's export: a user's activity.
local USER_ACTIVITIES = {
  name = "user_activities_export", source = "user_activities",
  params = function(email, start, finish) return { email = email, startTime = start, finishTime = finish } end,
}

--- sources(client, from, to, {insights_users=, insights_dir=, warn=, coverage=}) ->
--- the timeline's sources: one per user, each the events of that user's
--- activity export for [from, to) (export_sources).
---
--- The users are those given, else every user of the tenant's user summaries.
function M.sources(c, from, to, o)
  return M.export_sources(c, from, to, o, o.insights_users or all_users(c), USER_ACTIVITIES)
end

return M
