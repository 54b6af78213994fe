-- tests.helper.reports: what a workflow left in its --out folder: the
-- reports, manifest.jsonl and summary.json, read as a user's script would.
local cjson = require("cjson")
local util = require("tests.helper.util")

local M = {}

--- csv(path) -> the rows of a CSV file as Python's csv module reads them
--- (lists of texts), the header row first.
function M.csv(path)
  local out = util.sh(("python3 -c 'import csv, json, sys\n"
    .. "with open(sys.argv[1], newline=\"\", encoding=\"utf-8\") as f: print(json.dumps(list(csv.reader(f))))' %s")
    :format(path))
  return cjson.decode(out)
end

--- jsonl(path) -> the decoded lines of a JSON Lines file.
function M.jsonl(path)
  local rows = {}
  for _, l in ipairs(util.lines(util.read(path) or "")) do rows[#rows + 1] = cjson.decode(l) end
  return rows
end

--- ids_twice(path) -> the rows of a JSON Lines file, and the ids that
--- more than one of them has (a list, in file order).
function M.ids_twice(path)
  local seen, twice, rows = {}, {}, M.jsonl(path)
  for _, r in ipairs(rows) do
    if seen[r.id] then twice[#twice + 1] = r.id end
    seen[r.id] = true
  end
  return rows, twice
end

--- zips(dir) -> the names of the .zip files in dir, sorted.
function M.zips(dir)
  return util.lines(util.sh("cd " .. dir .. " && ls *.zip 2>/dev/null"))
end

--- intact(dir) -> true when every zip in dir is whole (central directory
--- and each member's CRC, checked by Python's zipfile).
function M.intact(dir)
  local out = util.sh(("cd %s && python3 -c 'import glob, zipfile\n"
    .. "for n in glob.glob(\"*.zip\"):\n  assert zipfile.ZipFile(n).testzip() is None, n\nprint(\"intact\")'"):format(dir))
  return out == "intact\n"
end

--- manifest(dir) -> the decoded lines of dir/manifest.jsonl (and the raw text).
function M.manifest(dir)
  local text = util.read(dir .. "/manifest.jsonl") or ""
  local out = {}
  for _, l in ipairs(util.lines(text)) do out[#out + 1] = cjson.decode(l) end
  return out, text
end

--- summary(dir) -> dir/summary.json decoded.
function M.summary(dir)
  local text = assert(util.read(dir .. "/summary.json"), "no summary.json in " .. dir)
  return cjson.decode(text)
end

--- state(dir) -> the run state of dir (its journal .auditrun/state.jsonl
--- replayed: key -> value, as of its last whole line).
function M.state(dir)
  local entries = {}
  local text = util.read(dir .. "/.auditrun/state.jsonl") or ""
  for line in text:gmatch("([^\n]*)\n") do
    local rec = cjson.decode(line)
    if rec.k then entries[rec.k] = rec.v end
  end
  return entries
end

--- sha256(path) -> the hex digest sha256sum gives.
function M.sha256(path)
  return (util.sh("sha256sum " .. path):match("^(%x+)"))
end

return M
