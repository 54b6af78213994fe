-- auditrun.files: writes that survive kill -9. A file is written beside its
-- final name, fsynced, then renamed; the directory is fsynced after.
--
-- Files and folders auditrun makes are private to their owner: 0600 and
-- 0700, as ssh keeps its private files. AUDITRUN_FILE_MODE (octal, e.g.
-- 0640) widens that for a team that shares reports; folders then get the
-- matching search bits (0750).
local core = require("auditrun.core")

local M = {}

M.mkdirs = core.mkdirs                      -- (path) -> true | nil, err
M.write_atomic = core.write_atomic          -- (path, data) -> true | nil, err
M.temp = core.temp_file                     -- (beside) -> temporary file | nil, err
M.fsync = core.fsync_file                   -- (path) -> true | nil, err
M.fsync_dir_of = core.fsync_dir_of          -- (path) -> true | nil, err
M.truncate = core.truncate                  -- (path, length) -> true | nil, err: cut back in place, fsynced
M.rename_noreplace = core.rename_noreplace  -- (from, to) -> true | nil, err ("exists")
M.sha256 = core.sha256_file                 -- (path) -> hex | nil, err
M.lock = core.lock                          -- (path) -> lock | nil, err ("locked"); see below
M.remove_parts = core.remove_parts          -- (dir [, of]) -> temporary files removed | nil, err
M.mode = core.file_mode                     -- (path) -> permission bits (0644 is 420) | nil, err

--- list(dir) -> the names in dir (not . and ..), sorted | nil, err
function M.list(dir)
  local names, err = core.list_dir(dir)
  if names then table.sort(names) end
  return names, err
end

--- open_append(path) -> a Lua file open for appending, created private
--- (0600) and never through a symlink | nil, message (as io.open).
function M.open_append(path) return core.open_private(path, "a") end
--- open_write(path): the same, emptied for writing.
function M.open_write(path) return core.open_private(path, "w") end

-- A lock (files.lock) is an flock on the file at its path, created if
-- missing; the kernel drops it when the process ends, kill -9 included:
--   lock:close()        releases it; the file stays (a slot file others share)
--   lock:remove([path]) removes the file, then releases it -> true | nil, err
--                       (path: its name now, if it moved with its folder)
-- A run removes the lock files beside its output when it is done with them.
-- remove unlinks while still holding, and files.lock counts a lock only when
-- the path still leads to the file it locked (else it takes the new one), so
-- a run that opened the file just before it went never shares the lock.

-- A temporary file (files.temp) holds its descriptor until it is named:
--   tmp:path()          its hidden name beside the target
--   tmp:size(), tmp:read_at(offset, n), tmp:sha256(), tmp:fsync()
--   tmp:link(target)    gives it its final name, never replacing ("exists")
--   tmp:close()         removes it unless it was named (also <close>, gc)
-- It is the `output` of an HTTP request: the body goes to that descriptor,
-- never to whatever a name points at by then.

--- The modes for a file mode string such as "0640": file, folder | nil.
function M.parse_mode(text)
  if type(text) ~= "string" or not text:match("^0?[0-7][0-7][0-7]$") then return nil end
  local file = tonumber(text, 8)
  if file & 384 ~= 384 then return nil end  -- the owner must read and write
  local dir = file | ((file & 292) >> 2)    -- a search bit wherever read is
  return file, dir
end

do
  local wanted = os.getenv("AUDITRUN_FILE_MODE")
  if wanted and wanted ~= "" then
    local file, dir = M.parse_mode(wanted)
    if not file then
      error(require("auditrun.errors").new("config", string.format(
        "AUDITRUN_FILE_MODE=%s: give an octal mode with owner read and write, such as 0640", wanted)), 0)
    end
    core.set_file_modes(file, dir)
  end
end

--- old_name(path, n) -> the name --fresh sets path aside as:
--- PATH.old-<UTC time>, and PATH.old-<time>-N for n > 1 (when that is taken).
function M.old_name(path, n)
  local base = path:gsub("/+$", "")
  return base .. ".old-" .. os.date("!%Y%m%dT%H%M%SZ") .. ((n or 1) > 1 and ("-" .. n) or "")
end

--- state_dir() -> the user's auditrun state folder (not made here):
--- $XDG_STATE_HOME/auditrun, else ~/.local/state/auditrun | nil, err.
function M.state_dir()
  local xdg = os.getenv("XDG_STATE_HOME")
  -- The XDG base directory rules: a relative path is invalid and ignored.
  if xdg and xdg:sub(1, 1) == "/" then return xdg .. "/auditrun" end
  local home = os.getenv("HOME")
  if home and home ~= "" then return home .. "/.local/state/auditrun" end
  return nil, require("auditrun.errors").new("config", "no state folder: set XDG_STATE_HOME or HOME")
end

--- put_in_place(tmp, path) -> true | nil, err: a finished file written under
--- a temporary name takes its final name for good: fsynced, renamed over
--- whatever was there, then the folder fsynced. On failure tmp is removed.
function M.put_in_place(tmp, path)
  local ok, err = M.fsync(tmp)
  if ok then
    local renamed, rerr = os.rename(tmp, path)
    if renamed then return M.fsync_dir_of(path) end
    err = require("auditrun.errors").new("file", string.format("cannot replace %s: %s", path, rerr))
  end
  os.remove(tmp)
  return nil, err
end

function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

--- Reads a whole file: contents, or nil and an error of kind "file".
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, require("auditrun.errors").new("file", err) end
  local data = f:read("a")
  f:close()
  return data
end

return M
