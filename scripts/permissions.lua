-- Writes the permission rows of the users in --users FILE or of the sites in --sites FILE to a JSON Lines or CSV file
local cli = require "auditrun.cli"
local iw = require "auditrun.insights.workflows"
local workflow = require "auditrun.workflow"

local spec = {
  name = "permissions",
  summary = "Writes the permission rows of the users of --users FILE, or of the site collections of "
    .. "--sites FILE, to a file.",
  description = "User rows carry the user they belong to (column user). Sites are asked 100 at a time.",
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
workflow.records(opts, {
  columns = iw.columns(api, users and "user_permissions" or "site_permissions"),
  rows = function()
    if sites then
      local chunks, rows = iw.in_chunks(sites, 100), nil
      return function()
        while true do
          local row = rows and rows()
          if row then return row end
          local chunk = chunks()
          if not chunk then return nil end
          rows = api:site_permissions(graph and { siteUrls = chunk } or { SiteUrls = chunk })
        end
      end
    end
    -- One user at a time, so that each row can say whose it is.
    local i, rows = 0, nil
    return function()
      while true do
        local row = rows and rows()
        if row then
          if row.user == nil then row.user = users[i] end
          return row
        end
        i = i + 1
        if i > #users then return nil end
        rows = api:user_permissions(graph and { emails = { users[i] } } or { Emails = { users[i] } })
      end
    end
  end,
})
