-- Exports the access report of every guest (#EXT#) account
local iw = require("auditrun.insights.workflows")

iw.user_access({
  name = "guest-access",
  summary = "Exports the access report of every guest (#EXT#) account the user summaries list.",
  description = "Graph API: one user_permissions_export job per guest. Legacy API (--api legacy): up to "
    .. "--batch-size guests a job. Reports land in --out DIR, listed in DIR/manifest.jsonl; a rerun into the same "
    .. "folder fetches only what is missing.",
  examples = {
    "auditrun guest-access --out guests/ --data-sources teams,sharepoint",
    "auditrun guest-access --out guests/ --dry-run",
  },
  accept = function(login) return login:lower():find("#ext#", 1, true) ~= nil end,
}, ...)
