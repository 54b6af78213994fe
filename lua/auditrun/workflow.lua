-- auditrun.workflow: the run of an export workflow, whatever the vendor.
--
--   local run = workflow.open(opts, { slots = client.limiter })  -- opts from auditrun.cli
--   for each subject:
--     run:add { key = "group:" .. id, kind = "group_access_export", api = "graph", subjects = { id },
--               label = "group " .. name,
--               export = function(ctx) return ctx.run:export(client, "group:" .. id, ...) end }
--   (inside run:list("groups", function() ... end), so a failed listing is
--   reported and the items already added still finish)
--   run:finish()            -- waits, prints and writes the summary; raises if any failed
--
-- Each item runs as its own task as soon as it is added, so reports are
-- fetched while the list is still being read, and each result is reported
-- the moment it lands. The folder holds the reports, manifest.jsonl (one
-- line per report, exactly once: auditrun.manifest), summary.json, and the
-- run state in a hidden .auditrun/ folder, so that a rerun with the same
-- --out resumes. An item whose job ends failed is tried again, up to
-- --max-attempts times; one that still fails does not stop the others.
local cli = require("auditrun.cli")
local core = require("auditrun.core")
local coverage = require("auditrun.coverage")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local json = require("auditrun.json")
local log = require("auditrun.log")
local manifest = require("auditrun.manifest")
local metrics = require("auditrun.metrics")
local progress = require("auditrun.progress")
local records = require("auditrun.records")
local runs = require("auditrun.run")
local task = require("auditrun.task")
local util = require("auditrun.util")

local access = util.lazy "auditrun.access"
local page = util.lazy "auditrun.page"

local M = {}

M.SUMMARY = "summary.json"
-- The options the folder's reports were made with (auditrun.cli.answer), in its run state folder.
M.ANSWER = "answer.json"

local SUMMARY_FIELDS = { "workflow", "api", "out", "dry_run", "started", "finished", "seconds", "listed", "repeated",
                         "done", "reused", "failed", "bytes", "interrupted", "manifest", "access", "failures",
                         "extra_jobs", "warnings", "coverage" }

local WorkflowRun = {}
WorkflowRun.__index = WorkflowRun

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

--- open(opts, {slots=, access=}) -> run. opts: out, dry_run, max_attempts,
--- job_timeout, job_length, quiet, verbose, log_format, name, api, profile,
--- compare (from auditrun.cli).
---
--- slots: the semaphore whose permits are jobs running on the service (for
--- the running/queued counts, and the slots held for an earlier run's
--- submits whose outcome is unknown). access: the reports hold access rows,
--- so the run ends by building the access table, its changes since
--- opts.compare and summary.html (auditrun.access, auditrun.page). Raises
--- on a folder it cannot use.
function M.open(opts, o)
  o = o or {}
  local r = setmetatable({
    opts = opts, dir = opts.out, name = opts.name or "workflow", slots = o.slots, access = o.access,
    max_attempts = opts.max_attempts or 3, tasks = {}, failures = {}, reused = 0, active = 0, keys = {},
    repeated = 0, deferred = {},
    started_at = os.time(),
  }, WorkflowRun)
  r.progress = progress.new { quiet = opts.quiet, verbose = opts.verbose, format = opts.log_format,
                              every = opts.progress_every, sample = function(c) r:sample(c) end }
  -- Retries, waits for a busy service and token renewals, for -v.
  log.listen(r.progress:listener())
  local answer_path = r.dir .. "/" .. runs.STATE_DIR .. "/" .. M.ANSWER
  if opts.dry_run then
    -- With --fresh the earlier folder would be set aside, whatever it was made with.
    if not opts.fresh then M.check_answer(opts, r.dir, answer_path) end
    return r
  end
  if opts.fresh then
    local moved = errors.try(runs.set_aside(r.dir))
    if moved then r.progress:say(string.format("%s: the earlier run's %s is now %s", r.name, r.dir, moved)) end
  end
  -- The run state (locked: one run per folder) in DIR/.auditrun/.
  r.run = errors.try(runs.open(r.dir))
  local ok, err = pcall(M.check_answer, opts, r.dir, answer_path)
  if not ok then
    r.run:close()
    error(err, 0)
  end
  r.manifest = errors.try(manifest.open(r.dir))
  r.ctx = { run = r.run, deadline = opts.job_timeout }
  -- What this run exports, subject by subject: "running" until it ends.
  -- (--to is the last second included; the report's ends are excluded.)
  local from, to = opts.from, opts.to
  if to then to = to + 1 end
  r.coverage = coverage.new((from or to) and { from = from, to = to } or nil)
  r.range, r.coverage_files = { from = from, to = to }, {}
  r:write_coverage("running", "the run has not finished")
  if r.slots then
    -- Jobs of an earlier run may still run at the service: each recorded
    -- one keeps a slot until this run picks it up, each submit whose
    -- outcome is unknown while its job could run (auditrun.run).
    local held, till, recorded = r.run:hold_slots(r.slots, opts.job_length)
    if recorded > 0 then
      r.progress:event("debug", "held", string.format("%d job(s) an earlier run submitted keep their slots until "
        .. "they are seen done", recorded))
    end
    if held > 0 then
      r.progress:event("notice", "held", string.format("%d submit(s) of an earlier run may still be running at the "
        .. "service (their outcome is unknown): their job slots stay taken until %s at the latest, and those "
        .. "reports are submitted again last", held, os.date("!%H:%M:%S UTC", till)))
    end
  end
  return r
end

--- check_answer(opts, output, path): raises a usage error (exit 2) when the
--- answer recorded at path (a JSON file) differs from opts.answer; else
--- records opts.answer there if nothing is (and the run is not a dry run).
function M.check_answer(opts, output, path)
  if not opts.answer then return end
  local text = files.exists(path) and errors.try(files.read(path))
  local recorded = text and json.decode(text)
  if text and type(recorded) ~= "table" then
    error(errors.new("state", path .. " is not a record this auditrun wrote; rerun with --fresh to start over"), 0)
  end
  if recorded then
    local why = cli.answer_change(output, recorded, opts.answer)
    if why then error(errors.new("usage", why), 0) end
  elseif not opts.dry_run then
    errors.try(files.write_atomic(path, records.encode(opts.answer) .. "\n"))
  end
end

-- running: jobs holding a slot on the service; queued: the rest of the
-- items under way (waiting for a slot, or being fetched).
function WorkflowRun:sample(c)
  local running = self.slots and math.min(self.slots.in_use, self.active) or 0
  c.running, c.queued = running, self.active - running
end

-- Worth another try in this run: a job the service failed, a service
-- that stayed busy, a download cut short. Not: a refused request, an
-- unknown submit outcome (the service may hold the job), a job not done
-- by --job-timeout (waiting again would wait past it), an interruption.
local function worth_retry(err)
  if not errors.is(err) then return false end
  if err.kind == "cancelled" or err.kind == "interrupted" or err.outcome == "unknown" or err.overdue then
    return false
  end
  return err.kind == "job" or err.retryable == true
end

local function relative(dir, path)
  if path:sub(1, #dir + 1) == dir .. "/" then return path:sub(#dir + 2) end
  return path
end

--- write_coverage(status, why) -> the report: DIR/coverage.json, each
--- subject's report or why it has none (auditrun.coverage).
function WorkflowRun:write_coverage(status, why)
  local r = self.coverage:report { workflow = self.name, status = status, error = why, files = self.coverage_files }
  errors.try(coverage.write_to(self.dir .. "/" .. coverage.NAME, r))
  return r
end

function WorkflowRun:record(item, file)
  local c = self.progress.counts
  local rel = relative(self.dir, file.path)
  if item.window then item.window:done { file = rel, bytes = file.size, sha256 = file.sha256 } end
  self.coverage_files[#self.coverage_files + 1] = { file = rel, bytes = file.size, sha256 = file.sha256,
                                                    complete = true }
  local added = errors.try(self.manifest:add {
    kind = item.kind, api = item.api, subjects = item.subjects, job_id = file.job, file = rel,
    bytes = file.size, sha256 = file.sha256,
  })
  c.done = c.done + 1
  c.bytes = c.bytes + (file.size or 0)
  if file.reused then self.reused = self.reused + 1 end
  self.progress:event("info", "done", string.format("%s: %s (%s%s)", item.label, rel, progress.bytes(file.size or 0),
    file.reused and ", from an earlier run" or ""), { file = rel, bytes = file.size, job_id = file.job,
    reused = file.reused or false, manifest_added = added })
  self.progress:result(file.path)
end

function WorkflowRun:fail(item, err, attempts)
  if item.window then item.window:stop(err) end
  local c = self.progress.counts
  c.failed = c.failed + 1
  local message = tostring(err)
  local f = { label = item.label, kind = item.kind, subjects = item.subjects, error = message, attempts = attempts,
              error_kind = errors.is(err) and err.kind or "error" }
  if errors.is(err) and err.outcome == "unknown" then
    f.note = "the service may hold a job for this export that nobody fetched; a rerun submits it once more"
  end
  self.failures[#self.failures + 1] = f
  self.progress:event("error", "failed", string.format("%s: %s", item.label, message),
    { subjects = item.subjects, attempts = attempts })
end

local function call_export(item, ctx)
  local r = table.pack(pcall(item.export, ctx))
  if not r[1] then
    local e = r[2]
    if errors.is(e) then return nil, e end
    return nil, errors.new("error", tostring(e))
  end
  return r[2], r[3]
end

function WorkflowRun:run_item(item)
  self.active = self.active + 1
  self.progress:update()
  local attempt, file, err = 0
  repeat
    attempt = attempt + 1
    file, err = call_export(item, self.ctx)
    if file or not worth_retry(err) or attempt >= self.max_attempts then break end
    self.progress:event("debug", "retry", string.format("%s: attempt %d of %d failed (%s); trying again", item.label,
      attempt, self.max_attempts, tostring(err)), { subjects = item.subjects })
    task.sleep(math.min(attempt, 10))
  until false
  self.active = self.active - 1
  if file then
    self:record(item, file)
  elseif not (errors.is(err, "cancelled")) then
    self:fail(item, err, attempt)
  end
end

--- add(item): item = {key, kind, api, subjects = {...}, label, export =
--- function(ctx) -> file | nil, err}.
---
--- ctx = {run= (auditrun.run: it owns the folder the report lands in),
--- deadline= (--job-timeout: seconds to wait for a job)}; file = {path,
--- size, sha256, job, reused, extra_job}. Under --dry-run the item is only
--- listed. An item whose key was added before in this run is counted as a
--- repeat of the listing (repeat_of), not exported again.
function WorkflowRun:add(item)
  assert(type(item.export) == "function" and item.label, "an item needs a label and an export function")
  if self:repeat_of(item.key, item.label) then return end
  local c = self.progress.counts
  c.listed = c.listed + 1
  if self.opts.dry_run then
    self.progress:result("would submit: " .. item.label .. (item.describe and ("  " .. item.describe) or ""))
    return
  end
  self.progress:event("info", "listed", item.label, { subjects = item.subjects })
  item.window = self.coverage:window { vendor = "insights", source = item.kind, report = true,
    subject = item.subjects and #item.subjects > 0 and table.concat(item.subjects, ",") or item.label,
    from = self.range.from, to = self.range.to }
  -- A submit of an earlier run whose outcome is unknown: sent again last,
  -- once the listing is read (listed), behind every other report.
  if self.run and self.run:unknown_submit(item.key) then
    self.deferred[#self.deferred + 1] = item
    return
  end
  self.tasks[#self.tasks + 1] = task.spawn(function() self:run_item(item) end)
end

--- repeat_of(key, label) -> true when key was listed before in this run
--- (a listing that shifted while it was paged shows a row twice): the
--- repeat is counted (summary: repeated) and told with -v. Else notes key.
function WorkflowRun:repeat_of(key, label)
  if key == nil then return false end
  if not self.keys[key] then
    self.keys[key] = true
    return false
  end
  self.repeated = self.repeated + 1
  self.progress:event("debug", "repeated", string.format("%s: listed again; exported once", label or key))
  return true
end

--- list(what, fn): runs fn, which adds the items (reading them from the
--- service as it goes). A listing that fails part way is a failure of its
--- own: the items it added still run, and the summary says what happened.
function WorkflowRun:list(what, fn)
  self.list_what = what
  local ok, err = pcall(fn)
  if not ok then
    if not errors.is(err) then err = errors.new("error", tostring(err)) end
    if err.kind == "interrupted" or err.kind == "cancelled" then
      self.interrupted = err
      return self:listed()
    end
    if self.progress.counts.listed == 0 then
      -- Nothing under way (a wrong password, a service that is down): the
      -- error alone says it, in one line.
      self.progress:close()
      error(err, 0)
    end
    self.list_failed = true
    -- The rest of the list is a gap of the coverage report.
    local window = self.coverage:window { vendor = "insights", source = "listing", subject = what, report = true }
    self:fail({ label = "listing " .. what, kind = "list", window = window }, err, 1)
  end
  self:listed()
end

--- listed(): the list of items is complete.
function WorkflowRun:listed()
  self.progress.listing = false
  self.progress:update(true)
  local later = self.deferred
  self.deferred = {}
  for _, item in ipairs(later) do
    self.tasks[#self.tasks + 1] = task.spawn(function() self:run_item(item) end)
  end
end

function WorkflowRun:summary()
  local c = self.progress.counts
  return {
    workflow = self.name, api = self.opts.api, out = self.dir, dry_run = self.opts.dry_run or false,
    started = iso(self.started_at), finished = iso(os.time()),
    seconds = math.floor(self.progress:elapsed() * 1000 + 0.5) / 1000,
    listed = c.listed, repeated = self.repeated, done = c.done, reused = self.reused, failed = c.failed, bytes = c.bytes,
    interrupted = self.interrupted and true or nil,
    manifest = not self.opts.dry_run and manifest.NAME or nil,
    failures = self.failures,
    -- Submits sent again after one got no answer: the service may hold a
    -- job for each that nobody fetched (it still counts against its limit).
    extra_jobs = self.run and self.run:extra_jobs() or {},
    -- What was mended or let through, by kind (replaced_surrogates ...).
    warnings = next(self.progress.warnings) and self.progress.warnings or nil,
  }
end

--- finish() -> summary: waits for every item, writes DIR/summary.json,
--- prints the summary; raises (exit 1) when any item failed.
function WorkflowRun:finish()
  self:listed()
  if not self.interrupted then
    local ok, err = pcall(function()
      for _, t in ipairs(self.tasks) do t:join() end
    end)
    if not ok then
      if not (errors.is(err, "interrupted") or errors.is(err, "cancelled")) then error(err, 0) end
      self.interrupted = err
    end
  end
  local s = self:summary()
  metrics.set("reports_written", s.done)
  metrics.set("failures", s.failed)
  self.progress:close()
  local p = self.progress
  if self.opts.dry_run then
    if self.interrupted then error(self.interrupted, 0) end
    p:say(string.format("%s: %d to submit (dry run: nothing sent)", self.name, s.listed))
    return s
  end
  local access_err
  if self.access and not self.interrupted then s.access, access_err = self:build_access(s) end
  local cov = self:write_coverage(self.interrupted and "failed" or (s.failed > 0 and "incomplete") or "complete",
    self.interrupted and (self.interrupted.message or tostring(self.interrupted))
    or (s.failed > 0 and string.format("%d of %d failed", s.failed, s.listed)) or nil)
  s.coverage = { file = coverage.NAME, complete = cov.complete, gaps = #cov.gaps }
  errors.try(files.write_atomic(self.dir .. "/" .. M.SUMMARY, records.encode_object(SUMMARY_FIELDS, s,
    { failures = true, extra_jobs = true })
    .. "\n"))
  -- Every task has ended: the run state is done with, and its lock file goes.
  -- Those of an interrupted run may still record theirs on their way out:
  -- it is closed once they have ended.
  if self.run and not self.interrupted then
    self.run:close()
  elseif self.run then
    local r = self.run
    task.at_exit(function() r:close() end)
  end
  local lines = {
    string.format("%s: %d of %d reports in %s (%d from an earlier run), %d failed, %s in %s%s", self.name, s.done,
      s.listed, self.dir, s.reused, s.failed, progress.bytes(s.bytes), progress.duration(s.seconds),
      p:warning_summary()),
  }
  if s.repeated > 0 then
    lines[#lines + 1] = string.format("  the list of %s showed %d of them again (it changed while it was read): "
      .. "each exported once", self.list_what or "items", s.repeated)
  end
  for _, f in ipairs(self.failures) do
    lines[#lines + 1] = string.format("  failed: %s: %s%s", f.label, f.error, f.note and (" (" .. f.note .. ")") or "")
  end
  if #s.extra_jobs > 0 then
    lines[#lines + 1] = string.format("  the service may hold %d extra job(s) nobody fetched (a submit got no answer "
      .. "and was sent again): %s", #s.extra_jobs, table.concat(s.extra_jobs, ", "))
  end
  local a = s.access
  if a then
    lines[#lines + 1] = string.format("  access table: %d rows from %d reports (%d external principals reach %d "
      .. "objects): %s, %s; page: %s", a.rows, a.reports, a.external_principals, a.external_objects, a.csv, a.sqlite,
      a.page)
    if a.changes then
      lines[#lines + 1] = string.format("  changes since %s: %d added, %d removed: %s", a.changes.since,
        a.changes.added, a.changes.removed, a.changes.csv)
    end
  end
  lines[#lines + 1] = string.format("  list of reports: %s/%s; summary: %s/%s; coverage: %s/%s (%s)", self.dir,
    manifest.NAME, self.dir, M.SUMMARY, self.dir, coverage.NAME, cov.complete and "every subject exported"
    or string.format("not complete: %d gap(s)", #cov.gaps))
  if self.interrupted then
    lines[#lines + 1] = "  interrupted: run again with the same --out to finish (nothing is submitted twice)"
  end
  p:say(table.concat(lines, "\n"))
  if self.interrupted then error(self.interrupted, 0) end
  if access_err then
    -- A table built without some reports is an incomplete run; one not built failed.
    local kind = s.access and "incomplete" or access_err.kind or "access"
    error(errors.new(kind, string.format("the access table of %s %s: %s", self.dir,
      s.access and "is incomplete" or "was not built", access_err.message or tostring(access_err))), 0)
  end
  if s.failed > 0 then
    local reports_failed = s.failed - (self.list_failed and 1 or 0)
    error(errors.new("incomplete", string.format("%s; run again with the same --out to finish",
      self.list_failed and string.format("the list of %s was cut short (%d of %d listed reports failed)", self.list_what,
        reports_failed, s.listed)
      or string.format("%d of %d reports failed", reports_failed, s.listed))), 0)
  end
  return s
end

-- The access table, its changes and the page, from the reports in the
-- folder: s.access for the summary | nil, err.
function WorkflowRun:build_access(s)
  local ok, t, err = pcall(access.build, self.dir, {
    run = { started = s.started, workflow = self.name, profile = self.opts.profile, api = self.opts.api,
            reports_failed = s.failed },
    compare = self.opts.compare,
  })
  if not ok then t, err = nil, t end
  if not t then return nil, errors.is(err) and err or errors.new("access", tostring(err)) end
  local out = { rows = t.rows, reports = t.reports, subjects = t.subjects, subject_noun = t.subject_noun,
                external_principals = t.counts.external_principals, external_objects = t.counts.external_objects,
                csv = t.csv, sqlite = t.sqlite }
  if t.changes then
    out.changes = { since = self.opts.compare, added = t.changes.added, removed = t.changes.removed,
                    csv = t.changes.csv }
  end
  out.unreadable = #t.unreadable > 0 and t.unreadable or nil
  local written, perr = pcall(page.write, self.dir, s, out)
  if not written then return nil, errors.is(perr) and perr or errors.new("access", tostring(perr)) end
  out.page = self.dir .. "/" .. page.NAME
  if out.unreadable then
    -- The table holds the others; the run still fails, naming each.
    local named = {}
    for i, u in ipairs(t.unreadable) do named[i] = u.error end
    return out, errors.new("report", string.format("%d report(s) could not be read and their rows are not in it: %s",
      #named, table.concat(named, "; ")))
  end
  return out
end

-- ---- records workflows ---------------------------------------------------------

--- records(opts, {columns=, rows=function(warn, coverage) -> iterator over rows}) or records(opts, {columns=,
--- pages=function(token, warn, coverage) -> iterator over (rows, token after them, or nil when a rerun cannot start
--- there)}): a records workflow's whole run.
---
--- With pages (auditrun.paging.walk makes them), a rerun continues from the last token saved; one the walk refuses
--- (field resume_token) ends the run in one line naming the file. The rows go to opts.out (auditrun.records: JSON
--- Lines or CSV, resumable), a live line counts them, and a summary says how many and where (also as a JSON line
--- under --log-format json). A failure part way keeps what was written (the rerun resumes) and raises.
---
--- warnings = {name = what those are, ...}: things the rows cannot hold (a
--- report that cannot be read). warn(name, message) prints message as a
--- warning line and counts name; the summary gives every count (`name N`),
--- and any above 0 end the run incomplete (exit 1): the file keeps every
--- row but is not marked complete, so a rerun reads the sources again and
--- says so again.
---
--- Coverage: the run's account of what it walked (auditrun.coverage,
--- given to rows or pages; o.range = {from=, to=} the range asked, which a
--- walker may settle) goes to <out>.coverage.json beside the file: at the
--- start as "running" (not covered), at the end as "complete",
--- "incomplete" (warnings) or "failed" (the error names the gap), with the
--- file's SHA-256. It is kept with the file's record at each page's token
--- (a resumed walk goes on with it) and written again from there for a
--- file complete from an earlier run. The summary names it.
---
--- A file started with other options (opts.answer) is refused; with
--- opts.fresh it is set aside first, with the run folders (auditrun.run)
--- listed in o.run_dirs.
function M.records(opts, o)
  local p = progress.new { quiet = opts.quiet, verbose = opts.verbose, format = opts.log_format, rows = true,
                           every = opts.progress_every }
  log.listen(p:listener())
  local name = opts.name or "records"
  -- The name the lines give the file (an incremental run writes a hidden one first).
  local shown = opts.shown_out or opts.out
  if opts.fresh then
    local moved = errors.try(records.set_aside(opts.out))
    if moved then
      p:say(string.format("%s: the earlier run's %s is now %s", name, opts.out, moved))
      -- Its coverage report goes with it.
      if files.exists(coverage.path(opts.out)) then
        errors.try(files.rename_noreplace(coverage.path(opts.out), coverage.path(moved)))
      end
    end
    for _, dir in ipairs(o.run_dirs or {}) do
      moved = errors.try(runs.set_aside(dir))
      if moved then p:say(string.format("%s: the earlier run's %s is now %s", name, dir, moved)) end
    end
  end
  local w = errors.try(records.open(opts.out, { format = opts.format, columns = o.columns, csv_raw = opts.csv_raw,
                                                answer = opts.answer }))
  local why = opts.answer and cli.answer_change(opts.out, w.answer, opts.answer)
  if why then
    w:abandon()
    p:close()
    error(errors.new("usage", why), 0)
  end
  if w.complete then
    p:close()
    -- Its coverage report again, from the account kept with the file (a kill
    -- may have landed between the file's end and the report).
    local cov = coverage.new()
    cov:restore(w.coverage)
    errors.try(coverage.write(opts.out, cov:report {
      workflow = name, status = w.coverage and "complete" or "unknown",
      error = not w.coverage and "the file was finished by a run that kept no account of its walk" or nil,
      files = { { file = shown:match("([^/]*)$"), bytes = w.bytes, rows = w.rows, sha256 = w.sha256,
                  complete = true } },
    }))
    w:close()
    if not opts.shown_out then
      p:say(string.format("%s: %s is complete from an earlier run (%d rows); rerun with --fresh to fetch it again",
        name, opts.out, w.rows))
    end
    return w
  end
  local warnings = o.warnings or {}
  local counted = util.sorted_keys(warnings)
  local counts = {}
  for _, what in ipairs(counted) do counts[what] = 0 end
  local function warn(what, message)
    assert(counts[what], "a warning the workflow did not declare")
    counts[what] = counts[what] + 1
    p:event("error", what, message)
  end
  -- What this run walks, continued from where a resumed walk left it; until
  -- the run ends, its report says the range is not covered yet.
  local cov = coverage.new(o.range)
  if o.pages then cov:restore(w.coverage) end
  -- (Written beside the file as it is named now; it takes the file's final name with it.)
  local function report(status, failure)
    w.coverage = cov:state()
    local entry = status == "complete"
      and { bytes = w.bytes, rows = w.rows, sha256 = w.sha256, complete = true }
      or errors.try(coverage.file_entry(opts.out, { rows = w.saved_rows, complete = false }))
    entry.file = shown:match("([^/]*)$")
    local r = cov:report { workflow = name, status = status, error = failure and tostring(failure) or nil,
                           files = { entry } }
    errors.try(coverage.write(opts.out, r))
    return r, coverage.path(shown)
  end
  local started, serr = pcall(report, "running", "the run has not finished")
  if not started then
    w:abandon()
    p:close()
    error(serr, 0)
  end
  -- Rows an earlier run wrote: kept, and not written again.
  local earlier = w.rows
  local c = p.counts
  c.skipped = earlier
  local function write(row)
    errors.try(w:write(row))
    if w.seen > w.skip then
      c.done = c.done + 1
      c.bytes = w.bytes
      p:update()
    end
  end
  -- A page's rows at once; the counts as write's.
  local function write_rows(rows, marked)
    local before = math.max(w.seen, w.skip)
    local wrote, werr = w:write_rows(rows, marked)
    if w.seen > before then
      c.done = c.done + (w.seen - before)
      c.bytes = w.bytes
      p:update()
    end
    errors.try(wrote, werr)
  end
  local incomplete = false
  local ok, err = pcall(function()
    if o.pages then
      -- Page by page from where the last run marked, the token saved after each.
      for rows, token in o.pages(w.cursor, warn, cov) do
        -- (With a token, the mark after the page is its checkpoint.)
        write_rows(rows, token ~= nil)
        -- nil: no new place to resume from (the last one still holds).
        if token ~= nil then
          w.coverage = cov:state()
          errors.try(w:mark(token))
        end
      end
    else
      for row in o.rows(warn, cov) do write(row) end
    end
    w.coverage = cov:state()
    for _, what in ipairs(counted) do
      if counts[what] > 0 then incomplete = true end
    end
    if incomplete then
      -- Not complete: a rerun reads again rather than calling the file whole.
      errors.try(w:checkpoint())
      w:abandon()
    else
      if o.before_close then o.before_close() end
      errors.try(w:close())
    end
  end)
  c.bytes = w.bytes
  -- Added: an incremental run may write more than one window.
  metrics.add("rows_written", c.done)
  for _, what in ipairs(counted) do metrics.add("failures", counts[what]) end
  p:close()
  if not ok and errors.is(err) and err.resume_token then
    -- A place to resume from this walk cannot continue: refused before anything was sent, in one line.
    w:abandon()
    error(errors.new("usage", string.format("%s: %s was left part-way by a walk this version cannot continue (%s); "
      .. "finish it with the auditrun that started it, or rerun with --fresh to set it aside and start over", name,
      shown, err.message)), 0)
  end
  if not ok then
    w:abandon()
    -- The report says so: what was walked, and the rest a gap named by the error.
    local wrote = pcall(report, "failed", errors.is(err) and err.message or err)
    if not wrote then p:say(string.format("%s: no coverage report could be written beside %s", name, opts.out)) end
    -- With nothing written the error alone says it (a wrong password: one line).
    -- The rows kept are those of the last checkpoint (after a failed write, fewer than were sent).
    if w.saved_rows > 0 then
      p:say(string.format("%s: stopped after %d rows in %s%s; run again with the same %s to resume (%s says "
        .. "what is not covered)", name, w.saved_rows, shown, p:warning_summary(),
        opts.shown_out and "--out-dir" or "--out", coverage.path(opts.out)))
      -- (An incremental run's report is still beside its hidden file: the window is not done.)
    end
    error(err, 0)
  end
  local dropped = w:dropped_columns()
  local noted = {}
  for _, what in ipairs(counted) do noted[#noted + 1] = string.format("%s %d", what, counts[what]) end
  local seconds = p:elapsed()
  local text = string.format("%s: %d rows in %s (%s, %d from an earlier run), %s in %s%s%s%s%s", name, w.rows,
    shown, opts.format, earlier, progress.bytes(w.bytes), progress.duration(seconds),
    #noted > 0 and ("; " .. table.concat(noted, ", ")) or "", p:warning_summary(),
    w.neutralised > 0 and string.format("; %d cells that a spreadsheet would run as formulas start with ' "
      .. "(--csv-raw writes them as they are)", w.neutralised) or "",
    #dropped > 0 and ("; not in the CSV columns: " .. table.concat(dropped, ", ")) or "")
  local fields = { workflow = name, out = shown, format = opts.format, rows = w.rows, earlier = earlier,
                   bytes = w.bytes, seconds = math.floor(seconds * 1000 + 0.5) / 1000, complete = not incomplete,
                   neutralised = w.neutralised }
  for _, what in ipairs(counted) do fields[what] = counts[what] end
  for what, n in pairs(p.warnings) do fields[what] = n end
  local r, cov_path = report(incomplete and "incomplete" or "complete",
    incomplete and "some sources could not be read (see the warnings)" or nil)
  fields.coverage = { file = cov_path, complete = r.complete, gaps = #r.gaps }
  text = text .. string.format("; coverage: %s (%s)", cov_path, r.complete and "the range walked end to end"
    or string.format("not complete: %d gap(s)", #r.gaps))
  p:summary(text, fields)
  if incomplete then
    local parts = {}
    for _, what in ipairs(counted) do
      if counts[what] > 0 then parts[#parts + 1] = string.format("%d %s", counts[what], warnings[what]) end
    end
    error(errors.new("incomplete", table.concat(parts, "; ")), 0)
  end
  return w
end

--- export_item(client, key, name, params, subjects, label) -> an item
--- (WorkflowRun:add) that exports `name` once, remembered in the run
--- state under key (auditrun.run), its report landing in the run's folder.
function M.export_item(client, key, name, params, subjects, label)
  return {
    key = key, kind = name, api = client.api, subjects = subjects, label = label,
    export = function(ctx)
      return ctx.run:export(client, key, name, params, { deadline = ctx.deadline })
    end,
  }
end

--- batch_key(prefix, ids) -> a state key for a job that covers many subjects.
function M.batch_key(prefix, ids)
  return prefix .. ":" .. core.sha256(table.concat(ids, "\n")):sub(1, 24)
end

--- exports(opts, client, slots, o) -> the summary: the whole of an export
--- workflow once signed in, for any vendor with export jobs.
---
--- Lists the subjects (o.list(client, add): add(id, label[, name]) for
--- each; name: what a batch's label shows, default label) and exports
--- each, or each batch of o.how.batch, as o.how.name with
--- o.how.params(ids), exactly once across reruns, into opts.out (progress,
--- manifest, summary, resume). o.what names the subjects ("groups") in
--- messages; slots is the tenant's job limiter.
function M.exports(opts, client, slots, o)
  local how = o.how
  local run = M.open(opts, { slots = slots, access = opts.access })
  local pending = {}
  local function add_job(list)
    local ids, labels = {}, {}
    for i, s in ipairs(list) do ids[i], labels[i] = s.id, s.name or s.label end
    local key = #ids == 1 and not how.batch and (how.name .. ":" .. ids[1]) or M.batch_key(how.name, ids)
    local label = #list == 1 and list[1].label or string.format("%d %s (%s ... %s)", #labels, o.what, labels[1],
      labels[#labels])
    run:add(M.export_item(client, key, how.name, how.params(ids), ids, label))
  end
  run:list(o.what, function()
    o.list(client, function(id, label, name)
      -- A subject listed twice (a listing that shifted while paged) goes in one job.
      if run:repeat_of("subject:" .. id, label) then return end
      if not how.batch then return add_job { { id = id, label = label } } end
      pending[#pending + 1] = { id = id, label = label, name = name }
      if #pending == how.batch then
        add_job(pending)
        pending = {}
      end
    end)
    if #pending > 0 then add_job(pending) end
  end)
  return run:finish()
end

--- windowed(opts, o): a records workflow over a time range, run once or, with --incremental, as
--- one run of a series (auditrun.incremental).
---
--- o: source = function(from, to, out) -> what records() takes, for the range from and to (texts
--- as --from and --to take them, to included; nil: the workflow's default) written to the file
--- out; time_of(row) -> seconds | nil; id_of(row) -> the vendor's id of a row (default: a digest
--- of it); default_from(to) -> the first incremental run's start without --from;
--- first_from_required: the first incremental run needs --from.
function M.windowed(opts, o)
  if not opts.incremental then return M.records(opts, o.source(opts.from, opts.to, opts.out)) end
  -- The series' own lines (where a window went, what was skipped): as the summary is.
  local p = progress.new { format = opts.log_format, live = false }
  local say = function(text) p:summary(text, { workflow = opts.name, out_dir = opts.out_dir }) end
  require("auditrun.incremental").run(opts, o, M.records, say)
end

return M
