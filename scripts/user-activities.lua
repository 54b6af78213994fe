-- Exports the activity report of each user of --user / --users FILE (Export User Activities)
local cli = require("auditrun.cli")
local iw = require("auditrun.insights.workflows")

local spec = {
  name = "user-activities",
  summary = "Exports the activity report of each user given with --user or --users FILE.",
  description = "Graph API: Export User Activities, one job per user, sent exactly as the documented sample "
    .. "(the e-mail encoded twice, times as yyyy-MM-ddTHH:mm:ss, eventTypes repeated); --google for Google "
    .. "Workspace users. Legacy API (--api legacy): the activity export, a job per user. Reports land in --out DIR, "
    .. "listed in DIR/manifest.jsonl; a rerun into the same folder fetches only what is missing.",
  examples = {
    "auditrun user-activities --user jane@contoso.com --from 2025-06-01 --to 2025-06-30 --out jane/",
    "auditrun user-activities --users users.txt --event-type FileAccessed,FileDeleted --out activity/",
    "auditrun user-activities --users users.txt --incremental --from 2025-01-01 --out-dir users/",
  },
  kind = "export", apis = { "graph", "legacy" }, incremental = true, incremental_default = " (needed then)",
  flags = function(p)
    p:option("--user", "A user's login name or e-mail; repeatable."):argname("EMAIL"):count("*")
    p:option("--users", "A file of login names or e-mails, one a line."):argname("FILE")
    iw.activity_flags(p, "Google Workspace users (Graph API).")
  end,
  check = function(o)
    if #o.user == 0 and not o.users then return "give --user EMAIL (repeatable) or --users FILE" end
    return iw.check_activity(o)
  end,
}
local opts = cli.parse(spec, ...)
local users = { table.unpack(opts.user) }
for _, u in ipairs(iw.list_file(spec, "--users", opts.users) or {}) do users[#users + 1] = u end
local events = iw.event_types(opts)

-- A single run asks for --from and --to; a series' run for its window.
local function graph(ids, from, to)
  return { email = ids[1], startTime = from or opts.from, finishTime = to or opts.to, eventTypes = events }
end
local run = opts.incremental and iw.activity_series or iw.run_exports
run(opts, {
  what = "users", subjects = users, source = "user_activities",
  list = function(_, add)
    for _, u in ipairs(users) do add(u, "user " .. u) end
  end,
  graph = { name = "user_activities_export", params = graph },
  google = { name = "google_user_activities_export", params = graph },
  legacy = {
    name = "activity_export",
    params = function(ids, from, to)
      return { email = ids[1], startTime = from or opts.from, endTime = to or opts.to, eventTypes = events,
               Language = opts.language }
    end,
  },
})
