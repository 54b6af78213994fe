-- Writes the permission rows of the users in --users FILE or of the sites in --sites FILE to a JSON Lines or CSV file
local cli = require("auditrun.cli")
local iw = require("auditrun.insights.workflows")
local workflow = require("auditrun.workflow")

local spec = {
  name = "permissions",
  summary = "Writes the permission rows of the users of --users FILE, or of the site collections of "
    .. "--sites FILE, to a file.",
  description = "User rows carry the user they belong to (column user). Sites are asked 100 at a time.",
  examples = {
    "auditrun permissions --users users.txt --out user-permissions.csv",
    "auditrun permissions --sites sites.txt --api legacy --format sqlite",
  },
  kind = "records", apis = { "graph", "legacy" },
  flags = function(p)
    p:mutex(
      p:option("--users", "The users: a file of login names or e-mails, one a line."):argname("FILE"),
      p:option("--sites", "The site collections: a file of site URLs, one a line."):argname("FILE"))
  end,
  check = function(o)
    if not (o.users or o.sites) then return "give --users FILE or --sites FILE" end
  end,
}
local opts = cli.parse(spec, ...)
local users = iw.list_file(spec, "--users", opts.users)
local sites = iw.list_file(spec, "--sites", opts.sites)

local _, api = iw.connect(opts)
local graph = api.api == "graph"
-- One query per user (so that each row can say whose it is), or per hundred
-- sites; a rerun starts at the query it stopped in.
local queries, decorate = {}, nil
if sites then
  for chunk in iw.in_chunks(sites, 100) do queries[#queries + 1] = graph and { siteUrls = chunk } or { SiteUrls = chunk } end
else
  for i, u in ipairs(users) do queries[i] = graph and { emails = { u } } or { Emails = { u } } end
  decorate = function(row, q)
    if row.user == nil then row.user = users[q] end
  end
end
workflow.records(opts, {
  columns = iw.columns(api, users and "user_permissions" or "site_permissions"),
  pages = iw.query_pages(api, users and "user_permissions" or "site_permissions", queries, decorate),
})
