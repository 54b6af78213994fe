-- Writes the sharing link summaries (who shared what, with whom, how) to a JSON Lines or CSV file
local cli = require("auditrun.cli")
local iw = require("auditrun.insights.workflows")
local workflow = require("auditrun.workflow")

local spec = {
  name = "link-summaries",
  summary = "Writes the sharing link summaries (each link: object, type, who shared it, with whom) to a file.",
  description = "Graph API: site by site, every site or those of --sites FILE. Legacy API (--api legacy): the "
    .. "link permission query, 100 sites a request.",
  examples = {
    "auditrun link-summaries --type anyone --out anyone-links.csv",
    "auditrun link-summaries --sites sites.txt --api legacy",
  },
  kind = "records", apis = { "graph", "legacy" },
  flags = function(p)
    p:option("--type", "Link types, comma-separated or repeated: " .. table.concat(iw.LINK_TYPES, ", ")
      .. " (default: all).")
      :argname("LIST"):count("*"):convert(cli.one_of(iw.LINK_TYPES))
    p:option("--sites", "Only these site collections: a file of site URLs, one a line."):argname("FILE")
  end,
}
local opts = cli.parse(spec, ...)
local sites = iw.list_file(spec, "--sites", opts.sites)
local types = cli.flatten(opts.type)
if #types == 0 then types = iw.LINK_TYPES end

local _, api = iw.connect(opts)
if api.api == "graph" then
  -- Each type in turn, site by site; a rerun goes on from where it stopped.
  local queries = {}
  for i, t in ipairs(types) do queries[i] = { linkType = t } end
  workflow.records(opts, {
    columns = iw.columns(api, "sharing_link_summaries"),
    pages = iw.site_pages(api, "sharing_link_summaries", queries, sites),
  })
  return
end

workflow.records(opts, {
  rows = function()
    -- Each type in turn, and each hundred sites.
    local queries = {}
    for _, t in ipairs(types) do
      if sites then
        for chunk in iw.in_chunks(sites, 100) do
          queries[#queries + 1] = function() return api:links { LinkType = t, SiteUrls = chunk } end
        end
      else
        queries[#queries + 1] = function() return api:links { LinkType = t } end
      end
    end
    local q, rows = 0, nil
    return function()
      while true do
        local row = rows and rows()
        if row then return row end
        q = q + 1
        if not queries[q] then return nil end
        rows = queries[q]()
      end
    end
  end,
})
