-- auditrun.insights.endpoints: every request of AvePoint Insights, as data.
--
-- Two catalogues: M.graph (the AvePoint Graph API, /insights/...) and
-- M.legacy (the legacy Web API, /insights/api/v1/...). Paths are relative
-- to the Insights base URL, which ends in /insights. M.build turns a name
-- and a table of parameters into the exact request the documents show,
-- checking every parameter first; nothing here touches the network.
--
-- Sources (copies under /work/shared/api-docs): avepoint-graph/insights/*.md
-- (AvePoint/cloud-api, July 2026), insights-web-api-legacy.txt, and the
-- Graph user-activities page as users first sent it. Where a page
-- contradicts itself, the request *sample* wins over the parameter table:
-- the sample is what the service was seen to accept. Each such choice is
-- marked "sample wins" below.
local cjson = require "cjson"
local core = require "auditrun.core"
local errors = require "auditrun.errors"
local http = require "auditrun.http"

local M = {}

local escape = core.url_escape

-- ---- vocabularies -------------------------------------------------------------

-- A word as a friendly name: "Anyone link", "anyone-link" and "anyone_link"
-- are the same word.
local function word(s)
  return (s:lower():gsub("[%s_%-]+", "_"):gsub("^_", ""):gsub("_$", ""))
end

-- enum{ {code, word...}, ... }: codes with the words that name them (the
-- documented label among them). The first element is what is sent.
local function enum(entries)
  local e = { entries = entries, by_word = {}, by_code = {} }
  for _, entry in ipairs(entries) do
    local code = entry[1]
    e.by_code[tostring(code)] = code
    if type(code) == "string" then e.by_word[word(code)] = code end
    for i = 2, #entry do e.by_word[word(entry[i])] = code end
  end
  return e
end

local function enum_help(e)
  local out = {}
  for _, entry in ipairs(e.entries) do
    if type(entry[1]) == "number" then
      out[#out + 1] = string.format("%d (%s)", entry[1], entry[2])
    else
      out[#out + 1] = string.format("'%s'", entry[1])
    end
  end
  return table.concat(out, ", ")
end

local LINK_TYPES = enum {
  { 32, "specific", "flexible", "Specific link", "flexible link" },
  { 64, "organization", "organisation", "Organization link" },
  { 128, "anyone", "Anyone link" },
}
local GOOGLE_LINK_TYPES = enum {
  { 301, "target_audience", "Target audience link", "audience" },
  { 303, "anyone", "Anyone link" },
}
local EXPORT_OPTIONS = enum {
  { 1, "site_collections", "site_level", "summary and site collection level access report" },
  { 2, "all_objects", "objects", "summary and access report to all objects" },
  { 3, "summary", "summary_only", "summary report only" },
}
local GOOGLE_EXPORT_OPTIONS = enum {
  { 1, "drives", "drive_level", "summary and Google drive level access report" },
  { 2, "all_objects", "objects", "summary and access report to all objects" },
  { 3, "summary", "summary_only", "summary report only" },
}
-- The Graph samples send workspace names in lower case
-- (dataSources=microsoft%20teams); the legacy samples as the table spells them.
local GRAPH_SOURCES = enum {
  { "microsoft teams", "teams" },
  { "sharepoint online", "sharepoint", "spo" },
  { "onedrive", "one_drive" },
  { "microsoft 365 group", "group", "m365_group", "microsoft_365_groups" },
}
local LEGACY_SOURCES = enum {
  { "Microsoft Teams", "teams" },
  { "SharePoint Online", "sharepoint", "spo" },
  { "OneDrive", "one_drive" },
  { "Microsoft 365 Group", "group", "m365_group", "microsoft_365_groups" },
}
-- The Google tables name "User Drive" and "Shared Drive"; the samples send
-- "my drive" and "shared drive". Sample wins: "User Drive" is sent as
-- "my drive" (Google's own name for a user's drive).
local GOOGLE_SOURCES = enum {
  { "my drive", "user drive", "user_drive", "mydrive" },
  { "shared drive", "shared_drive", "shareddrive" },
}
local RISK = enum {
  { 0, "no_risk", "none", "No risk" },
  { 1, "low" }, { 2, "medium" }, { 3, "high" },
  { -2, "not_defined", "undefined", "No sensitivity definition applied", "No risk definition applied" },
}
local SENSITIVITY = enum {
  { 0, "not_sensitive", "none", "Not sensitive" },
  { 1, "low" }, { 2, "medium" }, { 3, "high" },
  { -2, "not_defined", "undefined", "No sensitivity definition applied" },
}
local EXPOSURE = enum { { 1, "low" }, { 2, "medium" }, { 3, "high" } }
local MODULES = enum {
  { 1, "teams", "Microsoft Teams" },
  { 2, "sharepoint", "SharePoint Online", "spo" },
  { 3, "onedrive", "OneDrive" },
  { 4, "group", "m365_group", "Microsoft 365 Group" },
}
local OBJECT_TYPES = enum {
  { 1, "folder" }, { 2, "file" }, { 3, "item" }, { 11, "site_collection", "Site Collection" },
  { 12, "site" }, { 13, "list" }, { 14, "library" },
}
local LANGUAGES = enum {
  { "en-US", "en", "english" }, { "ja-JP", "ja", "japanese" }, { "fr-FR", "fr", "french" },
}

-- ---- parameter constructors ---------------------------------------------------

-- A parameter: name (as its document's table spells it), at (path, query or
-- body), type (string, integer, list, time, token, filters), required, and
-- where needed: wire (the name the sample sends, when it differs), aliases,
-- enum, max (list length or integer), min, format (times), encode (path:
-- "once" or "twice"), keep (characters the sample leaves unescaped), lower.
local function param(at, name, ty, o)
  o = o or {}
  o.at, o.name, o.type = at, name, ty
  return o
end
local function seg(name, encode, o)
  o = param("path", name, "string", o)
  o.encode = encode
  if o.required == nil then o.required = true end
  return o
end
local function q(name, ty, o) return param("query", name, ty, o) end
local function b(name, ty, o) return param("body", name, ty, o) end

-- The Graph retrievals document 100 results a page as the most and the
-- default; the legacy ones say "no larger than 100".
local function page_size(at, name, required)
  return param(at, name, "integer", { required = required, min = 1, max = 100 })
end

-- ---- cross-parameter rules ----------------------------------------------------

-- Times in the same format compare as strings.
local function time_order(first, second)
  return function(v)
    local a, z = v[first], v[second]
    if type(a) == "string" and type(z) == "string" and #a == #z and a > z then
      return string.format("parameter '%s' (%s) must not be later than '%s' (%s)", first, a, second, z)
    end
  end
end

-- "if you want to export the permission report for all groups, skip this
-- parameter and ensure the exportOptionType parameter is set to 3".
local function all_groups_only_with(option_name, group_name)
  return function(v)
    if v[group_name] == nil and v[option_name] ~= 3 then
      return string.format("parameter '%s' is required unless '%s' is 3 (summary of all groups)",
        group_name, option_name)
    end
  end
end

local function all(...)
  local rules = { ... }
  return function(v)
    for _, r in ipairs(rules) do
      local msg = r(v)
      if msg then return msg end
    end
  end
end

-- ---- AvePoint Graph -----------------------------------------------------------

local G = {}
M.graph = G

local function graph_export(path, doc, params, check)
  return { method = "GET", path = path, doc = doc, params = params, job = true, family = "graph",
           kind = "submit", check = check }
end

-- Microsoft 365 user e-mails go in the path encoded twice (# -> %2523) and in
-- lower case: the samples show a guest's #EXT# as %2523ext%2523, the case
-- Insights stores login names in (users/summary loginName "...#ext#@...").
local function m365_email() return seg("email", "twice", { lower = true }) end
-- Google e-mails go in the path encoded once, '@' left as is: every Google
-- sample shows a bare '@' there (legal in a path segment, RFC 3986 pchar).
local function google_email(name, required)
  return seg(name or "email", "once", { keep = "@", required = required })
end

G.object_activities_export = graph_export("/activities/object/{path}/export", "insights/objects/objectActivities.md", {
  seg("path", "once", { aliases = { "object_url" } }),
  q("startTime", "time", { format = "iso" }),
  q("finishTime", "time", { format = "iso" }),
  q("eventTypes", "list"),
}, time_order("startTime", "finishTime"))

G.user_activities_export = graph_export("/users/{email}/activities/export", "insights/users/userActivitiesExport.md", {
  m365_email(),
  q("startTime", "time", { format = "strict" }),
  q("finishTime", "time", { format = "strict" }),
  q("eventTypes", "list"),
}, time_order("startTime", "finishTime"))

G.user_permissions_export = graph_export("/users/{email}/access/export", "insights/users/userPermissionsExport.md", {
  m365_email(),
  q("siteUrls", "list"),
  q("dataSources", "list", { required = true, enum = GRAPH_SOURCES }),
})

G.group_access_export = graph_export("/groups/{groupId}/access/export", "insights/groups/groupAccessReport.md", {
  seg("groupId", "once", { required = false, optional_note = "skipped for all groups with exportOptionType 3" }),
  q("exportOptionType", "integer", { required = true, enum = EXPORT_OPTIONS }),
  q("siteUrls", "list"),
  q("dataSources", "list", { required = true, enum = GRAPH_SOURCES }),
}, all_groups_only_with("exportOptionType", "groupId"))

G.site_permissions_export = graph_export("/sites/permission/export", "insights/sites/sitePermissionsExport.md", {
  q("siteUrls", "list", { required = true, max = 100 }),
})

-- Both sharing-link exports send their times with bare colons
-- (startTime=2023-01-01T00:00:00), unlike every other Graph sample
-- (2023-01-01T01%3A37%3A57): sample wins, per endpoint.
G.sharing_links_export = graph_export("/sharingLinks/export", "insights/sharingLinks/linkExport.md", {
  q("exportLinkType", "integer", { required = true, enum = LINK_TYPES, aliases = { "link_type" } }),
  q("startTime", "time", { required = true, format = "strict", keep = ":" }),
  q("finishTime", "time", { required = true, format = "strict", keep = ":" }),
}, time_order("startTime", "finishTime"))

G.google_object_activities_export = graph_export("/google/activities/object/{id}/export",
  "insights/objects/googleObjectActivities.md", {
    seg("id", "once", { aliases = { "object_id" } }),
    q("startTime", "time", { format = "iso" }),
    q("finishTime", "time", { format = "iso" }),
    q("eventTypes", "list"),
  }, time_order("startTime", "finishTime"))

G.google_user_activities_export = graph_export("/google/users/{email}/activities/export",
  "insights/users/googleUserActivitiesExport.md", {
    google_email(),
    q("startTime", "time", { format = "strict" }),
    q("finishTime", "time", { format = "strict" }),
    q("eventTypes", "list"),
  }, time_order("startTime", "finishTime"))

-- exportOptionType is missing from this page's table but sent by its
-- sample (exportOptionType=2, before driveIds): sample wins, optional.
G.google_user_permissions_export = graph_export("/google/users/{email}/access/export",
  "insights/users/googleUserPermissionsExport.md", {
    google_email(),
    q("exportOptionType", "integer", { enum = GOOGLE_EXPORT_OPTIONS, undocumented = true }),
    q("driveIds", "list", { keep = "@" }),
    q("dataSources", "list", { required = true, enum = GOOGLE_SOURCES }),
  })

G.google_group_access_export = graph_export("/google/groups/{groupId}/access/export",
  "insights/groups/googleGroupAccessReport.md", {
    google_email("groupId", false),
    q("exportOptionType", "integer", { required = true, enum = GOOGLE_EXPORT_OPTIONS }),
    q("driveIds", "list", { keep = "@" }),
    q("dataSources", "list", { required = true, enum = GOOGLE_SOURCES }),
  }, all(all_groups_only_with("exportOptionType", "groupId"), function(v)
    if v.exportOptionType == 1 then
      return "parameter 'exportOptionType' 1 (Google drive level access report) is documented as not supported yet"
    end
  end))

-- Drive ids may be a user's e-mail (the sample's second driveIds); its '@'
-- stays bare as in the sample.
G.google_drive_permissions_export = graph_export("/google/drives/permission/export",
  "insights/drives/drivePermissionsExport.md", {
    q("driveIds", "list", { required = true, max = 100, keep = "@" }),
  })

G.google_sharing_links_export = graph_export("/google/sharingLinks/export", "insights/sharingLinks/googleLinkExport.md", {
  q("exportLinkType", "integer", { required = true, enum = GOOGLE_LINK_TYPES, aliases = { "link_type" } }),
  q("startTime", "time", { required = true, format = "strict", keep = ":" }),
  q("finishTime", "time", { required = true, format = "strict", keep = ":" }),
}, time_order("startTime", "finishTime"))

-- Retrievals. users/access, sharingLinks/summary, sites/permission,
-- sites/overview and sites/detailRecords are POST with a JSON body (2026
-- pages); the summaries stay GET with a query.
G.user_permissions = {
  method = "POST", path = "/users/access", doc = "insights/users/userPermissions.md", kind = "read",
  paging = "nextlink", rows = "values",
  params = {
    b("siteUrls", "list"),
    b("emails", "list", { required = true }),
    page_size("body", "pageSize"),
    b("nextLink", "token"),
  },
}

G.user_summaries = {
  method = "GET", path = "/users/summary", doc = "insights/users/userSummary.md", kind = "read",
  paging = "page", rows = "results",
  params = { q("startPage", "integer", { required = true, min = 1 }), page_size("query", "pageSize", true) },
}

G.group_summaries = {
  method = "GET", path = "/groups/summary", doc = "insights/groups/groupSummary.md", kind = "read",
  paging = "page", rows = "values",
  params = { q("startPage", "integer", { required = true, min = 1 }), page_size("query", "pageSize", true) },
}

-- The index also lists /sharingLinks/{siteUrl}/summary for this page; the
-- page itself (method table and sample) puts siteUrl in the body.
G.sharing_link_summaries = {
  method = "POST", path = "/sharingLinks/summary", doc = "insights/sharingLinks/linkSummary.md", kind = "read",
  paging = "site_walk", cursor = "nextlink", per_site = "siteUrl", rows = "values",
  params = {
    b("siteUrl", "string", { required = true }),
    b("linkType", "integer", { required = true, enum = LINK_TYPES }),
    page_size("body", "pageSize"),
    b("nextLink", "token"),
  },
}

G.site_permissions = {
  method = "POST", path = "/sites/permission", doc = "insights/sites/sitePermissionsGet.md", kind = "read",
  paging = "nextlink", rows = "values",
  params = {
    b("siteUrls", "list", { required = true }),
    page_size("body", "pageSize"),
    b("nextLink", "token"),
  },
}

-- riskLevel: an integer in the table, a list ([2,3]) in the sample. Sample
-- wins: always sent as a list; one value is taken as a list of one.
G.site_overview = {
  method = "POST", path = "/sites/overview", doc = "insights/sites/siteOverview.md", kind = "read",
  paging = "nextlink", rows = "values",
  params = {
    b("riskLevel", "list", { enum = RISK }),
    page_size("body", "pageSize"),
    b("nextLink", "token"),
  },
}

-- Path casing: the table says /sites/{siteUrl}/siteId, the sample
-- .../siteid. Sample wins (the service matches paths without regard to case).
G.site_id = {
  method = "GET", path = "/sites/{siteUrl}/siteid", doc = "insights/sites/siteId.md", kind = "read",
  per_site = "siteUrl", rows = "values",
  params = { seg("siteUrl", "once") },
}

-- Path casing: table /sites/detailRecords, sample /sites/detailrecords.
-- Sample wins, as for siteid.
G.site_detail_records = {
  method = "POST", path = "/sites/detailrecords", doc = "insights/sites/siteDetailRecords.md", kind = "read",
  paging = "site_walk", cursor = "nextlink", per_site = "siteId", rows = "values",
  params = {
    b("siteId", "string", { required = true }),
    page_size("body", "pageSize"),
    b("nextLink", "token"),
  },
}

G.export_status = {
  method = "GET", path = "/job/{jobId}/exportstatus", doc = "insights/exportJobs/exportJobStatus.md",
  kind = "status", family = "graph",
  params = { seg("jobId", "once", { digits = true }) },
}

G.export_file = {
  method = "GET", path = "/job/{jobId}/exportfile", doc = "insights/exportJobs/exportJobFile.md",
  kind = "file", family = "graph",
  params = { seg("jobId", "once", { digits = true }) },
}

G.set_tag = {
  method = "PATCH", path = "/sites/{siteId}/{objectUrl}/settag", doc = "insights/objects/setTag.md", kind = "action",
  params = {
    seg("siteId", "once"),
    seg("objectUrl", "once"),
    q("tagName", "string", { required = true }),
  },
}

-- ---- legacy Web API -----------------------------------------------------------
-- Every retrieval and export is a POST with a JSON body; names keep the
-- casing of each sample (StartPage, Token, Top, SiteUrls, token, pageSize).

local L = {}
M.legacy = L

local function language(name) return b(name or "Language", "string", { enum = LANGUAGES }) end
-- The legacy samples always send the token of the first page as null.
local function token(name) return b(name, "token", { null = true }) end

local function legacy_export(path, family, params, check)
  return { method = "POST", path = path, params = params, job = true, family = family, kind = "submit",
           check = check, doc = "insights-web-api-legacy.txt" }
end
local function legacy_read(path, params, paging, extra)
  local d = { method = "POST", path = path, params = params, paging = paging, rows = "results", kind = "read",
              doc = "insights-web-api-legacy.txt" }
  for k, v in pairs(extra or {}) do d[k] = v end
  return d
end
local function legacy_status(path, family, kind)
  return { method = "GET", path = path, kind = kind, family = family, doc = "insights-web-api-legacy.txt",
           params = { q("id", "integer", { required = true, min = 0, aliases = { "job_id" } }) } }
end

L.site_permissions_export = legacy_export("/api/v1/site/permission/export", "legacy-permission", {
  b("siteUrls", "list", { required = true, max = 100 }),
  language("language"),
})

L.users = legacy_read("/api/v1/User/summary", {
  b("StartPage", "integer", { required = true, min = 1 }),
  page_size("body", "PageSize"),
  language(),
}, "page")

-- ExportOptionType: "String Array" in the table, the integer 1 in the
-- sample. Sample wins: sent as an integer.
L.user_permissions_export = legacy_export("/api/v1/user/permission/export", "legacy-permission", {
  b("emails", "list", { required = true, max = 100 }),
  b("dataSources", "list", { required = true, enum = LEGACY_SOURCES }),
  b("siteUrls", "list", { max = 100 }),
  language(),
  b("ExportOptionType", "integer", { required = true, enum = EXPORT_OPTIONS, list_of_one = true }),
})

L.groups = legacy_read("/api/v1/Group/summary", {
  b("StartPage", "integer", { required = true, min = 1 }),
  page_size("body", "PageSize"),
  language(),
}, "page")

-- SiteUrls in the table, siteUrls in the sample: sample wins on the wire.
-- Emails may be left out for all groups with ExportOptionType 3.
L.group_permissions_export = legacy_export("/api/v1/group/Permission/export", "legacy-permission", {
  b("Emails", "list", { required = false }),
  b("SiteUrls", "list", { wire = "siteUrls", max = 100 }),
  b("dataSources", "list", { required = true, enum = LEGACY_SOURCES }),
  b("ExportOptionType", "integer", { required = true, enum = EXPORT_OPTIONS }),
  language(),
}, all_groups_only_with("ExportOptionType", "Emails"))

-- LinkType: Int in the table, "32" (a string) in the sample: sample wins.
L.links = legacy_read("/api/v1/link/permission/query", {
  b("SiteUrls", "list"),
  token("Token"),
  page_size("body", "PageSize"),
  b("LinkType", "integer", { required = true, enum = LINK_TYPES, as_string = true }),
  language(),
}, "token")

-- exportLinkType: Int in the table, "32" in the sample: sample wins.
L.link_permissions_export = legacy_export("/api/v1/link/Permission/export", "legacy-permission", {
  language("language"),
  b("exportLinkType", "integer", { required = true, enum = LINK_TYPES, as_string = true,
                                   aliases = { "link_type" } }),
  b("startTime", "time", { format = "legacy" }),
  b("endTime", "time", { format = "legacy" }),
}, time_order("startTime", "endTime"))

L.permission_export_status = legacy_status("/api/v1/permission/export/status", "legacy-permission", "status")
L.permission_export_file = legacy_status("/api/v1/permission/export/get", "legacy-permission", "file")

L.site_permissions = legacy_read("/api/v1/Site/permission", {
  b("SiteUrls", "list", { required = true, max = 100 }),
  language(),
  token("Token"),
  page_size("body", "Top"),
}, "token")

L.user_permissions = legacy_read("/api/v1/User/permission", {
  b("SiteUrls", "list", { max = 100 }),
  language(),
  b("Emails", "list", { required = true, max = 100 }),
  token("Token"),
  page_size("body", "Top"),
}, "token")

-- email and path are both "Required" yet "can be left blank": one of them
-- must be set. startTime/endTime in the table, starttime/endtime in the
-- sample: sample wins on the wire.
L.activity_export = legacy_export("/api/v1/activity/export", "legacy-activity", {
  b("email", "string"),
  b("path", "string", { aliases = { "object_url" } }),
  b("startTime", "time", { wire = "starttime", format = "legacy" }),
  b("endTime", "time", { wire = "endtime", format = "legacy" }),
  b("eventTypes", "list"),
  language(),
}, all(function(v)
  if v.email == nil and v.path == nil then return "parameter 'email' or 'path' is required (one may be blank)" end
end, time_order("startTime", "endTime")))

L.activity_export_status = legacy_status("/api/v1/activity/export/status", "legacy-activity", "status")
L.activity_export_file = legacy_status("/api/v1/activity/export/file", "legacy-activity", "file")

-- Filters by endpoint, in the order the samples send them. querybysite marks
-- every filter "Required"; only the filters list itself is taken as required
-- (the same filters are optional on the other two queries).
local FILTERS = {
  module = MODULES, objectType = OBJECT_TYPES, sensitivityLevel = SENSITIVITY, exposureLevel = EXPOSURE,
  riskLevel = RISK,
}

L.detail_records_by_site = legacy_read("/api/v1/DetailRecord/querybysite", {
  b("filters", "filters", { required = true, ids = { "objectType", "sensitivityLevel", "exposureLevel", "riskLevel",
                                                       "tagName", "createdBy", "modifiedTime" } }),
  token("token"),
  language("language"),
  page_size("body", "pageSize", true),
  b("siteId", "string", { required = true }),
}, "site_walk", { cursor = "token", per_site = "siteId" })

L.site_ids = legacy_read("/api/v1/DetailRecord/getSiteIds", {
  b("siteUrls", "list", { required = true, max = 100 }),
})

L.site_overview = legacy_read("/api/v1/DetailRecord/querysiteoverview", {
  b("filters", "filters", { ids = { "module", "sensitivityLevel", "exposureLevel", "riskLevel", "createdBy",
                                    "location" } }),
  token("token"),
  page_size("body", "pageSize", true),
}, "token")

L.detail_records = legacy_read("/api/v1/DetailRecord/query", {
  b("filters", "filters", { ids = { "module", "objectType", "sensitivityLevel", "exposureLevel", "riskLevel",
                                    "location", "siteName", "tagName", "username" } }),
  token("token"),
  language("language"),
  page_size("body", "pageSize", true),
}, "token")

-- How each API reports on its export jobs.
-- Status codes: 1 running, 2 done, 3 failed, on both APIs; files are zips.
local GRAPH_STATE = { field = "jobStatus", running = { 1 }, done = { 2 }, failed = { 3 } }
local LEGACY_STATE = { field = "status", running = { 1 }, done = { 2 }, failed = { 3 } }
M.families = {
  graph = { api = "graph", status = "export_status", file = "export_file", state = GRAPH_STATE, id = "jobId",
            zip = true, extension = "zip" },
  ["legacy-permission"] = { api = "legacy", status = "permission_export_status", file = "permission_export_file",
                            state = LEGACY_STATE, id = "id", zip = true, extension = "zip" },
  ["legacy-activity"] = { api = "legacy", status = "activity_export_status", file = "activity_export_file",
                          state = LEGACY_STATE, id = "id", zip = true, extension = "zip" },
}

-- ---- names ----------------------------------------------------------------------

local function snake(name)
  return (name:gsub("(%l)(%u)", "%1_%2"):gsub("(%u)(%u%l)", "%1_%2"):lower())
end
M.snake = snake

-- Every spelling a parameter answers to, without regard to case: its
-- documented name, the name the sample sends, its aliases and its
-- snake_case name. Checked at load time so that no two parameters of an
-- endpoint share a spelling.
local LOOKUP = {}
for _, api in ipairs { "graph", "legacy" } do
  for name, def in pairs(M[api]) do
    def.name, def.api = name, api
    local lookup = {}
    for _, p in ipairs(def.params) do
      p.friendly = snake(p.name)
      p.wire = p.wire or p.name
      local spellings = { p.name, p.wire, p.friendly }
      for _, a in ipairs(p.aliases or {}) do spellings[#spellings + 1] = a end
      for _, s in ipairs(spellings) do
        s = s:lower()
        assert(lookup[s] == nil or lookup[s] == p, "two parameters spelled " .. s .. " in " .. name)
        lookup[s] = p
      end
    end
    LOOKUP[def] = lookup
  end
end

--- list(api) -> the endpoint names of one API, sorted.
function M.list(api)
  assert(api == "graph" or api == "legacy", "unknown Insights API " .. tostring(api))
  local cat = M[api]
  local names = {}
  for name in pairs(cat) do names[#names + 1] = name end
  table.sort(names)
  return names
end

-- ---- values ---------------------------------------------------------------------

local NULL = cjson.null

local function absent(v) return v == nil or v == NULL end

local function show(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if type(v) == "table" then return "a table" end
  return tostring(v)
end

local function integer(v)
  if math.type(v) == "integer" then return v end
  if math.type(v) == "float" and v == math.floor(v) and v >= math.mininteger and v <= math.maxinteger then
    return math.tointeger(v)
  end
  if type(v) == "string" and v:match("^%-?%d+$") then return math.tointeger(tonumber(v)) end
  return nil
end

local function enum_value(e, v)
  if type(v) == "number" or (type(v) == "string" and v:match("^%-?%d+$")) then
    local code = e.by_code[tostring(integer(v) or v)]
    if code ~= nil then return code end
  end
  if type(v) == "string" then return e.by_word[word(v)] end
  return nil
end

local DAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
local FORMATS = {
  strict = "yyyy-MM-ddTHH:mm:ss",
  iso = "ISO 8601 (yyyy-MM-ddTHH:mm:ss, optionally with fractions and Z or an offset)",
  legacy = "yyyy-MM-ddTHH:mm:ss (optionally with fractions and Z)",
}

local function time_ok(s, format)
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return false end
  mo, d, h, mi, sec = tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > DAYS[mo] or h > 23 or mi > 59 or sec > 59 then return false end
  if mo == 2 and d == 29 and not (tonumber(y) % 4 == 0 and (tonumber(y) % 100 ~= 0 or tonumber(y) % 400 == 0)) then
    return false
  end
  if format == "strict" then return rest == "" end
  rest = rest:gsub("^%.%d%d?%d?%d?%d?%d?%d?", "", 1)
  if rest == "" or rest == "Z" then return true end
  return format == "iso" and rest:match("^[+-]%d%d:%d%d$") ~= nil
end

-- Normalizes one value of parameter p: a string, integer, list, or nil and
-- the rule it broke (the caller names the parameter).
local normalize = {}

function normalize.string(p, v)
  if type(v) == "number" and integer(v) then v = string.format("%d", integer(v)) end
  if type(v) ~= "string" then return nil, "must be a string, not " .. type(v) end
  if p.enum then
    local code = enum_value(p.enum, v)
    if code == nil then return nil, "must be one of " .. enum_help(p.enum) .. ", not " .. show(v) end
    return code
  end
  if v == "" and (p.required or p.at == "path") then return nil, "must not be empty" end
  if p.digits and not v:match("^%d+$") then return nil, "must be a number, not " .. show(v) end
  return v
end

function normalize.integer(p, v)
  local n
  if p.list_of_one and type(v) == "table" and #v == 1 then v = v[1] end
  if p.enum then
    n = enum_value(p.enum, v)
    if n == nil then return nil, "must be one of " .. enum_help(p.enum) .. ", not " .. show(v) end
  else
    n = integer(v)
    if n == nil then return nil, "must be an integer, not " .. show(v) end
  end
  if p.min and n < p.min then return nil, string.format("must be at least %d (got %d)", p.min, n) end
  if p.max and n > p.max then return nil, string.format("must be at most %d (got %d)", p.max, n) end
  if p.as_string then return string.format("%d", n) end
  return n
end

function normalize.time(p, v)
  -- Seconds since the epoch are written out in UTC.
  if math.type(v) == "integer" then
    v = os.date("!%Y-%m-%dT%H:%M:%S", v)
  elseif type(v) ~= "string" then
    return nil, "must be a time string or seconds since the epoch, not " .. type(v)
  end
  if not time_ok(v, p.format) then
    return nil, string.format("must be a time in the format %s, not %s", FORMATS[p.format], show(v))
  end
  return v
end

function normalize.token(_, v)
  if type(v) ~= "string" then return nil, "must be the token string from the previous page, not " .. type(v) end
  return v
end

local function as_list(v)
  if type(v) ~= "table" then return { v } end
  local n = 0
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 then return nil end
    n = math.max(n, k)
  end
  if n ~= #v then return nil end
  return v
end

function normalize.list(p, v)
  local list = as_list(v)
  if not list then return nil, "must be a list (a Lua sequence)" end
  if p.max and #list > p.max then
    return nil, string.format("takes at most %d values (got %d)", p.max, #list)
  end
  local out = {}
  for i, item in ipairs(list) do
    local x, why
    if p.enum then
      x = enum_value(p.enum, item)
      if x == nil then return nil, string.format("value %d must be one of %s, not %s", i, enum_help(p.enum), show(item)) end
    else
      x, why = normalize.string({}, item)
      if x == nil then return nil, string.format("value %d %s", i, why) end
    end
    out[i] = x
  end
  -- An empty list would go out as {} (lua-cjson cannot tell): leave it out.
  if #out == 0 then return nil end
  return out
end

-- filters: the documented list of {id=, values=} or a map id -> values (ids
-- documented or snake_case); enum values by code or word; values go out as
-- strings, as in the samples.
function normalize.filters(p, v)
  if type(v) ~= "table" then return nil, "must be a table of filters" end
  local allowed = {}
  for i, id in ipairs(p.ids) do
    allowed[id], allowed[snake(id)] = id, id
    allowed[i] = id
  end
  local given = {}
  if v[1] ~= nil then
    if not as_list(v) then return nil, "must be a list of {id=, values=} or a map from filter id to values" end
    for i, f in ipairs(v) do
      if type(f) ~= "table" or type(f.id) ~= "string" then
        return nil, string.format("entry %d must be a table with id and values", i)
      end
      given[#given + 1] = { f.id, f.values }
    end
  else
    local keyed = {}
    for id, values in pairs(v) do
      if type(id) ~= "string" then return nil, "must be a list of {id=, values=} or a map from filter id to values" end
      local doc = allowed[id]
      if not doc then
        return nil, string.format("has no filter %s (valid: %s)", show(id), table.concat(p.ids, ", "))
      end
      if keyed[doc] then return nil, string.format("names filter '%s' twice", doc) end
      keyed[doc] = values
    end
    for _, id in ipairs(p.ids) do
      if keyed[id] ~= nil then given[#given + 1] = { id, keyed[id] } end
    end
  end
  local out = {}
  for _, f in ipairs(given) do
    local id = allowed[f[1]]
    if not id then
      return nil, string.format("has no filter %s (valid: %s)", show(f[1]), table.concat(p.ids, ", "))
    end
    local values = absent(f[2]) and {} or as_list(f[2])
    if not values then return nil, string.format("filter '%s' needs a list of values", id) end
    if id == "modifiedTime" and #values > 2 then
      return nil, string.format("filter 'modifiedTime' takes at most two values (got %d)", #values)
    end
    local strs = {}
    for i, item in ipairs(values) do
      local x
      if FILTERS[id] then
        x = enum_value(FILTERS[id], item)
        if x == nil then
          return nil, string.format("filter '%s' value %s must be one of %s", id, show(item), enum_help(FILTERS[id]))
        end
        x = string.format("%d", x)
      elseif id == "modifiedTime" then
        -- The sample's times end in Z; epoch seconds are written that way.
        if math.type(item) == "integer" then item = os.date("!%Y-%m-%dT%H:%M:%SZ", item) end
        if type(item) ~= "string" or not time_ok(item, "legacy") then
          return nil, string.format("filter 'modifiedTime' value %s must be a time in the format %s", show(item),
            FORMATS.legacy)
        end
        x = item
      else
        if type(item) ~= "string" then
          return nil, string.format("filter '%s' value %d must be a string, not %s", id, i, type(item))
        end
        x = item
      end
      strs[i] = x
    end
    if #strs > 0 then out[#out + 1] = { id = id, values = strs } end
  end
  if #out == 0 then return nil end
  return out
end

-- ---- building -------------------------------------------------------------------

local function invalid(def, fmt, ...)
  return nil, errors.new("invalid", string.format("%s %s: " .. fmt, def.api, def.name, ...),
    { endpoint = def.name, api = def.api })
end

-- Programmer mistakes raise, at the caller of build or canonical.
local function definition(api, name, params)
  if api ~= "graph" and api ~= "legacy" then
    error("unknown Insights API " .. tostring(api) .. " (graph or legacy)", 3)
  end
  local def = M[api][name]
  if not def then error("unknown " .. api .. " Insights endpoint " .. tostring(name), 3) end
  if params ~= nil and type(params) ~= "table" then
    error("parameters of " .. name .. " must be a table, not " .. type(params), 3)
  end
  return def
end

-- The given parameters keyed by their definitions: every spelling is
-- taken, an unknown name or a parameter given twice is refused.
local function by_param(def, params)
  local lookup = LOOKUP[def]
  local raw, seen = {}, {}
  for k, v in pairs(params or {}) do
    local p = type(k) == "string" and lookup[k:lower()]
    if not p then
      local known = {}
      for _, x in ipairs(def.params) do known[#known + 1] = x.name end
      return invalid(def, "unknown parameter %s (parameters: %s)", show(k), table.concat(known, ", "))
    end
    if seen[p] then
      return invalid(def, "parameter '%s' is given twice (as '%s' and '%s')", p.name, seen[p], k)
    end
    seen[p] = k
    if not absent(v) then raw[p] = v end
  end
  return raw
end

--- named(api, name, params) -> the parameters as given, keyed by their
--- documented names, values unchecked | nil, err. Callers that add
--- parameters of their own (the pager) start from this.
function M.named(api, name, params)
  local def = definition(api, name, params)
  local raw, err = by_param(def, params)
  if not raw then return nil, err end
  local out = {}
  for p, v in pairs(raw) do out[p.name] = v end
  return out
end

--- canonical(api, name, params) -> the parameters keyed by their documented
--- names, values checked and in the form they are sent | nil, err
function M.canonical(api, name, params)
  local def = definition(api, name, params)
  local raw, err = by_param(def, params)
  if not raw then return nil, err end
  local values = {}
  for _, p in ipairs(def.params) do
    local v = raw[p]
    if v ~= nil then
      local x, why = normalize[p.type](p, v)
      if why then return invalid(def, "parameter '%s' %s", p.name, why) end
      if x == nil and p.required then return invalid(def, "parameter '%s' needs at least one value", p.name) end
      values[p.name] = x
    elseif p.required then
      return invalid(def, "parameter '%s' is required", p.name)
    end
  end
  if def.check then
    local why = def.check(values)
    if why then return invalid(def, "%s", why) end
  end
  return values
end

-- Undoes the escaping of the characters a sample leaves bare.
local function keep(s, chars)
  if not chars then return s end
  return (s:gsub("%%(%x%x)", function(hex)
    local c = string.char(tonumber(hex, 16))
    if chars:find(c, 1, true) then return c end
  end))
end

local function path_segment(p, v)
  if p.lower then v = v:lower() end
  local s = escape(v)
  if p.encode == "twice" then s = escape(s) end
  return keep(s, p.keep)
end

local function query_part(p, v)
  return keep(http.encode_query { { p.wire, v } }, p.keep)
end

--- build(api, name, params) -> request | nil, err. request = {method=,
--- path= (encoded, relative to the /insights base), query= (encoded, no
--- '?', "" when none), body= (a table for lua-cjson, or nil), paging=,
--- cursor=, rows={...}, job=, family=, api=, name=}.
function M.build(api, name, params)
  local def = definition(api, name, params)
  local values, err = M.canonical(api, name, params)
  if not values then return nil, err end
  local path = def.path
  local query, body = {}, nil
  for _, p in ipairs(def.params) do
    local v = values[p.name]
    if p.at == "path" then
      if v == nil then
        path = path:gsub("/{" .. p.name .. "}", "", 1)
      else
        local s = path_segment(p, v)
        path = path:gsub("{" .. p.name .. "}", function() return s end, 1)
      end
    elseif p.at == "query" then
      if v ~= nil then query[#query + 1] = query_part(p, v) end
    else
      body = body or {}
      if v ~= nil then
        body[p.wire] = v
      elseif p.null then
        body[p.wire] = NULL
      end
    end
  end
  if def.method ~= "GET" and def.method ~= "PATCH" then body = body or {} end
  local rows = nil
  if def.rows then rows = def.rows == "results" and { "results", "values" } or { "values", "results" } end
  return {
    api = api, name = name, method = def.method, path = path, query = table.concat(query, "&"), body = body,
    paging = def.paging, cursor = def.cursor, rows = rows, job = def.job == true, family = def.family,
  }
end

return M
