-- Exports the activity report of each object given with --path URL
local cli = require("auditrun.cli")
local iw = require("auditrun.insights.workflows")

local spec = {
  name = "object-activities",
  summary = "Exports the activity report of each object (file, folder, list, site) given with --path.",
  description = "Graph API: one object_activities_export job per object (--google: Google Workspace objects, "
    .. "by id). Legacy API (--api legacy): the activity export for the path. Reports land in --out DIR, listed "
    .. "in DIR/manifest.jsonl; a rerun into the same folder fetches only what is missing.",
  examples = {
    "auditrun object-activities --path https://contoso.sharepoint.com/sites/hr --out hr/",
    "auditrun object-activities --google --path 1AbCdEfGh --from 2025-06-01 --out drive-file/",
    "auditrun object-activities --google --path 1AbCdEfGh --incremental --from 2025-01-01 --out-dir g/",
  },
  kind = "export", apis = { "graph", "legacy" }, incremental = true, incremental_default = " (needed then)",
  flags = function(p)
    p:option("--path", "The object's URL (with --google: its id); repeatable."):argname("URL"):count("+")
    iw.activity_flags(p, "Google Workspace objects (Graph API; --path takes their ids).")
  end,
  check = iw.check_activity,
}
local opts = cli.parse(spec, ...)
local events = iw.event_types(opts)

-- A single run asks for --from and --to; a series' run for its window.
-- key: the parameter that names the object.
local function graph(key)
  return function(ids, from, to)
    return { [key] = ids[1], startTime = from or opts.from, finishTime = to or opts.to, eventTypes = events }
  end
end
local run = opts.incremental and iw.activity_series or iw.run_exports
run(opts, {
  what = "objects", subjects = opts.path, source = "object_activities",
  list = function(_, add)
    for _, p in ipairs(opts.path) do add(p, "object " .. p) end
  end,
  graph = { name = "object_activities_export", params = graph("path") },
  google = { name = "google_object_activities_export", params = graph("id") },
  legacy = {
    name = "activity_export",
    params = function(ids, from, to)
      return { path = ids[1], startTime = from or opts.from, endTime = to or opts.to, eventTypes = events,
               Language = opts.language }
    end,
  },
})
