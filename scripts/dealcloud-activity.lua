-- Writes DealCloud's user activity audit log for a time range to a JSON Lines or CSV file
local activity = require("auditrun.activity")
local cli = require("auditrun.cli")
local dealcloud = require("auditrun.dealcloud")
local time = require("auditrun.time")
local workflow = require("auditrun.workflow")

-- A table's id or name, checked: a converter for --activity, --source, --export-type.
local function table_value(kind)
  return function(s)
    local id = dealcloud.id(kind, s)
    if id == nil then return nil, string.format("must be an id or a name of DealCloud's %s table, not '%s'", kind, s) end
    return id
  end
end

local opts = cli.parse({
  name = "dealcloud-activity",
  summary = "Writes DealCloud's user activity audit log for a time range to a file.",
  description = "Times are UTC. The range is read in windows of at most 90 days (the API's limit), each row "
    .. "once, oldest first. Needs AUDITRUN_DEALCLOUD_URL, AUDITRUN_DEALCLOUD_CLIENT_ID and "
    .. "AUDITRUN_DEALCLOUD_CLIENT_SECRET (or _FILE), or those keys in a config profile. A rerun with the same --out "
    .. "after an interruption continues from the last page written.",
  examples = {
    "auditrun dealcloud-activity --from 2025-01-01 --activity 'login failed' --out failed-logins.csv",
    "auditrun dealcloud-activity --incremental --out-dir /var/lib/auditrun/dealcloud --lookback 1h",
  },
  kind = "records", incremental = true, incremental_default = " (default: 90 days before its --to)",
  flags = function(p)
    cli.time_flags(p, { from = " (default: 90 days before --to)", to = " (default: now)" })
    p:option("--user", "Only these user ids (comma-separated; repeatable)."):argname("IDS"):count("*")
      :convert(cli.words)
    p:option("--activity", "Only this activity type, by id or name (login, 'login failed', logout, export ...).")
      :argname("TYPE"):convert(table_value("activity"))
    p:option("--source", "Only this source, by id or name (web, mobile, outlook, excel ...).")
      :argname("SOURCE"):convert(table_value("source"))
    p:option("--export-type", "With --activity export: only this export data type, by id or name.")
      :argname("TYPE"):convert(table_value("export_data"))
  end,
  check = function(o)
    for _, u in ipairs(cli.flatten(o.user)) do
      if not u:match("^%d+$") then return "--user takes user ids (numbers), not '" .. u .. "'" end
    end
    if o.export_type and o.activity ~= 8 then return "--export-type needs --activity export (8)" end
  end,
}, ...)

local users = {}
for i, u in ipairs(cli.flatten(opts.user)) do users[i] = math.tointeger(tonumber(u)) end
local c = activity.connect(dealcloud, opts)
workflow.windowed(opts, {
  time_of = function(row) return time.read(row.eventDate) end,
  default_from = function(to) return to - dealcloud.MAX_DAYS * time.DAY end,
  source = function(given_from, given_to)
    local from, to = activity.range(given_from, given_to, { inclusive_to = true, default_days = dealcloud.MAX_DAYS })
    return {
      range = { from = from, to = to },
      columns = dealcloud.COLUMNS,
      pages = dealcloud.pages(c, {
        from = from, to = to, userIds = #users > 0 and users or nil, activity = opts.activity, source = opts.source,
        exportDataType = opts.export_type,
      }, { from = given_from and from, to = given_to and to }),
    }
  end,
})
