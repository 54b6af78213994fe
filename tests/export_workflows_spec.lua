-- The bundled export workflows other than external-group-access, run by the
-- host against the sandbox on each API they offer: the requests they send
-- (the documented "Export User Activities" sample byte for byte), one
-- report and one manifest line per job, -v showing retries, waits and
-- token renewals.
local helper = require("tests.helper")
local sandbox, host, reports, util = helper.sandbox, helper.host, helper.reports, helper.util
local cjson = require("cjson")
local auditrun = require("auditrun")

-- The request of the page's "Request Sample", host left out.
local USER_ACTIVITIES_SAMPLE = "/insights/users/insightstester001_jasoninsightstest.onmicrosoft.com%2523ext%2523"
  .. "%2540m365x636363.onmicrosoft.com/activities/export?startTime=2023-01-01T01%3A37%3A57&finishTime="
  .. "2023-04-01T01%3A37%3A57&eventTypes=ListViewed&eventTypes=ListItemViewed"

describe("export workflows", function()
  local sb = sandbox.for_describe {}
  local tenant, home, env

  setup(function()
    tenant = sb:control("GET", "/tenant")
    home, env = sb:new_home()
    util.write(home .. "/sites.txt", tenant.sites[1].url .. "\n# a comment\n\n" .. tenant.sites[2].url .. "\n")
    util.write(home .. "/users.txt", tenant.users[1].loginName .. "\n" .. tenant.guests[2].loginName .. "\n")
    util.write(home .. "/google-users.txt", tenant.google.users[1] .. "\n")
    util.write(home .. "/drives.txt", tenant.google.sharedDrives[1] .. "\n" .. tenant.google.sharedDrives[2] .. "\n")
  end)
  teardown(function() util.remove(home) end)
  before_each(function()
    sb:control("POST", "/reset")
    sb:control("POST", "/config", { jobSeconds = 0.05 })
  end)

  -- Runs a workflow into a new folder: its manifest, after checking that
  -- every line names a file there, and the summary says the same.
  local n = 0
  local function run(args, expect_jobs)
    n = n + 1
    local dir = ("%s/out%d"):format(home, n)
    local full = { table.unpack(args) }
    full[#full + 1] = "--out"
    full[#full + 1] = dir
    local code, out, err = host.run(full, { env = env })
    local what = table.concat(args, " ")
    assert.equal(0, code, what .. ": " .. err)
    local entries = reports.manifest(dir)
    assert.equal(expect_jobs, #entries, what)
    assert.equal(expect_jobs, #reports.zips(dir), what)
    assert.equal(expect_jobs, #util.lines(out), what)
    for _, e in ipairs(entries) do
      assert.equal(e.sha256, reports.sha256(dir .. "/" .. e.file), what)
      assert.is_true(#e.subjects >= 1, what)
    end
    local s = reports.summary(dir)
    assert.same({ expect_jobs, expect_jobs, 0 }, { s.listed, s.done, s.failed }, what)
    assert.same({}, util.locks(dir), what .. ": lock files left after a clean finish")
    return entries, err
  end

  local function requests(match)
    return sb:control("GET", "/requests?match=" .. match)
  end

  it("user-activities sends the documented Export User Activities sample byte for byte", function()
    local entries = run({ "user-activities", "--user",
      "insightstester001_jasoninsightstest.onmicrosoft.com#EXT#@m365x636363.onmicrosoft.com",
      "--from", "2023-01-01T01:37:57", "--to", "2023-04-01T01:37:57", "--event-type", "ListViewed",
      "--event-type", "ListItemViewed" }, 1)
    local sent = requests("/activities/export")
    assert.equal(1, #sent)
    assert.equal("GET", sent[1].method)
    assert.equal(USER_ACTIVITIES_SAMPLE, sent[1].url)
    assert.equal("user_activities_export", entries[1].kind)
    assert.same({ "insightstester001_jasoninsightstest.onmicrosoft.com#EXT#@m365x636363.onmicrosoft.com" },
      entries[1].subjects)
  end)

  it("user-activities: --users FILE with --user, a date window, the legacy and Google exports", function()
    run({ "user-activities", "--users", home .. "/users.txt", "--user", tenant.guests[1].loginName,
      "--from", "2025-01-01", "--to", "2025-06-30" }, 3)
    for _, r in ipairs(requests("/activities/export")) do
      assert.matches("startTime=2025%-01%-01T00%%3A00%%3A00&finishTime=2025%-06%-30T23%%3A59%%3A59$", r.url)
    end
    local entries = run({ "user-activities", "--api", "legacy", "--users", home .. "/users.txt",
      "--event-type", "FileAccessed,FileModified", "--language", "fr-FR" }, 2)
    assert.equal("activity_export", entries[1].kind)
    local body = cjson.decode(requests("/api/v1/activity/export")[1].body)
    assert.same({ "FileAccessed", "FileModified" }, body.eventTypes)
    assert.equal("fr-FR", body.Language)
    entries = run({ "user-activities", "--google", "--users", home .. "/google-users.txt" }, 1)
    assert.equal("google_user_activities_export", entries[1].kind)
  end)

  it("user-access and guest-access on the Graph, legacy and Google exports", function()
    local entries = run({ "user-access", "--users", home .. "/users.txt", "--data-sources", "onedrive" }, 2)
    assert.equal("user_permissions_export", entries[1].kind)
    for _, r in ipairs(requests("/access/export")) do assert.matches("dataSources=onedrive$", r.url) end
    -- Legacy: batches of --batch-size users in emails.
    entries = run({ "guest-access", "--api", "legacy", "--batch-size", "8", "--option", "sites" },
      (tenant.counts.guests + 7) // 8)
    local covered = 0
    for _, e in ipairs(entries) do covered = covered + #e.subjects end
    assert.equal(tenant.counts.guests, covered)
    for _, r in ipairs(requests("/user/permission/export")) do
      assert.equal(1, cjson.decode(r.body).ExportOptionType)
    end
    entries = run({ "user-access", "--google", "--users", home .. "/google-users.txt", "--data-sources",
      "my_drive" }, 1)
    assert.equal("google_user_permissions_export", entries[1].kind)
  end)

  it("site-permissions: the sites of a file, every site in batches, Google drives", function()
    local entries = run({ "site-permissions", "--sites", home .. "/sites.txt" }, 1)
    assert.same({ tenant.sites[1].url, tenant.sites[2].url }, entries[1].subjects)
    assert.equal("site_permissions_export", entries[1].kind)
    entries = run({ "site-permissions", "--api", "legacy", "--batch-size", "100" }, (tenant.counts.sites + 99) // 100)
    local covered = 0
    for _, e in ipairs(entries) do covered = covered + #e.subjects end
    assert.equal(tenant.counts.sites, covered)
    entries = run({ "site-permissions", "--google", "--drives", home .. "/drives.txt" }, 1)
    assert.equal("google_drive_permissions_export", entries[1].kind)
  end)

  it("sharing-links: a job per link type, the window as given or the last 30 days", function()
    local entries = run({ "sharing-links", "--type", "anyone", "--type", "organization", "--from", "2024-01-01",
      "--to", "2024-12-31" }, 2)
    local sent = requests("/sharingLinks/export")
    assert.equal(2, #sent)
    for _, r in ipairs(sent) do
      assert.matches("^/insights/sharingLinks/export%?exportLinkType=%d+&startTime=2024%-01%-01T00:00:00&"
        .. "finishTime=2024%-12%-31T23:59:59$", r.url)
    end
    local kinds = {}
    for _, e in ipairs(entries) do kinds[e.subjects[1]] = e.kind end
    assert.same({ anyone = "sharing_links_export", organization = "sharing_links_export" }, kinds)
    run({ "sharing-links", "--api", "legacy" }, 3)
    run({ "sharing-links", "--google" }, 2)
    local code, _, err = host.run({ "sharing-links", "--google", "--type", "organization" }, { env = env })
    assert.equal(2, code, err)
  end)

  it("object-activities: a job per --path, on each API", function()
    local objects = tenant.objects
    local entries = run({ "object-activities", "--path", objects[1], "--path", objects[2] }, 2)
    assert.equal("object_activities_export", entries[1].kind)
    run({ "object-activities", "--api", "legacy", "--path", objects[1] }, 1)
    run({ "object-activities", "--google", "--path", tenant.google.files[1] }, 1)
  end)

  it("-v shows retries, waits for a busy service and token renewals", function()
    sb:control("POST", "/faults", { { match = "GET /insights/users/summary", status = 503, retry_after = "1" } })
    local _, err = run({ "guest-access", "-v", "--log-format", "json" }, tenant.counts.guests)
    local events = {}
    for _, l in ipairs(util.lines(err)) do
      if l:sub(1, 1) == "{" then events[cjson.decode(l).event] = true end
    end
    assert.is_true(events.retry, err)
    assert.is_true(events.token, err)
    -- A busy service: more jobs than it takes at once.
    sb:control("POST", "/config", { maxJobs = 2, jobSeconds = 0.3 })
    _, err = run({ "site-permissions", "--batch-size", "20", "-v" }, (tenant.counts.sites + 19) // 20)
    assert.matches("the service did not start site_permissions_export %(HTTP 429%)", err)
  end)
end)

describe("an export workflow through faults", function()
  -- Tokens that last 6 s: a run of several seconds renews its token.
  local sb = sandbox.for_describe { token_ttl = 6 }
  local home

  setup(function() home = util.tempdir() end)
  teardown(function() util.remove(home) end)

  it("finishes every report through 429s, 503s, dropped downloads and token renewals", function()
    local tenant = sb:control("GET", "/tenant")
    sb:control("POST", "/config", { jobSeconds = 0.5 })
    sb:control("POST", "/faults", {
      { match = "POST /insights/sites/overview", status = 503, retry_after = "1" },
      { match = "/exportstatus", status = 429, retry_after = "1", times = 3 },
      { match = "/exportfile", reset = true, times = 2 },
    })
    local dir = home .. "/faults"
    local code, _, err = host.run({ "site-permissions", "--batch-size", "10", "-v", "--out", dir },
      { env = sb:host_env(home) })
    assert.equal(0, code, err)
    local jobs = (tenant.counts.sites + 9) // 10
    assert.equal(jobs, #reports.zips(dir))
    assert.is_true(reports.intact(dir))
    assert.equal(jobs, #reports.manifest(dir))
    assert.same({}, sb:control("GET", "/faults"), "a fault was never hit")
    assert.matches("token renewed", err)
    assert.matches("HTTP 503", err)
    assert.matches("HTTP 429", err)
    local covered = 0
    for _, e in ipairs(reports.manifest(dir)) do covered = covered + #e.subjects end
    assert.equal(tenant.counts.sites, covered)
  end)
end)

describe("a job-status answer with a huge Retry-After", function()
  local sb = sandbox.for_describe {}
  local home, env

  setup(function()
    home, env = sb:new_home()
    local tenant = sb:control("GET", "/tenant")
    util.write(home .. "/users.txt", tenant.users[1].loginName .. "\n" .. tenant.guests[2].loginName .. "\n")
  end)
  teardown(function() util.remove(home) end)

  -- Runs user-access for the two users into dir, bounded so that a run that
  -- hangs fails the spec. The exit code, stderr and seconds taken.
  local function run(dir, extra)
    local args = { "user-access", "--users", home .. "/users.txt", "--out", dir }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    local started = auditrun.now()
    local h = host.start(args, { env = env })
    local code, _, err = h:wait(90)
    return code, err, auditrun.now() - started
  end

  it("is waited out only up to --job-timeout, saying what it waits for; a rerun fetches the same jobs", function()
    local dir = home .. "/huge"
    sb:control("POST", "/config", { jobSeconds = 20 })
    sb:control("POST", "/faults", { match = "/exportstatus", retry_after = "999999", times = 1000 })
    local code, err, took = run(dir, { "--job-timeout", "4" })
    assert.equal(3, code, err)
    assert.is_true(took < 30, tostring(took))
    assert.matches("was not done after 4 s %(the service asked to wait 999999 s more%)", err)
    assert.matches("is still running and the service asked to wait 999999 s: polling again in %d s", err)
    assert.matches("2 of 2 reports failed", err)
    local jobs, recorded = {}, 0
    for k, v in pairs(reports.state(dir)) do
      if type(v) == "table" and v.job then jobs[k], recorded = v.job, recorded + 1 end
    end
    assert.equal(2, recorded)
    -- An HTTP-date in 2100, on the jobs the rerun picks up.
    sb:control("DELETE", "/faults")
    sb:control("POST", "/faults", { match = "/exportstatus", retry_after = "Fri, 01 Jan 2100 00:00:00 GMT",
                                    times = 1000 })
    code, err, took = run(dir, { "--job-timeout", "4" })
    assert.equal(3, code, err)
    assert.is_true(took < 30, tostring(took))
    assert.matches("was not done after 4 s %(the service asked to wait %d+ s more%)", err)
    -- Without the faults the same jobs finish, none submitted again.
    sb:control("DELETE", "/faults")
    code, err = run(dir)
    assert.equal(0, code, err)
    assert.equal(2, #reports.zips(dir))
    for _, e in ipairs(reports.manifest(dir)) do
      assert.equal(jobs["user_permissions_export:" .. e.subjects[1]], e.job_id)
    end
    assert.equal(2, #sb:control("GET", "/requests?match=/access/export"))
  end)
end)
