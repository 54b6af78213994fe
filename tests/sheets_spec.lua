-- variants: plain
-- Report zips read as a stream (auditrun.sheets): stored and deflated
-- entries, a workbook inside a zip, shared and inline strings, numbers,
-- empty cells and several sheets; CSV members read by an RFC 4180 reader
-- (quotes, commas, line breaks in fields, a byte order mark, any chunking,
-- flat memory); and Insights activity reports turned into timeline events
-- in time order even when a report is not, their summary sheets passed by,
-- and a report with no events sheet refused with its name.
local sheets = require("auditrun.sheets")
local timeline = require("auditrun.insights.timeline")
local util = require("tests.helper.util")

-- Builds report.zip in dir with python's zipfile: book.xlsx (deflated,
-- shared strings for the header, two sheets) inside a deflated outer zip.
local function make_report(dir, rows)
  local script = dir .. "/make.py"
  local f = assert(io.open(script, "w"))
  f:write([=[
import sys, zipfile
dir = sys.argv[1]
rows = [line.split("|") for line in sys.argv[2:]]
def cell(ref, v):
    if v == "": return ""
    if v.isdigit(): return '<c r="%s"><v>%s</v></c>' % (ref, v)
    return '<c r="%s" t="inlineStr"><is><t>%s</t></is></c>' % (ref, v.replace("&", "&amp;").replace("<", "&lt;"))
header = ["Time (UTC)", "User", "Operation", "Object URL", "IP Address"]
shared = '<sst xmlns="x">' + "".join("<si><t>%s</t></si>" % h for h in header) + "</sst>"
head = '<row r="1">' + "".join('<c r="%s1" t="s"><v>%d</v></c>' % (chr(65 + i), i) for i in range(len(header))) + "</row>"
def sheet(part):
    body = "".join('<row r="%d">%s</row>' % (i + 2, "".join(cell(chr(65 + j) + str(i + 2), v) for j, v in enumerate(r)))
                   for i, r in enumerate(part))
    return '<?xml version="1.0"?><worksheet xmlns="x"><sheetData>' + head + body + "</sheetData></worksheet>"
half = len(rows) // 2
with zipfile.ZipFile(dir + "/book.xlsx", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("[Content_Types].xml", "<Types/>")
    z.writestr("xl/sharedStrings.xml", shared)
    z.writestr("xl/worksheets/sheet2.xml", sheet(rows[half:]))
    z.writestr("xl/worksheets/sheet1.xml", sheet(rows[:half]))
with zipfile.ZipFile(dir + "/report.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.write(dir + "/book.xlsx", "User Activity_1.xlsx")
]=])
  f:close()
  local args = {}
  for i, r in ipairs(rows) do args[i] = "'" .. r .. "'" end
  util.sh(("python3 %s %s %s"):format(script, dir, table.concat(args, " ")))
  return dir .. "/report.zip"
end

-- Builds dir/name, a deflated zip of members {{name, bytes}, ...}, with python's zipfile.
local function make_zip(dir, name, members)
  local list = {}
  for i, m in ipairs(members) do
    util.write(("%s/member-%d"):format(dir, i), m[2])
    list[#list + 1] = ("'%s/member-%d' '%s'"):format(dir, i, m[1])
  end
  util.write(dir .. "/zip.py", [=[
import sys, zipfile
args = sys.argv[2:]
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for i in range(0, len(args), 2): z.write(args[i], args[i + 1])
]=])
  util.sh(("python3 %s/zip.py %s/%s %s"):format(dir, dir, name, table.concat(list, " ")))
  return dir .. "/" .. name
end

-- The rows of CSV text given to the reader in chunks of `size` bytes (all of it when nil).
local function csv(text, size)
  local at = 1
  local source = function()
    if at > #text then return nil end
    local chunk = text:sub(at, size and at + size - 1 or #text)
    at = at + #chunk
    return chunk
  end
  local out = {}
  for row in sheets.csv_rows(source, "test.csv") do out[#out + 1] = row end
  return out
end

describe("the CSV reader", function()
  it("reads quoted fields with commas, doubled quotes and line breaks, and empty fields as nil", function()
    local text = '\239\187\191Time,User,"Object, Name",Note\r\n'
      .. '2025-01-01T10:00:00,a@x.test,"Q3 ""final"", v2.docx","two\r\nlines"\r\n'
      .. '2025-01-01T11:00:00,,"",last\r\n'
      .. '2025-01-01T12:00:00,b@x.test,"line\nbreak",\r\n'
    assert.same({
      { "Time", "User", "Object, Name", "Note" },
      { "2025-01-01T10:00:00", "a@x.test", 'Q3 "final", v2.docx', "two\r\nlines" },
      { "2025-01-01T11:00:00", nil, nil, "last" },
      { "2025-01-01T12:00:00", "b@x.test", "line\nbreak" },
    }, csv(text))
  end)

  it("gives the same rows however the text is cut into chunks", function()
    local text = '\239\187\191a,"b ""c"", d",e\r\n"x\r\ny",,""""\r\n\r\nlast,row'
    local whole = csv(text)
    assert.same({ { "a", 'b "c", d', "e" }, { "x\r\ny", nil, '"' }, { "last", "row" } }, whole)
    for size = 1, #text do assert.same(whole, csv(text, size), "chunks of " .. size) end
  end)

  it("takes LF or CR line ends, no line end at the end, and passes blank lines by", function()
    assert.same({ { "a", "b" }, { "c" }, { "d", "e" } }, csv("a,b\n\nc\rd,e"))
    assert.same({ { "a" } }, csv("\r\n\r\na\r\n\r\n"))
    assert.same({}, csv(""))
    assert.same({}, csv("\239\187\191"))
    -- A quote inside an unquoted field is text.
    assert.same({ { '5" disk', "x" } }, csv('5" disk,x'))
  end)

  it("refuses a quote left open, text after a closing quote and UTF-16, naming the text", function()
    for _, text in ipairs { 'a,"open\r\nb,c\r\n', 'a,"closed"x,b\r\n', "\255\254a\0,\0" } do
      local ok, err = pcall(csv, text)
      assert.is_false(ok, text)
      assert.equal("report", err.kind)
      assert.matches("^test%.csv", err.message)
    end
  end)

  it("reads a large CSV member of a report zip in flat memory", function()
    local dir = util.tempdir()
    -- Built in a function, so that the text is garbage before the reading starts.
    local zip, size = (function()
      local parts = { "Time (UTC),User,Operation,Object Name\r\n" }
      for i = 1, 60000 do
        parts[#parts + 1] = ('2025-01-01T00:00:00,user%d@x.test,FileDownloaded,"report %d, ""draft"".docx"\r\n')
          :format(i, i)
      end
      local text = table.concat(parts)
      return make_zip(dir, "big.zip", { { "Activity.csv", text } }), #text
    end)()
    collectgarbage()
    local base, peak, n = collectgarbage("count"), 0, 0
    for _, member, sheet in sheets.rows(zip, dir) do
      n = n + 1
      assert.equal("Activity.csv", member)
      assert.is_nil(sheet)
      -- What is alive, not garbage waiting for the collector.
      if n % 5000 == 0 then
        collectgarbage()
        peak = math.max(peak, collectgarbage("count") - base)
      end
    end
    os.execute("rm -rf " .. dir)
    assert.equal(60001, n)
    assert.is_true(size > 5e6, "the member is " .. size .. " bytes")
    -- Lua's heap grew by well under the member's size (KB).
    assert.is_true(peak < 2048, "peak " .. peak .. " KB above the start")
  end)
end)

describe("report sheets", function()
  local dir
  before_each(function() dir = util.tempdir() end)
  after_each(function() util.remove(dir) end)

  it("stream every sheet's rows of a workbook inside a zip", function()
    local zip = make_report(dir, {
      "2025-01-01T10:00:00|a@x.test|FileDownloaded|https://x/a & b|10.0.0.1",
      "2025-01-01T11:00:00|b@x.test|FileDeleted||10.0.0.2",
      "2025-01-01T12:00:00|c@x.test|SharingSet|https://x/c|42",
    })
    local got = {}
    for row, book in sheets.rows(zip, dir) do
      assert.equal("User Activity_1.xlsx", book)
      got[#got + 1] = row
    end
    -- A header row per sheet, then its rows, sheet 1 first.
    assert.equal(5, #got)
    assert.same({ "Time (UTC)", "User", "Operation", "Object URL", "IP Address" }, got[1])
    assert.same({ "2025-01-01T10:00:00", "a@x.test", "FileDownloaded", "https://x/a & b", "10.0.0.1" }, got[2])
    assert.same("Time (UTC)", got[3][1])
    assert.is_nil(got[4][4])
    assert.equal("10.0.0.2", got[4][5])
    assert.equal("42", got[5][5])
    -- The workbook's temporary copy is gone once read.
    assert.equal("book.xlsx\nmake.py\nreport.zip", (util.sh("ls -A " .. dir):gsub("%s+$", "")))
  end)

  it("refuse what is not a zip with one line", function()
    local path = dir .. "/not.zip"
    local f = assert(io.open(path, "w"))
    f:write("<html>busy</html>")
    f:close()
    local ok, err = pcall(sheets.entries, path)
    assert.is_false(ok)
    assert.equal("report", err.kind)
    assert.matches("not a zip", err.message)
  end)

  it("read CSV and XLSX members of one report, each sheet from its header row", function()
    make_report(dir, { "2025-01-01T10:00:00|a@x.test|FileDownloaded|https://x/a|10.0.0.1" })
    local xlsx = util.read(dir .. "/book.xlsx")
    local zip = make_zip(dir, "mixed.zip", {
      { "Summary.csv", "User,Operations\r\na@x.test,1\r\n" },
      { "Book.xlsx", xlsx },
      { "__MACOSX/._Summary.csv", "\0\5\22\7" },
      { "readme.txt", "not a sheet" },
    })
    local got = {}
    for row, member, sheet in sheets.rows(zip, dir) do got[#got + 1] = { member, sheet or "-", row[1] } end
    assert.same({ { "Summary.csv", "-", "User" }, { "Summary.csv", "-", "a@x.test" },
                  { "Book.xlsx", "xl/worksheets/sheet1.xml", "Time (UTC)" } }, { got[1], got[2], got[3] })
    -- The workbook: sheet 1 its header alone, sheet 2 its header and the row.
    assert.equal(5, #got)
  end)

  it("pass an Insights report's summary sheets by and read its events from CSV", function()
    local zip = make_zip(dir, "report.zip", {
      { "Report_Summary.csv", "\239\187\191User,Operations,Last activity date\r\na@x.test,3,2025-01-02\r\n" },
      { "Report_Activities.csv", "\239\187\191Time (UTC),User,Operation,Object Name,Object URL,IP Address\r\n"
        .. '2025-01-01T10:00:00,a@x.test,FileDownloaded,"a, b.docx",https://x/a,10.0.0.1\r\n'
        .. "2025-01-01T11:00:00,a@x.test,FileDeleted,c.docx,https://x/c,10.0.0.1\r\n"
        .. '2025-01-01T12:00:00,a@x.test,AnonymousLinkCreated,"say ""hi""",https://x/d,10.0.0.1\r\n' },
    })
    local evs = {}
    for ev in assert(timeline.events(zip, dir)) do evs[#evs + 1] = ev end
    assert.equal(3, #evs)
    assert.same({ "download", "delete", "share" }, { evs[1].verb, evs[2].verb, evs[3].verb })
    assert.equal("https://x/a", evs[1].object)
    assert.equal('say "hi"', evs[3].raw["Object Name"])
    assert.equal("2025-01-01T12:00:00.000Z", evs[3].time)
  end)

  it("refuse a report with no events sheet or a member that cannot be read, naming it", function()
    local cases = {
      { { { "Summary.csv", "User,Operations\r\na@x.test,3\r\n" } },
        "no sheet of events with time and operation columns %(only Summary%.csv %[User, Operations%]%)" },
      { { { "readme.txt", "nothing here" } }, "no CSV or XLSX sheet in it" },
      { { { "Activities.csv", "Time,Operation\r\n2025-01-01T10:00:00,FileDeleted\r\n" },
          { "Book.xlsx", "<html>not a workbook</html>" } }, ": Book%.xlsx is not a zip" },
      { { { "Activities.csv", 'Time,Operation\r\n2025-01-01T10:00:00,"FileDeleted\r\n' } },
        ": Activities%.csv: record 2: a quoted field is not closed" },
    }
    for i, case in ipairs(cases) do
      local zip = make_zip(dir, "r" .. i .. ".zip", case[1])
      local events, err = timeline.events(zip, dir)
      assert.is_nil(events)
      assert.equal("report", err.kind)
      assert.equal(zip, err.message:sub(1, #zip))
      assert.matches(case[2], err.message)
    end
    -- No workbook's temporary copy is left behind.
    assert.is_nil(util.sh("ls -A " .. dir):match("%.xlsx"))
  end)

  it("give an Insights report's events in time order, sorting a report that is not", function()
    local zip = make_report(dir, {
      "2025-01-02T00:00:00|a@x.test|FileDownloaded|https://x/a|10.0.0.1",
      "2025-01-01T00:00:00|a@x.test|AnonymousLinkCreated|https://x/b|10.0.0.1",
      "2025-01-03T00:00:00|a@x.test|UserLoggedIn||10.0.0.1",
      "2025-01-01T12:00:00|a@x.test|FileDeleted|https://x/c|10.0.0.1",
    })
    local evs = {}
    for ev in timeline.events(zip, dir) do evs[#evs + 1] = ev end
    assert.equal(4, #evs)
    local times, verbs = {}, {}
    for i, ev in ipairs(evs) do
      times[i], verbs[i] = ev.time, ev.verb
      assert.equal("insights", ev.vendor)
      assert.equal("a@x.test", ev.user)
      assert.equal(ev.action, ev.raw.Operation)
    end
    assert.same({ "2025-01-01T00:00:00.000Z", "2025-01-01T12:00:00.000Z", "2025-01-02T00:00:00.000Z",
                  "2025-01-03T00:00:00.000Z" }, times)
    assert.same({ "share", "delete", "download", "login" }, verbs)
  end)
end)
