-- Writes the detail records (objects with their risk, sensitivity and exposure) to a JSON Lines or CSV file
local cli = require("auditrun.cli")
local iw = require("auditrun.insights.workflows")
local workflow = require("auditrun.workflow")

local spec = {
  name = "detail-records",
  summary = "Writes the detail records (each object with its risk, sensitivity and exposure) to a file.",
  description = "Graph API: every site's records, site by site (or the sites of --sites FILE). Legacy API "
    .. "(--api legacy): the tenant's detail record query.",
  examples = {
    "auditrun detail-records --out records.csv",
    "auditrun detail-records --sites sites.txt --format sqlite --out records.sqlite",
    "auditrun detail-records --api legacy",
  },
  kind = "records", apis = { "graph", "legacy" },
  flags = function(p)
    p:option("--sites", "Only these site collections: a file of site URLs, one a line (Graph API)."):argname("FILE")
  end,
  check = function(o)
    if o.sites and o.api == "legacy" then return "--sites needs the Graph API (the legacy query takes no site list)" end
  end,
}
local opts = cli.parse(spec, ...)
local sites = iw.list_file(spec, "--sites", opts.sites)

local _, api = iw.connect(opts)
if api.api == "legacy" then
  workflow.records(opts, { rows = function() return api:detail_records {} end })
else
  -- Site by site; a rerun goes on from the site (and page) it stopped at.
  workflow.records(opts, {
    columns = iw.columns(api, "site_detail_records"),
    pages = iw.site_pages(api, "site_detail_records", { {} }, sites and iw.site_ids(api, sites)),
  })
end
