-- variants: plain
-- The Insights request catalogue against its documents: every endpoint of
-- the AvePoint Graph API and of the legacy Web API is built from the
-- parameters its request sample shows, and must give the sample's method,
-- URL (byte for byte; runs of '*' are the documents' masking) and JSON body.
-- Then the checks made before anything is sent, and the friendly spellings.
--
-- The samples are copied here verbatim; when the documents are at hand (the
-- shared api-docs folder beside the checkout, or AUDITRUN_API_DOCS) each
-- copy is also checked against its source.
local cjson = require("cjson")
local CAT = require("auditrun.insights").catalogues
local errors = require("auditrun.errors")
local util = require("tests.helper.util")

local GRAPH_BASE = "https://graph-us.avepointonlineservices.com/insights"
local LEGACY_BASE = "http://hostname:port"
-- The documents live in the shared folder beside the checkout.
local DOCS = os.getenv("AUDITRUN_API_DOCS")
  or (util.read("../shared/api-docs/avepoint-graph/README.md") and "../shared/api-docs/")
  or "../../shared/api-docs/"
local LEGACY_DOC = "insights-web-api-legacy.txt"

-- ---- helpers ------------------------------------------------------------------

-- A sample as a Lua pattern: '*' runs match any run of characters (the
-- documents mask tenant names that way), everything else itself.
local function wildcard(sample)
  local parts = {}
  for lit, stars in sample:gmatch("([^*]*)(%**)") do
    parts[#parts + 1] = lit:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0")
    if stars ~= "" then parts[#parts + 1] = ".-" end
  end
  return "^" .. table.concat(parts) .. "$"
end

local function matches(sample, s)
  return s:match(wildcard(sample)) ~= nil
end

-- Deep comparison of decoded JSON, masked strings in the sample matching
-- as wildcards. Returns nil or where they differ.
local function differ(expected, actual, where)
  where = where or "body"
  if type(expected) == "string" and type(actual) == "string" then
    if expected:find("*", 1, true) and matches(expected, actual) or expected == actual then return nil end
    return string.format("%s: expected %q, got %q", where, expected, actual)
  end
  if type(expected) ~= "table" or type(actual) ~= "table" then
    if expected == actual then return nil end
    return string.format("%s: expected %s, got %s", where, tostring(expected), tostring(actual))
  end
  for k, v in pairs(expected) do
    local d = differ(v, actual[k], where .. "." .. tostring(k))
    if d then return d end
  end
  for k in pairs(actual) do
    if expected[k] == nil then return string.format("%s: unexpected field %s", where, tostring(k)) end
  end
  return nil
end

local read = util.read

local function squeeze(s)
  return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

local function url_of(base, req)
  return base .. req.path .. (req.query ~= "" and "?" .. req.query or "")
end

local function build(api, name, params)
  local req, err = CAT[api]:build(name, params)
  assert(req, err and tostring(err))
  return req
end

local function refused(api, name, params, ...)
  local req, err = CAT[api]:build(name, params)
  assert.is_nil(req)
  assert.is_true(errors.is(err, "invalid"), "expected an error of kind invalid, got " .. tostring(err))
  for _, needle in ipairs { ... } do
    assert.is_truthy(err.message:find(needle, 1, true),
      string.format("message %q does not mention %q", err.message, needle))
  end
  return err
end

-- ---- the samples ----------------------------------------------------------------
-- sample: the request sample as the document prints it (URL, then the body
-- for POST); quote: the text to find in the document when it is not the
-- sample itself; fix: repairs a sample body needs to be JSON at all (the
-- document's mistake, named in a comment); id: stands for {id}.

-- luacheck: push no max line length
local GUEST = "insightstester001_jasoninsightstest.onmicrosoft.com#EXT#@m365x636363.onmicrosoft.com"

local GRAPH = {
  {
    name = "object_activities_export", doc = "avepoint-graph/insights/objects/objectActivities.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/activities/object/https******markettest.sharepoint.com%2Fsites%2F******teams001/export?startTime=2024-12-03T00%3A00%3A00&finishTime=2025-01-09T00%3A00%3A00&eventTypes=ListViewed&eventTypes=ListItemViewed",
    params = { path = "https://contosomarkettest.sharepoint.com/sites/contosoteams001",
               startTime = "2024-12-03T00:00:00", finishTime = "2025-01-09T00:00:00",
               eventTypes = { "ListViewed", "ListItemViewed" } },
  },
  {
    name = "user_activities_export", doc = "avepoint-graph/insights/users/userActivitiesExport.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/users/insights****001_j***insightstest.onmicrosoft.com%2523ext%2523%2540m*****.onmicrosoft.com/activities/export?startTime=2023-01-01T01%3A37%3A57&finishTime=2023-04-01T01%3A37%3A57&eventTypes=ListViewed&eventTypes=ListItemViewed",
    params = { email = GUEST, startTime = "2023-01-01T01:37:57", finishTime = "2023-04-01T01:37:57",
               eventTypes = { "ListViewed", "ListItemViewed" } },
  },
  {
    -- The page as users first sent it: the same request, unmasked.
    name = "user_activities_export", doc = "insights-modern-user-activities-export.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/users/insightstester001_jasoninsightstest.onmicrosoft.com%2523ext%2523%2540m365x636363.onmicrosoft.com/activities/export?startTime=2023-01-01T01%3A37%3A57&finishTime=2023-04-01T01%3A37%3A57&eventTypes=ListViewed&eventTypes=ListItemViewed",
    params = { email = GUEST, startTime = "2023-01-01T01:37:57", finishTime = "2023-04-01T01:37:57",
               eventTypes = { "ListViewed", "ListItemViewed" } },
  },
  {
    name = "user_activities_export", doc = "insights-modern-user-activities-export-web.txt", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/users/insights****001_j***insightstest.onmicrosoft.com%2523ext%2523%2540m*****.onmicrosoft.com/activities/export?startTime=2023-01-01T01%3A37%3A57&finishTime=2023-04-01T01%3A37%3A57&eventTypes=ListViewed&eventTypes=ListItemViewed",
    params = { email = GUEST, start_time = "2023-01-01T01:37:57", finish_time = "2023-04-01T01:37:57",
               event_types = { "ListViewed", "ListItemViewed" } },
  },
  {
    name = "user_permissions_export", doc = "avepoint-graph/insights/users/userPermissionsExport.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/users/insights******001_j*****insightstest.onmicrosoft.com%2523ext%2523%2540m3********.onmicrosoft.com/access/export?siteUrls=https%3A%2F%2Fm******.sharepoint.com%2Fsites%2Fjuly2022public****01&dataSources=microsoft%20teams&dataSources=sharepoint%20online",
    params = { email = GUEST, siteUrls = { "https://m365x636363.sharepoint.com/sites/july2022publicteam01" },
               dataSources = { "Microsoft Teams", "SharePoint Online" } },
  },
  {
    name = "group_access_export", doc = "avepoint-graph/insights/groups/groupAccessReport.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/groups/ec34726b-f692-424f-aaf0-f6a478a1b9fc7/access/export?exportOptionType=2&siteUrls=https%3A%2F***%2Fm3***x636363.sharepoint.com%2Fsites%2F*****2022publicteam01&dataSources=microsoft%20teams&dataSources=sharepoint%20online",
    params = { groupId = "ec34726b-f692-424f-aaf0-f6a478a1b9fc7", exportOptionType = 2,
               siteUrls = { "https://m365x636363.sharepoint.com/sites/july2022publicteam01" },
               dataSources = { "microsoft teams", "sharepoint online" } },
  },
  {
    -- The sample starts with a space inside its code block.
    name = "site_permissions_export", doc = "avepoint-graph/insights/sites/sitePermissionsExport.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/sites/permission/export?siteUrls=https%3A%2F%2Fm365x3***.sharepoint.com%2Fsites%2Fretail&siteUrls=https%3A%2F%2Fm365x4****.sharepoint.com%2Fsites%2Fsite0",
    params = { siteUrls = { "https://m365x30001.sharepoint.com/sites/retail",
                            "https://m365x40001.sharepoint.com/sites/site0" } },
  },
  {
    name = "sharing_links_export", doc = "avepoint-graph/insights/sharingLinks/linkExport.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/sharingLinks/export?exportLinkType=32&startTime=2023-01-01T00:00:00&finishTime=2023-01-31T23:59:59",
    params = { exportLinkType = 32, startTime = "2023-01-01T00:00:00", finishTime = "2023-01-31T23:59:59" },
  },
  {
    name = "google_object_activities_export", doc = "avepoint-graph/insights/objects/googleObjectActivities.md",
    method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/google/activities/object/1SfizLNSDzc6xLEs*****8IEMZ13h***8jLbc/export?startTime=2025-01-01T00%3A00%3A00&finishTime=2025-01-31T00%3A00%3A00&eventTypes=create&eventTypes=label_added",
    params = { id = "1SfizLNSDzc6xLEsAbCdE8IEMZ13hXyZ8jLbc", startTime = "2025-01-01T00:00:00",
               finishTime = "2025-01-31T00:00:00", eventTypes = { "create", "label_added" } },
  },
  {
    name = "google_user_activities_export", doc = "avepoint-graph/insights/users/googleUserActivitiesExport.md",
    method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/google/users/insights***and**@avepoint*****.com/activities/export?startTime=2025-05-01T01%3A37%3A57&finishTime=2025-10-01T01%3A37%3A57&eventTypes=create&eventTypes=label_added",
    params = { email = "insightsdemoand01@avepointtest1.com", startTime = "2025-05-01T01:37:57",
               finishTime = "2025-10-01T01:37:57", eventTypes = { "create", "label_added" } },
  },
  {
    name = "google_user_permissions_export", doc = "avepoint-graph/insights/users/googleUserPermissionsExport.md",
    method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/google/users/insights****@avepoint****.com/access/export?exportOptionType=2&driveIds=0ALUvlYxwVLhSUk9PVA&dataSources=shared%20drive&dataSources=my%20drive",
    params = { email = "insightsuser@avepointtest.com", exportOptionType = 2, driveIds = { "0ALUvlYxwVLhSUk9PVA" },
               dataSources = { "shared drive", "my drive" } },
  },
  {
    name = "google_group_access_export", doc = "avepoint-graph/insights/groups/googleGroupAccessReport.md",
    method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/google/groups/insightgroup***dev@avepoint*****.com/access/export?exportOptionType=2&driveIds=0AGS***TS_s2****PVA&dataSources=shared%20drive",
    params = { groupId = "insightgroupqadev@avepointtest1.com", exportOptionType = 2,
               driveIds = { "0AGSxyzTS_s2abcdPVA" }, dataSources = { "shared drive" } },
  },
  {
    name = "google_drive_permissions_export", doc = "avepoint-graph/insights/drives/drivePermissionsExport.md",
    method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/google/drives/permission/export?driveIds=0AG****TS_s2E***PVA&driveIds=insightsdev*****@avepoint***.com",
    params = { driveIds = { "0AGabcdTS_s2EabcPVA", "insightsdev12345@avepointabc.com" } },
  },
  {
    name = "google_sharing_links_export", doc = "avepoint-graph/insights/sharingLinks/googleLinkExport.md",
    method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/google/sharingLinks/export?exportLinkType=303&startTime=2025-05-01T00:00:00&finishTime=2025-05-31T23:59:59",
    params = { exportLinkType = 303, startTime = "2025-05-01T00:00:00", finishTime = "2025-05-31T23:59:59" },
  },
  {
    name = "user_permissions", doc = "avepoint-graph/insights/users/userPermissions.md", method = "POST",
    sample = [[
https://graph-us.avepointonlineservices.com/insights/users/access
{
  "siteUrls": [
"https://******.sharepoint.com/sites/Retail",
"https://*****.sharepoint.com/sites/SalesandMarketing"
  ],
  "emails": [
    "insights****001_****insightstest.onmicrosoft.com",
    "insights******003_*****insightstest.onmicrosoft.com"
  ],
  "nextLink": "1231"
}]],
    params = { siteUrls = { "https://contoso.sharepoint.com/sites/Retail",
                            "https://contoso.sharepoint.com/sites/SalesandMarketing" },
               emails = { "insightstester001_jasoninsightstest.onmicrosoft.com",
                          "insightstester003_jasoninsightstest.onmicrosoft.com" },
               nextLink = "1231" },
  },
  {
    name = "user_summaries", doc = "avepoint-graph/insights/users/userSummary.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/users/summary?startPage=1&pageSize=50",
    params = { startPage = 1, pageSize = 50 },
  },
  {
    name = "group_summaries", doc = "avepoint-graph/insights/groups/groupSummary.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/groups/summary?startPage=1&pageSize=50",
    params = { startPage = 1, pageSize = 50 },
  },
  {
    name = "sharing_link_summaries", doc = "avepoint-graph/insights/sharingLinks/linkSummary.md", method = "POST",
    sample = [[
https://graph-us.avepointonlineservices.com/insights/sharingLinks/summary
{
  "siteUrl": "https://******.sharepoint.com/sites/site05",
  "linkType": 32,
  "pageSize": 100,
  "nextLink": "1231"
}]],
    params = { siteUrl = "https://contoso.sharepoint.com/sites/site05", linkType = 32, pageSize = 100,
               nextLink = "1231" },
  },
  {
    -- The sample's siteUrls list ends in a comma: not JSON.
    name = "site_permissions", doc = "avepoint-graph/insights/sites/sitePermissionsGet.md", method = "POST",
    sample = [[
https://graph-us.avepointonlineservices.com/insights/sites/permission
{
  "siteUrls": [
    "https://insights****.sharepoint.com/sites/365groupchange****",

  ],
  "pageSize": 100,
  "nextLink": "1231"
}]],
    fix = function(s) return (s:gsub(",%s*%]", "]")) end,
    params = { siteUrls = { "https://insightsdemo.sharepoint.com/sites/365groupchange0001" }, pageSize = 100,
               nextLink = "1231" },
  },
  {
    name = "site_overview", doc = "avepoint-graph/insights/sites/siteOverview.md", method = "POST",
    sample = [[
https://graph-us.avepointonlineservices.com/insights/sites/overview
{
  "riskLevel": [
    2,3
  ],
  "nextLink": "1231"
}]],
    params = { riskLevel = { 2, 3 }, nextLink = "1231" },
  },
  {
    name = "site_id", doc = "avepoint-graph/insights/sites/siteId.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/sites/https%3A%2F%2F****market.sharepoint.com%2Fsites%2Fland2/siteid",
    params = { siteUrl = "https://contosomarket.sharepoint.com/sites/land2" },
  },
  {
    name = "site_detail_records", doc = "avepoint-graph/insights/sites/siteDetailRecords.md", method = "POST",
    sample = [[
https://graph-us.avepointonlineservices.com/insights/sites/detailrecords
{
  "siteId": "0d6c1549-****-4dd2-****-28df****f7e2",
  "nextLink": "1231"
}]],
    params = { siteId = "0d6c1549-1234-4dd2-5678-28df9abcf7e2", nextLink = "1231" },
  },
  {
    name = "export_status", doc = "avepoint-graph/insights/exportJobs/exportJobStatus.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/job/169/exportstatus",
    params = { jobId = 169 },
  },
  {
    name = "export_file", doc = "avepoint-graph/insights/exportJobs/exportJobFile.md", method = "GET",
    sample = "https://graph-us.avepointonlineservices.com/insights/job/169/exportfile",
    params = { jobId = "169" },
  },
  {
    name = "set_tag", doc = "avepoint-graph/insights/objects/setTag.md", method = "PATCH",
    sample = "https://graph-us.avepointonlineservices.com/insights/sites/5794af14-b6ee-4194-b122-bdaa1a******/https%3A%2F%2******markettest.sharepoint.com%2Fsites%2Fharland2/settag?tagName=FalsePositive",
    params = { siteId = "5794af14-b6ee-4194-b122-bdaa1a123456",
               objectUrl = "https://contosomarkettest.sharepoint.com/sites/harland2", tagName = "FalsePositive" },
  },
}

local LEGACY = {
  {
    -- A C# example: the URL is the heading's, the body single-quoted.
    name = "site_permissions_export", method = "POST",
    quote = { "POST api/v1/site/permission/export", [[var filter = @"{'siteUrls': ['site url 1','site url 2']}";]] },
    sample = "http://hostname:port/api/v1/site/permission/export\n{'siteUrls': ['site url 1','site url 2']}",
    fix = function(s) return (s:gsub("'", '"')) end,
    params = { siteUrls = { "site url 1", "site url 2" } },
  },
  {
    name = "users", method = "POST",
    sample = [[
http://hostname:port/api/v1/User/summary
{
    "StartPage": 1,
    "PageSize": 100,
    "Language": "en-US"
}]],
    params = { StartPage = 1, PageSize = 100, Language = "en-US" },
  },
  {
    name = "user_permissions_export", method = "POST",
    quote = { "POST api/v1/user/permission/export", [[var filter = @"{'emails': ['user1 logonname','user2 logonname'], 'dataSources': ['Microsoft Teams', 'SharePoint Online'], 'siteUrls': ['site url 1','site url 2'], 'ExportOptionType': 1, 'Language': 'en-US'}";]] },
    sample = "http://hostname:port/api/v1/user/permission/export\n{'emails': ['user1 logonname','user2 logonname'], 'dataSources': ['Microsoft Teams', 'SharePoint Online'], 'siteUrls': ['site url 1','site url 2'], 'ExportOptionType': 1, 'Language': 'en-US'}",
    fix = function(s) return (s:gsub("'", '"')) end,
    params = { emails = { "user1 logonname", "user2 logonname" }, dataSources = { "Microsoft Teams", "SharePoint Online" },
               siteUrls = { "site url 1", "site url 2" }, ExportOptionType = 1, Language = "en-US" },
  },
  {
    name = "groups", method = "POST",
    sample = [[
http://hostname:port/api/v1/Group/summary
{
    "StartPage": 1,
    "PageSize": 100,
    "Language": "en-US"
}]],
    params = { StartPage = 1, PageSize = 100, Language = "en-US" },
  },
  {
    name = "group_permissions_export", method = "POST",
    sample = [[
http://hostname:port/api/v1/group/Permission/export
{
    "Emails": ["Group ID 1", "Group ID 2"],
    "siteUrls": [
        "https://yourcompany.sharepoint.com/sites/site01",
        "https://yourcompany.sharepoint.com/sites/site02"
    ],
    "dataSources": ["Microsoft Teams", "SharePoint Online"],
    "ExportOptionType": 2,
    "Language": "en-US"
}]],
    params = { Emails = { "Group ID 1", "Group ID 2" },
               siteUrls = { "https://yourcompany.sharepoint.com/sites/site01",
                            "https://yourcompany.sharepoint.com/sites/site02" },
               dataSources = { "Microsoft Teams", "SharePoint Online" }, ExportOptionType = 2, Language = "en-US" },
  },
  {
    name = "links", method = "POST",
    sample = [[
http://hostname:port/api/v1/link/permission/query
{
    "SiteUrls": ["Site URL 1", "Site URL 2"],
    "Token": null,
    "PageSize": 10,
    "LinkType": "32",
    "Language": "en-US"
}]],
    params = { SiteUrls = { "Site URL 1", "Site URL 2" }, PageSize = 10, LinkType = "32", Language = "en-US" },
  },
  {
    name = "link_permissions_export", method = "POST",
    sample = [[
http://hostname:port/api/v1/link/Permission/export
{
    "language": "en-US",
    "exportLinkType": "32",
    "startTime": "2023-01-01T01:37:57",
    "endTime": "2023-09-22T03:37:57"
}]],
    params = { language = "en-US", exportLinkType = 32, startTime = "2023-01-01T01:37:57",
               endTime = "2023-09-22T03:37:57" },
  },
  {
    -- No URL sample: the heading's path, {id} a job id.
    name = "permission_export_status", method = "GET", id = "366",
    quote = { "GET api/v1/permission/export/status?id={id}" },
    sample = "http://hostname:port/api/v1/permission/export/status?id={id}",
    params = { id = 366 },
  },
  {
    name = "permission_export_file", method = "GET", id = "366",
    quote = { "GET api/v1/permission/export/get?id={id}" },
    sample = "http://hostname:port/api/v1/permission/export/get?id={id}",
    params = { id = "366" },
  },
  {
    name = "site_permissions", method = "POST",
    sample = [[
http://hostname:port/api/v1/Site/permission
{
    "SiteUrls": ["https://yourcompany.sharepoint.com/sites/site01"],
    "Token": null,
    "Top": 100,
    "Language": "en-US"
}]],
    params = { SiteUrls = { "https://yourcompany.sharepoint.com/sites/site01" }, Top = 100, Language = "en-US" },
  },
  {
    name = "user_permissions", method = "POST",
    sample = [[
http://hostname:port/api/v1/User/permission
{
    "SiteUrls": ["https://yourcompany.sharepoint.com/sites/site01"],
    "Emails": ["username@domain"],
    "Token": null,
    "Top": 100,
    "Language": "en-US"
}]],
    params = { SiteUrls = { "https://yourcompany.sharepoint.com/sites/site01" }, Emails = { "username@domain" },
               Top = 100, Language = "en-US" },
  },
  {
    name = "activity_export", method = "POST",
    sample = [[
http://hostname:port/api/v1/activity/export
{
    "path": "Object URL",
    "email": "Demo@domain.com",
    "starttime": "2023-01-01T01:37:57",
    "endtime": "2023-04-24T06:37:57",
    "eventTypes": [
        "Operation 1",
        "Operation 2"
    ],
    "Language": "en-US"
}]],
    params = { path = "Object URL", email = "Demo@domain.com", startTime = "2023-01-01T01:37:57",
               endTime = "2023-04-24T06:37:57", eventTypes = { "Operation 1", "Operation 2" }, Language = "en-US" },
  },
  {
    -- The sample ends in a stray '|'.
    name = "activity_export_status", method = "GET", id = "366",
    quote = { "http://hostname:port/api/v1/activity/export/status?id={id}|" },
    sample = "http://hostname:port/api/v1/activity/export/status?id={id}",
    params = { id = 366 },
  },
  {
    name = "activity_export_file", method = "GET", id = "366",
    quote = { "http://hostname:port/api/v1/activity/export/file?id={id}|" },
    sample = "http://hostname:port/api/v1/activity/export/file?id={id}",
    params = { job_id = 366 },
  },
  {
    name = "detail_records_by_site", method = "POST",
    sample = [[
http://hostname:port/api/v1/DetailRecord/querybysite
{
    "filters": [
        {
            "id": "objectType",
            "values": [
                "2",
                "3",
                "13"
            ]
        },
        {
            "id": "sensitivityLevel",
            "values": [
                "0",
                "1",
                "2",
                "3",
                "-2"
            ]
        },
        {
            "id": "exposureLevel",
            "values": [
                "1",
                "2",
                "3"
            ]
        },
        {
            "id": "riskLevel",
            "values": [
                "0",
                "1",
                "2",
                "3",
                "-2"
            ]
        },
        {
            "id": "tagName",
            "values": [
                "In Progress"
            ]
        },
        {
            "id": "createdBy",
            "values": [
                "username@domain.com"
            ]
        },
        {
            "id": "modifiedTime",
            "values": [
                "2024-09-20T10:57:28Z",
                "2024-09-27T10:57:28Z"
            ]
        }
    ],
    "siteId": "siteID",
    "token": null,
    "language": "en-US",
    "pageSize": 100
}]],
    params = {
      filters = {
        { id = "objectType", values = { "2", "3", "13" } },
        { id = "sensitivityLevel", values = { "0", "1", "2", "3", "-2" } },
        { id = "exposureLevel", values = { "1", "2", "3" } },
        { id = "riskLevel", values = { "0", "1", "2", "3", "-2" } },
        { id = "tagName", values = { "In Progress" } },
        { id = "createdBy", values = { "username@domain.com" } },
        { id = "modifiedTime", values = { "2024-09-20T10:57:28Z", "2024-09-27T10:57:28Z" } },
      },
      siteId = "siteID", language = "en-US", pageSize = 100,
    },
  },
  {
    name = "site_ids", method = "POST",
    sample = [[
http://hostname:port/api/v1/DetailRecord/getSiteIds
{
    "siteUrls": [
        "https://org.sharepoint.com/teams/team01",
        "https://org.sharepoint.com/sites/site01",
        "https://org.sharepoint.com/sites/site02"
    ]
}]],
    params = { siteUrls = { "https://org.sharepoint.com/teams/team01", "https://org.sharepoint.com/sites/site01",
                            "https://org.sharepoint.com/sites/site02" } },
  },
  {
    name = "site_overview", method = "POST",
    sample = [[
http://hostname:port/api/v1/DetailRecord/querysiteoverview
{
    "filters": [
        {
            "id": "module",
            "values": [
                "1",
                "2",
                "3",
                "4"
            ]
        },
        {
            "id": "sensitivityLevel",
            "values": [
                "0",
                "1",
                "2",
                "3",
                "-2"
            ]
        },
        {
            "id": "exposureLevel",
            "values": [
                "1",
                "2",
                "3"
            ]
        },
        {
            "id": "riskLevel",
            "values": [
                "0",
                "1",
                "2",
                "3",
                "-2"
            ]
        },
        {
            "id": "createdBy",
            "values": [
                "username@domain.com"
            ]
        },
        {
            "id": "location",
            "values": [
                "https://org.sharepoint.com/sites/jan2022hardtestsite4"
            ]
        }
    ],
    "token": null,
    "pageSize": 10
}]],
    -- The friendly form: a map from filter to values, words for codes.
    params = {
      filters = {
        module = { "teams", "sharepoint", "onedrive", "group" },
        sensitivity_level = { "not_sensitive", "low", "medium", "high", "not_defined" },
        exposure_level = { "low", "medium", "high" },
        risk_level = { "no_risk", 1, "2", "High", -2 },
        created_by = "username@domain.com",
        location = { "https://org.sharepoint.com/sites/jan2022hardtestsite4" },
      },
      page_size = 10,
    },
  },
  {
    -- The sample's sensitivityLevel values miss a comma after "3".
    name = "detail_records", method = "POST",
    sample = [[
http://hostname:port/api/v1/DetailRecord/query
{
    "filters": [
        {
            "id": "module",
            "values": [
                "1",
                "2",
                "3",
                "4"
            ]
        },
        {
            "id": "objectType",
            "values": [
                "2",
                "3",
                "13"
            ]
        },
        {
            "id": "sensitivityLevel",
            "values": [
                "0",
                "1",
                "2",
                "3"
                "-2"
            ]
        },
        {
            "id": "exposureLevel",
            "values": [
                "1",
                "2",
                "3"
            ]
        },
        {
            "id": "riskLevel",
            "values": [
                "0",
                "1",
                "2",
                "3",
                "-2"
            ]
        },
        {
            "id": "location",
            "values": [
                "https://yourcompany.sharepoint.com/sites/site03",
                "https://yourcompany.sharepoint.com/sites/site02",
                "https://yourcompany.sharepoint.com/sites/site01/shared documents/folder 02/test.txt"
            ]
        },
        {
            "id": "siteName",
            "values": [
                "access"
            ]
        },
        {
            "id": "tagName",
            "values": [
                "In Progress"
            ]
        },
        {
            "id": "username",
            "values": [
                "username01@domain.onmicrosoft.com"
            ]
        }
    ],
    "token": null,
    "language": "en-US",
    "pageSize": 100
}]],
    fix = function(s) return (s:gsub('"3"(%s+)"%-2"', '"3",%1"-2"')) end,
    params = {
      filters = {
        { id = "module", values = { 1, 2, 3, 4 } },
        { id = "objectType", values = { "file", "item", "list" } },
        { id = "sensitivityLevel", values = { "0", "1", "2", "3", "-2" } },
        { id = "exposureLevel", values = { "1", "2", "3" } },
        { id = "riskLevel", values = { "0", "1", "2", "3", "-2" } },
        { id = "location", values = { "https://yourcompany.sharepoint.com/sites/site03",
                                      "https://yourcompany.sharepoint.com/sites/site02",
                                      "https://yourcompany.sharepoint.com/sites/site01/shared documents/folder 02/test.txt" } },
        { id = "siteName", values = { "access" } },
        { id = "tagName", values = { "In Progress" } },
        { id = "username", values = { "username01@domain.onmicrosoft.com" } },
      },
      language = "en-US", pageSize = 100,
    },
  },
}

-- luacheck: pop

-- ---- specs ----------------------------------------------------------------------

describe("insights endpoints", function()
  local suites = {
    { api = "graph", base = GRAPH_BASE, cases = GRAPH },
    { api = "legacy", base = LEGACY_BASE, cases = LEGACY },
  }

  for _, suite in ipairs(suites) do
    describe(suite.api .. " samples", function()
      it("cover every endpoint", function()
        local covered = {}
        for _, c in ipairs(suite.cases) do covered[c.name] = true end
        for _, name in ipairs(CAT[suite.api]:list()) do
          assert.is_true(covered[name] == true, name .. " has no sample case")
        end
        for name in pairs(covered) do assert.is_table(CAT[suite.api].endpoints[name], name .. " is not in the catalogue") end
      end)

      for _, c in ipairs(suite.cases) do
        local label = string.format("%s %s (%s)", c.method, c.name, c.doc or LEGACY_DOC)
        it("reproduces " .. label, function()
          local url, body = c.sample:match("^(%S+)%s*(.-)%s*$")
          if c.id then url = url:gsub("{id}", c.id) end
          local req = build(suite.api, c.name, c.params)
          assert.equal(c.method, req.method)
          local got = url_of(suite.base, req)
          assert.is_true(matches(url, got), string.format("\nsample: %s\nbuilt:  %s", url, got))
          if body ~= "" then
            local expected = cjson.decode(c.fix and c.fix(body) or body)
            local actual = cjson.decode(cjson.encode(req.body))
            local d = differ(expected, actual)
            assert.is_nil(d, d)
          elseif c.method == "GET" or c.method == "PATCH" then
            assert.is_nil(req.body)
          end
          -- Checked parameters build the same request again (callers such
          -- as the pager add documented names to them).
          local again = build(suite.api, c.name, assert(CAT[suite.api]:canonical(c.name, c.params)))
          assert.same(req, again)
        end)

        it("copies its sample verbatim from " .. (c.doc or LEGACY_DOC), function()
          local text = read(DOCS .. (c.doc or LEGACY_DOC))
          if not text then
            pending("documents not found under " .. DOCS)
            return
          end
          text = squeeze(text)
          for _, quote in ipairs(c.quote or { c.sample }) do
            assert.is_truthy(text:find(squeeze(quote), 1, true), "not in the document: " .. quote)
          end
        end)
      end
    end)
  end

  describe("definitions", function()
    it("list sorted names, relative paths and a known shape", function()
      for _, api in ipairs { "graph", "legacy" } do
        local names = CAT[api]:list()
        local sorted = { table.unpack(names) }
        table.sort(sorted)
        assert.same(sorted, names)
        for _, name in ipairs(names) do
          local def = CAT[api].endpoints[name]
          assert.matches("^[a-z_]+$", name)
          assert.is_truthy(({ GET = true, POST = true, PATCH = true })[def.method], name)
          if api == "graph" then
            assert.is_nil(def.path:find("^/api/"), name)
          else
            assert.matches("^/api/v1/", def.path)
          end
          if def.paging then
            assert.equal("read", def.kind, name)
            assert.is_truthy(def.paging.style == "page" or def.paging.style == "cursor", name)
            assert.is_truthy(def.paging.page or def.paging.cursor, name)
          end
          if def.kind == "submit" or def.kind == "status" or def.kind == "file" then
            assert.is_table(CAT[api].jobs[def.job], name)
          else
            assert.is_nil(def.job, name)
          end
          for _, p in ipairs(def.params) do
            assert.is_truthy(({ path = true, query = true, body = true })[p.at], name .. "." .. p.name)
            if p.at == "path" then assert.is_truthy(p.encode == "once" or p.encode == "twice") end
          end
        end
      end
      assert.equal(23, #CAT["graph"]:list())
      assert.equal(18, #CAT["legacy"]:list())
    end)

    it("name the job families, their status and file endpoints and what their status codes mean", function()
      for _, api in ipairs { "graph", "legacy" } do
        for family, f in pairs(CAT[api].jobs) do
          assert.equal(family, CAT[api].endpoints[f.status].job)
          assert.equal("status", CAT[api].endpoints[f.status].kind)
          assert.equal("file", CAT[api].endpoints[f.file].kind)
          assert.same({ 1 }, f.state.running)
          assert.same({ 2 }, f.state.done)
          assert.same({ 3 }, f.state.failed)
        end
      end
      local req = build("graph", "user_activities_export", { email = "a@b.com" })
      assert.equal("submit", req.kind)
      assert.equal("graph", req.job)
      req = build("legacy", "activity_export", { email = "a@b.com" })
      assert.equal("legacy-activity", req.job)
      req = build("legacy", "link_permissions_export", { link_type = "anyone" })
      assert.equal("legacy-permission", req.job)
      assert.equal("read", build("graph", "user_summaries", { startPage = 1, pageSize = 10 }).kind)
    end)

    it("say how answers are paged and where their rows are", function()
      local function shape(api, name, params)
        local pg = build(api, name, params).paging or {}
        return { pg.style, pg.page or pg.cursor, pg.rows and pg.rows[1], pg.each }
      end
      assert.same({ "page", "startPage", "results" }, shape("graph", "user_summaries", { start_page = 1, page_size = 5 }))
      assert.same({ "page", "startPage", "values" }, shape("graph", "group_summaries", { start_page = 1, page_size = 5 }))
      assert.same({ "cursor", "nextLink", "values" }, shape("graph", "site_permissions", { site_urls = "https://x" }))
      assert.same({ "cursor", "nextLink", "values", "siteId" }, shape("graph", "site_detail_records", { site_id = "s" }))
      assert.same({ "cursor", "Token", "results" }, shape("legacy", "site_permissions", { site_urls = { "https://x" } }))
      assert.same({ "page", "StartPage", "results" }, shape("legacy", "groups", { start_page = 1 }))
      assert.same({ "cursor", "token", "results", "siteId" },
        shape("legacy", "detail_records_by_site", { site_id = "s", page_size = 10, filters = { tag_name = "x" } }))
      assert.same({}, shape("graph", "export_status", { job_id = 1 }))
    end)

    it("raise on programmer mistakes", function()
      assert.has_error(function() CAT["modern"]:build("groups", {}) end)
      assert.has_error(function() CAT["graph"]:build("no_such_endpoint", {}) end)
      assert.has_error(function() CAT["legacy"]:build("group_summaries", {}) end)
      assert.has_error(function() CAT["graph"]:build("user_summaries", "startPage=1") end)
      assert.has_error(function() CAT["modern"]:list() end)
    end)
  end)

  describe("refuses before sending", function()
    it("a page size of 101", function()
      refused("graph", "user_summaries", { startPage = 1, pageSize = 101 }, "'pageSize'", "at most 100")
      refused("legacy", "site_permissions", { SiteUrls = { "https://x" }, Top = 101 }, "'Top'", "at most 100")
      refused("legacy", "users", { StartPage = 1, PageSize = 101 }, "'PageSize'", "at most 100")
      refused("graph", "site_permissions", { siteUrls = { "https://x" }, page_size = 101 }, "'pageSize'")
      assert.is_table(build("graph", "user_summaries", { startPage = 1, pageSize = 100 }))
    end)

    it("a page size or start page below 1", function()
      refused("graph", "group_summaries", { startPage = 0, pageSize = 10 }, "'startPage'", "at least 1")
      refused("graph", "group_summaries", { startPage = 1, pageSize = 0 }, "'pageSize'", "at least 1")
    end)

    it("a list of 101", function()
      local urls = {}
      for i = 1, 101 do urls[i] = "https://contoso.sharepoint.com/sites/s" .. i end
      refused("graph", "site_permissions_export", { siteUrls = urls }, "'siteUrls'", "at most 100", "101")
      refused("legacy", "site_ids", { siteUrls = urls }, "'siteUrls'", "at most 100")
      refused("legacy", "user_permissions", { Emails = urls }, "'Emails'", "at most 100")
      local ids = {}
      for i = 1, 101 do ids[i] = "drive" .. i end
      refused("graph", "google_drive_permissions_export", { drive_ids = ids }, "'driveIds'", "at most 100")
      urls[101] = nil
      assert.is_table(build("graph", "site_permissions_export", { siteUrls = urls }))
    end)

    it("a third modifiedTime", function()
      refused("legacy", "detail_records_by_site", {
        siteId = "s", pageSize = 10,
        filters = { modifiedTime = { "2024-09-20T10:57:28Z", "2024-09-27T10:57:28Z", "2024-09-28T10:57:28Z" } },
      }, "modifiedTime", "at most two")
      refused("legacy", "detail_records_by_site", {
        siteId = "s", pageSize = 10,
        filters = { { id = "modifiedTime", values = { "2024-09-20T10:57:28Z", "2024-09-27", "x" } } },
      }, "modifiedTime", "at most two")
    end)

    it("a bad date format", function()
      refused("graph", "user_activities_export", { email = "a@b.com", startTime = "2023-01-01 01:37:57" },
        "'startTime'", "yyyy-MM-ddTHH:mm:ss")
      refused("graph", "user_activities_export", { email = "a@b.com", finishTime = "2023-01-01T01:37:57Z" },
        "'finishTime'", "yyyy-MM-ddTHH:mm:ss")
      refused("graph", "sharing_links_export", { exportLinkType = 32, startTime = "2023-02-30T00:00:00",
                                                 finishTime = "2023-03-01T00:00:00" }, "'startTime'")
      refused("graph", "google_sharing_links_export", { exportLinkType = 303, startTime = "2023-01-01",
                                                        finishTime = "2023-03-01T00:00:00" }, "'startTime'")
      refused("legacy", "detail_records_by_site", { siteId = "s", pageSize = 10,
                                                    filters = { modifiedTime = { "20/09/2024" } } }, "modifiedTime")
      refused("legacy", "link_permissions_export", { exportLinkType = 32, endTime = "yesterday" }, "'endTime'")
      -- ISO 8601 where the page says so; Z where the legacy sample has it.
      assert.is_table(build("graph", "object_activities_export",
        { path = "https://x/y", startTime = "2024-12-03T00:00:00Z", finishTime = "2025-01-09T00:00:00+09:00" }))
      assert.is_table(build("legacy", "activity_export", { email = "a@b.c", startTime = "2023-01-01T01:37:57Z" }))
    end)

    it("a start after the finish", function()
      refused("graph", "user_activities_export", { email = "a@b.com", startTime = "2023-04-01T00:00:00",
                                                   finishTime = "2023-01-01T00:00:00" }, "'startTime'", "'finishTime'")
    end)

    it("an unknown enum", function()
      refused("graph", "sharing_links_export", { exportLinkType = 33, startTime = "2023-01-01T00:00:00",
                                                 finishTime = "2023-01-31T23:59:59" }, "'exportLinkType'", "128 (anyone)")
      refused("graph", "sharing_link_summaries", { siteUrl = "https://x", link_type = "everyone" }, "'linkType'",
        "'everyone'")
      refused("graph", "user_permissions_export", { email = "a@b.com", data_sources = { "teams", "exchange" } },
        "'dataSources'", "'exchange'")
      refused("graph", "google_user_permissions_export", { email = "a@b.com", data_sources = { "teams" } },
        "'dataSources'")
      refused("graph", "site_overview", { risk_level = { "high", "extreme" } }, "'riskLevel'", "'extreme'")
      refused("legacy", "users", { StartPage = 1, Language = "de-DE" }, "'Language'", "'de-DE'")
      refused("legacy", "detail_records", { pageSize = 10, filters = { objectType = { "page" } } }, "objectType",
        "'page'")
      refused("legacy", "detail_records", { pageSize = 10, filters = { colour = { "red" } } }, "'colour'")
      refused("graph", "group_access_export", { groupId = "g", exportOptionType = 4, dataSources = "teams" },
        "'exportOptionType'")
      refused("graph", "google_group_access_export", { groupId = "g@x.com", exportOptionType = 1,
                                                       dataSources = "shared_drive" }, "exportOptionType", "not supported")
    end)

    it("a missing required field", function()
      refused("graph", "user_activities_export", {}, "'email'", "required")
      refused("graph", "user_permissions_export", { email = "a@b.com" }, "'dataSources'", "required")
      refused("graph", "user_permissions_export", { email = "a@b.com", dataSources = {} }, "'dataSources'")
      refused("graph", "sharing_links_export", { exportLinkType = 32, startTime = "2023-01-01T00:00:00" },
        "'finishTime'", "required")
      refused("graph", "user_summaries", { startPage = 1 }, "'pageSize'", "required")
      refused("graph", "site_detail_records", { pageSize = 10 }, "'siteId'", "required")
      refused("graph", "set_tag", { siteId = "s", objectUrl = "https://x" }, "'tagName'", "required")
      refused("graph", "export_status", {}, "'jobId'", "required")
      refused("graph", "group_access_export", { exportOptionType = 2, dataSources = "teams" }, "'groupId'", "3")
      refused("legacy", "links", { PageSize = 10 }, "'LinkType'", "required")
      refused("legacy", "detail_records_by_site", { siteId = "s", pageSize = 10 }, "'filters'", "required")
      refused("legacy", "site_overview", {}, "'pageSize'", "required")
      refused("legacy", "activity_export", { Language = "en-US" }, "'email'", "'path'")
      refused("legacy", "group_permissions_export", { dataSources = "teams", ExportOptionType = 2 }, "'Emails'")
    end)

    it("an unknown parameter", function()
      refused("graph", "user_summaries", { startPage = 1, pageSize = 10, top = 5 }, "'top'", "unknown")
      refused("graph", "user_activities_export", { email = "a@b.com", endTime = "2023-01-01T00:00:00" }, "'endTime'")
      refused("graph", "group_access_export", { groupId = "g", exportOptionType = 2, dataSources = "teams",
                                                language = "ja-JP" }, "'language'")
      refused("legacy", "site_permissions", { SiteUrls = { "https://x" }, nextLink = "t" }, "'nextLink'")
      refused("graph", "user_summaries", { [1] = "x", startPage = 1, pageSize = 1 }, "1")
    end)

    it("a parameter given twice under two spellings", function()
      refused("graph", "user_summaries", { startPage = 1, start_page = 2, pageSize = 10 }, "'startPage'", "twice")
      refused("legacy", "users", { StartPage = 1, startPage = 2 }, "'StartPage'", "twice")
    end)

    it("values of the wrong type", function()
      refused("graph", "user_summaries", { startPage = 1.5, pageSize = 10 }, "'startPage'", "integer")
      refused("graph", "export_file", { jobId = "12a" }, "'jobId'")
      refused("graph", "user_permissions", { emails = { a = "x" } }, "'emails'", "list")
      refused("graph", "site_id", { siteUrl = "" }, "'siteUrl'", "empty")
      refused("graph", "user_permissions", { emails = { "a@b.c" }, nextLink = 5 }, "'nextLink'")
    end)
  end)

  describe("friendly spellings", function()
    it("link_type words for the documented codes", function()
      local function link(api, name, params)
        local r = build(api, name, params)
        return r.body and (r.body.linkType or r.body.LinkType or r.body.exportLinkType) or r.query:match("exportLinkType=(%d+)")
      end
      assert.equal(128, link("graph", "sharing_link_summaries", { site_url = "https://x", link_type = "anyone" }))
      assert.equal(64, link("graph", "sharing_link_summaries", { site_url = "https://x", link_type = "Organization link" }))
      assert.equal(32, link("graph", "sharing_link_summaries", { site_url = "https://x", link_type = "specific" }))
      assert.equal("128", link("graph", "sharing_links_export",
        { link_type = "anyone", start_time = "2023-01-01T00:00:00", finish_time = "2023-01-02T00:00:00" }))
      assert.equal("303", link("graph", "google_sharing_links_export",
        { export_link_type = "anyone", start_time = "2023-01-01T00:00:00", finish_time = "2023-01-02T00:00:00" }))
      assert.equal("301", link("graph", "google_sharing_links_export",
        { export_link_type = "target_audience", start_time = "2023-01-01T00:00:00", finish_time = "2023-01-02T00:00:00" }))
      -- The legacy samples send the code as a string.
      assert.equal("128", link("legacy", "links", { link_type = "anyone" }))
      assert.equal("32", link("legacy", "link_permissions_export", { export_link_type = "flexible" }))
    end)

    it("data_sources words for the documented workspace names", function()
      local r = build("graph", "user_permissions_export",
        { email = "a@b.com", data_sources = { "teams", "sharepoint", "onedrive", "group" } })
      assert.equal("dataSources=microsoft%20teams&dataSources=sharepoint%20online&dataSources=onedrive"
        .. "&dataSources=microsoft%20365%20group", r.query)
      r = build("graph", "group_access_export", { group_id = "g", export_option_type = "summary", data_sources = "teams" })
      assert.equal("exportOptionType=3&dataSources=microsoft%20teams", r.query)
      r = build("legacy", "user_permissions_export",
        { emails = "a@b.com", data_sources = { "teams", "SharePoint Online", "onedrive" }, export_option_type = "all_objects" })
      assert.same({ "Microsoft Teams", "SharePoint Online", "OneDrive" }, r.body.dataSources)
      assert.equal(2, r.body.ExportOptionType)
      r = build("graph", "google_user_permissions_export", { email = "a@b.com", data_sources = { "user_drive", "Shared Drive" } })
      assert.equal("dataSources=my%20drive&dataSources=shared%20drive", r.query)
    end)

    it("snake_case names and Lua values", function()
      local r = build("graph", "user_activities_export", {
        email = "Someone_Ext.com#EXT#@Tenant.onmicrosoft.com", start_time = 1672537077, event_types = "FileAccessed",
      })
      assert.equal("/users/someone_ext.com%2523ext%2523%2540tenant.onmicrosoft.com/activities/export", r.path)
      assert.equal("startTime=2023-01-01T01%3A37%3A57&eventTypes=FileAccessed", r.query)
      r = build("legacy", "site_permissions", { site_urls = { "https://x/sites/a" }, token = "abc+/=", top = 50,
                                                language = "japanese" })
      assert.same({ SiteUrls = { "https://x/sites/a" }, Token = "abc+/=", Top = 50, Language = "ja-JP" }, r.body)
      r = build("legacy", "users", { start_page = 2, page_size = 25, language = "ja-JP" })
      assert.same({ StartPage = 2, PageSize = 25, Language = "ja-JP" }, r.body)
      -- Names match without regard to case; the wire keeps the documented one.
      r = build("legacy", "users", { startPage = 2, pageSize = 25 })
      assert.same({ StartPage = 2, PageSize = 25 }, r.body)
      r = build("legacy", "activity_export", { object_url = "https://x/a.docx", start_time = "2023-01-01T00:00:00",
                                               end_time = "2023-02-01T00:00:00" })
      assert.same({ path = "https://x/a.docx", starttime = "2023-01-01T00:00:00", endtime = "2023-02-01T00:00:00" }, r.body)
      r = build("graph", "site_overview", { risk_level = "high", page_size = 20 })
      assert.same({ riskLevel = { 3 }, pageSize = 20 }, r.body)
      r = build("legacy", "detail_records_by_site", { site_id = "s", page_size = 10,
                                                      filters = { modified_time = { 1726829848 }, tag_name = "Reviewed" } })
      assert.same({ { id = "tagName", values = { "Reviewed" } }, { id = "modifiedTime", values = { "2024-09-20T10:57:28Z" } } },
        r.body.filters)
      assert.equal(cjson.null, r.body.token)
    end)

    it("nextLink and Token passed back exactly as given", function()
      local link = '[{"token":"+RID:~EqhH==#RT:1#TRC:10","range":{"min":"","max":"FF"}}]'
      local r = build("graph", "sharing_link_summaries", { site_url = "https://x", link_type = 32, next_link = link })
      assert.equal(link, r.body.nextLink)
      r = build("legacy", "links", { link_type = 32, Token = "a+b/c==" })
      assert.equal("a+b/c==", r.body.Token)
    end)

    it("all groups by leaving the group out with export option 3", function()
      local r = build("graph", "group_access_export", { export_option_type = 3, data_sources = { "teams" } })
      assert.equal("/groups/access/export", r.path)
      r = build("graph", "google_group_access_export", { export_option_type = 3, data_sources = { "my drive" } })
      assert.equal("/google/groups/access/export", r.path)
      r = build("legacy", "group_permissions_export", { export_option_type = 3, data_sources = "teams" })
      assert.is_nil(r.body.Emails)
    end)

    it("special characters in path segments", function()
      local r = build("graph", "group_access_export", { groupId = "c:0(.s|true", exportOptionType = 3,
                                                        dataSources = "teams" })
      assert.equal("/groups/c%3A0%28.s%7Ctrue/access/export", r.path)
      r = build("graph", "set_tag", { site_id = "abc", object_url = "https://x.sharepoint.com/sites/a/Shared Documents/b c.docx",
                                      tag_name = "In Progress" })
      assert.equal("/sites/abc/https%3A%2F%2Fx.sharepoint.com%2Fsites%2Fa%2FShared%20Documents%2Fb%20c.docx/settag", r.path)
      assert.equal("tagName=In%20Progress", r.query)
      assert.equal("PATCH", r.method)
      r = build("graph", "google_user_activities_export", { email = "First.Last+x@Example.com" })
      assert.equal("/google/users/First.Last%2Bx@Example.com/activities/export", r.path)
    end)
  end)

  describe("canonical", function()
    it("gives the parameters under their documented names", function()
      local v = assert(CAT["graph"]:canonical("user_summaries", { start_page = 2, page_size = "50" }))
      assert.same({ startPage = 2, pageSize = 50 }, v)
    end)
  end)
end)
