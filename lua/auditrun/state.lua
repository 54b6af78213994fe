-- auditrun.state: what a run has done, kept in a journal beside its output,
-- so that a rerun after a failure, Ctrl-C or kill -9 picks up where the
-- last run stopped: nothing submitted twice, nothing fetched twice.
--
--   local run = auditrun.try(state.open("reports/.auditrun/state.jsonl"))
--   local done = run:get("jane@contoso.com")   -- a table, or nil
--   auditrun.try(run:set("jane@contoso.com", { job = "4790" }))
--   for key, value in run:each() do ... end
--
-- The file is an append-only journal (auditrun.journal): a header line, then one JSON line per
-- change ({"k": key, "v": value}, or {"k": key} for a removal), each
-- written and fsynced before set returns. A change costs one short append
-- and one fsync, however many keys the run holds. A kill -9 can at worst
-- tear the last line: open drops such a tail, then compacts the journal
-- (one line per live key, written beside and renamed over the old one).
-- Values are plain data (strings, numbers, booleans, tables of them).
--
-- One run at a time: open takes a lock (PATH.lock) that the kernel drops
-- when the process ends, however it ends, and refuses a second run while
-- the first holds it; close removes the lock file. Holding it, open also removes the temporary files a
-- crashed run left in the state's folder (and in the folders listed in
-- opts.sweep).
local json = require("auditrun.json")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local journal = require("auditrun.journal")

local M = {}

local FORMAT = "auditrun-journal/1"
local HEADER = json.encode { format = FORMAT } .. "\n"
-- The whole-file state of earlier versions, read once and compacted into a journal.
local OLD_FORMAT = "auditrun-state/1"

local State = {}
State.__index = State
State.__name = "auditrun.state"

local function dir_of(path)
  local dir = path:match("^(.*)/[^/]*$") or "."
  return dir == "" and "/" or dir
end

local function not_ours(path, why)
  return nil, errors.new("state", string.format(
    "%s is not a run state this auditrun wrote (%s); move it away to start the run over", path, why))
end

-- The entries of a journal's text, or nil, err; a torn last line never
-- counted (auditrun.journal).
local function replay(path, text)
  local entries = {}
  for n, line in ipairs((journal.lines(text))) do
    local rec, bad = json.decode(line)
    if type(rec) ~= "table" then
      return not_ours(path, string.format("line %d is %s", n, bad and "malformed JSON" or "not a record"))
    end
    if n > 1 then  -- line 1 is the header, checked by parse
      if type(rec.k) ~= "string" then return not_ours(path, string.format("line %d has no key", n)) end
      entries[rec.k] = rec.v  -- nil (absent) removes
    end
  end
  return entries
end

local function parse(path, text)
  local head = json.decode(text:match("^([^\n]*)\n") or "")
  if type(head) == "table" and head.format == FORMAT then return replay(path, text) end
  local doc = json.decode(text)
  if type(doc) == "table" and doc.format == OLD_FORMAT and type(doc.entries) == "table" then
    return doc.entries
  end
  return not_ours(path, doc ~= nil and "unexpected content" or "malformed JSON")
end

local function line_for(key, value)
  return json.encode { k = key, v = value } .. "\n"
end

--- open(path, {sweep = {dir, ...}}) -> state | nil, err. A missing file is
--- an empty state; one that is not a state file is an error (never
--- silently started over).
function M.open(path, opts)
  assert(type(path) == "string", "state.open needs a path")
  local ok, err = files.mkdirs(dir_of(path))
  if not ok then return nil, err end
  local lock, lerr = files.lock(path .. ".lock")
  if not lock then
    if lerr.kind == "locked" then
      return nil, errors.new("state", string.format("another run is using %s (its lock %s.lock is held)", path, path))
    end
    return nil, lerr
  end
  local function fail(...)
    lock:remove()
    return ...
  end
  local sweep = { dir_of(path) }
  for _, d in ipairs(opts and opts.sweep or {}) do sweep[#sweep + 1] = d end
  for _, d in ipairs(sweep) do
    local swept, serr = files.remove_parts(d)
    if not swept then return fail(nil, serr) end
  end
  local entries = {}
  if files.exists(path) then
    local text, rerr = files.read(path)
    if not text then return fail(nil, rerr) end
    local perr
    entries, perr = parse(path, text)
    if not entries then return fail(nil, perr) end
  end
  -- Compact: the live entries, one line each, in place of the history.
  local out = { HEADER }
  for k, v in pairs(entries) do out[#out + 1] = line_for(k, v) end
  ok, err = files.write_atomic(path, table.concat(out))
  if not ok then return fail(nil, err) end
  local j, jerr = journal.open(path)
  if not j then return fail(nil, jerr) end
  return setmetatable({ path = path, entries = entries, lock = lock, journal = j }, State)
end

--- get(key) -> the value set for key, or nil
function State:get(key)
  return self.entries[key]
end

--- each() -> iterator over key, value of every entry (in no set order)
function State:each()
  return next, self.entries, nil
end

--- set(key, value|nil) -> true | nil, err. On disk (appended and fsynced)
--- before it returns; it never waits on the event loop.
function State:set(key, value)
  assert(type(key) == "string", "state keys are strings")
  assert(self.journal, "attempt to use a closed run state")
  local ok, err = self.journal:append(line_for(key, value))
  if not ok then return nil, err end
  self.entries[key] = value
  return true
end

--- close(): lets another run open the state (the end of the process does
--- too); its lock file goes (files.lock).
function State:close()
  if self.journal then
    self.journal:close()
    self.journal = nil
  end
  self.lock:remove()
end

return M
