-- Writes the site overview (risky, sensitive and exposed items per site) to a JSON Lines or CSV file
local cli = require("auditrun.cli")
local iw = require("auditrun.insights.workflows")
local workflow = require("auditrun.workflow")

local RISK = { "none", "low", "medium", "high", "not_defined" }

local opts = cli.parse({
  name = "site-overview",
  summary = "Writes the site overview rows (risky, sensitive and exposed item counts per site) to a file.",
  examples = { "auditrun site-overview --out sites.csv", "auditrun site-overview --risk high,medium --format sqlite" },
  kind = "records", apis = { "graph", "legacy" },
  flags = function(p)
    p:option("--risk", "Only sites of these risk levels, comma-separated: " .. table.concat(RISK, ", ") .. ".")
      :argname("LIST"):count("*"):convert(cli.one_of(RISK))
  end,
}, ...)

local risk = cli.flatten(opts.risk)
if #risk == 0 then risk = nil end
local _, api = iw.connect(opts)
workflow.records(opts, {
  columns = iw.columns(api, "site_overview"),
  rows = function()
    if api.api == "graph" then return api:site_overview { riskLevel = risk } end
    return api:site_overview { filters = risk and { riskLevel = risk } or nil }
  end,
})
