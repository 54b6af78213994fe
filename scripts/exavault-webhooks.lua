-- Writes ExaVault's webhook log (each webhook attempt and its answer) to a JSON Lines or CSV file
local activity = require("auditrun.activity")
local cli = require("auditrun.cli")
local exavault = require("auditrun.exavault")
local workflow = require("auditrun.workflow")

local opts = cli.parse({
  name = "exavault-webhooks",
  summary = "Writes ExaVault's webhook log (each webhook attempt and its answer) to a file.",
  description = "Times are UTC; rows come oldest first, one per attempt: id, type, then its attributes. Needs "
    .. "AUDITRUN_EXAVAULT_URL, AUDITRUN_EXAVAULT_API_KEY and AUDITRUN_EXAVAULT_ACCESS_TOKEN (or _FILE), or those "
    .. "keys in a config profile. A rerun with the same --out after an interruption continues from the last page "
    .. "written.",
  examples = {
    "auditrun exavault-webhooks --from 2025-06-01 --status 500 --out failed-webhooks.csv",
    "auditrun exavault-webhooks --event resources.upload --user jane --out uploads.jsonl",
  },
  kind = "records", incremental = true, incremental_default = " (default: the log's beginning)",
  flags = function(p)
    cli.time_flags(p)
    p:option("--user", "Only webhooks this username triggered."):argname("NAME")
    p:option("--endpoint-url", "Only attempts to this listener URL."):argname("URL")
    p:option("--event", "Only this event (resources.upload, resources.download, shares.formSubmit ...).")
      :argname("EVENT"):convert(function(s)
        return exavault.id("event", s) or nil, "must be an ExaVault webhook event, not '" .. s .. "'"
      end)
    p:option("--status", "Only attempts the listener answered with this HTTP status."):argname("CODE")
      :convert(cli.count)
    p:option("--resource-path", "Only resources matching this pattern ('*' matches anything)."):argname("PATTERN")
  end,
}, ...)

local c = activity.connect(exavault, opts)
workflow.windowed(opts, exavault.log_workflow(c, "webhook_logs", {
  username = opts.user, endpointUrl = opts.endpoint_url, event = opts.event, statusCode = opts.status,
  resourcePath = opts.resource_path,
}))
