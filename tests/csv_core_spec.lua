-- The C core's CSV (csrc/lcsv.c): the reader fed in chunks (malformed text
-- gives one clear message, never a crash), cells written with formulas
-- neutralised, row plans that map a row's cells into a statement and a
-- CSV line, a statement read out as CSV, and the access table built through
-- them: a report that breaks part way leaves none of its rows in either
-- file.
local core = require("auditrun.core")
local access = require("auditrun.access")
local records = require("auditrun.records")
local sqlite = require("auditrun.sqlite")
local util = require("tests.helper.util")

-- All rows of text given in chunks of `size` bytes: the list, or nil and
-- the reader's message.
local function rows_of(text, size)
  local rd = core.csv_reader("t.csv")
  local at, out = 1, {}
  while true do
    local row, err = rd:row()
    if row then
      out[#out + 1] = row
    elseif row == nil then
      if err then return nil, err end
      return out
    else
      local chunk = at <= #text and text:sub(at, at + (size or #text) - 1) or nil
      at = at + (size or #text)
      rd:feed(chunk)
    end
  end
end

describe("core.csv_reader", function()
  it("reads quotes, doubled quotes, CR, LF and CRLF, a BOM and ragged rows, however it is fed", function()
    local text = '\239\187\191a,"b ""q"", c"\r\n1,2,3,4\n\r\n"x\r\ny"\r,\n' .. "last"
    local want = { { "a", 'b "q", c' }, { "1", "2", "3", "4" }, { "x\r\ny" }, {}, { "last" } }
    assert.same(want, (rows_of(text)))
    for size = 1, #text do assert.same(want, (rows_of(text, size)), "chunks of " .. size) end
  end)

  it("keeps NUL bytes as text, and reads no text and rows of empty fields", function()
    assert.same({ { "a\0b", "\0" }, { '"\0"' } }, (rows_of('a\0b,\0\r\n"""\0"""')))
    -- Found by the csv fuzz target: a reader that never held a byte.
    assert.same({}, (rows_of("")))
    assert.same({ {}, {} }, (rows_of(',,\r\n""')))
  end)

  it("names the record of a quote left open, of text after a closing quote, and UTF-16", function()
    local cases = {
      { 'a\r\nb,"open\r\nc', "^t%.csv: record 2: a quoted field is not closed at the end$" },
      { 'a,"x"y', "^t%.csv: record 1: text after the closing quote of field 2$" },
      { "\255\254a\0", "^t%.csv is UTF%-16 text" },
    }
    for _, c in ipairs(cases) do
      for _, size in ipairs { 1, 2, 1000 } do
        local rows, err = rows_of(c[1], size)
        assert.is_nil(rows)
        assert.matches(c[2], err)
      end
    end
    -- The error stays: asking again gives it again.
    local rd = core.csv_reader("t.csv")
    rd:feed('"x"y')
    rd:feed(nil)
    assert.matches("record 1", select(2, rd:row()))
    assert.matches("record 1", select(2, rd:row()))
  end)

  it("refuses a record longer than 64 MiB, fed a MiB at a time", function()
    local rd = core.csv_reader("big.csv")
    local mib = string.rep("x", 1 << 20)
    rd:feed('a\r\n"')
    assert.same({ "a" }, rd:row())
    local err
    for _ = 1, 70 do
      local row, e = rd:row()
      if row == nil then
        err = e
        break
      end
      rd:feed(mib)
    end
    assert.matches("^big%.csv: record 2 is longer than 64 MiB$", err)
  end)

  it("refuses a record of more than 65536 fields", function()
    local rows, err = rows_of(string.rep(",", 70000))
    assert.is_nil(rows)
    assert.matches("^t%.csv: record 1 has more than 65536 fields$", err)
    assert.equal("x", (rows_of(string.rep(",", 65535) .. "x"))[1][65536])
  end)

  it("refuses more text after the end", function()
    local rd = core.csv_reader("t.csv")
    rd:feed(nil)
    assert.is_nil(rd:row())
    assert.has_error(function() rd:feed("a") end)
  end)
end)

describe("core.csv_cell", function()
  it("neutralises formula-like texts but not negative numbers, and quotes separators", function()
    local cases = {
      { "plain", "plain", false }, { "=1+1", "'=1+1", true }, { "+x", "'+x", true }, { "@a", "'@a", true },
      { "-5", "-5", false }, { "-2.5", "-2.5", false }, { "-5.", "-5.", false }, { "-", "'-", true },
      { "-x", "'-x", true }, { "\tx", "\"'\tx\"", true }, { "a,b", '"a,b"', false }, { 'say "hi"', '"say ""hi"""', false },
      { "a;b", '"a;b"', false }, { "two\nlines", '"two\nlines"', false }, { "", "", false }, { "a\0b", "a\0b", false },
    }
    for _, c in ipairs(cases) do
      local text, neutralised = core.csv_cell(c[1])
      assert.equal(c[2], text, c[1])
      assert.equal(c[3], neutralised, c[1])
    end
    assert.same({ "=x", false }, { core.csv_cell("=x", true) })
  end)
end)

describe("core.row_plan", function()
  local db, insert, dir

  before_each(function()
    dir = util.tempdir()
    db = assert(sqlite.open(":memory:"))
    assert(db:exec("create table t (a text, b text, c text, flag integer, n integer not null, extra text, "
      .. "primary key (n))"))
    insert = assert(db:prepare("insert into t values (?, ?, ?, ?, ?, ?)"))
  end)

  after_each(function()
    insert:close()
    db:close()
  end)

  local function plan(csv)
    return core.row_plan {
      stmt = insert, csv = csv, row = 5, extra_param = 6, encode = records.encode,
      params = {
        { { col = 1 }, { col = 2 }, { value = "none" } },
        { { email = { { col = 2 } } }, { lookup = { { col = 1 } }, map = { alice = "alice@x.test" } }, lower = true },
        { { col = 3 } },
      },
      external = { param = 4, value = { { col = 4 } }, principal = 1, email = 2, type = 3 },
      extra = { { key = '"note":', cols = { 5 } }, { key = '"also":', cols = { 6, 7 } } },
    }
  end

  it("maps cells through chains, e-mails, lookups, the external rule and extra, into the table and a CSV", function()
    local path = dir .. "/out.csv"
    local f = assert(io.open(path, "w"))
    local p = plan(f)
    local rows = {
      { "Alice", "A.Person@X.Test", "Member", "no", "=cmd", nil, "x" },
      { nil, "bob", "Guest user" },
      { "Carol#EXT#x", nil, nil, nil, 'say "hi"\n', "a", "b" },
      {},
      { "Dan", nil, "user", "TRUE", nil, "back\\slash" },
    }
    for i, r in ipairs(rows) do assert(p:add(r, i)) end
    f:close()
    local got = {}
    for r in db:rows("select * from t order by n") do got[#got + 1] = r end
    assert.same({
      { a = "Alice", b = "a.person@x.test", c = "Member", flag = 0, n = 1, extra = '{"note":"=cmd","also":"x"}' },
      { a = "bob", c = "Guest user", flag = 1, n = 2 },
      { a = "Carol#EXT#x", flag = 1, n = 3, extra = '{"note":"say \\"hi\\"\\n","also":"b"}' },
      { a = "none", flag = 0, n = 4 },
      { a = "Dan", c = "user", flag = 1, n = 5, extra = '{"also":"back\\\\slash"}' },
    }, got)
    assert.equal(table.concat({
      'Alice,a.person@x.test,Member,false,1,"{""note"":""=cmd"",""also"":""x""}"',
      "bob,,Guest user,true,2,",
      'Carol#EXT#x,,,true,3,"{""note"":""say \\""hi\\""\\n"",""also"":""b""}"',
      "none,,,false,4,",
      'Dan,,user,true,5,"{""also"":""back\\\\slash""}"',
    }, "\r\n") .. "\r\n", util.read(path))
  end)

  it("looks names up in lower case, and gives a failed insert back as an error value", function()
    local p = plan()
    assert(p:add({ "ALICE" }, 1))
    assert.equal("alice@x.test", db:value("select b from t"))
    local ok, err = p:add({ "again" }, 1)
    assert.is_nil(ok)
    assert.equal("sqlite", err.kind)
    assert.matches("^insert: UNIQUE constraint failed", err.message)
  end)

  it("runs a reader's rows through, numbered, passing rows with no cell by, and stops at a failed insert", function()
    local p = plan()
    local rd = core.csv_reader("t.csv")
    rd:feed("a,b\r\n,,\r\nc,d\r\n")
    assert.same({ 2, false }, { rd:pipe(p, 0) })
    rd:feed(nil)
    assert.same({ 2 }, { rd:pipe(p, 2) })
    assert.equal(2, db:value("select count(*) from t"))
    rd = core.csv_reader("u.csv")
    rd:feed("e\r\nf\r\n")
    rd:feed(nil)
    local n, err, at = rd:pipe(p, 1)
    assert.is_nil(n)
    assert.equal("sqlite", err.kind)
    assert.equal(2, at)
    rd = core.csv_reader("v.csv")
    rd:feed('"open')
    rd:feed(nil)
    n, err = rd:pipe(p, 10)
    assert.is_nil(n)
    assert.matches("^v%.csv: record 1: a quoted field", err)
  end)

  it("refuses a spec it cannot read", function()
    assert.has_error(function() core.row_plan { stmt = insert, params = { { { nothing = 1 } } } } end)
    assert.has_error(function() core.row_plan { stmt = insert, params = { { { value = {} } } } } end)
    assert.has_error(function() core.row_plan { stmt = insert, params = { { { col = 0 } } } } end)
    assert.has_error(function() core.row_plan { params = {} } end)
    -- A plan whose statement was closed refuses rows.
    local other = assert(db:prepare("insert into t values (?, ?, ?, ?, ?, ?)"))
    local p = core.row_plan { stmt = other, params = { { { col = 1 } } }, row = 5 }
    other:close()
    assert.has_error(function() p:add({ "a" }, 1) end, "row_plan: its statement is closed")
  end)
end)

describe("the access table", function()
  it("leaves out of access.csv and access.sqlite every row of a report that breaks part way", function()
    local dir = util.tempdir()
    local header = "group,name,url,permission\r\n"
    local good = header .. "G1,a.docx,https://x/a,Read\r\nG1,b.docx,https://x/b,Edit\r\n"
    local broken = header .. "G2,c.docx,https://x/c,Read\r\nG2,\"d.docx,https://x/d,Edit\r\n"
    util.write(dir .. "/good.csv", good)
    util.write(dir .. "/broken.csv", broken)
    util.sh(("cd %s && python3 -c \"import zipfile\nfor n in ['good', 'broken', 'again']:\n"
      .. "  z = zipfile.ZipFile(n + '.zip', 'w', zipfile.ZIP_DEFLATED)\n"
      .. "  z.write(('good' if n == 'again' else n) + '.csv', 'GroupAccess.csv')\n  z.close()\""):format(dir))
    local lines = {}
    for i, name in ipairs { "good", "broken", "again" } do
      lines[i] = ('{"kind":"group_access_export","api":"graph","subjects":["g%d"],"file":"%s.zip"}'):format(i, name)
    end
    util.write(dir .. "/manifest.jsonl", table.concat(lines, "\n") .. "\n")
    local t = assert(access.build(dir, { run = { workflow = "test" } }))
    assert.equal(4, t.rows)
    assert.equal(1, #t.unreadable)
    assert.matches("broken%.zip: GroupAccess%.csv: record 3: a quoted field is not closed", t.unreadable[1].error)
    local csv = util.lines(util.read(dir .. "/access.csv"))
    assert.equal(5, #csv) -- the header and four rows
    assert.matches("^g1,G1,a%.docx,", csv[2])
    assert.matches("^g3,G1,a%.docx,.*,again%.zip,1,\r$", csv[4])
    assert.matches("^g3,G1,b%.docx,.*,again%.zip,2,\r$", csv[5])
  end)
end)
