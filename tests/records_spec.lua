-- auditrun.records (rows to JSON Lines or CSV, streamed and resumable) and
-- the records workflows run by the host against the sandbox: CSV that
-- Python's csv module reads back exactly, a file cut off by kill -9 that a
-- rerun finishes with every row once, memory that stays flat.
local helper = require("tests.helper")
local sandbox, host, reports, util = helper.sandbox, helper.host, helper.reports, helper.util
local auditrun = require("auditrun")
local cjson = require("cjson")
local records = require("auditrun.records")

local lines = util.lines

local python_csv, jsonl = reports.csv, reports.jsonl

describe("records writer", function()
  local dir
  before_each(function() dir = util.tempdir() end)
  after_each(function() util.remove(dir) end)

  it("writes RFC 4180 CSV: header row, CRLF, quoting that round-trips", function()
    local path = dir .. "/out.csv"
    local w = auditrun.try(records.open(path, { format = "csv", columns = { "name", "note" } }))
    local cases = {
      { name = "plain", note = "x" },
      { name = "a,b", note = 'say "hi"' },
      { name = "two\nlines", note = "cr\r\nlf" },
      { name = "Résumé – Zoë.docx", note = "50% budget" },
      { name = "", note = cjson.null },
      { name = "=1+1", note = { list = { 1, 2 } } },
      { name = 17.0, note = true },
    }
    for _, r in ipairs(cases) do auditrun.try(w:write(r)) end
    auditrun.try(w:close())
    local raw = util.read(path)
    assert.equal("name,note\r\nplain,x\r\n\"a,b\",\"say \"\"hi\"\"\"\r\n", raw:sub(1, 40))
    local rows = python_csv(path)
    assert.same({ "name", "note" }, rows[1])
    assert.same({ "plain", "x" }, rows[2])
    assert.same({ "a,b", 'say "hi"' }, rows[3])
    assert.same({ "two\nlines", "cr\r\nlf" }, rows[4])
    assert.same({ "Résumé – Zoë.docx", "50% budget" }, rows[5])
    assert.same({ "", "" }, rows[6])
    assert.same({ "'=1+1", '{"list":[1,2]}' }, rows[7])
    assert.same({ "17", "true" }, rows[8])
    assert.equal(8, #rows)
  end)

  it("neutralises cells a spreadsheet would run as formulas, header included, and writes them raw when asked", function()
    local hostile = { "=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx" }
    local row, columns = {}, {}
    for i, v in ipairs(hostile) do
      columns[i] = "c" .. i
      row["c" .. i] = v
    end
    -- Plain negative numbers (texts and numbers) and other texts stay as they are.
    local plain = { "-5", "-2.5", -5, -2.5, 0, "a=b", " =1", "x-1", "", "'quoted", "\nx" }
    for i, v in ipairs(plain) do
      columns[#hostile + i] = "p" .. i
      row["p" .. i] = v
    end
    columns[#columns + 1] = "@header"
    row["@header"] = "=1+2"
    local function write(path, o)
      local w = auditrun.try(records.open(path, { columns = columns, csv_raw = o and o.csv_raw }))
      auditrun.try(w:write(row))
      auditrun.try(w:close())
      return python_csv(path), w
    end
    local rows, w = write(dir .. "/safe.csv")
    assert.equal(#columns, #rows[1])
    assert.equal("'@header", rows[1][#columns])
    for i, v in ipairs(hostile) do assert.equal("'" .. v, rows[2][i]) end
    assert.same({ "-5", "-2.5", "-5", "-2.5", "0", "a=b", " =1", "x-1", "", "'quoted", "\nx" },
      { table.unpack(rows[2], #hostile + 1, #hostile + #plain) })
    assert.equal("'=1+2", rows[2][#columns])
    assert.equal(#hostile + 2, w.neutralised)
    local raw = write(dir .. "/raw.csv", { csv_raw = true })
    assert.equal("@header", raw[1][#columns])
    for i, v in ipairs(hostile) do assert.equal(v, raw[2][i]) end
    assert.equal("=1+2", raw[2][#columns])
    -- A semicolon or tab inside a cell is quoted: a spreadsheet that splits on it starts no cell there.
    local split = dir .. "/split.csv"
    local sw = auditrun.try(records.open(split, { columns = { "a", "b" } }))
    auditrun.try(sw:write { a = "x;=1+1", b = "y\t@SUM(A1)" })
    auditrun.try(sw:close())
    assert.equal('a,b\r\n"x;=1+1","y\t@SUM(A1)"\r\n', util.read(split))
    -- JSON Lines keep the value as it is.
    write(dir .. "/rows.jsonl")
    assert.same(row, jsonl(dir .. "/rows.jsonl")[1])
  end)

  it("resumes a CSV only in the mode it was started in, neutralised or raw", function()
    for _, started_raw in ipairs { false, true } do
      local path = dir .. "/mode-" .. tostring(started_raw) .. ".csv"
      local w = auditrun.try(records.open(path, { csv_raw = started_raw }))
      auditrun.try(w:write { a = "=1" })
      w:abandon()
      local again, err = records.open(path, { csv_raw = not started_raw })
      assert.is_nil(again)
      assert.matches(started_raw and "give %-%-csv%-raw to finish it" or "finish it without %-%-csv%-raw",
        tostring(err))
      again = auditrun.try(records.open(path, { csv_raw = started_raw }))
      auditrun.try(again:write { a = "=1" })
      auditrun.try(again:write { a = "=2" })
      auditrun.try(again:close())
      local q = started_raw and "" or "'"
      assert.same({ { "a" }, { q .. "=1" }, { q .. "=2" } }, python_csv(path))
    end
    -- A CSV started before cells were neutralised (no mode in its record) was written raw.
    local path = dir .. "/old.csv"
    local w = auditrun.try(records.open(path))
    auditrun.try(w:write { a = "=1" })
    w:abandon()
    local state = cjson.decode(util.read(w.state_path))
    state.cells = nil
    util.write(w.state_path, cjson.encode(state))
    assert.is_nil(records.open(path))
    auditrun.try(records.open(path, { csv_raw = true })):abandon()
  end)

  it("puts a first row's other fields after the declared columns, sorted, and names fields it had to drop", function()
    local path = dir .. "/extra.csv"
    local w = auditrun.try(records.open(path, { format = "csv", columns = { "b" } }))
    auditrun.try(w:write { b = 1, z = 2, a = 3 })
    auditrun.try(w:write { b = 4, late = 5 })
    auditrun.try(w:close())
    assert.same({ { "b", "a", "z" }, { "1", "3", "2" }, { "4", "", "" } }, python_csv(path))
    assert.same({ "late" }, w:dropped_columns())
  end)

  it("writes each JSON line's keys in a fixed order: the declared columns, then the rest sorted, nested ones sorted",
    function()
    local path = dir .. "/ordered.jsonl"
    local w = auditrun.try(records.open(path, { columns = { "time", "vendor", "user", "raw" } }))
    local row = { zeta = 1, raw = { b = 2, a = { y = true, x = cjson.null }, c = { 3, "/p" } }, user = "u", alpha = "a",
                  time = "t", mid = {}, vendor = "v" }
    auditrun.try(w:write(row))
    -- The same keys added in the other order.
    local other = {}
    local keys = { "vendor", "time", "mid", "alpha", "user", "raw", "zeta" }
    for _, k in ipairs(keys) do other[k] = row[k] end
    auditrun.try(w:write(other))
    auditrun.try(w:close())
    local want = '{"time":"t","vendor":"v","user":"u","raw":{"a":{"x":null,"y":true},"b":2,"c":[3,"/p"]},'
      .. '"alpha":"a","mid":{},"zeta":1}\n'
    assert.equal(want .. want, util.read(path))
  end)

  it("resumes after a kill: the torn tail goes, the rows already written are skipped", function()
    records.CHECKPOINT = 10
    local path = dir .. "/rows.jsonl"
    local function row(i) return { i = i, text = ("row %d with / and \"quotes\""):format(i) } end
    local w = auditrun.try(records.open(path, { format = "jsonl" }))
    for i = 1, 25 do auditrun.try(w:write(row(i))) end
    -- As if killed: rows 21-25 went out after the last checkpoint, and a
    -- row was half written. The lock goes with the process.
    w.file:write(table.concat(w.buffer))
    w.file:write('{"i":26,"te')
    w.file:close()
    w.lock:close()
    -- Killed while its record, its coverage report or the file itself was
    -- being replaced: those temporary files go; a neighbour's stay.
    local mine = { ".rows.jsonl.part-abc123", "..rows.jsonl.auditrun.part-Xyz789",
                   ".rows.jsonl.coverage.json.part-Q1w2e3" }
    local theirs = { ".rows.jsonl2.part-abc123", ".other.jsonl.part-abc123" }
    for _, name in ipairs(mine) do util.write(dir .. "/" .. name, "x") end
    for _, name in ipairs(theirs) do util.write(dir .. "/" .. name, "x") end
    local again = auditrun.try(records.open(path, { format = "jsonl" }))
    for _, name in ipairs(mine) do assert.is_nil(util.read(dir .. "/" .. name), name) end
    for _, name in ipairs(theirs) do assert.equal("x", util.read(dir .. "/" .. name), name) end
    assert.equal(20, again.skip)
    assert.is_false(again.complete)
    for i = 1, 40 do auditrun.try(again:write(row(i))) end
    auditrun.try(again:close())
    local rows = jsonl(path)
    assert.equal(40, #rows)
    for i, r in ipairs(rows) do assert.same(row(i), r) end
    assert.is_nil(util.read(path):find("\\/", 1, true))
    -- Complete: a third open leaves it alone.
    local third = auditrun.try(records.open(path, { format = "jsonl" }))
    assert.is_true(third.complete)
    assert.equal(40, third.rows)
    records.CHECKPOINT = 500
  end)

  it("refuses a file it did not write, and a format other than the one it started", function()
    util.write(dir .. "/theirs.csv", "a,b\r\n")
    local w, err = records.open(dir .. "/theirs.csv", { format = "csv" })
    assert.is_nil(w)
    assert.matches("exists and was not written by auditrun", tostring(err))
    local started = auditrun.try(records.open(dir .. "/mine.csv", { format = "csv" }))
    auditrun.try(started:write { a = 1 })
    started:abandon()
    w, err = records.open(dir .. "/mine.csv", { format = "jsonl" })
    assert.is_nil(w)
    assert.matches("was started as csv; give %-%-format csv", tostring(err))
  end)

  it("keeps memory flat however many rows go out", function()
    local w = auditrun.try(records.open(dir .. "/many.csv", { format = "csv", columns = { "i", "name" } }))
    local function grow(from, to)
      for i = from, to do auditrun.try(w:write { i = i, name = "some object name " .. i }) end
      collectgarbage()
      return collectgarbage("count")
    end
    local after_10k = grow(1, 10000)
    local after_100k = grow(10001, 100000)
    auditrun.try(w:close())
    assert.is_true(after_100k - after_10k < 256, string.format("%.0f KB more after 90000 more rows",
      after_100k - after_10k))
    assert.equal(100001, #lines(util.read(dir .. "/many.csv")))
  end)
end)

describe("records workflows", function()
  local sb = sandbox.for_describe {}
  local home, env, tenant

  setup(function()
    home, env = sb:new_home()
    tenant = sb:control("GET", "/tenant")
  end)
  teardown(function() util.remove(home) end)

  it("site-overview writes every site's row as CSV with the documented columns", function()
    local path = home .. "/sites.csv"
    local code, _, err = host.run({ "site-overview", "--format", "csv", "--out", path }, { env = env })
    assert.equal(0, code, err)
    local rows = python_csv(path)
    assert.same({ "siteName", "siteUrl", "riskItemCount", "sensitiveItemCount", "exposureItemCount" }, rows[1])
    assert.equal(tenant.counts.sites + 1, #rows)
    assert.matches(("site%%-overview: %d rows in "):format(tenant.counts.sites), err)
    -- A rerun leaves a complete file alone and sends nothing.
    sb:control("DELETE", "/requests")
    code, _, err = host.run({ "site-overview", "--format", "csv", "--out", path }, { env = env })
    assert.equal(0, code, err)
    assert.matches("complete from an earlier run", err)
    assert.same({}, sb:control("GET", "/requests?match=/sites/overview"))
  end)

  it("takes the format from the extension of --out, and refuses an --out and a --format that disagree", function()
    local csv = home .. "/by-name.csv"
    local code, _, err = host.run({ "site-overview", "--out", csv, "-q" }, { env = env })
    assert.equal(0, code, err)
    assert.same({ "siteName", "siteUrl", "riskItemCount", "sensitiveItemCount", "exposureItemCount" }, python_csv(csv)[1])
    local upper = home .. "/LOUD.CSV"
    code, _, err = host.run({ "site-overview", "--out", upper, "--format", "csv", "-q" }, { env = env })
    assert.equal(0, code, err)
    assert.equal("siteName", python_csv(upper)[1][1])
    for _, case in ipairs { { "/mixed.jsonl", "csv", "jsonl" }, { "/mixed.csv", "jsonl", "csv" } } do
      local out = home .. case[1]
      local out_text
      code, out_text, err = host.run({ "site-overview", "--out", out, "--format", case[2] }, { env = env })
      assert.equal(2, code, err)
      assert.equal("", out_text)
      assert.matches(("auditrun: site%%-overview: %%-%%-out [^\n]* is a %s file but %%-%%-format is %s: "):format(case[3],
        case[2]), err)
      assert.is_nil(util.read(out))
    end
    -- No --out: the workflow's name with the format's extension, in the current folder.
    local parts = {}
    for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. host.quote(v) end
    local dir = home .. "/here"
    os.execute("mkdir -p " .. dir)
    code = os.execute(("cd %s && env %s %s site-overview --format csv -q 2>/dev/null"):format(dir,
      table.concat(parts, " "), host.binary))
    assert.is_true(code)
    local names = table.concat(util.listing(dir), " ")
    assert.matches("^%.site%-overview%.csv%.auditrun .*site%-overview%.csv site%-overview%.csv%.coverage%.json$", names)
    assert.is_nil(names:find("jsonl", 1, true))
    assert.equal("siteName", python_csv(dir .. "/site-overview.csv")[1][1])
  end)

  it("each records workflow writes rows on both APIs", function()
    util.write(home .. "/sites.txt", tenant.sites[1].url .. "\n" .. tenant.sites[2].url .. "\n")
    util.write(home .. "/users.txt", tenant.users[1].loginName .. "\n" .. tenant.guests[1].loginName .. "\n")
    for _, case in ipairs {
      { "permissions", "--sites", home .. "/sites.txt" },
      { "permissions", "--users", home .. "/users.txt", field = "user" },
      { "detail-records", "--sites", home .. "/sites.txt", field = "location" },
      { "link-summaries", "--type", "anyone", field = "linkUrl" },
      { "site-overview", "--risk", "high,medium", field = "siteUrl" },
    } do
      for _, api in ipairs { "graph", "legacy" } do
        if not (api == "legacy" and case[1] == "detail-records") then
          local path = ("%s/%s-%s-%s.jsonl"):format(home, case[1], api, case[2]:gsub("%W", ""))
          local args = { table.unpack(case) }
          for _, a in ipairs { "--api", api, "--out", path } do args[#args + 1] = a end
          local code, _, err = host.run(args, { env = env })
          assert.equal(0, code, table.concat(args, " ") .. ": " .. err)
          local rows = jsonl(path)
          assert.is_true(#rows > 0, table.concat(args, " "))
          if case.field then assert.is_not_nil(rows[1][case.field], table.concat(args, " ")) end
        end
      end
    end
  end)

  it("a walk of several queries resumes at the query after the last one read to its end", function()
    local iw = require("auditrun.insights.workflows")
    local c = auditrun.try(require("auditrun.insights").connect {
      insights_url = env.AUDITRUN_INSIGHTS_URL, identity_url = env.AUDITRUN_IDENTITY_URL,
      client_id = env.AUDITRUN_CLIENT_ID, cert = env.AUDITRUN_CERT, cert_password = env.AUDITRUN_CERT_PASSWORD,
      ca_file = env.AUDITRUN_CA_FILE })
    local users = { tenant.users[1].loginName, tenant.guests[1].loginName }
    local queries = { { emails = { users[1] } }, { emails = { users[2] } } }
    local function walk(cursor)
      local rows, cursors = {}, {}
      for page, after in iw.query_pages(c, "user_permissions", queries, function(row, q) row.q = q end)(cursor) do
        for _, r in ipairs(page) do rows[#rows + 1] = r end
        if after then cursors[#cursors + 1] = after end
      end
      return rows, cursors
    end
    local all, tokens = walk(nil)
    -- A token once each query is read to its end, naming the query after it.
    assert.same({ 2, 3 }, { tokens[1].at[1], tokens[2].at[1] })
    local first = 0
    for _, r in ipairs(all) do if r.q == 1 then first = first + 1 end end
    assert.is_true(first > 0 and first < #all, "both users need rows")
    local rest = walk(tokens[1])
    assert.equal(#all - first, #rest)
    for _, r in ipairs(rest) do assert.equal(2, r.q) end
    assert.same({}, (walk(tokens[2])))
    -- The cursor an earlier version saved ({query = q}: query q read) resumes the same way.
    assert.equal(#all - first, #walk({ query = 1 }))
    assert.same({}, (walk({ query = 2 })))
  end)

  it("link-summaries goes on from the link type and site it stopped at after kill -9", function()
    local path = home .. "/links.jsonl"
    -- Slow answers, so the kill lands inside the second link type.
    sb:control("POST", "/faults", { { match = "POST /insights/sharingLinks/summary", delay_ms = 15, times = 100000 } })
    sb:control("DELETE", "/requests")
    local h = host.start({ "link-summaries", "--out", path }, { env = env })
    local deadline = auditrun.now() + 120
    while not (util.read(home .. "/.links.jsonl.auditrun") or ""):find('"at":%[2,')
      and auditrun.now() < deadline do
      auditrun.sleep(0.02)
    end
    h:signal("KILL")
    assert.equal(137, (h:wait(30)))
    sb:control("DELETE", "/faults")
    local before = #sb:control("GET", "/requests?match=/sharingLinks/summary")
    sb:control("DELETE", "/requests")
    local code, _, err = host.run({ "link-summaries", "--out", path }, { env = env })
    assert.equal(0, code, err)
    local rows, twice = reports.ids_twice(path)
    assert.same({}, twice)
    assert.equal(tenant.counts.sharingLinks, #rows)
    local after = #sb:control("GET", "/requests?match=/sharingLinks/summary")
    sb:control("DELETE", "/requests")
    code = host.run({ "link-summaries", "--out", home .. "/links-whole.jsonl" }, { env = env })
    assert.equal(0, code)
    local whole = #sb:control("GET", "/requests?match=/sharingLinks/summary")
    assert.is_true(after < whole, ("the rerun sent %d requests, a whole run %d"):format(after, whole))
    assert.is_true(before + after <= whole + 10, ("%d + %d requests, %d for a whole run"):format(before, after, whole))
  end)

  it("detail-records finishes after kill -9 with every row once, reading on from the site it stopped at", function()
    local path = home .. "/records.jsonl"
    sb:control("DELETE", "/requests")
    local h = host.start({ "detail-records", "--out", path }, { env = env })
    local deadline = auditrun.now() + 60
    while (tonumber(util.sh("stat -c %s " .. path .. " 2>/dev/null")) or 0) < 1500000 and auditrun.now() < deadline do
      auditrun.sleep(0.01)
    end
    h:signal("KILL")
    assert.equal(137, (h:wait(30)))
    local before = #sb:control("GET", "/requests?match=/sites/detailrecords")
    assert.is_true(before > 0)
    sb:control("DELETE", "/requests")
    local code, _, err = host.run({ "detail-records", "--out", path }, { env = env })
    assert.equal(0, code, err)
    assert.matches("[1-9]%d* from an earlier run", err)
    local rows, twice = reports.ids_twice(path)
    assert.same({}, twice)
    assert.equal(tenant.counts.objects, #rows)
    -- Each site's pages were read once across the two runs, give or take
    -- the site the kill interrupted (read again from its first page).
    local after = #sb:control("GET", "/requests?match=/sites/detailrecords")
    sb:control("DELETE", "/requests")
    local whole = auditrun.try(require("auditrun.insights").connect {
      insights_url = env.AUDITRUN_INSIGHTS_URL, identity_url = env.AUDITRUN_IDENTITY_URL,
      client_id = env.AUDITRUN_CLIENT_ID, cert = env.AUDITRUN_CERT, cert_password = env.AUDITRUN_CERT_PASSWORD,
      ca_file = env.AUDITRUN_CA_FILE })
    local pages = 0
    for _ in whole:pages("site_detail_records", {}) do pages = pages + 1 end
    assert.is_true(after < pages, ("the rerun sent %d requests for %d pages"):format(after, pages))
    assert.is_true(before + after <= pages + 20, ("%d + %d requests for %d pages"):format(before, after, pages))
  end)
end)
