-- Exports the sharing links report of each link type (--type) over a time window (--from/--to)
local cli = require("auditrun.cli")
local iw = require("auditrun.insights.workflows")

local DAY = 86400

local spec = {
  name = "sharing-links",
  summary = "Exports the sharing links report of each link type (--type) created in a time window.",
  description = "Graph API: one sharing_links_export job per link type (--google: the Google Workspace "
    .. "export). Legacy API (--api legacy): link_permissions_export. Without --from/--to the window is the last "
    .. "30 days. Reports land in --out DIR, listed in DIR/manifest.jsonl; a rerun into the same folder fetches "
    .. "only what is missing.",
  examples = {
    "auditrun sharing-links --type anyone --from 2025-06-01 --out links/",
    "auditrun sharing-links --google --type anyone --out google-links/",
  },
  kind = "export", apis = { "graph", "legacy" }, access = true,
  flags = function(p)
    local all = {}
    for _, t in ipairs(iw.LINK_TYPES) do all[#all + 1] = t end
    all[#all + 1] = "target_audience"
    p:option("--type", "Link types, comma-separated or repeated: " .. table.concat(iw.LINK_TYPES, ", ")
      .. " (--google: target_audience, anyone); default all.")
      :argname("LIST"):count("*"):convert(cli.one_of(all))
    cli.time_flags(p, { from = " (default: 30 days ago)", to = " (default: now)" })
    p:flag("--google", "Google Workspace links (Graph API).")
    iw.language_flag(p)
  end,
  check = function(o)
    if o.google and o.api ~= "graph" then return "--google uses the Graph API; leave out --api legacy" end
    local known = {}
    for _, t in ipairs(o.google and iw.GOOGLE_LINK_TYPES or iw.LINK_TYPES) do known[t] = true end
    for _, t in ipairs(cli.flatten(o.type)) do
      if not known[t] then return "--type " .. t .. " is not a " .. (o.google and "Google" or "Microsoft 365") .. " link type" end
    end
    return iw.check_language(o)
  end,
}
local opts = cli.parse(spec, ...)
local types = cli.flatten(opts.type)
if #types == 0 then types = opts.google and iw.GOOGLE_LINK_TYPES or iw.LINK_TYPES end
-- The Graph export needs both ends of the window.
local now = os.time()
local to = opts.to or now
local from = opts.from or now - 30 * DAY
if from > to then
  cli.usage_error(spec, "--from " .. cli.time_text(from) .. " is after --to " .. cli.time_text(to))
end

local function graph(ids) return { exportLinkType = ids[1], startTime = from, finishTime = to } end
iw.run_exports(opts, {
  what = "link types",
  list = function(_, add)
    for _, t in ipairs(types) do add(t, t .. " links " .. cli.time_text(from) .. " to " .. cli.time_text(to)) end
  end,
  graph = { name = "sharing_links_export", params = graph },
  google = { name = "google_sharing_links_export", params = graph },
  legacy = {
    name = "link_permissions_export",
    params = function(ids) return { exportLinkType = ids[1], startTime = from, endTime = to, language = opts.language } end,
  },
})
