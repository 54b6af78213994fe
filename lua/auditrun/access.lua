-- auditrun.access: the access table of an export run's folder, one row for
-- each row of every report's access sheets, in the same columns whatever the
-- report: DIR/access.csv and DIR/access.sqlite.
--
-- Every report the manifest lists is read as a stream (auditrun.sheets).
-- The SQLite file holds the table `access` and a `runs` table of the runs
-- that built it.
--
--   local table = auditrun.try(access.build(dir, { run = { workflow = "external-group-access", ... } }))
--   print(table.rows, table.reports)
--
-- The table is rebuilt from the reports each time, beside the old one, and
-- put in its place with a rename: a kill part way leaves the last whole
-- table (and a hidden file the next build removes), a rerun or a reused
-- report never doubles a row. Memory stays flat: a row is read, written to
-- both files and forgotten.
local core = require("auditrun.core")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local manifest = require("auditrun.manifest")
local records = require("auditrun.records")
local runs = require("auditrun.run")
local sheets = require("auditrun.sheets")
local sqlite = require("auditrun.sqlite")

local M = {}

M.CSV, M.SQLITE = "access.csv", "access.sqlite"

--- The table's columns, in order.
M.COLUMNS = { "group_id", "group_name", "object_title", "object_url", "object_type", "permission", "via", "principal",
              "principal_email", "principal_type", "external", "report_file", "report_row", "extra" }

-- Report columns by header (lower case, whole text): the first pattern that
-- matches a column wins. A sheet is an access sheet when it has a
-- permission column; the others (summaries, overviews) are not access rows.
local FIELDS = {
  group_name = { "^group$", "^group ?name$" },
  object_title = { "^name$", "^file ?name$", "^object ?name$", "^object ?title$", "^title$" },
  object_url = { "^url$", "^object ?url$", "^location$", "^file ?url$", "^file ?id$" },
  object_type = { "^object ?type$", "^file ?type$", "^item ?type$" },
  permission = { "^permissions?$", "^role$", "^permission ?level$" },
  via = { "^access ?via$", "^inherited ?from$", "^link ?giving ?access ?to$" },
  principal = { "^principal ?name$", "^principal$", "^user$", "^user ?name$", "^logon ?name$", "^login ?name$" },
  principal_email = { "^e%-?mail$", "^principal ?e%-?mail$", "^user ?e%-?mail$" },
  principal_type = { "^principal ?type$", "^user ?type$" },
  external = { "^is ?external ?user$", "^is ?external$", "^external$", "^is ?guest$" },
  link_type = { "^link ?type$" },
  drive_id = { "^drive ?id$" },
}
-- When the first choice is empty in a row: how it is inherited.
local FALLBACK = { via = { "^inherit ?type$", "^inheritance$" } }
-- Summary sheets: what a report says of its groups and users.
local SUMMARY = {
  group_id = { "^group ?id$" }, name = { "^display ?name$", "^name$" }, email = { "^e%-?mail$" },
  group_type = { "^group ?type$" }, external_members = { "^external ?member ?count$" },
  login = { "^login ?name$" },
}

-- What the subject of each export is.
local GROUP_KINDS = { group_access_export = true, group_permissions_export = true, google_group_access_export = true }
local USER_KINDS = { user_permissions_export = true, google_user_permissions_export = true }
local LINK_KINDS = { sharing_links_export = true, link_permissions_export = true, google_sharing_links_export = true }

--- The export kinds whose reports hold access rows.
M.KINDS = {}
for _, list in ipairs { GROUP_KINDS, USER_KINDS, LINK_KINDS } do
  for k in pairs(list) do M.KINDS[k] = true end
end
M.KINDS.site_permissions_export, M.KINDS.google_drive_permissions_export = true, true

--- subject_noun(kinds) -> what the subjects of exports of these kinds are:
--- "groups", "users", "sites", "link types" (or "subjects" for a mix).
function M.subject_noun(kinds)
  local noun
  for k in pairs(kinds) do
    local this = GROUP_KINDS[k] and "groups" or USER_KINDS[k] and "users" or LINK_KINDS[k] and "link types"
      or k == "google_drive_permissions_export" and "drives" or "sites"
    if noun and noun ~= this then return "subjects" end
    noun = this
  end
  return noun or "subjects"
end

-- A sheet being read: its header's layout, or what its summary rows say.
local function sheet_layout(header)
  local at = sheets.layout(header, FIELDS)
  if not at.permission then return nil end
  local fallback = sheets.layout(header, FALLBACK)
  local used = {}
  for f, i in pairs(at) do
    -- The link type and the drive only help decide other columns: they stay in extra.
    if f ~= "link_type" and f ~= "drive_id" then used[i] = true end
  end
  for _, i in pairs(fallback) do used[i] = true end
  -- The report's other columns, kept by their header in `extra`.
  local others = {}
  for i, name in pairs(header) do
    if not used[i] and type(name) == "string" and name ~= "" then others[#others + 1] = { i, name } end
  end
  table.sort(others, function(a, b) return a[1] < b[1] end)
  local names = {}
  for i, o in ipairs(others) do names[i] = o[2] end
  return { at = at, fallback = fallback, others = others, names = names }
end

-- Each table column's place among M.COLUMNS.
local COL = {}
for i, c in ipairs(M.COLUMNS) do COL[c] = i end

-- A chain of sources (core.row_plan) joining the given chains.
local function chain(...)
  local out = {}
  for i = 1, select("#", ...) do
    for _, s in ipairs((select(i, ...))) do out[#out + 1] = s end
  end
  return out
end

-- A constant, as the table's text columns hold it (true is 1, as SQLite
-- stores it; a whole number its digits).
local function value(v)
  if v == nil then return {} end
  if type(v) == "boolean" then v = v and 1 or 0 end
  if math.type(v) == "integer" then v = tostring(v) end
  return { { value = v } }
end

-- How a row of an access sheet becomes a row of the table (a row plan run
-- in C, csrc/lcsv.c), for the rows of one subject: each column is the
-- first of its chain that has a value. The group is who holds the access
-- in a group's export, and the user in a user's; a guest or external
-- principal (a #EXT# login, a principal type that says so, anyone with a
-- link) is external.
local function row_plan(dest, layout, entry, subject, summary)
  local at, fb, kind = layout.at, layout.fallback, entry.kind
  local function get(f)
    local out = {}
    if at[f] then out[#out + 1] = { col = at[f] } end
    if fb[f] then out[#out + 1] = { col = fb[f] } end
    return out
  end
  local group = subject ~= nil and summary.group_by_id[tostring(subject):lower()] or {}
  local group_name, principal, email, ptype = get("group_name"), get("principal"), get("principal_email"),
    get("principal_type")
  local external = { param = COL.external, value = get("external"), principal = COL.principal,
                     email = COL.principal_email, type = COL.principal_type }
  if GROUP_KINDS[kind] then
    group_name = chain(group_name, value(group.name))
    principal = chain(principal, group_name, value(subject))
    email = chain(email, value(group.email), { { email = group_name } })
    ptype = chain(ptype, value(group.type), value("Group"))
    if group.external then external.group = group.external > 0 end
  elseif USER_KINDS[kind] then
    principal = chain(principal, value(subject))
    email = chain(email, { { lookup = principal, map = summary.email_by_login } })
    ptype = chain(ptype, value("User"))
  elseif LINK_KINDS[kind] then
    ptype = chain(ptype, value("Sharing Link"))
    -- Anyone with the link: reachable from outside by design.
    external.link = get("link_type")
  end
  email = chain(email, { { email = principal } })
  email.lower = true
  local params = {
    [COL.group_id] = value(subject), [COL.group_name] = group_name, [COL.object_title] = get("object_title"),
    [COL.object_url] = get("object_url"), [COL.object_type] = get("object_type"), [COL.permission] = get("permission"),
    [COL.via] = get("via"), [COL.principal] = principal, [COL.principal_email] = email, [COL.principal_type] = ptype,
    [COL.report_file] = value(entry.file), [COL.extra] = {},
  }
  -- The report's other columns, by header in `extra` (a header twice: the
  -- last of its cells with a value).
  local extra, cols = {}, {}
  for _, o in ipairs(layout.others) do
    cols[o[2]] = cols[o[2]] or {}
    table.insert(cols[o[2]], o[1])
  end
  for i, name in ipairs(layout.names) do extra[i] = { key = records.encode(name) .. ":", cols = cols[name] } end
  return core.row_plan { stmt = dest.insert, csv = dest.csv, params = params, row = COL.report_row, external = external,
                         extra_param = #extra > 0 and COL.extra or nil, extra = extra, encode = records.encode }
end

-- Inserts the rows of one report (a manifest entry) into the table (out.insert)
-- and writes them to the CSV (out.csv); how many.
local function read_report(dir, entry, tmpdir, summary, out)
  local path = dir .. "/" .. entry.file
  local subjects = type(entry.subjects) == "table" and entry.subjects or {}
  local by_subject = {}
  for _, s in ipairs(subjects) do by_subject[tostring(s):lower()] = s end
  local rows, rest = sheets.rows(path, tmpdir)
  local current, header_seen, layout, sum_at, plans, n = nil, false, nil, nil, nil, 0
  local function subject_of(row, at)
    if #subjects == 1 then return subjects[1] end
    -- A job for many subjects: the row says which (the group, the user, the site).
    local function get(i) return i and row[i] end
    local g = get(at.group_name)
    if g and summary.group_by_name[g] then return summary.group_by_name[g].id end
    local named = { g, get(at.principal), get(at.principal_email), get(at.drive_id) }
    for i = 1, 4 do
      local v = named[i]
      if v and by_subject[v:lower()] then return by_subject[v:lower()] end
    end
    local url = get(at.object_url)
    if url then
      local best
      for _, s in ipairs(subjects) do
        local text = tostring(s)
        if url:sub(1, #text):lower() == text:lower() and (not best or #text > #best) then best = text end
      end
      if best then return best end
    end
    return nil
  end
  local NONE = {}
  local function plan_of(subject)
    local key = subject == nil and NONE or subject
    if not plans[key] then plans[key] = row_plan(out, layout, entry, subject, summary) end
    return plans[key]
  end
  local function failed(err, at)
    error(errors.new("access", string.format("%s row %d: %s", entry.file, at, tostring(err))), 0)
  end
  while true do
    local row, member, sheet = rows()
    if not row then return n end
    local where = member .. "\0" .. (sheet or "")
    if where ~= current then current, header_seen, layout, sum_at, plans = where, false, nil, nil, {} end
    if not header_seen then
      -- A sheet's first row with a cell: its header. A sheet (or CSV
      -- member) named a summary is one, whatever its columns.
      if next(row) ~= nil then
        header_seen = true
        local summary_sheet = (sheet or member):lower():find("summary", 1, true)
        layout = not summary_sheet and sheet_layout(row) or nil
        if not layout then sum_at = sheets.layout(row, SUMMARY) end
        if layout and #subjects == 1 then
          -- One subject: the rest of a CSV member goes through in C.
          local last, err, at = rest(plan_of(subjects[1]), n)
          if last == nil then failed(err, at) end
          if last then n = last end
        end
      end
    elseif sum_at then
      -- A summary row: the groups' names, e-mails and external members; the users' e-mails.
      local function get(f) return sum_at[f] and row[sum_at[f]] end
      local id = get("group_id")
      if id then
        local g = { id = id, name = get("name"), email = get("email"), type = get("group_type"),
                    external = tonumber(get("external_members") or "") }
        summary.group_by_id[id:lower()] = g
        if g.name then summary.group_by_name[g.name] = g end
      end
      local login = get("login")
      if login and get("email") then summary.email_by_login[login:lower()] = get("email"):lower() end
    elseif layout and next(row) then
      n = n + 1
      local ok, err = plan_of(subject_of(row, layout.at)):add(row, n)
      if not ok then failed(err, n) end
    end
  end
end

-- ---- building the table --------------------------------------------------------

-- The manifest's reports that hold access rows, each export once: a line
-- for the same export (kind, API, subjects) as an earlier one replaces it
-- (a report fetched again, as a run does for one that no longer matches
-- its line), so no report's rows come twice.
local function current_reports(entries)
  local last = {}
  for i, e in ipairs(entries) do
    if M.KINDS[e.kind] then
      local subjects = type(e.subjects) == "table" and e.subjects or {}
      last[tostring(e.kind) .. "\0" .. tostring(e.api) .. "\0" .. table.concat(subjects, "\0")] = i
    end
  end
  local out = {}
  for i, e in ipairs(entries) do
    if M.KINDS[e.kind] then
      local subjects = type(e.subjects) == "table" and e.subjects or {}
      if last[tostring(e.kind) .. "\0" .. tostring(e.api) .. "\0" .. table.concat(subjects, "\0")] == i then
        out[#out + 1] = e
      end
    end
  end
  return out
end

local SCHEMA = [[
create table access (
  group_id text, group_name text, object_title text, object_url text, object_type text, permission text, via text,
  principal text, principal_email text, principal_type text, external integer not null, report_file text not null,
  report_row integer not null, extra text, primary key (report_file, report_row));
create table runs (
  started text, finished text, workflow text, profile text, api text, out text, compare text, reports integer,
  reports_failed integer, rows integer, subjects integer, external_principals integer, external_objects integer);
]]
local INDEXES = [[
create index access_principal_email on access (principal_email);
create index access_object_url on access (object_url);
create index access_group_id on access (group_id);
]]
local RUN_COLUMNS = { "started", "finished", "workflow", "profile", "api", "out", "compare", "reports", "reports_failed",
                      "rows", "subjects", "external_principals", "external_objects" }

-- Who a row's principal is, for counting and comparing: the e-mail when
-- there is one, else the name.
M.PRINCIPAL = "coalesce(principal_email, principal, '')"

local function placeholders(n)
  return string.rep("?, ", n - 1) .. "?"
end

local function remove(path)
  local ok, err, code = os.remove(path)
  if not ok and code ~= 2 then return nil, errors.new("file", err) end
  return true
end

--- counts(db) -> {rows, external_principals, external_objects}
function M.counts(db)
  return {
    rows = db:value("select count(*) from access"),
    external_principals = db:value("select count(distinct " .. M.PRINCIPAL .. ") from access where external"),
    external_objects = db:value("select count(distinct object_url) from access where external"),
  }
end

-- The runs the table at `path` recorded, oldest first (none when it has none
-- or cannot be read: it is ours, and is rebuilt).
local function earlier_runs(path)
  if not files.exists(path) then return {} end
  local db = sqlite.open(path)
  if not db then return {} end
  local ok, list = pcall(function()
    local out = {}
    for r in db:rows("select " .. table.concat(RUN_COLUMNS, ", ") .. " from runs order by rowid") do
      out[#out + 1] = r
    end
    return out
  end)
  db:close()
  return ok and list or {}
end

--- build(dir, o) -> the access table built from the reports of dir | nil, err:
--- it reads the reports DIR/manifest.jsonl lists whose kind holds access rows.
---
--- o = {run = {started, workflow, profile, api, reports_failed}, compare =
--- PREVIOUS_DIR}. The answer is {rows, reports, subjects (how many the
--- reports cover), subject_noun, unreadable = {{file, error}...}, csv,
--- sqlite, counts, changes = {added, removed, csv} | nil}.
function M.build(dir, o)
  o = o or {}
  local entries, merr = manifest.entries(dir)
  if not entries then return nil, merr end
  local csv_path, db_path = dir .. "/" .. M.CSV, dir .. "/" .. M.SQLITE
  local csv_tmp, db_tmp = dir .. "/." .. M.CSV .. ".part", dir .. "/." .. M.SQLITE .. ".part"
  for _, p in ipairs { csv_tmp, db_tmp, db_tmp .. "-journal" } do
    local ok, err = remove(p)
    if not ok then return nil, err end
  end
  local ok, err = files.write_atomic(csv_tmp, "")
  if not ok then return nil, err end
  local csv, cerr = files.open_write(csv_tmp)
  if not csv then return nil, errors.new("file", cerr) end
  local db, derr = sqlite.open(db_tmp)
  if not db then csv:close() return nil, derr end
  local result = { reports = 0, csv = csv_path, sqlite = db_path }
  local done, berr = pcall(function()
    -- A file renamed into place only when whole needs no journal on disk;
    -- the one in memory takes back the rows of a report that cannot be read.
    -- Pages of 16 KiB: a quarter of the B-tree work of 4 KiB ones for the
    -- same cache (pages of 64 KiB would double the build's peak memory).
    errors.try(db:exec("pragma page_size = 16384; pragma journal_mode = memory; pragma synchronous = off;" .. SCHEMA
      .. "begin"))
    local insert = errors.try(db:prepare("insert into access values (" .. placeholders(#M.COLUMNS) .. ")"))
    -- access.csv: its header, then each row as it goes into the table.
    errors.try(csv:write((records.csv_line(M.COLUMNS))))
    local summary = { group_by_id = {}, group_by_name = {}, email_by_login = {} }
    local tmpdir = dir .. "/.auditrun"
    errors.try(files.mkdirs(tmpdir))
    local subjects, kinds = {}, {}
    result.subjects, result.unreadable = 0, {}
    for _, entry in ipairs(current_reports(entries)) do
      result.reports = result.reports + 1
      kinds[entry.kind] = true
      for _, s in ipairs(type(entry.subjects) == "table" and entry.subjects or {}) do
        if not subjects[s] then subjects[s], result.subjects = true, result.subjects + 1 end
      end
      -- A report that cannot be read, or is not the file the manifest
      -- describes, adds none of its rows and is named.
      errors.try(db:exec("savepoint report"))
      local start = errors.try(csv:seek())
      local read, rerr = pcall(function()
        local digest = type(entry.sha256) == "string" and files.sha256(dir .. "/" .. entry.file)
        if digest and digest ~= entry.sha256 then
          error(errors.new("report", dir .. "/" .. entry.file .. " is not the file its manifest line describes "
            .. "(another SHA-256)"), 0)
        end
        read_report(dir, entry, tmpdir, summary, { insert = insert, csv = csv })
      end)
      if read then
        errors.try(db:exec("release report"))
      else
        if not errors.is(rerr, "report") then error(rerr, 0) end
        errors.try(db:exec("rollback to report; release report"))
        local flushed, ferr = csv:flush()
        if not flushed then error(errors.new("file", ferr), 0) end
        errors.try(files.truncate(csv_tmp, start))
        errors.try(csv:seek("set", start))
        result.unreadable[#result.unreadable + 1] = { file = entry.file, error = rerr.message }
      end
    end
    insert:close()
    result.subject_noun = M.subject_noun(kinds)
    errors.try(db:exec(INDEXES))
    result.counts = M.counts(db)
    result.rows = result.counts.rows
    local run = o.run or {}
    local history = earlier_runs(db_path)
    history[#history + 1] = {
      started = run.started, finished = os.date("!%Y-%m-%dT%H:%M:%SZ"), workflow = run.workflow, profile = run.profile,
      api = run.api, out = dir, compare = o.compare, reports = result.reports, reports_failed = run.reports_failed or 0,
      rows = result.rows, subjects = result.subjects, external_principals = result.counts.external_principals,
      external_objects = result.counts.external_objects,
    }
    local add_run = errors.try(db:prepare("insert into runs values (" .. placeholders(#RUN_COLUMNS) .. ")"))
    for _, r in ipairs(history) do
      local v = {}
      for i, c in ipairs(RUN_COLUMNS) do v[i] = r[c] end
      errors.try(add_run:run(v, #RUN_COLUMNS))
    end
    add_run:close()
    errors.try(db:exec("commit"))
    if o.compare then
      M.attach(db, errors.try(M.table_of(o.compare)), "old")
      result.changes = M.compare(db, "main", "old", dir .. "/" .. M.CHANGES)
      errors.try(db:exec("detach database old"))
    end
  end)
  db:close()
  local closed, cerr2 = csv:close()
  if done and not closed then done, berr = false, errors.new("file", cerr2) end
  if not done then
    os.remove(csv_tmp)
    os.remove(db_tmp)
    if not errors.is(berr) then berr = errors.new("access", tostring(berr)) end
    return nil, berr
  end
  runs.instant("access-built")
  for i, pair in ipairs { { db_tmp, db_path }, { csv_tmp, csv_path } } do
    local placed, perr = files.put_in_place(pair[1], pair[2])
    if not placed then return nil, perr end
    if i == 1 then runs.instant("access-placed") end
  end
  if result.changes then
    local placed, perr = files.put_in_place(result.changes.tmp, result.changes.csv)
    if not placed then return nil, perr end
    result.changes.tmp = nil
  end
  return result
end

-- ---- what changed -----------------------------------------------------------------

M.CHANGES = "changes.csv"

--- The columns of changes.csv (and of the `changes` table).
M.CHANGE_COLUMNS = { "change", "group_id", "group_name", "principal", "principal_email", "principal_type", "external",
                     "object_title", "object_url", "object_type", "permission", "via", "report_file" }

--- table_of(path) -> the access.sqlite of an output folder (or the file
--- itself) | nil, err naming what is missing.
function M.table_of(path)
  if path:match("%.sqlite$") and files.exists(path) then return path end
  local p = path:gsub("/+$", "") .. "/" .. M.SQLITE
  if files.exists(p) then return p end
  return nil, errors.new("access", string.format("%s: no access table (%s); an export workflow writes one in its --out "
    .. "folder", path, M.SQLITE))
end

-- The key an access is compared by: group, principal, object, permission.
local KEY = "coalesce(group_id, '') as k_group, " .. M.PRINCIPAL .. " as k_who, coalesce(object_url, '') as k_url, "
  .. "coalesce(permission, '') as k_perm"

--- compare(db, new, old, csv_path) -> {added, removed, csv, tmp}: the
--- accesses the table of schema `new` has and that of `old` has not
--- (added), and the other way round (removed).
---
--- They go into a `changes` table of db and a CSV in a hidden file beside
--- csv_path (tmp: to be renamed into place). Both schemas are attached to
--- db already. Raises.
function M.compare(db, new, old, csv_path)
  local cols = {}
  for i = 2, #M.CHANGE_COLUMNS do cols[#cols + 1] = "a." .. M.CHANGE_COLUMNS[i] end
  cols = table.concat(cols, ", ")
  local keys = "k_group, k_who, k_url, k_perm"
  local function side(change, from, against)
    return string.format("select '%s' as change, %s from %s_keys n join %s.access a on a.rowid = n.rid"
      .. " where not exists (select 1 from %s_keys o where o.k_group = n.k_group and o.k_who = n.k_who"
      .. " and o.k_url = n.k_url and o.k_perm = n.k_perm)", change, cols, from, from, against)
  end
  errors.try(db:exec(table.concat({
    "drop table if exists main.changes",
    "create temp table " .. new .. "_keys as select " .. KEY .. ", min(rowid) as rid from " .. new
    .. ".access group by " .. keys,
    "create temp table " .. old .. "_keys as select " .. KEY .. ", min(rowid) as rid from " .. old
    .. ".access group by " .. keys,
    "create unique index temp." .. new .. "_keys_k on " .. new .. "_keys (" .. keys .. ")",
    "create unique index temp." .. old .. "_keys_k on " .. old .. "_keys (" .. keys .. ")",
    "create table main.changes as " .. side("added", new, old) .. " union all " .. side("removed", old, new),
    "drop table temp." .. new .. "_keys", "drop table temp." .. old .. "_keys",
  }, ";\n") .. ";"))
  local out = { added = 0, removed = 0, csv = csv_path }
  out.tmp = M.write_changes(db, csv_path, out)
  return out
end

--- attach(db, path, name): another access table's file, read as schema
--- `name`. Raises when it holds no access table.
function M.attach(db, path, name)
  errors.try(db:exec(string.format("attach database '%s' as %s", path:gsub("'", "''"), name)))
  local ok, n = pcall(db.value, db, "select count(*) from " .. name .. ".sqlite_master where type = 'table' and "
    .. "name = 'access'")
  if not ok or n ~= 1 then
    error(errors.new("access", path .. " holds no access table (an export workflow writes one in its --out folder)"), 0)
  end
end

--- write_changes(db, csv_path, counts) -> the hidden file beside csv_path
--- the `changes` table was written to (CSV), counting added and removed.
function M.write_changes(db, csv_path, counts)
  local dir, name = csv_path:match("^(.*/)([^/]*)$")
  if not dir then dir, name = "", csv_path end
  local tmp = dir .. "." .. name .. ".part"
  errors.try(files.write_atomic(tmp, ""))
  local f = files.open_write(tmp)
  if not f then error(errors.new("file", "cannot write " .. tmp), 0) end
  local ok, err = pcall(function()
    errors.try(f:write((records.csv_line(M.CHANGE_COLUMNS))))
    local values, n = {}, #M.CHANGE_COLUMNS
    for r in db:rows("select " .. table.concat(M.CHANGE_COLUMNS, ", ") .. " from changes order by change, group_id, "
      .. "principal_email, principal, object_url, permission") do
      counts[r.change] = counts[r.change] + 1
      for i, c in ipairs(M.CHANGE_COLUMNS) do values[i] = r[c] end
      values[7] = r.external == 1 and "true" or "false"
      errors.try(f:write((records.csv_line(values, n))))
    end
  end)
  local closed, cerr = f:close()
  if ok and not closed then ok, err = false, errors.new("file", cerr) end
  if not ok then os.remove(tmp) error(err, 0) end
  return tmp
end

return M
