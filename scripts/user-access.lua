-- Exports the access report of the users in --users FILE, or of every user
local iw = require("auditrun.insights.workflows")

iw.user_access({
  name = "user-access",
  summary = "Exports the access report of each user of --users FILE, or of every user the summaries list.",
  description = "Graph API: one user_permissions_export job per user (--google: the Google Workspace export, "
    .. "for --users). Legacy API (--api legacy): up to --batch-size users a job. Reports land in --out DIR, listed "
    .. "in DIR/manifest.jsonl; a rerun into the same folder fetches only what is missing.",
  examples = {
    "auditrun user-access --users users.txt --out user-access/",
    "auditrun user-access --google --users google-users.txt --data-sources my_drive --out google/",
  },
  flags = function(p)
    p:option("--users", "The users: a file of login names or e-mails, one a line (default: every user)."):argname("FILE")
    p:flag("--google", "Google Workspace users (Graph API; needs --users).")
  end,
  google = true,
  accept = function() return true end,
}, ...)
