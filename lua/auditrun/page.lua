-- auditrun.page: DIR/summary.html, the page an export run's folder hands
-- over: who outside the company can reach what. One static file, its style
-- inline, no script, nothing fetched: it reads the same offline or mailed.
--
-- It says what the run was; how many subjects (groups, users or sites),
-- reports, external principals and objects reachable from outside the
-- access table holds; the external principals that reach most, the objects
-- most external principals reach, and the changes since the run compared
-- with. Every value from the reports is escaped (names are data, and data
-- can be hostile).
--
-- The numbers carry ids (count-subjects, count-reports,
-- count-external-principals, count-external-objects, count-added,
-- count-removed) and the tables data-rows, so checks read them without a
-- browser.
local access = require("auditrun.access")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local sqlite = require("auditrun.sqlite")
local util = require("auditrun.util")

local M = {}

M.NAME = "summary.html"
M.TOP = 25            -- rows of each "most" table
M.CHANGES_SHOWN = 200 -- changes listed on the page (all are in changes.csv)

local esc = util.html_escape

local STYLE = [[
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #1b1f23; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.lead { color: #555; margin-top: 0; }
.counts { display: flex; flex-wrap: wrap; gap: 1em; margin: 1.5em 0; padding: 0; list-style: none; }
.counts li { border: 1px solid #ddd; border-radius: 6px; padding: .8em 1.2em; min-width: 10em; }
.counts .n { display: block; font-size: 1.8em; font-weight: 600; }
.warn { background: #fff4e5; border: 1px solid #f0b060; border-radius: 6px; padding: .6em 1em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #f6f8fa; } td.num, th.num { text-align: right; }
td { overflow-wrap: break-word; } td.long { overflow-wrap: anywhere; } .sub { color: #555; font-size: .9em; }
.added { color: #116329; } .removed { color: #a40e26; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; } dl.facts dt { color: #555; }
footer { margin-top: 3em; color: #777; font-size: .9em; }
]]

-- A column's class: numbers align right, URLs and e-mails break anywhere.
local function class(h)
  if h.num then return ' class="num"' end
  if h.long then return ' class="long"' end
  return ""
end

local function tbl(out, id, headers, rows)
  out[#out + 1] = string.format('<table id="%s" data-rows="%d"><thead><tr>', id, #rows)
  for _, h in ipairs(headers) do
    out[#out + 1] = string.format('<th%s>%s</th>', class(h), esc(h[1]))
  end
  out[#out + 1] = "</tr></thead><tbody>"
  for _, r in ipairs(rows) do
    out[#out + 1] = r.class and string.format('<tr class="%s">', esc(r.class)) or "<tr>"
    for i, h in ipairs(headers) do
      local v = r[i]
      -- Two values in one cell (a name and its e-mail): the second below, smaller.
      if type(v) == "table" then
        v = esc(v[1]) .. (v[2] and v[2] ~= v[1] and ('<br><span class="sub">' .. esc(v[2]) .. "</span>") or "")
      else
        v = esc(v)
      end
      out[#out + 1] = string.format("<td%s>%s</td>", class(h), v)
    end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</tbody></table>"
end

local function count(out, id, n, label)
  out[#out + 1] = string.format('<li><span class="n" id="%s">%s</span>%s</li>', id, esc(n), esc(label))
end

local function list(db, sql)
  local out = {}
  for r in db:rows(sql) do out[#out + 1] = r end
  return out
end

--- html(db, summary, info) -> the page's text. db: the access table;
--- summary: the run's (auditrun.workflow); info: its access entry.
function M.html(db, s, info)
  local out = {}
  local who = access.PRINCIPAL
  local function add(text) out[#out + 1] = text end
  add('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n')
  add('<meta name="viewport" content="width=device-width, initial-scale=1">\n')
  add("<title>" .. esc(s.workflow) .. ": who outside the company can reach what</title>\n")
  add("<style>" .. STYLE .. "</style>\n</head>\n<body>\n")
  add("<h1>Who outside the company can reach what</h1>\n")
  add(string.format('<p class="lead">%s, %s API, finished %s. Read from the %d reports in %s.</p>\n', esc(s.workflow),
    esc(s.api or ""), esc(s.finished), info.reports, esc(s.out)))
  if (s.failed or 0) > 0 then
    add(string.format('<p class="warn" id="incomplete">Incomplete: %d of %d reports failed, so their rows are not in '
      .. "these numbers. Run the workflow again with the same --out to finish.</p>\n", s.failed, s.listed))
  end
  if info.unreadable then
    add(string.format('<div class="warn" id="unreadable"><p>Incomplete: %d report(s) could not be read, so their '
      .. "rows are not in these numbers:</p><ul>", #info.unreadable))
    for _, u in ipairs(info.unreadable) do add("<li>" .. esc(u.error) .. "</li>") end
    add("</ul></div>\n")
  end
  add('<ul class="counts">')
  count(out, "count-subjects", info.subjects, info.subject_noun)
  count(out, "count-reports", info.reports, "reports")
  count(out, "count-external-principals", info.external_principals, "external principals")
  count(out, "count-external-objects", info.external_objects, "objects reachable from outside")
  if info.changes then
    count(out, "count-added", info.changes.added, "accesses added")
    count(out, "count-removed", info.changes.removed, "accesses removed")
  end
  add("</ul>\n")

  add("<h2>External principals by reach</h2>\n")
  local top = list(db, string.format("select max(principal) as principal, %s as who, max(principal_type) as type, "
    .. "count(distinct object_url) as objects, count(distinct group_id) as groups from access where external "
    .. "group by who order by objects desc, who limit %d", who, M.TOP))
  local rows = {}
  for _, r in ipairs(top) do rows[#rows + 1] = { r.principal, r.who, r.type, r.objects, r.groups } end
  tbl(out, "top-principals", { { "Principal" }, { "E-mail or login", long = true }, { "Type" }, { "Objects", num = true },
    { "Groups", num = true } }, rows)
  add(string.format("<p>The first %d of %d; every one is in access.csv (external = true).</p>\n", #rows,
    info.external_principals))

  add("<h2>Objects reachable from outside</h2>\n")
  top = list(db, string.format("select max(object_title) as title, object_url as url, max(object_type) as type, "
    .. "count(distinct %s) as principals from access where external group by object_url "
    .. "order by principals desc, object_url limit %d", who, M.TOP))
  rows = {}
  for _, r in ipairs(top) do rows[#rows + 1] = { r.title, r.url, r.type, r.principals } end
  tbl(out, "top-objects", { { "Object" }, { "URL", long = true }, { "Type" }, { "External principals", num = true } }, rows)

  if info.changes then
    add(string.format("<h2>What changed since %s</h2>\n", esc(info.changes.since)))
    rows = {}
    for r in db:rows("select change, principal, principal_email, external, object_title, object_url, permission, "
      .. "group_name, group_id from changes order by external desc, change, principal_email, object_url limit "
      .. M.CHANGES_SHOWN) do
      rows[#rows + 1] = { r.change, { r.principal, r.principal_email }, r.external == 1 and "yes" or "no",
                          { r.object_title, r.object_url }, r.permission, r.group_name or r.group_id, class = r.change }
    end
    tbl(out, "changes", { { "Change" }, { "Principal", long = true }, { "External" }, { "Object", long = true },
      { "Permission" }, { "Group" } }, rows)
    add(string.format("<p>%d of %d changes shown, external ones first; all are in changes.csv.</p>\n", #rows,
      info.changes.added + info.changes.removed))
  end

  add("<h2>The run</h2>\n<dl class=\"facts\">")
  local facts = {
    { "Workflow", s.workflow }, { "API", s.api }, { "Folder", s.out }, { "Started", s.started },
    { "Finished", s.finished }, { "Reports", string.format("%d of %d (%d from an earlier run, %d failed)", s.done,
      s.listed, s.reused, s.failed) }, { "Access rows", info.rows }, { "Compared with", info.changes and
      info.changes.since },
  }
  for _, f in ipairs(facts) do
    if f[2] ~= nil then add(string.format("<dt>%s</dt><dd>%s</dd>", esc(f[1]), esc(f[2]))) end
  end
  add("</dl>\n<p>The table: access.csv and access.sqlite (table access) in the folder; "
    .. "<code>sqlite3 access.sqlite</code> answers further questions.</p>\n")
  add("<footer>Made by auditrun from the reports as they were exported.</footer>\n</body>\n</html>\n")
  return table.concat(out)
end

--- write(dir, summary, info): DIR/summary.html, written whole or not at
--- all. Raises.
function M.write(dir, s, info)
  local db <close> = errors.try(sqlite.open(dir .. "/" .. access.SQLITE))
  errors.try(files.write_atomic(dir .. "/" .. M.NAME, M.html(db, s, info)))
end

return M
