-- Exports the access report of every group with external members (Graph: a job per group; legacy: batches)
local cli = require("auditrun.cli")
local iw = require("auditrun.insights.workflows")

local spec = {
  name = "external-group-access",
  summary = "Exports the access report of every group whose summary shows external members.",
  description = "Graph API: one group_access_export job per group. Legacy API (--api legacy): "
    .. "group_permissions_export with up to --batch-size groups a job (their ids in Emails). Each report lands "
    .. "in --out DIR and is listed in DIR/manifest.jsonl; a rerun into the same folder fetches only what is missing.",
  examples = {
    "auditrun external-group-access --out reports/",
    "auditrun external-group-access --api legacy --batch-size 50 --out reports/",
    "auditrun external-group-access --out 2026-12/ --compare 2026-11/",
  },
  kind = "export", apis = { "graph", "legacy" }, access = true,
  flags = function(p)
    iw.data_sources_flag(p, iw.DATA_SOURCES)
    iw.option_flag(p)
    p:option("--sites", "Only these site collections: a file of site URLs, one a line."):argname("FILE")
    iw.language_flag(p)
    p:option("--batch-size", "Groups per legacy job.", "100"):convert(cli.count):argname("N")
  end,
  check = iw.check_language,
}

local opts = cli.parse(spec, ...)
local sites = iw.list_file(spec, "--sites", opts.sites)
iw.check_site_limit(spec, opts, sites)
local sources = iw.data_sources(opts)
local option = iw.OPTIONS[opts.option]

iw.run_exports(opts, {
  what = "groups",
  list = function(api, add)
    for g in api:groups() do
      -- The summaries list the groups with external users; a count of 0 is skipped.
      if type(g.groupId) == "string" and (tonumber(g.externalMemberCount) or 1) > 0 then
        local name = type(g.displayName) == "string" and g.displayName or g.groupId
        add(g.groupId, "group " .. name, name)
      end
    end
  end,
  graph = {
    name = "group_access_export",
    params = function(ids)
      return { groupId = ids[1], exportOptionType = option, siteUrls = sites, dataSources = sources }
    end,
  },
  legacy = {
    name = "group_permissions_export", batch = opts.batch_size,
    params = function(ids)
      return { Emails = ids, SiteUrls = sites, dataSources = sources, ExportOptionType = option,
               Language = opts.language }
    end,
  },
})
