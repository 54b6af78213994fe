-- auditrun.state: what a run has done, kept in a JSON file beside its
-- output, so that a rerun after a failure, Ctrl-C or kill -9 picks up where
-- the last run stopped: nothing submitted twice, nothing fetched twice.
--
--   local run = auditrun.try(state.open("reports/.auditrun-state.json"))
--   local done = run:get("jane@contoso.com")   -- a table, or nil
--   auditrun.try(run:set("jane@contoso.com", { job = "4790" }))
--
-- Every change rewrites the file atomically (write beside, fsync, rename,
-- fsync the directory): after a crash it holds the old state or the new
-- one, never half of either. Values are plain data (strings, numbers,
-- booleans, tables of them).
--
-- One run at a time: open takes a lock (PATH.lock) that the kernel drops
-- when the process ends, however it ends, and refuses a second run while
-- the first holds it. Holding it, open also removes the temporary files a
-- crashed run left in the folder.
local cjson = require "cjson"
local errors = require "auditrun.errors"
local files = require "auditrun.files"

local M = {}

local FORMAT = "auditrun-state/1"

local State = {}
State.__index = State
State.__name = "auditrun.state"

--- open(path) -> state | nil, err. A missing file is an empty state; one
--- that is not a state file is an error (never silently started over).
function M.open(path)
  assert(type(path) == "string", "state.open needs a path")
  local lock, lerr = files.lock(path .. ".lock")
  if not lock then
    if lerr.kind == "locked" then
      return nil, errors.new("state", string.format("another run is using %s (its lock %s.lock is held)", path, path))
    end
    return nil, lerr
  end
  local dir = path:match("^(.*)/[^/]*$") or "."
  local swept, serr = files.remove_parts(dir == "" and "/" or dir)
  if not swept then
    lock:close()
    return nil, serr
  end
  local s = setmetatable({ path = path, entries = {}, lock = lock }, State)
  if not files.exists(path) then return s end
  local text, err = files.read(path)
  if not text then
    lock:close()
    return nil, err
  end
  local ok, doc = pcall(cjson.decode, text)
  if not ok or type(doc) ~= "table" or doc.format ~= FORMAT or type(doc.entries) ~= "table" then
    lock:close()
    return nil, errors.new("state", string.format(
      "%s is not a run state this auditrun wrote (%s); move it away to start the run over", path,
      ok and "unexpected content" or "malformed JSON"))
  end
  s.entries = doc.entries
  return s
end

--- get(key) -> the value set for key, or nil
function State:get(key)
  return self.entries[key]
end

--- set(key, value|nil) -> true | nil, err. Saved before it returns.
function State:set(key, value)
  assert(type(key) == "string", "state keys are strings")
  self.entries[key] = value
  return files.write_atomic(self.path, cjson.encode { format = FORMAT, entries = self.entries })
end

--- close(): lets another run open the state (the end of the process does too).
function State:close()
  self.lock:close()
end

return M
