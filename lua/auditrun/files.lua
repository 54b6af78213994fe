-- auditrun.files: writes that survive kill -9. A file is written beside its
-- final name, fsynced, then renamed; the directory is fsynced after.
local core = require "auditrun.core"

local M = {}

M.mkdirs = core.mkdirs                      -- (path) -> true | nil, err
M.write_atomic = core.write_atomic          -- (path, data) -> true | nil, err
M.temp_beside = core.temp_beside            -- (path) -> temp path | nil, err
M.fsync = core.fsync_file                   -- (path) -> true | nil, err
M.fsync_dir_of = core.fsync_dir_of          -- (path) -> true | nil, err
M.rename_noreplace = core.rename_noreplace  -- (from, to) -> true | nil, err ("exists")
M.sha256 = core.sha256_file                 -- (path) -> hex | nil, err
M.lock = core.lock                          -- (path) -> lock (close()) | nil, err ("locked")
M.remove_parts = core.remove_parts          -- (dir) -> temporary files removed | nil, err

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
