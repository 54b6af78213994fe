-- Records workflows into SQLite (--format sqlite, or an --out ending in
-- .sqlite): one table, records, in the CSV's columns with nested values as
-- JSON text, the same rows as JSON Lines; resumed after kill -9 with each
-- row once, also when a kill lands between a commit and its record.
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local auditrun = require("auditrun")
local cjson = require("cjson")
local records = require("auditrun.records")
local time = require("auditrun.time")

local DAY = 86400
local q = host.quote

-- The table's rows as sqlite3 (the command line tool) gives them: JSON.
local function table_rows(db)
  local text = util.sh(("sqlite3 -json %s %s"):format(q(db), q("select * from records order by rowid")))
  if text == "" then return {} end
  return cjson.decode(text)
end

local jsonl = helper.reports.jsonl

-- A JSON Lines row as the table holds it: nested values as their JSON text
-- (compared decoded), booleans as 1 and 0, JSON null as NULL.
local function same_row(line, row, where)
  for k, v in pairs(line) do
    local got = row[k]
    if type(v) == "table" then
      assert.same(v, cjson.decode(got), where .. " " .. k)
    elseif type(v) == "boolean" then
      assert.equal(v and 1 or 0, got, where .. " " .. k)
    elseif v == cjson.null then
      assert.is_true(got == nil or got == cjson.null, where .. " " .. k)
    else
      assert.equal(v, got, where .. " " .. k)
    end
  end
end

describe("records in SQLite", function()
  local sb = sandbox.for_describe()
  local t, dir

  local function control(method, path, body) return sb:activity_control(method, path, body) end

  local function env() return sb:activity_env(t) end

  setup(function()
    t = control("GET", "/tenant")
    dir = util.tempdir()
  end)
  teardown(function() util.remove(dir) end)
  before_each(function()
    control("DELETE", "/faults")
  end)

  it("exavault-sessions --format sqlite: the rows of JSON Lines, in one table in the same columns", function()
    local lines_out, db = dir .. "/sessions.jsonl", dir .. "/sessions.sqlite"
    local code, _, err = host.run({ "exavault-sessions", "--out", lines_out, "-q" }, { env = env() })
    assert.equal(0, code, err)
    -- The format comes from the extension, as for .csv.
    code, _, err = host.run({ "exavault-sessions", "--out", db, "-q" }, { env = env() })
    assert.equal(0, code, err)
    local want, got = jsonl(lines_out), table_rows(db)
    assert.equal(t.exavault.sessions, #want)
    assert.equal(#want, #got)
    for i = 1, #want do same_row(want[i], got[i], "row " .. i) end
    -- Its columns are the CSV's.
    local csv = dir .. "/sessions.csv"
    code, _, err = host.run({ "exavault-sessions", "--out", csv, "-q" }, { env = env() })
    assert.equal(0, code, err)
    local header = (util.read(csv) or ""):match("^([^\r\n]*)")
    local cols = util.sh(("sqlite3 %s %s"):format(q(db), q("select group_concat(name, ',') from pragma_table_info('records')")))
    assert.equal(header, (cols:gsub("%s+$", "")))
  end)

  it("the activity timeline into SQLite, killed with -9 and resumed: each event once, raw as JSON text", function()
    local from = time.parse(t.exavault.first)
    local function args(out, format)
      return { "activity-timeline", "--from", time.iso(from):sub(1, 19), "--to", time.iso(from + 200 * DAY):sub(1, 19),
               "--out", out, "--format", format, "-q" }
    end
    local whole = dir .. "/whole.jsonl"
    local code, _, err = host.run(args(whole, "jsonl"), { env = env() })
    assert.equal(0, code, err)
    local out = dir .. "/killed.db"
    control("POST", "/faults", { match = "GET /exavault/api/v2/activity/", delay_ms = 300, times = 1000 })
    control("POST", "/config", { evLimitCap = 100 })
    local run = host.start(args(out, "sqlite"), { env = env() })
    local function count()
      -- Read only: the tool would make the file if it is not there yet.
      local n = util.sh(("sqlite3 -readonly %s %s 2>/dev/null"):format(q(out), q("select count(*) from records")))
      return tonumber(n) or 0
    end
    for _ = 1, 600 do
      if count() >= 600 then break end
      auditrun.sleep(0.05)
    end
    run:signal("KILL")
    run:wait(20)
    local before = count()
    control("DELETE", "/faults")
    code, _, err = host.run(args(out, "sqlite"), { env = env() })
    assert.equal(0, code, err)
    local want, got = jsonl(whole), table_rows(out)
    assert.is_true(before > 0 and before < #want, "killed at " .. before .. " of " .. #want)
    assert.equal(#want, #got)
    for i = 1, #want do same_row(want[i], got[i], "event " .. i) end
    assert.is_table(cjson.decode(got[1].raw))
  end)
end)

describe("records.open in SQLite", function()
  local dir
  before_each(function() dir = util.tempdir() end)
  after_each(function() util.remove(dir) end)

  local function rows(n)
    local i = 0
    return function()
      i = i + 1
      if i > n then return nil end
      return { id = i, name = "row " .. i, nested = { a = i, list = { 1, 2 } }, flag = i % 2 == 0, none = cjson.null }
    end
  end

  it("a kill between a commit and its record: the rerun drops the rows past the record and writes them once", function()
    local path = dir .. "/r.sqlite"
    local w = auditrun.try(records.open(path, { format = "sqlite", columns = { "id", "name" } }))
    local it = rows(1200)
    for _ = 1, 700 do auditrun.try(w:write(it())) end
    -- Rows 501-700 committed, their record not saved: what a kill -9 right then leaves.
    assert.is_true(w.file:flush())
    w.file:close()
    w.lock:close()
    assert.equal("700", (util.sh(("sqlite3 %s 'select count(*) from records'"):format(q(path))):gsub("%s+$", "")))
    w = auditrun.try(records.open(path, { format = "sqlite", columns = { "id", "name" } }))
    assert.equal(500, w.rows)
    for row in rows(1200) do auditrun.try(w:write(row)) end
    auditrun.try(w:close())
    local got = table_rows(path)
    assert.equal(1200, #got)
    for i, r in ipairs(got) do
      assert.equal(i, r.id)
      assert.same({ a = i, list = { 1, 2 } }, cjson.decode(r.nested))
      assert.equal(i % 2 == 0 and 1 or 0, r.flag)
      assert.equal(cjson.null, r.none)  -- NULL
    end
    -- Complete: a rerun leaves it alone.
    w = auditrun.try(records.open(path, { format = "sqlite" }))
    assert.is_true(w.complete)
  end)

  it("an empty run still makes the table in its declared columns; a file started as another format is refused", function()
    local path = dir .. "/empty.sqlite"
    local w = auditrun.try(records.open(path, { format = "sqlite", columns = { "a", "b" } }))
    auditrun.try(w:close())
    assert.equal("a,b", (util.sh(("sqlite3 %s %s"):format(q(path),
      q("select group_concat(name, ',') from pragma_table_info('records')"))):gsub("%s+$", "")))
    local w2 = auditrun.try(records.open(dir .. "/x.jsonl"))
    w2:abandon()
    local _, err = records.open(dir .. "/x.jsonl", { format = "sqlite" })
    assert.matches("was started as jsonl", tostring(err))
  end)
end)
