-- auditrun.insights.endpoints: every request of AvePoint Insights, as data.
--
-- Two catalogues: graph (the AvePoint Graph API, /insights/...) and
-- legacy (the legacy Web API, /insights/api/v1/...). Paths are relative
-- to the Insights base URL, which ends in /insights. This file is data:
-- auditrun.catalog compiles it and turns a name and a table of parameters
-- into the exact request the documents show, checking every parameter
-- first.
--
-- Sources (the shared api-docs folder): avepoint-graph/insights/*.md
-- (AvePoint/cloud-api, July 2026), insights-web-api-legacy.txt, and the
-- Graph user-activities page as users first sent it. Where a page
-- contradicts itself, the request *sample* wins over the parameter table:
-- the sample is what the service was seen to accept. Each such choice is
-- marked "sample wins" below.
-- ---- vocabularies -------------------------------------------------------------
-- {code, word...}: the first element is sent; any word names it (the
-- documented label among them), compared without case, spaces, '-' or '_'.
local catalog = require("auditrun.catalog")

local LINK_TYPES = {
  { 32, "specific", "flexible", "Specific link", "flexible link" },
  { 64, "organization", "organisation", "Organization link" },
  { 128, "anyone", "Anyone link" },
}
local GOOGLE_LINK_TYPES = {
  { 301, "target_audience", "Target audience link", "audience" },
  { 303, "anyone", "Anyone link" },
}
local EXPORT_OPTIONS = {
  { 1, "site_collections", "site_level", "summary and site collection level access report" },
  { 2, "all_objects", "objects", "summary and access report to all objects" },
  { 3, "summary", "summary_only", "summary report only" },
}
local GOOGLE_EXPORT_OPTIONS = {
  { 1, "drives", "drive_level", "summary and Google drive level access report" },
  { 2, "all_objects", "objects", "summary and access report to all objects" },
  { 3, "summary", "summary_only", "summary report only" },
}
-- The Graph samples send workspace names in lower case
-- (dataSources=microsoft%20teams); the legacy samples as the table spells them.
local GRAPH_SOURCES = {
  { "microsoft teams", "teams" },
  { "sharepoint online", "sharepoint", "spo" },
  { "onedrive", "one_drive" },
  { "microsoft 365 group", "group", "m365_group", "microsoft_365_groups" },
}
local LEGACY_SOURCES = {
  { "Microsoft Teams", "teams" },
  { "SharePoint Online", "sharepoint", "spo" },
  { "OneDrive", "one_drive" },
  { "Microsoft 365 Group", "group", "m365_group", "microsoft_365_groups" },
}
-- The Google tables name "User Drive" and "Shared Drive"; the samples send
-- "my drive" and "shared drive". Sample wins: "User Drive" is sent as
-- "my drive" (Google's own name for a user's drive).
local GOOGLE_SOURCES = {
  { "my drive", "user drive", "user_drive", "mydrive" },
  { "shared drive", "shared_drive", "shareddrive" },
}
local RISK = {
  { 0, "no_risk", "none", "No risk" },
  { 1, "low" }, { 2, "medium" }, { 3, "high" },
  { -2, "not_defined", "undefined", "No sensitivity definition applied", "No risk definition applied" },
}
local SENSITIVITY = {
  { 0, "not_sensitive", "none", "Not sensitive" },
  { 1, "low" }, { 2, "medium" }, { 3, "high" },
  { -2, "not_defined", "undefined", "No sensitivity definition applied" },
}
local EXPOSURE = { { 1, "low" }, { 2, "medium" }, { 3, "high" } }
local MODULES = {
  { 1, "teams", "Microsoft Teams" },
  { 2, "sharepoint", "SharePoint Online", "spo" },
  { 3, "onedrive", "OneDrive" },
  { 4, "group", "m365_group", "Microsoft 365 Group" },
}
local OBJECT_TYPES = {
  { 1, "folder" }, { 2, "file" }, { 3, "item" }, { 11, "site_collection", "Site Collection" },
  { 12, "site" }, { 13, "list" }, { 14, "library" },
}
local LANGUAGES = {
  { "en-US", "en", "english" }, { "ja-JP", "ja", "japanese" }, { "fr-FR", "fr", "french" },
}

-- ---- parameters and rules ----------------------------------------------------
-- The fields of parameters, rules and paging are those of auditrun.catalog.

local param = catalog.param
local function seg(name, encode, o)
  o = param("path", name, "string", o)
  o.encode = encode
  if o.required == nil then o.required = true end
  return o
end
local function q(name, ty, o) return param("query", name, ty, o) end
local function b(name, ty, o) return param("body", name, ty, o) end

-- The Graph retrievals document 100 results a page as the most and the
-- default; the legacy ones say "no larger than 100". Pagers ask for the
-- most.
local PAGE_SIZE = 100
local function page_size(at, name, required)
  return param(at, name, "integer", { required = required, min = 1, max = PAGE_SIZE })
end

-- Times in the same format compare as strings.
local function time_order(first, second) return { "not_after", first, second } end

-- "if you want to export the permission report for all groups, skip this
-- parameter and ensure the exportOptionType parameter is set to 3".
local function all_groups_only_with(option_name, group_name)
  return { "required_unless", group_name, option_name, 3, "summary of all groups" }
end

-- Where rows are, and how pages follow each other.
local function by_page(rows, page, size)
  return { style = "page", rows = rows, page = page, size = size, default_size = PAGE_SIZE }
end
local function by_cursor(rows, cursor, next, size, each)
  return { style = "cursor", rows = rows, cursor = cursor, next = next, size = size, default_size = PAGE_SIZE,
           each = each }
end
local VALUES, RESULTS = { "values", "results" }, { "results", "values" }
local NEXT_LINK, NEXT_TOKEN = { "nextLink" }, { "nextToken", "NextToken" }

-- ---- AvePoint Graph -----------------------------------------------------------

local G = {}

local function graph_export(path, doc, params, ...)
  return { method = "GET", path = path, doc = doc, params = params, kind = "submit", job = "graph",
           rules = { ... } }
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
  seg("groupId", "once", { required = false }),   -- skipped for all groups with exportOptionType 3
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
    q("exportOptionType", "integer", { enum = GOOGLE_EXPORT_OPTIONS }),
    q("driveIds", "list", { keep = "@" }),
    q("dataSources", "list", { required = true, enum = GOOGLE_SOURCES }),
  })

G.google_group_access_export = graph_export("/google/groups/{groupId}/access/export",
  "insights/groups/googleGroupAccessReport.md", {
    google_email("groupId", false),
    q("exportOptionType", "integer", { required = true, enum = GOOGLE_EXPORT_OPTIONS }),
    q("driveIds", "list", { keep = "@" }),
    q("dataSources", "list", { required = true, enum = GOOGLE_SOURCES }),
  }, all_groups_only_with("exportOptionType", "groupId"),
  { "not_value", "exportOptionType", 1, "(Google drive level access report) is documented as not supported yet" })

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
  paging = by_cursor(VALUES, "nextLink", NEXT_LINK, "pageSize"),
  params = {
    b("siteUrls", "list"),
    b("emails", "list", { required = true }),
    page_size("body", "pageSize"),
    b("nextLink", "token"),
  },
}

G.user_summaries = {
  method = "GET", path = "/users/summary", doc = "insights/users/userSummary.md", kind = "read",
  paging = by_page(RESULTS, "startPage", "pageSize"),
  params = { q("startPage", "integer", { required = true, min = 1 }), page_size("query", "pageSize", true) },
}

G.group_summaries = {
  method = "GET", path = "/groups/summary", doc = "insights/groups/groupSummary.md", kind = "read",
  paging = by_page(VALUES, "startPage", "pageSize"),
  params = { q("startPage", "integer", { required = true, min = 1 }), page_size("query", "pageSize", true) },
}

-- The index also lists /sharingLinks/{siteUrl}/summary for this page; the
-- page itself (method table and sample) puts siteUrl in the body.
G.sharing_link_summaries = {
  method = "POST", path = "/sharingLinks/summary", doc = "insights/sharingLinks/linkSummary.md", kind = "read",
  paging = by_cursor(VALUES, "nextLink", NEXT_LINK, "pageSize", "siteUrl"),
  params = {
    b("siteUrl", "string", { required = true }),
    b("linkType", "integer", { required = true, enum = LINK_TYPES }),
    page_size("body", "pageSize"),
    b("nextLink", "token"),
  },
}

G.site_permissions = {
  method = "POST", path = "/sites/permission", doc = "insights/sites/sitePermissionsGet.md", kind = "read",
  paging = by_cursor(VALUES, "nextLink", NEXT_LINK, "pageSize"),
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
  paging = by_cursor(VALUES, "nextLink", NEXT_LINK, "pageSize"),
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
  params = { seg("siteUrl", "once") },
}

-- Path casing: table /sites/detailRecords, sample /sites/detailrecords.
-- Sample wins, as for siteid.
G.site_detail_records = {
  method = "POST", path = "/sites/detailrecords", doc = "insights/sites/siteDetailRecords.md", kind = "read",
  paging = by_cursor(VALUES, "nextLink", NEXT_LINK, "pageSize", "siteId"),
  params = {
    b("siteId", "string", { required = true }),
    page_size("body", "pageSize"),
    b("nextLink", "token"),
  },
}

G.export_status = {
  method = "GET", path = "/job/{jobId}/exportstatus", doc = "insights/exportJobs/exportJobStatus.md",
  kind = "status", job = "graph",
  params = { seg("jobId", "once", { digits = true }) },
}

G.export_file = {
  method = "GET", path = "/job/{jobId}/exportfile", doc = "insights/exportJobs/exportJobFile.md",
  kind = "file", job = "graph",
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

local function language(name) return b(name or "Language", "string", { enum = LANGUAGES }) end
-- The legacy samples always send the token of the first page as null.
local function token(name) return b(name, "token", { null = true }) end

local function legacy_export(path, family, params, ...)
  return { method = "POST", path = path, params = params, kind = "submit", job = family, rules = { ... },
           doc = "insights-web-api-legacy.txt" }
end
local function legacy_read(path, params, paging)
  return { method = "POST", path = path, params = params, paging = paging, kind = "read",
           doc = "insights-web-api-legacy.txt" }
end
local function legacy_status(path, family, kind)
  return { method = "GET", path = path, kind = kind, job = family, doc = "insights-web-api-legacy.txt",
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
}, by_page(RESULTS, "StartPage", "PageSize"))

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
}, by_page(RESULTS, "StartPage", "PageSize"))

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
}, by_cursor(RESULTS, "Token", NEXT_TOKEN, "PageSize"))

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
}, by_cursor(RESULTS, "Token", NEXT_TOKEN, "Top"))

L.user_permissions = legacy_read("/api/v1/User/permission", {
  b("SiteUrls", "list", { max = 100 }),
  language(),
  b("Emails", "list", { required = true, max = 100 }),
  token("Token"),
  page_size("body", "Top"),
}, by_cursor(RESULTS, "Token", NEXT_TOKEN, "Top"))

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
}, { "one_of", "email", "path", "one may be blank" }, time_order("startTime", "endTime"))

L.activity_export_status = legacy_status("/api/v1/activity/export/status", "legacy-activity", "status")
L.activity_export_file = legacy_status("/api/v1/activity/export/file", "legacy-activity", "file")

-- Filters by endpoint, in the order the samples send them. querybysite marks
-- every filter "Required"; only the filters list itself is taken as required
-- (the same filters are optional on the other two queries). Enum filters
-- send their codes as strings; modifiedTime takes at most two times.
local FILTERS = {
  module = { enum = MODULES }, objectType = { enum = OBJECT_TYPES }, sensitivityLevel = { enum = SENSITIVITY },
  exposureLevel = { enum = EXPOSURE }, riskLevel = { enum = RISK }, modifiedTime = { time = "legacy", max = 2 },
}

L.detail_records_by_site = legacy_read("/api/v1/DetailRecord/querybysite", {
  b("filters", "filters", { required = true, ids = { "objectType", "sensitivityLevel", "exposureLevel", "riskLevel",
                                                       "tagName", "createdBy", "modifiedTime" },
                            values = FILTERS }),
  token("token"),
  language("language"),
  page_size("body", "pageSize", true),
  b("siteId", "string", { required = true }),
}, by_cursor(RESULTS, "token", NEXT_TOKEN, "pageSize", "siteId"))

L.site_ids = legacy_read("/api/v1/DetailRecord/getSiteIds", {
  b("siteUrls", "list", { required = true, max = 100 }),
})

L.site_overview = legacy_read("/api/v1/DetailRecord/querysiteoverview", {
  b("filters", "filters", { ids = { "module", "sensitivityLevel", "exposureLevel", "riskLevel", "createdBy",
                                    "location" }, values = FILTERS }),
  token("token"),
  page_size("body", "pageSize", true),
}, by_cursor(RESULTS, "token", NEXT_TOKEN, "pageSize"))

L.detail_records = legacy_read("/api/v1/DetailRecord/query", {
  b("filters", "filters", { ids = { "module", "objectType", "sensitivityLevel", "exposureLevel", "riskLevel",
                                    "location", "siteName", "tagName", "username" }, values = FILTERS }),
  token("token"),
  language("language"),
  page_size("body", "pageSize", true),
}, by_cursor(RESULTS, "token", NEXT_TOKEN, "pageSize"))

-- ---- job families ---------------------------------------------------------------
-- Status codes: 1 running, 2 done, 3 failed, on both APIs; files are zips.

local function family(status, file, field, id)
  return { status = status, file = file, id = id, zip = true, extension = "zip",
           state = { field = field, running = { 1 }, done = { 2 }, failed = { 3 } } }
end

return {
  graph = { title = "Insights (Graph API)", endpoints = G,
            jobs = { graph = family("export_status", "export_file", "jobStatus", "jobId") } },
  legacy = { title = "Insights (legacy Web API)", endpoints = L, jobs = {
    ["legacy-permission"] = family("permission_export_status", "permission_export_file", "status", "id"),
    ["legacy-activity"] = family("activity_export_status", "activity_export_file", "status", "id"),
  } },
}
