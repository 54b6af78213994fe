-- Merges every configured vendor's activity into one time-ordered JSON Lines (or CSV) file in one schema
local activity = require("auditrun.activity")
local cli = require("auditrun.cli")
local schemas = require("auditrun.schemas")
local time = require("auditrun.time")
local vendors = require("auditrun.vendors")
local workflow = require("auditrun.workflow")

local spec = {
  name = "activity-timeline",
  summary = "Merges every configured vendor's activity into one time-ordered file in one schema.",
  description = "Each line: time (UTC, ISO 8601), vendor, user, action (the vendor's name), verb (login, "
    .. "logout, login_failed, download, upload, delete, share, export ...), source, ip, object and raw (the original "
    .. "record). A vendor with none of its settings given is left out; one with some but not all is an error "
    .. "naming what is missing. Memory stays flat however long the range. A rerun with the same --out and range "
    .. "after an interruption finishes the file, each event once. --schema ocsf or ecs writes each event as "
    .. "OCSF 1.1 or ECS 8.11 instead (CSV: nested fields as dotted columns).",
  examples = {
    "auditrun activity-timeline --from 2025-06-01 --to 2025-06-30 --out june.jsonl",
    "auditrun activity-timeline --from 2025-06-01 --to 2025-06-30 --schema ocsf --out june.ocsf.jsonl",
    "auditrun activity-timeline --incremental --out-dir /var/lib/auditrun/timeline --from 2025-01-01",
  },
  kind = "records", incremental = true, incremental_default = " (needed then)",
  flags = function(p)
    cli.time_flags(p)
    p:option("--insights-users", "Insights: only the activity of these users (a file of login names, one a "
      .. "line); default: every user of the tenant, an export job each."):argname("FILE")
    p:option("--schema", "The events' fields: auditrun (time, vendor, user, action, verb, source, ip, object, raw), "
      .. "ocsf (OCSF 1.1: Authentication, File Hosting Activity, API Activity) or ecs (Elastic Common Schema 8.11).",
      "auditrun"):choices(schemas.NAMES)
  end,
  check = function(o)
    if not o.incremental and not (o.from and o.to) then return "--from and --to are both needed" end
  end,
}
local opts = cli.parse(spec, ...)

if opts.insights_users then
  local list, err = cli.read_list(opts.insights_users)
  if not list then cli.usage_error(spec, "--insights-users: " .. err) end
  opts.insights_users = list
end
local clients = {}
for _, name in ipairs(vendors) do
  if activity.configured(name, opts) then
    local vendor = require("auditrun." .. name)
    local c = activity.connect(vendor, opts)
    clients[#clients + 1] = { name = name, vendor = vendor, client = c, tenant = schemas.tenant(c) }
  end
end
if #clients == 0 then
  error(require("auditrun.errors").new("config", "no vendor is configured: set the settings of at least one "
    .. "(AUDITRUN_DEALCLOUD_URL ..., AUDITRUN_EXAVAULT_URL ..., AUDITRUN_INSIGHTS_URL ...)"), 0)
end
local convert = schemas.converter(opts.schema, opts.format)
-- An event's time, in the schema it is written in (OCSF: milliseconds).
local TIME_OF = {
  auditrun = function(row) return time.parse(row.time) end,
  ocsf = function(row) return tonumber(row.time) and tonumber(row.time) / 1000 end,
  ecs = function(row) return time.parse(row["@timestamp"]) end,
}
workflow.windowed(opts, {
  time_of = TIME_OF[opts.schema],
  first_from_required = true,
  source = function(given_from, given_to, out)
    local from, to = activity.range(given_from, given_to, { inclusive_to = true })
    -- The Insights reports and their run state, beside the file (a rerun reuses them).
    local dir, base = out:match("^(.*/)([^/]*)$")
    opts.insights_dir = (dir or "") .. "." .. (base or out) .. ".insights"
    return {
      columns = schemas.columns(opts.schema, opts.format),
      range = { from = from, to = to },
      run_dirs = { opts.insights_dir },
      warnings = { unreadable = "Insights report(s) could not be read: the timeline lacks their events" },
      rows = function(warn, cov)
        -- A report that cannot be read is a warning that fails the run, not a stop (the other reports are read).
        opts.warn, opts.coverage = warn, cov
        local sources = {}
        for _, v in ipairs(clients) do
          for _, s in ipairs(v.vendor.timeline(v.client, from, to, opts)) do
            -- Each event is told with its vendor's log and tenant, for the schemas.
            sources[#sources + 1] = function()
              local ev, tag = s()
              if ev == nil then return nil end
              return ev, { log = tag.log, tenant = v.tenant }
            end
          end
        end
        local events = activity.merge(sources)
        return function()
          local ev, tag = events()
          if ev == nil then return nil end
          return convert(ev, tag)
        end
      end,
    }
  end,
})
