-- auditrun.insights.workflows: what the bundled Insights workflows share on
-- top of auditrun.cli and auditrun.workflow: their Insights flags, signing
-- in with --profile, and an export of one report as a workflow item.
local activity = require("auditrun.activity")
local auditrun = require("auditrun")
local cli = require("auditrun.cli")
local insights = require("auditrun.insights")
local paging = require("auditrun.paging")
local schemas = require("auditrun.schemas")
local time = require("auditrun.time")
local timeline = require("auditrun.insights.timeline")
local workflow = require("auditrun.workflow")

local M = {}

-- The workspaces of the Microsoft 365 access exports, as friendly words
-- (the endpoint catalogue turns them into each API's spelling).
M.DATA_SOURCES = { "teams", "sharepoint", "onedrive", "group" }
M.GOOGLE_DATA_SOURCES = { "my_drive", "shared_drive" }
M.LANGUAGES = { "en-US", "ja-JP", "fr-FR" }

--- data_sources_flag(p, words): --data-sources, repeatable or
--- comma-separated, each one of `words`.
function M.data_sources_flag(p, words)
  p:option("--data-sources", "Workspaces to report on, comma-separated: " .. table.concat(words, ", ")
    .. " (default: all of them).")
    :argname("LIST"):count("*"):convert(cli.one_of(words))
end

--- The data sources the options ask for (all of them by default).
function M.data_sources(opts, words)
  local list = cli.flatten(opts.data_sources)
  if #list == 0 then return words or M.DATA_SOURCES end
  return list
end

function M.language_flag(p)
  p:option("--language", "Report language (legacy API): " .. table.concat(M.LANGUAGES, ", ") .. ".")
    :choices(M.LANGUAGES)
end

--- check_language(opts) -> a usage error message, or nil
function M.check_language(opts)
  if opts.language and opts.api ~= "legacy" then return "--language applies to --api legacy only" end
end

--- list_file(spec, path) -> the lines of a --users/--sites FILE, or a
--- usage error (exit 2).
function M.list_file(spec, flag, path)
  if not path then return nil end
  local list, err = cli.read_list(path)
  if not list then cli.usage_error(spec, string.format("%s %s: %s", flag, path, err)) end
  return list
end

--- connect(opts) -> the root client (c, whose limiter both APIs share) and
--- the client of the API the options pick (c or c.legacy). Raises.
function M.connect(opts)
  local c = auditrun.try(insights.connect(nil, { profile = opts.profile }))
  return c, (opts.api == "legacy" and c.legacy or c)
end

--- run_exports(opts, o): the whole of an export workflow. Signs in, lists
--- the subjects and exports their reports into opts.out.
---
--- auditrun.workflow gives progress, manifest, summary and resume. o:
---   what      "groups": what the listing reads (for messages)
---   list      function(api, add): calls add(id, label[, name]) for each
---             subject (name: what a batch's label shows, default label)
---   graph, legacy, google: how the API the options pick exports, {name=,
---             params=function(ids) -> parameters, batch=N (subjects a job;
---             nil: one job each)}; an API left out is not offered.
function M.run_exports(opts, o)
  -- The table --compare names must be there before anything is sent.
  if opts.compare then auditrun.try(require("auditrun.access").table_of(opts.compare)) end
  local c, api = M.connect(opts)
  local how = opts.google and o.google or o[api.api]
  assert(how, "no export for this API")
  return workflow.exports(opts, api, c.limiter, { what = o.what, list = o.list, how = how })
end

--- activity_series(opts, o): an activity export workflow run with
--- --incremental --out-dir (auditrun.incremental), every event once across
--- runs.
---
--- Each run exports the window [bookmark, --to] for every subject and
--- writes the reports' rows, as the activity timeline's events (time,
--- vendor, user, action, verb, source, ip, object; raw: the row), to its
--- own file; the window's reports stay beside it. o: as run_exports takes
--- it, plus subjects (the list) and source (the coverage's name); each
--- export's params(ids, start, finish) gets the window's ends.
function M.activity_series(opts, o)
  local _, api = M.connect(opts)
  local how = opts.google and o.google or o[api.api]
  assert(how, "no export for this API")
  local export = { name = how.name, source = o.source, params = function(subject, start, finish)
    return how.params({ subject }, start, finish)
  end }
  workflow.windowed(opts, {
    time_of = function(row) return time.parse(row.time) end,
    first_from_required = true,
    source = function(given_from, given_to, out)
      local from, to = activity.range(given_from, given_to, { inclusive_to = true })
      -- The window's reports and their run state, beside its file.
      local dir, base = out:match("^(.*/)([^/]*)$")
      local reports = (dir or "") .. "." .. (base or out) .. ".insights"
      return {
        columns = schemas.columns("auditrun", opts.format),
        range = { from = from, to = to },
        run_dirs = { reports },
        warnings = { unreadable = "report(s) could not be read: their events are not in the file" },
        rows = function(warn, cov)
          local sources = timeline.export_sources(api, from, to, { insights_dir = reports, warn = warn, coverage = cov },
            o.subjects, export)
          local events = activity.merge(sources)
          return function() return (events()) end
        end,
      }
    end,
  })
end

-- The Graph row fields of each records endpoint, in the order of its
-- document's response table: the CSV columns (a row's other fields follow).
M.COLUMNS = {
  site_overview = { "siteName", "siteUrl", "riskItemCount", "sensitiveItemCount", "exposureItemCount" },
  site_permissions = { "module", "name", "url", "objectType", "principalName", "email", "principalType",
                       "permission", "numberOfMembers", "isExternalUser", "inheritType", "linkGivingAccessTo" },
  user_permissions = { "user", "module", "siteName", "name", "location", "objectType", "inheritType", "permission",
                       "sensitivityLevel", "dataType", "isDirect", "sensitivityLabel", "trainableClassifier",
                       "inheritedFrom" },
  site_detail_records = { "id", "name", "location", "objectType", "createdBy", "module", "inheritType", "siteName",
                          "sensitivityLevel", "exposureLevel", "scannedTime", "createdTime", "modifiedTime",
                          "channelName", "riskLevel", "privacy", "dataType", "sensitivityLabel",
                          "trainableClassifier", "tagName", "retentionLabel", "creatorEmail", "webUrl" },
  sharing_link_summaries = { "id", "siteId", "selfId", "linkId", "logonName", "createTime", "expireTime", "name",
                             "objectUrl", "linkType", "shareBy", "inheritFrom", "inheritType", "shareWith", "linkUrl",
                             "permission", "fileType", "sensitivityLevel" },
}

--- columns(api, graph_endpoint) -> the declared CSV columns for the Graph
--- API; for the legacy API the first row's fields (its names differ).
function M.columns(api, name)
  if api.api == "graph" then return M.COLUMNS[name] end
  return nil
end

-- Sharing link types, as the catalogue's words take them.
M.LINK_TYPES = { "specific", "organization", "anyone" }
M.GOOGLE_LINK_TYPES = { "target_audience", "anyone" }

function M.event_types_flag(p)
  p:option("--event-type", "Only these events (as the service names them, e.g. FileAccessed); repeatable or "
    .. "comma-separated.")
    :argname("TYPE"):count("*"):convert(cli.words)
end

--- activity_flags(p, google): the flags of an activity export (user- and
--- object-activities) after its subjects: --from and --to, --event-type,
--- --google (google: its help, what the subjects are then) and --language.
function M.activity_flags(p, google)
  cli.time_flags(p)
  M.event_types_flag(p)
  p:flag("--google", google)
  M.language_flag(p)
end

--- check_activity(opts) -> a usage error of the activity_flags, or nil
--- (cli.read checks --from and --to).
function M.check_activity(opts)
  if opts.google and opts.api ~= "graph" then return "--google uses the Graph API; leave out --api legacy" end
  return M.check_language(opts)
end

--- event_types(opts) -> the events --event-type names, or nil for all.
function M.event_types(opts)
  local events = cli.flatten(opts.event_type)
  if #events == 0 then return nil end
  return events
end

--- site_ids(api, urls) -> the Graph site ids of site URLs, one site_id call
--- each. Raises on a site the service does not know.
function M.site_ids(api, urls)
  local ids = {}
  for i, url in ipairs(urls) do
    local body = auditrun.try(api:call("site_id", { siteUrl = url }))
    local id = type(body) == "table" and (body.values or body.results or body)[1]
    if type(id) ~= "string" then
      error(auditrun.error("insights", "no site id for " .. url), 0)
    end
    ids[i] = id
  end
  return ids
end

--- site_pages(api, name, queries, sites) -> pages(token) for
--- workflow.records: the per-site read `name` for each parameter table of
--- `queries` in turn, one site at a time.
---
--- name is site_detail_records or sharing_link_summaries. The walk
--- (auditrun.paging.walk: levels query, site, pages) is one a rerun
--- continues where the last one stopped instead of reading every site
--- again. A token is saved once a site has been read to its end;
--- pages within a site give none, so a rerun starts the site it stopped in
--- from its first page (passing by the rows it has) and never relies on a
--- next link still being valid later. sites: the sites to walk (URLs or
--- ids, as the read takes them), or nil for every site the overview lists
--- (ids are looked up only for the sites still to read).
function M.site_pages(api, name, queries, sites)
  local pg = api.catalogue:definition(name).paging
  local each = pg.each
  return paging.walk {
    -- The version before the token saved {query = q, site = n}: site n of query q read to its end.
    old = function(c)
      local q, n = math.tointeger(c.query), math.tointeger(c.site)
      return q and n and { at = { q, n + 1 } } or nil
    end,
    levels = {
      { items = queries },
      { items = function() return sites or api:rows("site_overview", {}) end,
        take = function(site)
          if sites then return site end
          return each == "siteId" and M.site_ids(api, { site.siteUrl })[1] or site.siteUrl
        end },
      { restart = true,
        pages = function(query, site)
          local p = {}
          for k, v in pairs(query) do p[k] = v end
          p[each] = site
          return api:pages(name, p)
        end,
        rows = function(body) return paging.rows_of(body, pg.rows) end },
    },
  }
end

--- query_pages(api, name, queries, decorate) -> pages(token) for
--- workflow.records: the paged read `name` for each parameter table of
--- `queries` in turn (auditrun.paging.walk: levels query, pages).
---
--- A token is saved when a query has been read to its end, so a rerun
--- starts at the query it stopped in. decorate(row, q), when given, adds to
--- each row what its query (the q-th) was.
function M.query_pages(api, name, queries, decorate)
  local pg = api.catalogue:definition(name).paging
  local numbered = {}
  for q in ipairs(queries) do numbered[q] = q end
  return paging.walk {
    -- The version before the token saved {query = q}: query q read to its end.
    old = function(c)
      local q = math.tointeger(c.query)
      return q and { at = { q + 1 } } or nil
    end,
    levels = {
      { items = numbered },
      { restart = true,
        pages = function(q) return api:pages(name, queries[q]) end,
        rows = function(body, q)
          local rows = paging.rows_of(body, pg.rows)
          if decorate then
            for _, row in ipairs(rows) do decorate(row, q) end
          end
          return rows
        end },
    },
  }
end

--- in_chunks(list, n) -> an iterator over slices of at most n items.
function M.in_chunks(list, n)
  local i = 0
  return function()
    if i >= #list then return nil end
    local chunk = table.move(list, i + 1, math.min(i + n, #list), 1, {})
    i = i + n
    return chunk
  end
end

--- check_site_limit(spec, opts, sites): the legacy exports take at most 100
--- site collections a job; more is a usage error, before anything is sent.
function M.check_site_limit(spec, opts, sites)
  if sites and #sites > 100 and opts.api == "legacy" then
    cli.usage_error(spec, string.format("--sites lists %d site collections; the legacy API takes at most 100 a job",
      #sites))
  end
end

--- users(api) -> an iterator over the user summaries of either API.
function M.users(api)
  if api.api == "graph" then return api:user_summaries() end
  return api:users()
end

-- --option words and the export option each stands for.
M.OPTIONS = { objects = 2, sites = 1, summary = 3 }

function M.option_flag(p, note)
  p:option("--option", "objects: access to every object; sites: site collection level; summary: summary only"
    .. (note or "") .. ".", "objects"):choices { "objects", "sites", "summary" }
end

--- user_access(spec, ...): the user access workflows (user-access,
--- guest-access): spec.accept(login) picks the users of the summaries;
--- spec.users_flag adds --users FILE; spec.google adds --google.
function M.user_access(spec, ...)
  local own = spec.flags
  spec.kind, spec.apis, spec.access = "export", { "graph", "legacy" }, true
  spec.flags = function(p)
    if own then own(p) end
    local both = { table.unpack(M.DATA_SOURCES) }
    if spec.google then
      for _, w in ipairs(M.GOOGLE_DATA_SOURCES) do both[#both + 1] = w end
    end
    M.data_sources_flag(p, both)
    p:option("--sites", "Only these site collections: a file of site URLs, one a line."):argname("FILE")
    M.option_flag(p, " (legacy API and Google)")
    M.language_flag(p)
    p:option("--batch-size", "Users per legacy job (at most 100).", "100"):convert(function(v)
      local n, why = cli.count(v)
      if n and n > 100 then return nil, "must be at most 100 (the legacy emails limit)" end
      return n, why
    end):argname("N")
  end
  spec.check = function(o)
    if o.google then
      if o.api ~= "graph" then return "--google uses the Graph API; leave out --api legacy" end
      if not o.users then return "--google needs --users FILE (the Graph API lists no Google users)" end
      if o.sites then return "--sites is for Microsoft 365; Google reports take no site list" end
    end
    return M.check_language(o)
  end
  local opts = cli.parse(spec, ...)
  local given = M.list_file(spec, "--users", opts.users)
  local sites = M.list_file(spec, "--sites", opts.sites)
  local words = opts.google and M.GOOGLE_DATA_SOURCES or M.DATA_SOURCES
  local sources = M.data_sources(opts, words)
  for _, w in ipairs(cli.flatten(opts.data_sources)) do
    local ok = false
    for _, g in ipairs(words) do ok = ok or g == w:lower() end
    if not ok then
      cli.usage_error(spec, string.format("--data-sources %s: %s takes %s", w, opts.google and "--google" or
        "Microsoft 365", table.concat(words, ",")))
    end
  end
  M.check_site_limit(spec, opts, sites)
  local option = M.OPTIONS[opts.option]
  return M.run_exports(opts, {
    what = "users",
    list = function(api, add)
      if given then
        for _, u in ipairs(given) do add(u, "user " .. u, u) end
        return
      end
      for u in M.users(api) do
        local login = u.loginName
        if type(login) == "string" and login ~= "" and spec.accept(login) then add(login, "user " .. login, login) end
      end
    end,
    graph = {
      name = "user_permissions_export",
      params = function(ids) return { email = ids[1], dataSources = sources, siteUrls = sites } end,
    },
    legacy = {
      name = "user_permissions_export", batch = opts.batch_size,
      params = function(ids)
        return { emails = ids, dataSources = sources, siteUrls = sites, ExportOptionType = option,
                 Language = opts.language }
      end,
    },
    google = {
      name = "google_user_permissions_export",
      params = function(ids) return { email = ids[1], dataSources = sources, exportOptionType = option } end,
    },
  })
end

return M
