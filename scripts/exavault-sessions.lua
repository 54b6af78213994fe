-- Writes ExaVault's session activity log (logins, uploads, downloads ...) to a JSON Lines or CSV file
local activity = require("auditrun.activity")
local cli = require("auditrun.cli")
local exavault = require("auditrun.exavault")
local workflow = require("auditrun.workflow")

local opts = cli.parse({
  name = "exavault-sessions",
  summary = "Writes ExaVault's session activity log (connects, uploads, downloads, shares ...) to a file.",
  description = "Times are UTC; rows come oldest first, one per log entry: id, type, then the entry's "
    .. "attributes. Needs AUDITRUN_EXAVAULT_URL (the account's .../api/v2), AUDITRUN_EXAVAULT_API_KEY and "
    .. "AUDITRUN_EXAVAULT_ACCESS_TOKEN (or _FILE), or those keys in a config profile. A rerun with the same --out "
    .. "after an interruption continues from the last page written.",
  examples = {
    "auditrun exavault-sessions --from 2025-06-01 --type download --out downloads.csv",
    "auditrun exavault-sessions --incremental --out-dir /var/lib/auditrun/exavault --lookback 1h",
  },
  kind = "records", incremental = true, incremental_default = " (default: the log's beginning)",
  flags = function(p)
    cli.time_flags(p)
    p:option("--user", "Only this username."):argname("NAME")
    p:option("--ip", "Only this IP address."):argname("ADDRESS")
    p:option("--path", "Only paths matching this pattern ('*' matches anything: /folder*)."):argname("PATTERN")
    p:option("--type", "Only this operation type, by API value or file manager name (RETR, download, "
      .. "'create folder' ...).")
      :argname("TYPE"):convert(function(s)
        return exavault.id("operation", s) or nil, "must be an ExaVault operation type, not '" .. s .. "'"
      end)
  end,
}, ...)

local c = activity.connect(exavault, opts)
workflow.windowed(opts, exavault.log_workflow(c, "session_logs", {
  username = opts.user, ipAddress = opts.ip, path = opts.path, type = opts.type,
}))
