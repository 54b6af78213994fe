-- Vendor values a spreadsheet would run as formulas (=cmd|' /C calc'!A0,
-- +1, -2+3, @SUM(A1), a leading TAB or CR), served by the sandbox started
-- with hostile = true in every text field of DealCloud's and ExaVault's
-- rows and in Insights group names and object titles: every records
-- workflow and the activity timeline write them to CSV with a leading '
-- (a plain negative number stays as it is), to JSON Lines as they are, and
-- to CSV as they are with --csv-raw.
local helper = require("tests.helper")
local sandbox, host, reports, util = helper.sandbox, helper.host, helper.reports, helper.util
local cjson = require("cjson")
local time = require("auditrun.time")

local DAY = 86400
local HOSTILE = { "=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx" }

-- What a spreadsheet runs: a cell that starts with = + - @ TAB or CR and
-- is not a plain negative number (OWASP's CSV injection list).
local function runs_as_formula(cell)
  return cell:find("^[=+%-@\t\r]") ~= nil and cell:find("^%-%d+%.?%d*$") == nil
end

-- Checks every cell of a CSV against the JSON Lines file of the same run:
-- the same value, a text a spreadsheet would run after a ' (unless raw).
-- Returns how many cells carried one of HOSTILE, by value.
local function check(csv, jsonl, raw)
  local rows, objects = reports.csv(csv), reports.jsonl(jsonl)
  assert.is_true(#objects > 0, jsonl .. " is empty")
  assert.equal(#objects + 1, #rows)
  local header, seen = rows[1], {}
  for i, obj in ipairs(objects) do
    local cells = rows[i + 1]
    assert.equal(#header, #cells)
    for j, name in ipairs(header) do
      local v, cell = obj[name], cells[j]
      local where = ("%s row %d %s"):format(csv, i, name)
      if v == nil or v == cjson.null then
        assert.equal("", cell, where)
      elseif type(v) == "string" then
        assert.equal((runs_as_formula(v) and not raw) and "'" .. v or v, cell, where)
        for _, h in ipairs(HOSTILE) do
          if v:sub(1, #h) == h then seen[h] = (seen[h] or 0) + 1 end
        end
      elseif type(v) == "number" then
        assert.equal(v, tonumber(cell), where)
      elseif type(v) == "table" then
        assert.same(v, cjson.decode(cell), where)
      else
        assert.equal(tostring(v), cell, where)
      end
      if not raw then assert.is_false(runs_as_formula(cell), where .. ": " .. cell) end
    end
  end
  return seen
end

local function assert_all_hostile(seen, what)
  for _, h in ipairs(HOSTILE) do assert.is_true((seen[h] or 0) > 0, what .. " had no cell starting " .. h) end
end

describe("formula-like vendor values", function()
  local sb = sandbox.for_describe { hostile = true }
  local home, env, t, tenant

  setup(function()
    home = util.tempdir()
    t = sb:activity_control("GET", "/tenant")
    tenant = sb:control("GET", "/tenant")
    sb:control("POST", "/config", { jobSeconds = 0.05 })
    env = sb:host_env(home)
    env.AUDITRUN_DEALCLOUD_URL = sb.url .. "/dealcloud"
    env.AUDITRUN_DEALCLOUD_CLIENT_ID, env.AUDITRUN_DEALCLOUD_CLIENT_SECRET = t.dealcloud.client_id,
      t.dealcloud.client_secret
    env.AUDITRUN_EXAVAULT_URL = sb.url .. "/exavault/api/v2"
    env.AUDITRUN_EXAVAULT_API_KEY, env.AUDITRUN_EXAVAULT_ACCESS_TOKEN = t.exavault.api_key, t.exavault.access_token
    util.write(home .. "/sites.txt", tenant.sites[1].url .. "\n" .. tenant.sites[2].url .. "\n")
    util.write(home .. "/users.txt", tenant.users[1].loginName .. "\n")
  end)
  teardown(function() util.remove(home) end)

  -- Runs a workflow to NAME.csv and NAME.jsonl (and NAME.raw.csv with
  -- --csv-raw); returns their paths and the CSV run's summary.
  local function both(name, args, raw)
    local paths = {}
    local summary
    for _, kind in ipairs { "csv", "jsonl", raw and "raw.csv" or nil } do
      local out = ("%s/%s.%s"):format(home, name, kind)
      local list = { table.unpack(args) }
      for _, a in ipairs { "--out", out, kind == "raw.csv" and "--csv-raw" or nil } do list[#list + 1] = a end
      local code, _, err = host.run(list, { env = env })
      assert.equal(0, code, err)
      if kind == "csv" then summary = err end
      paths[kind] = out
    end
    return paths, summary
  end

  local function window(from, days)
    return { "--from", time.iso(from):sub(1, 19), "--to", time.iso(from + days * DAY - 1):sub(1, 19) }
  end

  it("reach DealCloud's and ExaVault's CSV with a leading ', JSON Lines as they are, and --csv-raw as they are",
    function()
    local dc_from = time.parse(t.dealcloud.last) - 20 * DAY
    local args = { "dealcloud-activity", table.unpack(window(dc_from, 20)) }
    local dc, summary = both("dealcloud", args, true)
    local seen = check(dc.csv, dc.jsonl)
    assert_all_hostile(seen, "DealCloud")
    assert.matches("; %d+ cells that a spreadsheet would run as formulas start with ' %(%-%-csv%-raw", summary)
    assert_all_hostile(check(dc["raw.csv"], dc.jsonl, true), "DealCloud --csv-raw")
    -- A file keeps the mode it was started in.
    local again = { table.unpack(args) }
    for _, a in ipairs { "--out", dc.csv, "--csv-raw" } do again[#again + 1] = a end
    local code, _, err = host.run(again, { env = env })
    assert.equal(1, code)
    assert.matches("was started with formula%-like cells neutralised", err)
    code, _, err = host.run({ "dealcloud-activity", "--out", dc.jsonl, "--csv-raw" }, { env = env })
    assert.equal(2, code)
    assert.matches("%-%-csv%-raw is for CSV", err)

    local ev_from = time.parse(t.exavault.first)
    for _, log in ipairs { "exavault-sessions", "exavault-webhooks" } do
      local ev = both(log, { log, table.unpack(window(ev_from, 60)) })
      assert_all_hostile(check(ev.csv, ev.jsonl), log)
    end
  end)

  it("reach the Insights records' CSV (object titles, group names) with a leading '", function()
    local total = {}
    for _, case in ipairs {
      { "detail-records", "--sites" }, { "link-summaries", "--sites" }, { "permissions", "--sites" },
    } do
      local files = both(case[1], { case[1], case[2], home .. "/sites.txt" })
      for h, n in pairs(check(files.csv, files.jsonl)) do total[h] = (total[h] or 0) + n end
    end
    assert_all_hostile(total, "Insights")
  end)

  it("reach the activity timeline's CSV with a leading ', from every vendor", function()
    local from = time.parse(t.exavault.first)
    local files = both("timeline", { "activity-timeline", "--insights-users", home .. "/users.txt",
                                     table.unpack(window(from, 30)) })
    local seen = check(files.csv, files.jsonl)
    assert_all_hostile(seen, "the timeline")
    local vendors = {}
    for _, ev in ipairs(reports.jsonl(files.jsonl)) do vendors[ev.vendor] = true end
    assert.same({ dealcloud = true, exavault = true, insights = true }, vendors)
  end)
end)
