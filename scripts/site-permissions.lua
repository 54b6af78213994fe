-- Exports the permission report of the site collections in --sites FILE, or of every site
local cli = require("auditrun.cli")
local iw = require("auditrun.insights.workflows")

local spec = {
  name = "site-permissions",
  summary = "Exports the permission report of the site collections of --sites FILE, or of every site the "
    .. "site overview lists.",
  description = "Graph and legacy API: site_permissions_export with up to --batch-size sites a job (at most "
    .. "100). --google: Google drives (--drives FILE of drive ids). Reports land in --out DIR, listed in "
    .. "DIR/manifest.jsonl; a rerun into the same folder fetches only what is missing.",
  examples = {
    "auditrun site-permissions --sites sites.txt --batch-size 20 --out site-permissions/",
    "auditrun site-permissions --google --drives drives.txt --out drives/",
  },
  kind = "export", apis = { "graph", "legacy" }, access = true,
  flags = function(p)
    p:option("--sites", "The site collections: a file of site URLs, one a line (default: every site)."):argname("FILE")
    p:option("--drives", "With --google: a file of Google drive ids (or users' e-mails), one a line."):argname("FILE")
    p:flag("--google", "Google Workspace drives (Graph API; needs --drives).")
    p:option("--batch-size", "Sites (or drives) per job.", "100"):convert(function(v)
      local n, why = cli.count(v)
      if n and n > 100 then return nil, "must be at most 100 (the export's limit)" end
      return n, why
    end):argname("N")
    iw.language_flag(p)
  end,
  check = function(o)
    if o.google then
      if o.api ~= "graph" then return "--google uses the Graph API; leave out --api legacy" end
      if not o.drives then return "--google needs --drives FILE" end
      if o.sites then return "--sites is for Microsoft 365; give --drives with --google" end
    elseif o.drives then
      return "--drives goes with --google"
    end
    return iw.check_language(o)
  end,
}
local opts = cli.parse(spec, ...)
local sites = iw.list_file(spec, "--sites", opts.sites)
local drives = iw.list_file(spec, "--drives", opts.drives)

iw.run_exports(opts, {
  what = opts.google and "drives" or "sites",
  list = function(api, add)
    for _, s in ipairs(drives or sites or {}) do add(s, s) end
    if drives or sites then return end
    for row in api:site_overview {} do
      if type(row.siteUrl) == "string" then add(row.siteUrl, row.siteUrl) end
    end
  end,
  graph = { name = "site_permissions_export", batch = opts.batch_size,
            params = function(ids) return { siteUrls = ids } end },
  google = { name = "google_drive_permissions_export", batch = opts.batch_size,
             params = function(ids) return { driveIds = ids } end },
  legacy = { name = "site_permissions_export", batch = opts.batch_size,
             params = function(ids) return { siteUrls = ids, language = opts.language } end },
})
