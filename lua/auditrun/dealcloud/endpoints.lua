-- auditrun.dealcloud.endpoints: the DealCloud requests auditrun makes, as
-- data for auditrun.catalog (the shared api-docs folder:
-- dealcloud-user-activity.txt). Paths are relative to the site's URL.
--
-- The parameter table spells userIDs, the sample userIds: sample wins on
-- the wire. The document says dates are "evaluated to the nearest date",
-- that dateTo must be at least one day after dateFrom and that 90 days is
-- the longest range, yet its samples send a 0-day and a 120-day range:
-- sample wins here too (the service answers 400 with its message), and
-- auditrun.dealcloud walks any range in windows of one to 90 whole days.
local catalog = require("auditrun.catalog")

-- {id, name...}: the documented name first, then the spellings the
-- service's own rows use ("SessionExpired", "Web") and short words.
local ACTIVITY = {
  { 1, "Login Successful", "login" },
  { 2, "Login Failed" },
  { 3, "Logout" },
  { 4, "Session Expired", "SessionExpired" },
  { 5, "Login Failed (Locked Out)", "locked_out" },
  { 6, "Login Requires Verification", "verification" },
  { 7, "Login Failed (Forbidden)", "forbidden" },
  { 8, "Export Data", "export" },
  { 9, "User Proxy / Switch", "proxy", "switch" },
  { 10, "BackupAccess", "Backup Access" },
  { 11, "IP Restriction Applied", "ip_restriction" },
}
local SOURCE = {
  { 1, "Web UI", "Web" },
  { 2, "Mobile" },
  { 3, "Outlook" },
  { 4, "Excel" },
  { 5, "Word" },
  { 6, "Unknown" },
  { 7, "Chrome Extension", "chrome" },
  { 8, "Web Add-In" },
  { 9, "Mobile Next", "Intapp Mobile 2.0" },
  { 10, "PowerPoint" },
  { 11, "Teams" },
}
local EXPORT_DATA = {
  { 0, "Export Data" },
  { 1, "Export Formula", "formula" },
  { 2, "Export Image", "image" },
  { 3, "Download Document", "download" },
  { 4, "Template Report", "template" },
}

-- What each activity is in the activity timeline's common words.
local VERBS = {
  [1] = "login", [2] = "login_failed", [3] = "logout", [4] = "logout", [5] = "login_failed", [6] = "login_challenge",
  [7] = "login_failed", [8] = "export", [9] = "impersonate", [10] = "access", [11] = "login_failed",
}
-- Export Data of type Download Document is a download.
local EXPORT_VERBS = { [3] = "download" }

-- The most rows a page asks for: the document names no maximum (10 is the
-- default); a service that caps lower still pages right, by totalRecords.
local PAGE_SIZE = 1000

local function b(name, ty, o) return catalog.param("body", name, ty, o) end
local function q(name, ty, o) return catalog.param("query", name, ty, o) end

local endpoints = {
  user_activity = {
    method = "POST", path = "/api/rest/v1/management/user/activity", doc = "dealcloud-user-activity.txt",
    kind = "read",
    paging = { style = "page", page = "pageNumber", size = "pageSize", default_size = PAGE_SIZE,
               total = "totalRecords", rows = { "rows" } },
    params = {
      b("userIDs", "list", { wire = "userIds", items = "integer", aliases = { "users", "user_ids", "user" } }),
      b("dateFrom", "time", { format = "iso", zulu = true, aliases = { "from" } }),
      b("dateTo", "time", { format = "iso", zulu = true, aliases = { "to" } }),
      b("activity", "integer", { enum = ACTIVITY }),
      b("source", "integer", { enum = SOURCE }),
      b("exportDataType", "integer", { enum = EXPORT_DATA, aliases = { "export_type" } }),
      q("pageNumber", "integer", { min = 1 }),
      q("pageSize", "integer", { min = 1, max = PAGE_SIZE }),
    },
    rules = {
      { "not_after", "dateFrom", "dateTo" },
      { "only_with", "exportDataType", "activity", 8, "Export Data" },
    },
  },
}

return {
  title = "DealCloud",
  endpoints = endpoints,
  error_message = { "message" },
  enums = { activity = ACTIVITY, source = SOURCE, export_data = EXPORT_DATA },
  verbs = VERBS, export_verbs = EXPORT_VERBS,
  token_path = "/api/rest/v1/oauth/token",
  max_days = 90,
}
