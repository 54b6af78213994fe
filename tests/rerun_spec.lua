-- A rerun with other options never returns the old answer: the host runs
-- records and export workflows against the sandbox into an output an
-- earlier run made with other options (a filter, the range, the API) and is
-- refused in one line naming the option, both values and --fresh; options
-- that do not change the answer (-q, --max-attempts) still resume; --fresh
-- sets the earlier output aside under a name it says, and starts over.
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local dealcloud_module = require("auditrun.dealcloud")
local json = require("auditrun.json")
local time = require("auditrun.time")

local DAY = 86400

local function last_line(s)
  local l = util.lines(s)
  return l[#l] or ""
end

-- The names in dir that start with `prefix`.
local function named(dir, prefix)
  local out = {}
  for _, name in ipairs(util.listing(dir)) do
    if name:sub(1, #prefix) == prefix then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

describe("a rerun with other options", function()
  local sb = sandbox.for_describe {}
  local t, dir, env

  before_each(function()
    sb:activity_control("POST", "/reset")
    t = sb:activity_control("GET", "/tenant")
    dir = util.tempdir()
    env = sb:host_env(dir)
    env.AUDITRUN_DEALCLOUD_URL = sb.url .. "/dealcloud"
    env.AUDITRUN_DEALCLOUD_CLIENT_ID = t.dealcloud.client_id
    env.AUDITRUN_DEALCLOUD_CLIENT_SECRET = t.dealcloud.client_secret
  end)
  after_each(function() util.remove(dir) end)

  local function dealcloud(args)
    local from = time.parse(t.dealcloud.start)
    local all = { "dealcloud-activity", "--from", os.date("!%Y-%m-%d", from), "--to",
                  os.date("!%Y-%m-%d", from + 364 * DAY), "--out", dir .. "/activity.jsonl" }
    for _, a in ipairs(args) do all[#all + 1] = a end
    return host.run(all, { env = env })
  end

  it("is refused for a records file, naming the filter; -q still finds it complete; --fresh starts over", function()
    local code, _, err = dealcloud { "--activity", "login failed" }
    assert.equal(0, code, err)
    local failed = util.read(dir .. "/activity.jsonl")
    assert.is_true(#util.lines(failed) > 0)
    -- All activity: refused, the file as it was.
    code, _, err = dealcloud {}
    assert.equal(2, code, err)
    assert.equal(1, #util.lines(err), err)
    assert.matches("^auditrun: usage: .*activity%.jsonl was started with %-%-activity %d+; this run is without "
      .. "%-%-activity: rerun with %-%-fresh to start over", err)
    assert.equal(failed, util.read(dir .. "/activity.jsonl"))
    -- Another range: refused too.
    local from = time.parse(t.dealcloud.start)
    code, _, err = host.run({ "dealcloud-activity", "--from", os.date("!%Y-%m-%d", from + DAY), "--to",
      os.date("!%Y-%m-%d", from + 364 * DAY), "--activity", "login failed", "--out", dir .. "/activity.jsonl" },
      { env = env })
    assert.equal(2, code, err)
    assert.matches("started with %-%-from [%d-]+T00:00:00; this run is with %-%-from [%d-]+T00:00:00", err)
    -- What only changes how it talks is the same answer.
    code, _, err = dealcloud { "--activity", "login failed", "-q" }
    assert.equal(0, code, err)
    assert.matches("complete from an earlier run", err)
    -- --fresh: the earlier file and its state are set aside, said where.
    code, _, err = dealcloud { "--fresh" }
    assert.equal(0, code, err)
    local aside = named(dir, "activity.jsonl.old-")
    -- The file, and its coverage report beside it.
    assert.equal(2, #aside, table.concat(util.listing(dir), " "))
    assert.equal(aside[1] .. ".coverage.json", aside[2])
    assert.is_truthy(err:find("is now " .. dir .. "/" .. aside[1], 1, true), err)
    assert.equal(failed, util.read(dir .. "/" .. aside[1]))
    assert.equal(1, #named(dir, "." .. aside[1] .. ".auditrun"))
    -- Refused, complete, set aside or fresh: no run left a lock file.
    assert.same({}, util.locks(dir))
    assert.is_true(#util.lines(util.read(dir .. "/activity.jsonl")) > #util.lines(failed))
    -- And the new file is the answer to the new options: a rerun of those finds it complete.
    code, _, err = dealcloud {}
    assert.equal(0, code, err)
    assert.matches("complete from an earlier run", err)
  end)

  it("is refused for an export folder (a dry run too); --max-attempts still resumes; --fresh sets it aside", function()
    local out = dir .. "/guests"
    local code, _, err = host.run({ "guest-access", "-q", "--out", out }, { env = env })
    assert.equal(0, code, err)
    local manifest = util.read(out .. "/manifest.jsonl")
    for _, extra in ipairs { {}, { "--dry-run" } } do
      local args = { "guest-access", "--api", "legacy", "--out", out }
      for _, a in ipairs(extra) do args[#args + 1] = a end
      code, _, err = host.run(args, { env = env })
      assert.equal(2, code, err)
      assert.matches("^auditrun: usage: .*guests was started with %-%-api graph; this run is with %-%-api legacy: "
        .. "rerun with %-%-fresh to start over", last_line(err))
    end
    assert.equal(manifest, util.read(out .. "/manifest.jsonl"))
    -- A dry run of a fresh start lists what it would submit, and moves nothing.
    local listed
    code, listed, err = host.run({ "guest-access", "--api", "legacy", "--fresh", "--dry-run", "--out", out },
      { env = env })
    assert.equal(0, code, err)
    assert.matches("would submit", listed)
    assert.equal(manifest, util.read(out .. "/manifest.jsonl"))
    code, _, err = host.run({ "guest-access", "--max-attempts", "5", "--out", out }, { env = env })
    assert.equal(0, code, err)
    assert.matches("from an earlier run", err)
    code, _, err = host.run({ "guest-access", "--api", "legacy", "--fresh", "--out", out .. "/" }, { env = env })
    assert.equal(0, code, err)
    local aside = named(dir, "guests.old-")
    assert.equal(1, #aside, table.concat(util.listing(dir), " "))
    assert.is_truthy(err:find("is now " .. out .. ".old-", 1, true), err)
    -- Every report the earlier run made went with it.
    assert.equal(manifest, util.read(dir .. "/" .. aside[1] .. "/manifest.jsonl"))
    assert.matches('"api":"legacy"', util.read(out .. "/manifest.jsonl"))
    assert.is_nil(util.read(out .. "/manifest.jsonl"):find('"api":"graph"', 1, true))
    -- The lock taken to set the folder aside went with it, and is gone too.
    assert.same({}, util.locks(dir))
  end)

  it("is refused for a records file when the list a --users FILE names has changed", function()
    local tenant = sb:control("GET", "/tenant")
    local list = dir .. "/users.txt"
    util.write(list, tenant.users[1].loginName .. "\n")
    local args = { "permissions", "--users", list, "--out", dir .. "/permissions.jsonl" }
    local code, _, err = host.run(args, { env = env })
    assert.equal(0, code, err)
    code, _, err = host.run(args, { env = env })
    assert.equal(0, code, err)
    assert.matches("complete from an earlier run", err)
    util.write(list, tenant.users[1].loginName .. "\n" .. tenant.guests[1].loginName .. "\n")
    code, _, err = host.run(args, { env = env })
    assert.equal(2, code, err)
    assert.matches("started with %-%-users .*users%.txt %(sha256 %x+%); this run is with %-%-users .*users%.txt "
      .. "%(sha256 %x+%): rerun with %-%-fresh", err)
  end)

  -- The record beside a records file, its place to resume from replaced by
  -- `cursor` as if the run had stopped there (cursor_rows rows before it).
  local function stopped_at(cursor, cursor_rows)
    local path = dir .. "/.activity.jsonl.auditrun"
    local record = json.decode(util.read(path))
    record.complete, record.sha256, record.coverage = nil, nil, nil
    record.cursor, record.cursor_rows = cursor(record.cursor), cursor_rows
    util.write(path, json.encode(record))
  end

  it("resumes a records file from the place an earlier version saved, and refuses one of a shape it does not know", function()
    local code, _, err = dealcloud {}
    assert.equal(0, code, err)
    local whole = util.read(dir .. "/activity.jsonl")
    -- The cursor the version before the resume token saved: window 2, page 1,
    -- after the rows of window 1.
    local windows
    local before = 0
    stopped_at(function(token)
      windows = dealcloud_module.windows(token.range.from, token.range.to)
      return { from = token.range.from, to = token.range.to, window = 2, page = 1, unread = {} }
    end, 0)
    for _, row in ipairs(util.lines(whole)) do
      if time.read(json.decode(row).eventDate) < windows[1].to then before = before + 1 end
    end
    stopped_at(function(c) return c end, before)
    sb:activity_control("DELETE", "/requests")
    code, _, err = dealcloud {}
    assert.equal(0, code, err)
    assert.equal(whole, util.read(dir .. "/activity.jsonl"))
    -- Window 1 was not asked for again.
    local day_1 = time.iso(windows[1].send_from):sub(1, 10)
    local function asked_window_1()
      local n = 0
      for _, r in ipairs(sb:activity_control("GET", "/requests?match=/dealcloud/")) do
        if (r.url .. " " .. r.body):find(day_1, 1, true) then n = n + 1 end
      end
      return n
    end
    assert.is_true(#sb:activity_control("GET", "/requests?match=/dealcloud/") > 0)
    assert.equal(0, asked_window_1())
    -- A place of another shape: one line naming the file and --fresh, the file as it was.
    stopped_at(function() return { shape = "from elsewhere" } end, 0)
    code, _, err = dealcloud {}
    assert.equal(2, code, err)
    assert.equal(1, #util.lines(err), err)
    assert.matches("activity%.jsonl was left part%-way by a walk this version cannot continue .*%-%-fresh", err)
    assert.equal(whole, util.read(dir .. "/activity.jsonl"))
    code, _, err = dealcloud { "--fresh" }
    assert.equal(0, code, err)
    assert.equal(whole, util.read(dir .. "/activity.jsonl"))
    assert.is_true(asked_window_1() > 0, "a whole run asks for window 1")
  end)
end)
