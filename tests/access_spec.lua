-- The access table an export run leaves in its --out folder (access.csv,
-- access.sqlite), run by the host against the sandbox tenant: one row per
-- row of the reports' access sheets (counted here by Python's own zip and
-- XML readers), nothing doubled by reruns, reused reports or kill -9 while
-- it is replaced; the columns by header for each kind of report; the runs
-- table and the indexes; a table that cannot be written is one clear line.
local helper = require("tests.helper")
local sandbox, host, reports, util = helper.sandbox, helper.host, helper.reports, helper.util
local auditrun = require("auditrun")

local lines = util.lines
local q = host.quote

-- The rows sqlite3 (the command line tool) gives for a query, tab-separated.
local function sql(db, query)
  return lines(util.sh(("sqlite3 -separator '\t' %s %s"):format(q(db), q(query))))
end

local function sql_value(db, query)
  return sql(db, query)[1]
end

-- The access rows of dir's reports as Python reads them: "file\tn\tpermission\turl".
local function python_rows(dir)
  return lines(util.sh("python3 tests/helper/access_rows.py " .. q(dir)))
end

-- The same four fields of every row of the table, in the same order.
local function table_rows(dir)
  return sql(dir .. "/access.sqlite", "select report_file, report_row, coalesce(permission, ''), "
    .. "coalesce(object_url, '') from access order by rowid")
end

-- access.csv's rows (Python's csv module), as the same four fields.
local function csv_rows(dir)
  return lines(util.sh("python3 -c " .. q("import csv, sys\n"
    .. "for r in csv.DictReader(open(sys.argv[1], newline='')):\n"
    .. "  print('\\t'.join([r['report_file'], r['report_row'], r['permission'], r['object_url']]))")
    .. " " .. q(dir .. "/access.csv")))
end

local function assert_table_is_reports(dir)
  local want = python_rows(dir)
  assert.is_true(#want > 0, "the reports hold access rows")
  assert.same(want, table_rows(dir))
  assert.same(want, csv_rows(dir))
  for _, n in ipairs(util.listing(dir)) do assert.is_nil(n:find(".part", 1, true), "left behind: " .. n) end
  return #want
end

describe("access table", function()
  local sb = sandbox.for_describe {}
  local home, env

  setup(function() home, env = sb:new_home() end)
  teardown(function() util.remove(home) end)
  before_each(function()
    sb:control("POST", "/reset")
    sb:control("POST", "/config", { jobSeconds = 0.05, accessFormat = "xlsx" })
  end)

  local function run(args)
    local code, out, err = host.run(args, { env = env })
    assert.equal(0, code, err)
    return out, err
  end

  -- Runs args into home/NAME (--out added) and checks that folder's table
  -- against its reports; -> the folder's access.sqlite.
  local function built(name, args)
    local dir = home .. "/" .. name
    args[#args + 1], args[#args + 2] = "--out", dir
    run(args)
    assert_table_is_reports(dir)
    return dir .. "/access.sqlite"
  end

  it("external-group-access: one row per access row, the group as principal, indexes and a runs table", function()
    local dir = home .. "/groups"
    local _, err = run { "external-group-access", "--out", dir }
    local n = assert_table_is_reports(dir)
    local db = dir .. "/access.sqlite"
    assert.matches("access table: " .. n .. " rows from %d+ reports", err)
    -- Each row's group is its report's subject; the group holds the access and has external members.
    local subject = {}
    for _, e in ipairs(reports.manifest(dir)) do subject[e.file] = e.subjects[1] end
    for _, r in ipairs(sql(db, "select report_file, group_id, principal, group_name, external, principal_type "
      .. "from access")) do
      local file, gid, principal, name, external, ptype = r:match("^(.-)\t(.-)\t(.-)\t(.-)\t(.-)\t(.*)$")
      assert.equal(subject[file], gid)
      assert.equal(name, principal)
      assert.equal("1", external)
      assert.is_true(ptype ~= "", r)
    end
    assert.equal("0", sql_value(db, "select count(*) from access where principal_email is null "
      .. "and principal_type = 'Microsoft 365 Group'"))
    -- The report's other columns are kept, as JSON.
    assert.equal("0", sql_value(db, "select count(*) from access where json_extract(extra, '$.module') is null"))
    local idx = sql(db, "select name from sqlite_master where type = 'index' and name not like 'sqlite_%' order by 1")
    assert.same({ "access_group_id", "access_object_url", "access_principal_email" }, idx)
    local runs = sql(db, "select workflow, api, reports, rows, reports_failed from runs")
    assert.same({ "external-group-access\tgraph\t" .. #reports.zips(dir) .. "\t" .. n .. "\t0" }, runs)
    -- summary.json says where the table is and how big.
    local s = reports.summary(dir)
    assert.equal(n, s.access.rows)
    assert.equal(dir .. "/access.sqlite", s.access.sqlite)
  end)

  it("reports of CSV members give the same table as reports of workbooks", function()
    local books, csvs = home .. "/books", home .. "/csvs"
    run { "site-permissions", "--out", books }
    sb:control("POST", "/config", { accessFormat = "csv" })
    run { "site-permissions", "--out", csvs }
    assert.matches("%.csv", util.sh("unzip -l " .. q(csvs .. "/" .. reports.zips(csvs)[1])))
    assert_table_is_reports(csvs)
    -- The same rows but for the reports' names (their job ids).
    local query = "select group_id, object_url, permission, principal, principal_email, principal_type, external, "
      .. "via, extra from access order by 1, 2, 3, 4, 5, 9"
    local a, b = sql(books .. "/access.sqlite", query), sql(csvs .. "/access.sqlite", query)
    assert.is_true(#a > 1000)
    assert.same(a, b)
  end)

  it("a rerun with every report reused rebuilds the same table, and adds its run", function()
    local dir = home .. "/rerun"
    run { "external-group-access", "--out", dir }
    local first = table_rows(dir)
    local submits = #sb:control("GET", "/requests?match=/access/export")
    run { "external-group-access", "--out", dir }
    assert.equal(submits, #sb:control("GET", "/requests?match=/access/export"), "a rerun sent a job")
    assert.same(first, table_rows(dir))
    assert_table_is_reports(dir)
    assert.equal("2", sql_value(dir .. "/access.sqlite", "select count(*) from runs"))
  end)

  for _, instant in ipairs { "access-built", "access-placed" } do
    it("kill -9 at " .. instant .. ": the rerun's table has each row once", function()
      local dir = home .. "/kill-" .. instant
      local e = {}
      for k, v in pairs(env) do e[k] = v end
      e.AUDITRUN_PAUSE_AT = instant
      local h = host.start({ "external-group-access", "--out", dir }, { env = e })
      local deadline = auditrun.now() + 120
      while not (util.read(h.dir .. "/err") or ""):find("paused at " .. instant, 1, true)
        and auditrun.now() < deadline do
        auditrun.sleep(0.05)
      end
      h:signal("KILL")
      assert.equal(137, (h:wait(30)))
      run { "external-group-access", "--out", dir }
      assert_table_is_reports(dir)
    end)
  end

  it("site-permissions: principals and external users from their columns; the overview is not access", function()
    local db = built("sites", { "site-permissions" })
    -- isExternalUser decides, and #EXT# logins are external whatever it says.
    local external = tonumber(sql_value(db, "select count(*) from access where external"))
    assert.is_true(external > 0)
    assert.equal("0", sql_value(db, "select count(*) from access where not external "
      .. "and (principal_email like '%#ext#%' or json_extract(extra, '$.isExternalUser') = '1')"))
    assert.equal("0", sql_value(db, "select count(*) from access where principal is null or principal_type is null"))
  end)

  it("guest-access on the legacy API (many users a job): each row's subject is its user", function()
    local db = built("guests-legacy", { "guest-access", "--api", "legacy" })
    assert.equal("0", sql_value(db, "select count(*) from access where group_id is null or group_id <> principal"))
    assert.equal("0", sql_value(db, "select count(*) from access where not external"))
    -- The e-mail is the one the summary sheet gives for the login.
    assert.equal("0", sql_value(db, "select count(*) from access where principal_email like '%#ext#%'"))
  end)

  it("site-permissions --google: each row's drive, e-mails from the principal, anyone is external", function()
    local tenant = sb:control("GET", "/tenant")
    local drives = home .. "/drives.txt"
    util.write(drives, table.concat(tenant.google.sharedDrives, "\n") .. "\n")
    local db = built("google", { "site-permissions", "--google", "--drives", drives })
    assert.equal("0", sql_value(db, "select count(*) from access where group_id is null "
      .. "or group_id <> json_extract(extra, '$.\"Drive ID\"')"))
    assert.equal("0", sql_value(db, "select count(*) from access where principal_type = 'user' "
      .. "and principal_email is null"))
    local anyone = tonumber(sql_value(db, "select count(*) from access where principal_type = 'anyone'"))
    assert.is_true(anyone > 0)
    assert.equal(tostring(anyone), sql_value(db, "select count(*) from access where external"))
  end)

  it("sharing-links: anyone links are reachable from outside", function()
    local db = built("links", { "sharing-links", "--from", "2015-01-01" })
    assert.equal(sql_value(db, "select count(*) from access where json_extract(extra, '$.linkType') like '%anyone%'"),
      sql_value(db, "select count(*) from access where external"))
  end)

  it("failed reports: the table holds the rows of those that landed, the page says so, the rerun completes it", function()
    local dir = home .. "/failed"
    sb:control("POST", "/faults", { { match = "/access/export", job_fails = true, times = 3 } })
    local code, _, err = host.run({ "external-group-access", "--out", dir, "--max-attempts", "1", "-q" }, { env = env })
    assert.equal(3, code, err)
    assert.matches("access table: %d+ rows", err)
    assert_table_is_reports(dir)
    assert.equal(3, reports.summary(dir).failed)
    assert.equal("3", sql_value(dir .. "/access.sqlite", "select reports_failed from runs"))
    assert.matches('id="incomplete">Incomplete: 3 of ', util.read(dir .. "/summary.html"))
    sb:control("DELETE", "/faults")
    run { "external-group-access", "--out", dir }
    assert_table_is_reports(dir)
    assert.is_nil(util.read(dir .. "/summary.html"):find('id="incomplete"', 1, true))
    assert.same({ "3", "0" }, sql(dir .. "/access.sqlite", "select reports_failed from runs order by rowid"))
  end)

  it("a report fetched again (its file no longer matched its line): its rows once, from the new copy", function()
    local dir = home .. "/refetched"
    run { "external-group-access", "--out", dir }
    local before = tonumber(sql_value(dir .. "/access.sqlite", "select count(*) from access"))
    local damaged = reports.manifest(dir)[1].file
    util.write(dir .. "/" .. damaged, "not a zip")
    run { "external-group-access", "--out", dir }
    assert.equal(#reports.zips(dir), #reports.manifest(dir))
    local db = dir .. "/access.sqlite"
    assert.equal(tostring(before), sql_value(db, "select count(*) from access"))
    assert.equal("0", sql_value(db, "select count(*) from access where report_file = '" .. damaged .. "'"))
  end)

  it("a report that cannot be read: the table from the others, named on the page and in one line, exit 3", function()
    local dir = home .. "/unreadable"
    sb:control("POST", "/faults", { { match = "/access/export", job_fails = true, times = 1 } })
    local code, _, err = host.run({ "external-group-access", "--out", dir, "--max-attempts", "1", "-q" }, { env = env })
    assert.equal(3, code, err)
    local good = sql_value(dir .. "/access.sqlite", "select count(*) from access")
    sb:control("DELETE", "/faults")
    sb:control("POST", "/config", { accessFormat = "damaged" })
    code, _, err = host.run({ "external-group-access", "--out", dir, "-q" }, { env = env })
    assert.equal(3, code, err)
    local last = lines(err)[#lines(err)]
    assert.matches("^auditrun: incomplete: the access table of .* is incomplete: 1 report%(s%) could not be read", last)
    assert.matches("%.zip", last)
    assert.equal(good, sql_value(dir .. "/access.sqlite", "select count(*) from access"))
    assert.matches('id="unreadable"', util.read(dir .. "/summary.html"))
    assert.equal(1, #reports.summary(dir).access.unreadable)
  end)

  it("a table that cannot be written: one line naming it, exit 1, the reports still listed", function()
    local dir = home .. "/refused"
    os.execute("mkdir -p " .. q(dir .. "/access.csv"))
    local code, _, err = host.run({ "external-group-access", "--out", dir, "-q" }, { env = env })
    assert.equal(1, code)
    local last = lines(err)[#lines(err)]
    assert.matches("^auditrun: .*the access table of " .. dir:gsub("%p", "%%%0") .. " was not built: .*access%.csv",
      last)
    assert.is_nil(err:find("traceback", 1, true))
    assert.equal(#reports.zips(dir), #reports.manifest(dir))
  end)
end)

-- The accesses of a folder's access.csv as Python's csv module reads them:
-- the set of "group\tprincipal\turl\tpermission" keys.
local function csv_keys(path)
  local out = {}
  for _, l in ipairs(lines(util.sh("python3 -c " .. q("import csv, sys\n"
    .. "for r in csv.DictReader(open(sys.argv[1], newline='')):\n"
    .. "  print('\\t'.join([r.get('change', ''), r['group_id'], r['principal_email'] or r['principal'], "
    .. "r['object_url'], r['permission']]))") .. " " .. q(path)))) do
    out[l] = true
  end
  return out
end

local function count(set)
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  return n
end

describe("access changes", function()
  local sb = sandbox.for_describe {}
  local home, env, old, new

  setup(function()
    home, env = sb:new_home()
    sb:control("POST", "/config", { jobSeconds = 0.05 })
    -- The earlier run reports on Teams and OneDrive, the later on Teams and SharePoint: accesses come and go.
    old, new = home .. "/old", home .. "/new"
    local code, _, err = host.run({ "external-group-access", "--data-sources", "teams,onedrive", "--out", old },
      { env = env })
    assert.equal(0, code, err)
  end)
  teardown(function() util.remove(home) end)

  -- What Python finds between two access.csv files: added and removed keys.
  local function expected(from, to)
    local a, b = csv_keys(from .. "/access.csv"), csv_keys(to .. "/access.csv")
    local want = {}
    for k in pairs(b) do if not a[k] then want["added" .. k] = true end end
    for k in pairs(a) do if not b[k] then want["removed" .. k] = true end end
    return want
  end

  local function counts_of(set)
    local added, removed = 0, 0
    for k in pairs(set) do
      if k:match("^added") then added = added + 1 else removed = removed + 1 end
    end
    return added, removed
  end

  it("--compare PREVIOUS_OUT writes changes.csv beside the table and says the counts", function()
    local code, _, err = host.run({ "external-group-access", "--data-sources", "teams,sharepoint", "--out", new,
      "--compare", old }, { env = env })
    assert.equal(0, code, err)
    local want = expected(old, new)
    local added, removed = counts_of(want)
    assert.is_true(added > 0 and removed > 0, "the two exports differ both ways")
    assert.same(want, csv_keys(new .. "/changes.csv"))
    assert.matches(("changes since %s: %d added, %d removed"):format(old:gsub("%p", "%%%0"), added, removed), err)
    local s = reports.summary(new)
    assert.equal(added, s.access.changes.added)
    assert.equal(removed, s.access.changes.removed)
    assert.equal(tostring(added + removed), sql_value(new .. "/access.sqlite", "select count(*) from changes"))
  end)

  it("access-changes OLD NEW --out FILE: the same differences, the other way round too", function()
    local out = home .. "/back.csv"
    local code, stdout, err = host.run({ "access-changes", new, old, "--out", out }, { env = env })
    assert.equal(0, code, err)
    local want = expected(new, old)
    local added, removed = counts_of(want)
    assert.same(want, csv_keys(out))
    assert.equal(("access-changes: %d added, %d removed from %s to %s: %s\n"):format(added, removed, new, old, out),
      stdout)
    -- The same folder twice: nothing changed, a header alone.
    code, stdout = host.run({ "access-changes", old, old .. "/access.sqlite", "--out", out }, { env = env })
    assert.equal(0, code)
    assert.matches("^access%-changes: 0 added, 0 removed", stdout)
    assert.equal(0, count(csv_keys(out)))
  end)

  it("a folder with no access table: one line, exit 1, nothing sent or written", function()
    local empty = home .. "/empty"
    os.execute("mkdir -p " .. q(empty))
    local code, _, err = host.run({ "access-changes", empty, old, "--out", home .. "/x.csv" }, { env = env })
    assert.equal(1, code)
    assert.equal(1, #lines(err), err)
    assert.matches("^auditrun: access: .*empty: no access table", err)
    assert.is_false(util.read(home .. "/x.csv") ~= nil)
    sb:control("POST", "/reset")
    code, _, err = host.run({ "external-group-access", "--out", home .. "/never", "--compare", empty }, { env = env })
    assert.equal(1, code)
    assert.matches("no access table", err)
    assert.equal(0, #sb:control("GET", "/requests?match=/access/export"))
    -- Not an access table at all.
    util.write(empty .. "/access.sqlite", "")
    code, _, err = host.run({ "access-changes", empty, old, "--out", home .. "/x.csv" }, { env = env })
    assert.equal(1, code)
    assert.matches("holds no access table", err)
  end)
end)

-- A cell a spreadsheet would run as a formula (records.lua's rule): = + - @
-- TAB or CR first, and not a plain negative number.
local function formula_cells(path)
  return tonumber(util.sh("python3 -c " .. q("import csv, re, sys\n"
    .. "n = 0\n"
    .. "for row in csv.reader(open(sys.argv[1], newline='')):\n"
    .. "  for c in row:\n"
    .. "    if c[:1] in ('=', '+', '-', '@', '\\t', '\\r') and not re.fullmatch(r'-\\d+(\\.\\d+)?', c): n += 1\n"
    .. "print(n)") .. " " .. q(path)))
end

describe("access table, changes and page with hostile names", function()
  local sb = sandbox.for_describe { hostile = true, markup = true }
  local home, env, old, new, page

  setup(function()
    home, env = sb:new_home()
    sb:control("POST", "/config", { jobSeconds = 0.05 })
    old, new = home .. "/old", home .. "/new"
    for _, run in ipairs { { "teams,onedrive", old }, { "teams,sharepoint", new, "--compare", old } } do
      local args = { "external-group-access", "--data-sources", run[1], "--out", run[2], run[3], run[4] }
      local code, _, err = host.run(args, { env = env })
      assert.equal(0, code, err)
    end
    local json = util.sh("python3 tests/helper/page.py " .. q(new .. "/summary.html"))
    page = require("cjson").decode(json)
  end)
  teardown(function() util.remove(home) end)

  it("the table keeps the names as the reports give them; the CSVs start no formula", function()
    assert_table_is_reports(new)
    local db = new .. "/access.sqlite"
    assert.is_true(tonumber(sql_value(db, "select count(*) from access where group_name like '=cmd|%'")) > 0)
    assert.is_true(tonumber(sql_value(db, "select count(*) from access where object_title like '%<script>%'")) > 0)
    assert.equal(0, formula_cells(new .. "/access.csv"))
    assert.equal(0, formula_cells(new .. "/changes.csv"))
    -- The formulas are there, neutralised: a leading '.
    assert.matches("\n[^\n]*,'=cmd|", util.read(new .. "/access.csv"))
    assert.matches("\n[^\n]*'=cmd|", util.read(new .. "/changes.csv"))
  end)

  it("summary.html: no script, no handler, no link; every hostile name shown as text", function()
    local allowed = {}
    for _, t in ipairs { "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "ul", "li", "span", "table",
      "thead", "tbody", "tr", "th", "td", "dl", "dt", "dd", "code", "footer", "br" } do allowed[t] = true end
    for _, t in ipairs(page.tags) do assert.is_true(allowed[t], "tag " .. t) end
    assert.same({}, page.bad_attrs)
    -- The markup in the data is text on the page, whole.
    assert.truthy(page.text:find("<script>alert(1)</script>", 1, true))
    assert.truthy(page.text:find("\"><img src=x onerror=alert(2)>", 1, true))
    assert.truthy(page.text:find("</td></tr></table><h1>owned</h1>", 1, true))
    local html = util.read(new .. "/summary.html")
    assert.is_nil(html:find("<script", 1, true))
    -- Self-contained: nothing fetched from elsewhere.
    for _, s in ipairs { "<link", "url(", "@import" } do assert.is_nil(html:find(s, 1, true), s) end
  end)

  it("summary.html: the counts, the top external principals and objects, and the changes are the table's", function()
    local db = new .. "/access.sqlite"
    local who = "coalesce(principal_email, principal, '')"
    -- Every group exported, also one with no access rows in these workspaces.
    local groups = {}
    for _, e in ipairs(reports.manifest(new)) do groups[e.subjects[1]] = true end
    assert.equal(tostring(count(groups)), page.ids["count-subjects"])
    assert.matches(">groups<", util.read(new .. "/summary.html"))
    assert.equal(tostring(#reports.manifest(new)), page.ids["count-reports"])
    assert.equal(sql_value(db, "select count(distinct " .. who .. ") from access where external"),
      page.ids["count-external-principals"])
    assert.equal(sql_value(db, "select count(distinct object_url) from access where external"),
      page.ids["count-external-objects"])
    local s = reports.summary(new)
    assert.equal(tostring(math.tointeger(s.access.changes.added)), page.ids["count-added"])
    assert.equal(tostring(math.tointeger(s.access.changes.removed)), page.ids["count-removed"])
    -- The top principals: their e-mails (or names) and object counts, in
    -- order. Hex, since names hold tabs and line breaks (which HTML reads
    -- as a line feed, a carriage return too).
    local function hex(text) return (text:gsub(".", function(c) return ("%02X"):format(c:byte()) end)) end
    local top = sql(db, "select hex(replace(" .. who .. ", char(13), char(10))) as w, count(distinct object_url) as n "
      .. "from access where external group by " .. who .. " order by n desc, " .. who .. " limit 25")
    local shown = {}
    for _, r in ipairs(page.tables["top-principals"].rows) do shown[#shown + 1] = hex(r[2]) .. "\t" .. r[4] end
    assert.same(top, shown)
    assert.equal(tostring(#top), page.tables["top-principals"].data_rows)
    local objects = sql(db, "select hex(object_url), count(distinct " .. who .. ") as n from access where external "
      .. "group by object_url order by n desc, object_url limit 25")
    shown = {}
    for _, r in ipairs(page.tables["top-objects"].rows) do shown[#shown + 1] = hex(r[2]) .. "\t" .. r[4] end
    assert.same(objects, shown)
    -- The changes: as many as changes.csv has, up to the page's limit.
    local n = math.min(200, s.access.changes.added + s.access.changes.removed)
    assert.equal(n, #page.tables["changes"].rows)
    for _, r in ipairs(page.tables["changes"].rows) do assert.truthy(r[1] == "added" or r[1] == "removed") end
  end)
end)
