-- auditrun.journal: an append-only file of lines, each on disk before
-- append returns, whose last line a kill may have torn. The run state
-- (auditrun.state) and the manifest (auditrun.manifest) are journals.
--
--   local lines, torn = journal.lines(text)      -- the whole lines; torn: a cut tail was there
--   local j = auditrun.try(journal.open(path))   -- made private (0600) when missing
--   auditrun.try(j:append('{"k":"a"}\n'))        -- one write, one flush, one fsync
--   j:close()
--
-- A line without its newline at the end of the file is a write a kill cut
-- short: it never counted, so lines() leaves it out and the owner rewrites
-- the file without it (drop_tail) before appending. After a write or fsync
-- that failed (a full disk), the file may end in part of a line: the
-- journal appends nothing more (every later append returns that error), so
-- the next run finds one torn tail at most. Locking is the owner's
-- (auditrun.files.lock): one writer at a time.
local errors = require("auditrun.errors")
local files = require("auditrun.files")

local M = {}

local Journal = {}
Journal.__index = Journal
Journal.__name = "auditrun.journal"

--- lines(text) -> the whole lines of a journal's text (without their
--- newlines), and true when a torn tail followed them.
function M.lines(text)
  local out, complete = {}, text:match("^(.*\n)") or ""
  for line in complete:gmatch("([^\n]*)\n") do out[#out + 1] = line end
  return out, #complete < #text
end

--- drop_tail(path, text) -> true | nil, err: the file rewritten (atomically)
--- to its whole lines, when text (what it holds) ends in a torn one.
function M.drop_tail(path, text)
  local complete = text:match("^(.*\n)") or ""
  if #complete == #text then return true end
  return files.write_atomic(path, complete)
end

--- open(path) -> journal | nil, err: the file to append to, made (empty,
--- private to its owner) when missing.
function M.open(path)
  if not files.exists(path) then
    local made, merr = files.write_atomic(path, "")
    if not made then return nil, merr end
  end
  local f, err = files.open_append(path)
  if not f then return nil, errors.new("file", err) end
  return setmetatable({ path = path, file = f }, Journal)
end

--- append(text) -> true | nil, err: text (whole lines) written, flushed and
--- fsynced; it never waits on the event loop.
function Journal:append(text)
  assert(self.file, "attempt to append to a closed journal")
  if self.broken then return nil, self.broken end
  local ok, err = self.file:write(text)
  if ok then ok, err = self.file:flush() end
  if not ok then
    self.broken = errors.new("file", string.format("cannot write %s: %s", self.path, tostring(err)))
    return nil, self.broken
  end
  local synced, serr = files.fsync(self.path)
  if not synced then
    self.broken = serr
    return nil, serr
  end
  return true
end

function Journal:close()
  if self.file then
    self.file:close()
    self.file = nil
  end
end
Journal.__close = Journal.close

return M
