-- external-group-access run by the host as a user runs it, against the
-- sandbox tenant: every group with external members gets its report once,
-- on the Graph API (a job a group) and the legacy API (batches in Emails);
-- the manifest and summary say what landed; a failing job does not sink the
-- run; reruns, a cut manifest and kill -9 the moment a report lands end with
-- one report and one manifest line per job.
local helper = require("tests.helper")
local sandbox, host, reports, util = helper.sandbox, helper.host, helper.reports, helper.util
local auditrun = require("auditrun")
local cjson = require("cjson")

local lines = util.lines

local ISO = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"

describe("external-group-access", function()
  local sb = sandbox.for_describe {}
  local tenant, home, env, group_ids

  -- A client of the sandbox tenant, as the host's environment names it.
  local function connect()
    return auditrun.try(require("auditrun.insights").connect {
      insights_url = env.AUDITRUN_INSIGHTS_URL, identity_url = env.AUDITRUN_IDENTITY_URL,
      client_id = env.AUDITRUN_CLIENT_ID, cert = env.AUDITRUN_CERT, cert_password = env.AUDITRUN_CERT_PASSWORD,
      ca_file = env.AUDITRUN_CA_FILE })
  end

  setup(function()
    tenant = sb:control("GET", "/tenant")
    home, env = sb:new_home()
    -- Every group the summaries list (what the workflow must cover).
    group_ids = {}
    for g in connect():groups() do group_ids[#group_ids + 1] = g.groupId end
  end)
  teardown(function() util.remove(home) end)
  before_each(function() sb:control("POST", "/reset") end)

  -- Export requests sent (both match strings name only a submit path).
  local function submits(match)
    return #sb:control("GET", "/requests?match=" .. match)
  end

  -- Every manifest line names a file in dir with its true size and digest.
  local function check_manifest(dir, kind, api)
    local entries = reports.manifest(dir)
    local seen = {}
    for _, e in ipairs(entries) do
      assert.equal(kind, e.kind)
      assert.equal(api, e.api)
      assert.is_nil(seen[e.file], "listed twice: " .. e.file)
      seen[e.file] = true
      assert.is_string(e.job_id)
      assert.matches(ISO, e.finished)
      local path = dir .. "/" .. e.file
      assert.equal(e.sha256, reports.sha256(path))
      assert.equal(e.bytes, tonumber(util.sh("stat -c %s " .. path)))
    end
    return entries
  end

  it("exports each group's report with one Graph job a group, and a rerun sends no job", function()
    assert.is_true(tenant.counts.groupsWithExternalMembers > 100, "the tenant needs many external groups")
    assert.equal(tenant.counts.groupsWithExternalMembers, #group_ids)
    sb:control("POST", "/config", { jobSeconds = 0.05 })
    local dir = home .. "/graph"
    local code, out, err = host.run({ "external-group-access", "--out", dir }, { env = env })
    assert.equal(0, code, err)
    local n = #group_ids
    assert.equal(n, #reports.zips(dir))
    assert.is_true(reports.intact(dir))
    -- stdout: one path per report, as each landed.
    assert.equal(n, #lines(out))
    for _, l in ipairs(lines(out)) do assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/.*%.zip$", l) end
    local entries = check_manifest(dir, "group_access_export", "graph")
    assert.equal(n, #entries)
    local covered = {}
    for _, e in ipairs(entries) do
      assert.equal(1, #e.subjects)
      covered[e.subjects[1]] = true
    end
    for _, id in ipairs(group_ids) do assert.is_true(covered[id], id) end
    -- The documented request: every workspace, the access report to all objects.
    local reqs = sb:control("GET", "/requests?match=/access/export")
    assert.equal(n, #reqs)
    assert.matches("^/insights/groups/[%x%-]+/access/export%?exportOptionType=2&dataSources=microsoft%%20teams&"
      .. "dataSources=sharepoint%%20online&dataSources=onedrive&dataSources=microsoft%%20365%%20group$", reqs[1].url)
    local s = reports.summary(dir)
    assert.same({ n, n, 0, 0, "graph", "external-group-access", dir },
      { s.listed, s.done, s.failed, s.reused, s.api, s.workflow, s.out })
    assert.same({}, s.failures)
    assert.matches("external%-group%-access: " .. n .. " of " .. n .. " reports in", err)
    assert.is_nil(util.read(dir .. "/.auditrun-state.json"))
    assert.is_truthy(util.read(dir .. "/.auditrun/state.jsonl"))

    sb:control("DELETE", "/requests")
    code, out, err = host.run({ "external-group-access", "--out", dir, "-q" }, { env = env })
    assert.equal(0, code, err)
    assert.equal("", out)
    assert.equal(0, submits("/access/export"))
    assert.equal(n, #reports.zips(dir))
    assert.equal(n, #reports.manifest(dir))
    assert.equal(n, reports.summary(dir).reused)
  end)

  it("exports each group once when its jobs' lengths vary, in at most 4 status polls a job", function()
    -- Lengths drawn in 0.1-0.5 s, a new one for each job: the polls follow
    -- the spread the run learns, not one length.
    local before = sb:control("GET", "/config").jobSeconds
    finally(function() sb:control("POST", "/config", { jobSeconds = before }) end)
    sb:control("POST", "/config", { jobSeconds = { 0.1, 0.5 }, jobSeed = 7 })
    local dir = home .. "/varying"
    local code, _, err = host.run({ "external-group-access", "--out", dir, "-q" }, { env = env })
    assert.equal(0, code, err)
    local n = #group_ids
    local entries = check_manifest(dir, "group_access_export", "graph")
    assert.equal(n, #entries)
    assert.equal(n, #reports.zips(dir))
    assert.equal(n, submits("/access/export"))
    local covered = {}
    for _, e in ipairs(entries) do
      assert.is_nil(covered[e.subjects[1]], e.subjects[1])
      covered[e.subjects[1]] = true
    end
    for _, id in ipairs(group_ids) do assert.is_true(covered[id], id) end
    local polls = #sb:control("GET", "/requests?match=/exportstatus")
    assert.is_true(polls <= 4 * n, polls .. " status polls for " .. n .. " jobs")
  end)

  it("exports a group listed on two pages once, when the listing shifts while it is paged", function()
    -- Groups inserted ahead after the first page move 12 rows onto the next.
    sb:control("POST", "/config", { jobSeconds = 0.05, listingShift = 12 })
    local ok, err = pcall(function()
      local listed, repeats = {}, 0
      for g in connect():groups() do
        if listed[g.groupId] then repeats = repeats + 1 end
        listed[g.groupId] = true
      end
      assert.is_true(repeats >= 12, "the sandbox repeated no rows")
      local dir = home .. "/shifted"
      local code, _, stderr = host.run({ "external-group-access", "--out", dir }, { env = env })
      assert.equal(0, code, stderr)
      local n = #group_ids
      local per = {}
      for _, r in ipairs(sb:control("GET", "/requests?match=/access/export")) do
        local id = r.url:match("/groups/([^/]+)/access/export")
        per[id] = (per[id] or 0) + 1
      end
      for _, id in ipairs(group_ids) do assert.equal(1, per[id], id) end
      assert.equal(n, #reports.zips(dir))
      assert.equal(n, #check_manifest(dir, "group_access_export", "graph"))
      local s = reports.summary(dir)
      assert.same({ n, repeats, n, 0 }, { s.listed, s.repeated, s.done, s.failed })
      assert.matches(n .. " of " .. n .. " reports in", stderr)
      assert.matches("the list of groups showed " .. repeats .. " of them again %(it changed while it was read%): "
        .. "each exported once", stderr)
    end)
    sb:control("POST", "/config", { listingShift = 0 })
    if not ok then error(err, 0) end
  end)

  it("batches the groups into legacy jobs of --batch-size, their ids in Emails", function()
    local dir = home .. "/legacy"
    local code, _, err = host.run({ "external-group-access", "--api", "legacy", "--batch-size", "50", "--option",
      "summary", "--data-sources", "teams,sharepoint", "--language", "ja-JP", "--out", dir }, { env = env })
    assert.equal(0, code, err)
    local n = #group_ids
    local jobs = (n + 49) // 50
    local reqs = sb:control("GET", "/requests?match=/group/Permission/export")
    assert.equal(jobs, #reqs)
    local sent = {}
    for _, r in ipairs(reqs) do
      local body = cjson.decode(r.body)
      assert.is_true(#body.Emails <= 50)
      assert.equal(3, body.ExportOptionType)
      assert.same({ "Microsoft Teams", "SharePoint Online" }, body.dataSources)
      assert.equal("ja-JP", body.Language)
      for _, id in ipairs(body.Emails) do
        assert.is_nil(sent[id], "a group sent twice: " .. id)
        sent[id] = true
      end
    end
    for _, id in ipairs(group_ids) do assert.is_true(sent[id], id) end
    local entries = check_manifest(dir, "group_permissions_export", "legacy")
    assert.equal(jobs, #entries)
    local subjects = 0
    for _, e in ipairs(entries) do subjects = subjects + #e.subjects end
    assert.equal(n, subjects)
  end)

  it("tries a failed job again, and a report that keeps failing does not sink the run", function()
    local dir = home .. "/failing"
    -- Two failed jobs: with --max-attempts 2 one batch fails twice or two
    -- batches fail once; either way the run ends, the others all land.
    sb:control("POST", "/faults", { { match = "POST /insights/api/v1/group/Permission/export", job_fails = true,
                                     times = 2 } })
    local code, _, err = host.run({ "external-group-access", "--api", "legacy", "--batch-size", "50", "--out", dir,
      "--max-attempts", "1", "--log-format", "json" }, { env = env })
    local jobs = (#group_ids + 49) // 50
    assert.equal(3, code, err)
    local s = reports.summary(dir)
    assert.equal(2, s.failed)
    assert.equal(jobs - 2, s.done)
    assert.equal(2, #s.failures)
    for _, f in ipairs(s.failures) do
      assert.matches("failed on the service", f.error)
      assert.is_true(#f.subjects >= 1)
    end
    assert.equal(jobs - 2, #reports.manifest(dir))
    -- Every log line is a JSON object; the failures are among them.
    local failed_events = 0
    for _, l in ipairs(lines(err)) do
      if l:sub(1, 1) == "{" then
        local e = cjson.decode(l)
        assert.matches(ISO, e.time)
        if e.event == "failed" then failed_events = failed_events + 1 end
      end
    end
    assert.equal(2, failed_events)
    assert.matches("auditrun: incomplete: 2 of " .. jobs .. " reports failed; run again with the same %-%-out", err)

    -- The rerun submits only the two that failed, and finishes.
    code, _, err = host.run({ "external-group-access", "--api", "legacy", "--batch-size", "50", "--out", dir },
      { env = env })
    assert.equal(0, code, err)
    assert.equal(jobs + 2, submits("/group/Permission/export"))
    assert.equal(jobs, #check_manifest(dir, "group_permissions_export", "legacy"))

    -- With --max-attempts 2 (and the default 3) one failure is tried again in the same run.
    sb:control("POST", "/faults", { { match = "POST /insights/api/v1/group/Permission/export", job_fails = true } })
    code, _, err = host.run({ "external-group-access", "--api", "legacy", "--batch-size", "50", "--out",
      home .. "/retried", "--max-attempts", "2", "-v" }, { env = env })
    assert.equal(0, code, err)
    assert.matches("attempt 1 of 2 failed", err)
    assert.equal(jobs, #reports.manifest(home .. "/retried"))
  end)

  it("adds the manifest lines a killed run did not write, and none twice", function()
    local dir = home .. "/manifest"
    local args = { "external-group-access", "--api", "legacy", "--batch-size", "20", "--out", dir }
    local code, _, err = host.run(args, { env = env })
    assert.equal(0, code, err)
    local entries, text = reports.manifest(dir)
    local all = #entries
    -- As if killed after two reports landed but before their lines, and
    -- while writing a third.
    local keep = {}
    for i = 1, all - 3 do keep[i] = cjson.encode(entries[i]) end
    util.write(dir .. "/manifest.jsonl", table.concat(keep, "\n") .. "\n" .. text:match("[^\n]*\n$"):sub(1, 40))
    sb:control("DELETE", "/requests")
    code, _, err = host.run(args, { env = env })
    assert.equal(0, code, err)
    assert.equal(0, submits("/group/Permission/export"))
    assert.equal(all, #check_manifest(dir, "group_permissions_export", "legacy"))
  end)

  it("after kill -9 the moment a report lands, a rerun leaves one report and one line per job", function()
    sb:control("POST", "/config", { jobSeconds = 0.3 })
    local dir = home .. "/killed"
    local args = { "external-group-access", "--api", "legacy", "--batch-size", "10", "--out", dir }
    local jobs = (#group_ids + 9) // 10
    for round = 1, 3 do
      local before = #reports.zips(dir)
      local h = host.start(args, { env = env })
      local deadline = auditrun.now() + 60
      while #reports.zips(dir) == before and auditrun.now() < deadline do auditrun.sleep(0.002) end
      h:signal("KILL")
      local code = h:wait(30)
      assert.equal(137, code, "round " .. round .. " ended before the kill")
    end
    assert.is_true(#reports.zips(dir) < jobs)
    local code, _, err = host.run(args, { env = env })
    assert.equal(0, code, err)
    local names = reports.zips(dir)
    assert.equal(jobs, #names)
    for _, name in ipairs(names) do assert.is_nil(name:find("(", 1, true), "a second copy: " .. name) end
    assert.is_true(reports.intact(dir))
    assert.equal(jobs, #check_manifest(dir, "group_permissions_export", "legacy"))
    for _, name in ipairs(util.listing(dir)) do assert.is_nil(name:find(".part-", 1, true), "left behind: " .. name) end
  end)

  it("stops at Ctrl-C with a summary, and the rerun submits no group twice", function()
    sb:control("POST", "/config", { jobSeconds = 0.3 })
    local dir = home .. "/interrupted"
    local args = { "external-group-access", "--api", "legacy", "--batch-size", "10", "--out", dir }
    local jobs = (#group_ids + 9) // 10
    local h = host.start(args, { env = env })
    local deadline = auditrun.now() + 60
    while #reports.zips(dir) == 0 and auditrun.now() < deadline do auditrun.sleep(0.005) end
    h:signal("INT")
    local code, _, err = h:wait(60)
    assert.equal(130, code, err)
    assert.matches("interrupted: run again with the same %-%-out", err)
    local s = reports.summary(dir)
    assert.is_true(s.interrupted)
    assert.is_true(s.done >= 1 and s.done < jobs)
    -- An interrupted run leaves no lock behind.
    assert.same({}, util.locks(dir))
    code, _, err = host.run(args, { env = env })
    assert.equal(0, code, err)
    local sent = {}
    for _, r in ipairs(sb:control("GET", "/requests?match=/group/Permission/export")) do
      for _, id in ipairs(cjson.decode(r.body).Emails) do
        assert.is_nil(sent[id], "submitted twice: " .. id)
        sent[id] = true
      end
    end
    assert.equal(jobs, #check_manifest(dir, "group_permissions_export", "legacy"))
    assert.is_nil(reports.summary(dir).interrupted)
  end)

  it("--dry-run lists every group and sends no job", function()
    local dir = home .. "/dry"
    local code, out, err = host.run({ "external-group-access", "--dry-run", "--out", dir }, { env = env })
    assert.equal(0, code, err)
    assert.equal(#group_ids, #lines(out))
    assert.matches("^would submit: group ", out)
    assert.equal(0, submits("/access/export"))
    assert.is_nil(util.read(dir .. "/manifest.jsonl"))
  end)

  it("takes --profile NAME and --profile=NAME before or after the workflow's name", function()
    local config = home .. "/config.lua"
    util.write(config, ([[return { tenant = { insights_url = %q, identity_url = %q, client_id = %q, cert = %q,
      cert_password = "sandbox-pass", ca_file = %q } }]]):format(env.AUDITRUN_INSIGHTS_URL, env.AUDITRUN_IDENTITY_URL,
      env.AUDITRUN_CLIENT_ID, env.AUDITRUN_CERT, env.AUDITRUN_CA_FILE))
    local plain = { HOME = home, AUDITRUN_CONFIG = config }
    for _, args in ipairs {
      { "--profile", "tenant", "external-group-access", "--dry-run", "-q" },
      { "--profile=tenant", "external-group-access", "--dry-run", "-q" },
      { "external-group-access", "--profile", "tenant", "--dry-run", "-q" },
      { "external-group-access", "--dry-run", "-q", "--profile=tenant" },
    } do
      local code, _, err = host.run(args, { env = plain })
      assert.equal(0, code, table.concat(args, " ") .. ": " .. err)
      assert.matches(#group_ids .. " to submit", err)
    end
    local code, _, err = host.run({ "external-group-access", "--profile=nobody", "--dry-run" }, { env = plain })
    assert.equal(1, code)
    assert.matches("no profile 'nobody'", err)
  end)
end)
