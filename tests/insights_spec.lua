-- The Insights client end to end against the sandbox tenant: every
-- endpoint of both APIs sent as built, sign-in with each kind of
-- credential, every paging style across page boundaries, the export job
-- lifecycle, the tenant's 5-job limit, token renewal, hostile file names.
local helper = require("tests.helper")
local sandbox, util = helper.sandbox, helper.util
local auditrun = require("auditrun")
local auth = require("auditrun.auth")
local cjson = require("cjson")
local CAT = require("auditrun.insights").catalogues
local http = sandbox.http()
local insights = require("auditrun.insights")
local paging = require("auditrun.paging")

local FX = "tests/fixtures/"
local NO_ENV = { getenv = function() end }   -- no AUDITRUN_* and no config file
local FAST = { first_interval = 0.05 }

local sh = util.sh

local function count(iter)
  local n = 0
  for _ in iter do n = n + 1 end
  return n
end

-- Parameters of every endpoint for the sandbox's tenant `t` (its
-- /insights-control/tenant summary). Status and file endpoints are reached
-- through job objects below.
local TIMES = { startTime = "2024-01-01T00:00:00", finishTime = "2024-03-01T00:00:00" }
local function with_times(p, finish_name)
  p.startTime = TIMES.startTime
  p[finish_name or "finishTime"] = TIMES.finishTime
  return p
end
local CALLS = {
  graph = {
    google_drive_permissions_export = function(t) return { driveIds = { t.google.sharedDrives[1] } } end,
    google_group_access_export = function(t)
      return { groupId = t.google.groups[1], exportOptionType = 2, dataSources = { "shared drive" } }
    end,
    google_object_activities_export = function(t) return { id = t.google.files[1] } end,
    google_sharing_links_export = function() return with_times { exportLinkType = "anyone" } end,
    google_user_activities_export = function(t) return { email = t.google.users[1] } end,
    google_user_permissions_export = function(t) return { email = t.google.users[1], dataSources = { "my drive" } } end,
    group_access_export = function(t) return { groupId = t.groups[1].id, exportOptionType = 1, dataSources = { "teams" } } end,
    group_summaries = function() return { startPage = 1, pageSize = 10 } end,
    object_activities_export = function(t) return { path = t.objects[1] } end,
    set_tag = function(t) return { siteId = t.sites[1].id, objectUrl = t.objects[1], tagName = t.tags[1] } end,
    sharing_link_summaries = function(t) return { siteUrl = t.sites[1].url, linkType = "specific" } end,
    sharing_links_export = function() return with_times { exportLinkType = "organization" } end,
    site_detail_records = function(t) return { siteId = t.sites[1].id, pageSize = 10 } end,
    site_id = function(t) return { siteUrl = t.sites[1].url } end,
    site_overview = function() return { riskLevel = { "high" }, pageSize = 10 } end,
    site_permissions = function(t) return { siteUrls = { t.sites[1].url }, pageSize = 10 } end,
    site_permissions_export = function(t) return { siteUrls = { t.sites[1].url, t.sites[2].url } } end,
    user_activities_export = function(t) return with_times { email = t.guests[1].loginName } end,
    user_permissions = function(t) return { emails = { t.users[1].loginName, t.guests[1].loginName } } end,
    user_permissions_export = function(t) return { email = t.guests[1].loginName, dataSources = { "teams", "onedrive" } } end,
    user_summaries = function() return { startPage = 2, pageSize = 10 } end,
  },
  legacy = {
    activity_export = function(t) return with_times({ email = t.users[1].loginName }, "endTime") end,
    detail_records = function() return { pageSize = 10, filters = { objectType = { "file" } } } end,
    detail_records_by_site = function(t)
      return { siteId = t.sites[1].id, pageSize = 10, filters = { objectType = { "file", "folder" } } }
    end,
    group_permissions_export = function() return { ExportOptionType = 3, dataSources = { "teams" } } end,
    groups = function() return { StartPage = 1, PageSize = 10, Language = "ja-JP" } end,
    link_permissions_export = function() return { exportLinkType = "anyone" } end,
    links = function(t) return { SiteUrls = { t.sites[1].url }, LinkType = 64, PageSize = 10 } end,
    site_ids = function(t) return { siteUrls = { t.sites[1].url, t.sites[2].url } } end,
    site_overview = function() return { pageSize = 10 } end,
    site_permissions = function(t) return { SiteUrls = { t.sites[1].url }, Top = 10 } end,
    site_permissions_export = function(t) return { siteUrls = { t.sites[1].url } } end,
    user_permissions = function(t) return { Emails = { t.users[1].loginName }, Top = 10 } end,
    user_permissions_export = function(t)
      return { emails = { t.guests[1].loginName }, dataSources = { "sharepoint" }, ExportOptionType = 1 }
    end,
    users = function() return { StartPage = 1, PageSize = 10 } end,
  },
}

describe("insights client", function()
  local sb = sandbox.for_describe { job_seconds = 0.05 }
  local t, dir

  local function control(method, path, body)
    return auditrun.try(http.request_json { method = method, url = sb.url .. "/insights-control" .. path, json = body })
  end
  local function requests(match)
    return control("GET", "/requests" .. (match and ("?match=" .. http.escape(match)) or ""))
  end
  local function fault(f) control("POST", "/faults", f) end

  local function settings(extra)
    local s = { insights_url = sb.url .. "/insights", identity_url = sb.issuer, client_id = sb.clients.cert,
                cert = FX .. "app.pfx", cert_password = "sandbox-pass", ca_file = sb.ca_file }
    for k, v in pairs(extra or {}) do s[k] = v or nil end
    return s
  end
  local function connect(extra)
    return auditrun.try(insights.connect(settings(extra), NO_ENV))
  end

  setup(function() t = control("GET", "/tenant") end)
  before_each(function()
    auth.reset()
    control("POST", "/reset")
    control("POST", "/config", { jobSeconds = 0.05, maxJobs = 5 })
    dir = util.tempdir()
  end)
  after_each(function() util.remove(dir) end)

  describe("sends every endpoint as built", function()
    for _, api in ipairs { "graph", "legacy" } do
      it("for the " .. api .. " API", function()
        local c = connect()
        local client = api == "graph" and c or c.legacy
        for _, name in ipairs(CAT[api]:list()) do
          local def = CAT[api].endpoints[name]
          local make = CALLS[api][name]
          if def.kind == "status" or def.kind == "file" then
            assert.is_nil(make, name)
          else
            assert.is_function(make, name .. " has no call in CALLS")
            local params = make(t)
            local req = assert(CAT[api]:build(name, params))
            control("DELETE", "/requests")
            if def.kind == "submit" then
              local job = auditrun.try(client:submit(name, params))
              assert.is_string(job.id)
              auditrun.try(job:wait(FAST))
            else
              auditrun.try(client:call(name, params))
            end
            local sent = requests()[1]
            assert.equal(req.method, sent.method, name)
            assert.equal("/insights" .. req.path .. (req.query ~= "" and "?" .. req.query or ""), sent.url, name)
            if req.body then
              assert.same(req.body, cjson.decode(sent.body), name)
              assert.matches("^application/json", sent.headers["content-type"], name)
            else
              assert.equal("", sent.body, name)
            end
            assert.matches("^Bearer ", sent.headers.authorization, name)
          end
        end
      end)
    end

    it("encodes a guest e-mail twice in the path and a site URL once", function()
      local c = connect()
      local guest = t.guests[1].loginName
      assert.matches("#ext#", guest:lower())
      local job = auditrun.try(c:submit("user_permissions_export", { email = guest, data_sources = "teams" }))
      auditrun.try(job:wait(FAST))
      local sent = requests("/access/export")[1]
      local encoded = guest:lower():gsub("#", "%%2523"):gsub("@", "%%2540")
      assert.equal("/insights/users/" .. encoded .. "/access/export?dataSources=microsoft%20teams", sent.url)
      auditrun.try(c:call("site_id", { site_url = t.sites[1].url }))
      sent = requests("/siteid")[1]
      assert.equal("/insights/sites/" .. http.escape(t.sites[1].url) .. "/siteid", sent.url)
      assert.matches("^/insights/sites/https%%3A%%2F%%2F", sent.url)
    end)

    it("refuses a bad parameter before anything is sent", function()
      local c = connect()
      control("DELETE", "/requests")
      local ok, err = c:call("site_overview", { pageSize = 101 })
      assert.is_nil(ok)
      assert.equal("invalid", err.kind)
      assert.has_error(function() for _ in c:groups { pageSize = 0 } do end end)
      assert.has_error(function() for _ in c:groups { colour = "red" } do end end)
      assert.same({}, requests())
    end)
  end)

  describe("signs in", function()
    local creds = {
      { "a .pfx certificate", {} },
      { "a PEM certificate and an encrypted key", { cert = FX .. "app-cert.pem", key = FX .. "app-key-encrypted.pem" } },
      { "a client secret", { client_id = "secret", cert = false, cert_password = false } },
    }
    for _, case in ipairs(creds) do
      it("with " .. case[1], function()
        local extra = {}
        for k, v in pairs(case[2]) do extra[k] = v end
        if extra.client_id then
          extra.client_id, extra.client_secret = sb.clients.secret, sb.clients.secret_value
        end
        local c = connect(extra)
        assert.is_table(c:groups()())
        assert.is_table(c.legacy:groups()())
        assert.equal(1, c.session.tokens_fetched)
      end)
    end

    it("refuses a wrong certificate password in one line that keeps the password out", function()
      local c, err = insights.connect(settings { cert_password = "not-the-password" }, NO_ENV)
      assert.is_nil(c)
      assert.equal("key", err.kind)
      local line = tostring(err)
      assert.matches("app%.pfx", line)
      assert.is_nil(line:find("\n"))
      assert.is_nil(line:find("not-the-password", 1, true))
    end)

    it("refuses a certificate and a client secret configured together", function()
      local c, err = insights.connect(settings { client_secret = "s" }, NO_ENV)
      assert.is_nil(c)
      assert.equal("config", err.kind)
      assert.matches("keep one", err.message)
    end)

    it("surfaces the provider's refusal of an unknown scope with its description", function()
      local c = connect { scope = "insights.unknown" }
      local ok, err = pcall(function() return c:groups()() end)
      assert.is_false(ok)
      assert.equal("auth", err.kind)
      assert.matches("invalid_scope", tostring(err))
      assert.is_false(err.retryable == true)
    end)

    it("drops a token refused before its expiry and retries once with a new one", function()
      local c = connect()
      assert.is_table(c:groups()())
      fault { match = "GET /insights/groups/summary", token_revoked = true }
      assert.equal(t.counts.groupsWithExternalMembers, count(c:groups()))
      assert.equal(2, c.session.tokens_fetched)
      local statuses = {}
      for _, r in ipairs(requests("/groups/summary")) do statuses[#statuses + 1] = r.status end
      assert.same({ 200, 401, 200, 200, 200 }, statuses)
    end)
  end)

  describe("pages", function()
    it("group summaries of both APIs by startPage across pages", function()
      local c = connect()
      local n = t.counts.groupsWithExternalMembers
      assert.is_true(n > 200)
      assert.equal(n, count(c:groups()))
      assert.equal(n, count(c.legacy:groups()))
      local pages = {}
      for _, r in ipairs(requests("/groups/summary")) do pages[#pages + 1] = r.url:match("startPage=(%d+)") end
      assert.same({ "1", "2", "3" }, pages)
      pages = {}
      for _, r in ipairs(requests("/Group/summary")) do pages[#pages + 1] = cjson.decode(r.body).StartPage end
      assert.same({ 1, 2, 3 }, pages)
    end)

    it("user summaries with a chosen page size, ending on the short page", function()
      local c = connect()
      assert.equal(t.counts.users, count(c:user_summaries { page_size = 40 }))
      assert.equal(math.ceil(t.counts.users / 40), #requests("/users/summary"))
      -- An exact multiple needs one empty page to know it is the end.
      assert.equal(t.counts.users, count(c.legacy:users { page_size = t.counts.users / 10 }))
      assert.equal(11, #requests("/User/summary"))
    end)

    it("by nextLink, passed back exactly as given", function()
      local c = connect()
      local links, rows = {}, 0
      for body in c:pages("user_permissions", { emails = { t.users[1].loginName, t.guests[1].loginName } }) do
        links[#links + 1] = body.nextLink
        rows = rows + #paging.rows_of(body, { "values" })
      end
      assert.is_true(#links >= 3)
      assert.is_true(rows > 200)
      local sent = requests("/users/access")
      assert.equal(#links, #sent)
      assert.is_nil(cjson.decode(sent[1].body).nextLink)
      for i = 2, #sent do assert.equal(links[i - 1], cjson.decode(sent[i].body).nextLink) end
    end)

    it("by the legacy Token, with Top as the page size", function()
      local c = connect()
      local n = count(c.legacy:site_permissions { site_urls = { t.sites[1].url } })
      assert.is_true(n > 100)
      local sent = requests("/Site/permission")
      assert.equal(math.ceil(n / 100), #sent)
      assert.equal(cjson.null, cjson.decode(sent[1].body).Token)
      assert.equal(100, cjson.decode(sent[1].body).Top)
      assert.is_string(cjson.decode(sent[2].body).Token)
    end)

    it("per site: one site, a list of sites, and every site of the tenant", function()
      local c = connect()
      local one = count(c:sharing_link_summaries { site_url = t.sites[1].url, link_type = "specific" })
      assert.is_true(one > 100)
      local two = count(c:sharing_link_summaries { site_url = { t.sites[1].url, t.sites[2].url }, link_type = "specific" })
      assert.is_true(two > one)
      assert.equal(t.counts.objects, count(c:site_detail_records()))
      local by_site = count(c.legacy:detail_records_by_site { filters = { object_type = { "file", "folder", "item" } } })
      assert.is_true(by_site > 1000)
      local sites = {}
      for body, _, site in c:pages("site_detail_records", { site_id = { t.sites[1].id, t.sites[2].id } }) do
        sites[site] = (sites[site] or 0) + #paging.rows_of(body, { "values" })
      end
      assert.equal(t.sites[1].objects, sites[t.sites[1].id])
      assert.equal(t.sites[2].objects, sites[t.sites[2].id])
    end)

  end)

  describe("export jobs", function()
    local function zip_names(path)
      return sh(("python3 -c 'import sys, zipfile; print(\"\\n\".join(zipfile.ZipFile(sys.argv[1]).namelist()))' %s")
        :format(path))
    end

    it("submit, wait and download a zip with an XLSX report inside, on both APIs", function()
      local c = connect()
      local file = auditrun.try(c:export("user_permissions_export", { email = t.guests[1].loginName, data_sources = "teams" },
        { dir = dir, first_interval = 0.05 }))
      assert.equal(dir .. "/" .. file.name, file.path)
      assert.matches("%.zip$", file.name)
      assert.equal(auditrun.sha256_file(file.path), file.sha256)
      assert.matches("%.xlsx", zip_names(file.path))
      assert.is_string(file.job)

      local legacy = auditrun.try(c.legacy:export("user_permissions_export", {
        emails = { t.guests[1].loginName }, data_sources = "teams", export_option_type = 1 },
        { dir = dir, first_interval = 0.05 }))
      assert.matches("%.xlsx", zip_names(legacy.path))
      assert.is_true(#requests("/api/v1/permission/export/status?id=" .. legacy.job) >= 1)
      assert.equal(1, #requests("/api/v1/permission/export/get?id=" .. legacy.job))
    end)

    it("report a job that failed on the service", function()
      local c = connect()
      fault { match = "GET /insights/users/", job_fails = true }
      local file, err = c:export("user_permissions_export", { email = t.users[1].loginName, data_sources = "teams" },
        { dir = dir, first_interval = 0.05 })
      assert.is_nil(file)
      assert.equal("job", err.kind)
      assert.matches("failed on the service", err.message)
      assert.equal("", sh("ls -A " .. dir))
    end)

    it("export once per key through a run state, submitting again a job that failed, up to max_attempts", function()
      local c = connect()
      local st = auditrun.try(require("auditrun.state").open(dir .. "/.auditrun/state.jsonl"))
      local email = t.guests[2].loginName
      fault { match = "GET /insights/users/", job_fails = true }
      local params, opts = { email = email, data_sources = "teams" }, { dir = dir, max_attempts = 2 }
      local file = auditrun.try(c:export_once(st, "guest", "user_permissions_export", params, opts))
      assert.is_false(file.reused)
      assert.equal(2, #requests("/access/export"))   -- the failed job, then one that finished
      assert.same({ path = file.path, size = file.size, sha256 = file.sha256, job = file.job },
        { path = st:get("guest").path, size = st:get("guest").size, sha256 = st:get("guest").sha256,
          job = st:get("guest").job })
      local again = auditrun.try(c:export_once(st, "guest", "user_permissions_export", params, opts))
      assert.is_true(again.reused)
      assert.equal(file.path, again.path)
      assert.equal(2, #requests("/access/export"))
      st:close()
    end)

    it("retry a submit the service refused with 429 or 503, and nothing else", function()
      local c = connect()
      fault { match = "GET /insights/sites/permission/export", status = 429, retry_after = "0" }
      fault { match = "GET /insights/sites/permission/export", status = 503 }
      local job = auditrun.try(c:submit("site_permissions_export", { site_urls = { t.sites[1].url } }))
      auditrun.try(job:wait(FAST))
      local statuses = {}
      for _, r in ipairs(requests("/sites/permission/export")) do statuses[#statuses + 1] = r.status end
      assert.same({ 429, 503, 200 }, statuses)

      control("DELETE", "/requests")
      fault { match = "GET /insights/sites/permission/export", status = 500 }
      local none, err = c:submit("site_permissions_export", { site_urls = { t.sites[1].url } })
      assert.is_nil(none)
      assert.equal(500, err.status)
      assert.equal("unknown", err.outcome)
      assert.equal(1, #requests("/sites/permission/export"))

      control("DELETE", "/requests")
      fault { match = "GET /insights/sites/permission/export", status = 400 }
      none, err = c:submit("site_permissions_export", { site_urls = { t.sites[1].url } })
      assert.is_nil(none)
      assert.equal("http", err.kind)
      assert.equal(400, err.status)
      assert.is_nil(err.outcome)
      assert.equal(1, #requests("/sites/permission/export"))
    end)

    it("tell the caller the outcome is unknown when the connection drops, and submit once", function()
      local c = connect()
      fault { match = "POST /insights/api/v1/site/permission/export", reset = true }
      local job, err = c.legacy:submit("site_permissions_export", { site_urls = { t.sites[1].url } })
      assert.is_nil(job)
      assert.equal("job", err.kind)
      assert.equal("unknown", err.outcome)
      assert.matches("may or%s+may not have started", err.message)
      assert.equal(1, #requests("/site/permission/export"))
      -- The slot came back; the job may still run on the service, whose
      -- "too many jobs" is then waited out, not a failure.
      local started = {}
      for i = 1, 5 do
        started[i] = auditrun.try(c.legacy:submit("site_permissions_export", { site_urls = { t.sites[1].url } }))
      end
      for _, j in ipairs(started) do auditrun.try(j:wait(FAST)) end
      assert.is_true(control("GET", "/stats").jobs_refused <= 1)
    end)

    it("pick up a job an earlier run submitted, without submitting again", function()
      local c = connect()
      local job = auditrun.try(c:submit("group_access_export", { group_id = t.groups[1].id, export_option_type = 1,
                                                                 data_sources = "teams" }))
      local id = job.id
      auditrun.try(job:wait(FAST))
      auth.reset()
      local again = connect():job(id, "group_access_export")
      assert.equal("done", auditrun.try(again:status()))
      local file = auditrun.try(again:download { dir = dir })
      assert.matches("%.xlsx", zip_names(file.path))
      assert.equal(1, control("GET", "/stats").jobs_submitted)
      -- The status and file endpoints are methods too.
      local c2 = connect()
      assert.equal(2, auditrun.try(c2:export_status { job_id = id }).jobStatus)
      local same = auditrun.try(c2:export_file({ job_id = id }, { dir = dir }))
      assert.equal(file.path, same.path)
      assert.is_true(same.reused)
      local legacy = auditrun.try(c2.legacy:submit("site_permissions_export", { site_urls = { t.sites[1].url } }))
      auditrun.try(legacy:wait(FAST))
      assert.equal(2, auditrun.try(c2.legacy:permission_export_status { id = legacy.id }).status)
      local lfile = auditrun.try(c2.legacy:permission_export_file({ id = legacy.id }, { dir = dir }))
      assert.matches("%.xlsx", zip_names(lfile.path))
    end)

    it("never run more than 5 at once across both APIs, with 50 submitted together", function()
      local c = connect()
      control("POST", "/config", { jobSeconds = 0.2 })
      local tasks = {}
      for i = 1, 50 do
        tasks[i] = auditrun.spawn(function()
          local user = t.users[(i - 1) % #t.users + 1].loginName
          if i % 2 == 0 then
            return auditrun.try(c:export("user_permissions_export", { email = user, data_sources = "teams" },
              { dir = dir, first_interval = 0.1 }))
          end
          return auditrun.try(c.legacy:export("user_permissions_export", { emails = { user }, data_sources = "teams",
                                                                         export_option_type = 1 },
            { dir = dir, first_interval = 0.1 }))
        end)
      end
      local names = {}
      for _, task in ipairs(tasks) do
        local ok, file = task:join()
        assert.is_true(ok, tostring(file))
        names[file.name] = true
      end
      local stats = control("GET", "/stats")
      assert.equal(50, stats.jobs_submitted)
      assert.equal(0, stats.jobs_refused)
      -- Never over the limit; near it, as 45 jobs were waiting for a slot.
      assert.is_true(stats.max_jobs_in_flight <= 5, "in flight: " .. stats.max_jobs_in_flight)
      assert.is_true(stats.max_jobs_in_flight >= 3, "in flight: " .. stats.max_jobs_in_flight)
      local files = 0
      for _ in pairs(names) do files = files + 1 end
      assert.equal(50, files)
    end)

    it("wait when the service says too many jobs are running", function()
      local c = connect()
      control("POST", "/config", { maxJobs = 1, jobSeconds = 0.3 })
      local a = auditrun.spawn(function()
        return auditrun.try(c:export("site_permissions_export", { site_urls = { t.sites[1].url } },
          { dir = dir, first_interval = 0.05 }))
      end)
      local b = auditrun.spawn(function()
        return auditrun.try(c.legacy:export("site_permissions_export", { site_urls = { t.sites[2].url } },
          { dir = dir, first_interval = 0.05 }))
      end)
      assert.is_true((a:join()))
      assert.is_true((b:join()))
      local stats = control("GET", "/stats")
      assert.equal(2, stats.jobs_submitted)
      assert.is_true(stats.jobs_refused >= 1)
    end)

    local hostile = {
      { "../../../etc/passwd", "passwd" },
      { "..", nil },
      { "", nil },
      { ".hidden.zip", "hidden.zip" },
      { "a\nb\rc\tname.zip", "abcname.zip" },
      { "C:\\Windows\\report.zip", "report.zip" },
      { string.rep("x", 300) .. ".zip", nil },
    }
    for _, case in ipairs(hostile) do
      it("download a file the server names " .. string.format("%q", case[1]):sub(1, 40) .. " safely", function()
        local c = connect()
        fault { match = "GET /insights/job/", filename = case[1] }
        local file = auditrun.try(c:export("site_permissions_export", { site_urls = { t.sites[1].url } },
          { dir = dir, first_interval = 0.05 }))
        local expected = case[2] or ("site_permissions_export-" .. file.job .. ".zip")
        assert.equal(expected, file.name)
        assert.equal(dir .. "/" .. expected, file.path)
        assert.equal(expected .. "\n", sh("ls -A " .. dir))
      end)
    end
  end)
end)

-- A new client of a sandbox's Insights that signs in with the secret
-- client (no token kept from before); extra: more settings.
local function secret_client(sb, extra)
  auth.reset()
  local s = { insights_url = sb.url .. "/insights", identity_url = sb.issuer, client_id = sb.clients.secret,
              client_secret = sb.clients.secret_value, ca_file = sb.ca_file }
  for k, v in pairs(extra or {}) do s[k] = v end
  return auditrun.try(insights.connect(s, NO_ENV))
end

describe("insights client with short-lived tokens", function()
  local sb = sandbox.for_describe { token_ttl = 2 }

  it("renews the token mid-run, once for many tasks", function()
    local c = secret_client(sb)
    local expected = count(c:groups())
    local started = auditrun.now()
    local deadline = started + 3.5
    local rounds = 0
    while auditrun.now() < deadline do
      local tasks = {}
      for i = 1, 4 do
        tasks[i] = auditrun.spawn(function() return count(c:groups()) end)
      end
      for _, task in ipairs(tasks) do
        local ok, n = task:join()
        assert.is_true(ok, tostring(n))
        assert.equal(expected, n)
      end
      rounds = rounds + 1
      auditrun.sleep(0.25)
    end
    assert.is_true(rounds >= 3)
    -- Renewed at half the 2 s lifetime: a token a second at most, never
    -- one per task (4 tasks x 3 pages a round would be dozens).
    local elapsed = auditrun.now() - started
    local tokens = c.session.tokens_fetched
    assert.is_true(tokens >= 3, "tokens: " .. tokens)
    assert.is_true(tokens <= math.ceil(elapsed) + 2, ("tokens: %d in %.1f s"):format(tokens, elapsed))
  end)
end)

-- Its own sandbox: a tenant's job limit, once lowered, stays lowered for
-- the process.
describe("insights client with a lower job limit", function()
  local sb = sandbox.for_describe { job_seconds = 0.2 }

  it("never runs more jobs at once than max_jobs says", function()
    local c = secret_client(sb, { max_jobs = 2 })
    local site = auditrun.try(http.request_json { url = sb.url .. "/insights-control/tenant" }).sites[1].url
    local dir = util.tempdir()
    local tasks = {}
    for i = 1, 6 do
      tasks[i] = auditrun.spawn(function()
        return auditrun.try(c:export("site_permissions_export", { site_urls = { site } },
          { dir = dir, first_interval = 0.05 }))
      end)
    end
    local failed = {}
    for _, task in ipairs(tasks) do
      local ok, err = task:join()
      if not ok then failed[#failed + 1] = tostring(err) end
    end
    local stats = auditrun.try(http.request_json { url = sb.url .. "/insights-control/stats" })
    os.execute("rm -rf " .. dir)
    assert.same({}, failed)
    assert.equal(6, stats.jobs_submitted)
    assert.equal(0, stats.jobs_refused)
    -- Six tasks at once would put five in flight under the default limit.
    assert.is_true(stats.max_jobs_in_flight <= 2, "in flight: " .. stats.max_jobs_in_flight)
  end)
end)
