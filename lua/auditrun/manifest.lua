-- auditrun.manifest: DIR/manifest.jsonl, one JSON line per finished report:
--
--   {"kind":"group_access_export","api":"graph","subjects":["84888488-..."],
--    "job_id":"4790","file":"AccessReport_4790.zip","bytes":5123,
--    "sha256":"...","finished":"2026-11-25T17:40:01Z"}
--
-- Exactly once: a line is appended (one write, then fsync) only for a file
-- the manifest does not list yet, so a rerun after kill -9 between a report
-- landing and its line adds the missing line and never a second one. A line
-- cut short by a kill is dropped when the manifest is opened again (the
-- report it described is listed again by the rerun).
local json = require("auditrun.json")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local journal = require("auditrun.journal")
local records = require("auditrun.records")

local M = {}

M.NAME = "manifest.jsonl"

local FIELDS = { "kind", "api", "subjects", "job_id", "file", "bytes", "sha256", "finished" }

local Manifest = {}
Manifest.__index = Manifest

local function fail(path, why)
  return nil, errors.new("manifest", string.format("%s: %s; move it away to start the run over", path, why))
end

--- open(dir) -> manifest | nil, err
function M.open(dir)
  local path = dir .. "/" .. M.NAME
  local m = setmetatable({ path = path, files = {}, count = 0 }, Manifest)
  if not files.exists(path) then return m end
  local text, err = files.read(path)
  if not text then return nil, err end
  local lines = journal.lines(text)
  for n, line in ipairs(lines) do
    local entry = json.decode(line)
    if type(entry) ~= "table" or type(entry.file) ~= "string" then
      return fail(path, string.format("line %d is not a manifest entry", n))
    end
    m.files[entry.file] = true
    m.count = m.count + 1
  end
  -- The tail of a line a killed run was writing.
  local ok, werr = journal.drop_tail(path, text)
  if not ok then return nil, werr end
  return m
end

--- entries(dir) -> the whole lines of DIR/manifest.jsonl, decoded, in order
--- (none when there is no manifest) | nil, err.
function M.entries(dir)
  local path = dir .. "/" .. M.NAME
  if not files.exists(path) then return {} end
  local text, err = files.read(path)
  if not text then return nil, err end
  local out = {}
  for line in text:gmatch("([^\n]*)\n") do
    local entry = json.decode(line)
    if type(entry) ~= "table" or type(entry.file) ~= "string" then
      return fail(path, string.format("line %d is not a manifest entry", #out + 1))
    end
    out[#out + 1] = entry
  end
  return out
end

--- has(file) -> true when the manifest lists the file (relative to DIR).
function Manifest:has(file)
  return self.files[file] == true
end

--- add(entry) -> true (added), false (already listed) | nil, err.
--- entry: kind, api, subjects, job_id, file, bytes, sha256, finished.
function Manifest:add(entry)
  assert(type(entry.file) == "string", "a manifest entry needs its file")
  if self.files[entry.file] then return false end
  local line = records.encode_object(FIELDS, {
    kind = entry.kind, api = entry.api, subjects = entry.subjects or {},
    job_id = entry.job_id, file = entry.file, bytes = entry.bytes, sha256 = entry.sha256,
    finished = entry.finished or os.date("!%Y-%m-%dT%H:%M:%SZ"),
  }, { subjects = true }) .. "\n"
  -- After a failed append the manifest may end in part of a line: nothing
  -- more goes after it (the next open drops that torn tail). The file is
  -- opened for each line, so a line always goes to the file of that name.
  if self.broken then return nil, self.broken end
  local j, err = journal.open(self.path)
  if not j then return nil, err end
  local ok, aerr = j:append(line)
  j:close()
  if not ok then
    self.broken = aerr
    return nil, aerr
  end
  self.files[entry.file] = true
  self.count = self.count + 1
  return true
end

return M
