-- variants: plain
-- Report zips read as a stream (auditrun.sheets): stored and deflated
-- entries, a workbook inside a zip, shared and inline strings, numbers,
-- empty cells and several sheets; and Insights activity reports turned into
-- timeline events in time order even when a report is not.
local sheets = require "auditrun.sheets"
local timeline = require "auditrun.insights.timeline"
local util = require "tests.helper.util"

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

describe("report sheets", function()
  local dir
  before_each(function() dir = util.tempdir() end)
  after_each(function() os.execute("rm -rf " .. dir) end)

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
