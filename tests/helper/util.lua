-- tests.helper.util: the shell and file helpers the specs share. Plain Lua
-- (io, os): it works under lua5.4 as well as inside the auditrun host.
local M = {}

--- run(cmd) -> stdout, ok (true when the command exited 0), exit code.
function M.run(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok == true, code
end

--- sh(cmd) -> stdout alone.
function M.sh(cmd)
  return (M.run(cmd))
end

--- read(path) -> the file's bytes, or nil when it cannot be read.
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- write(path, data): writes a whole file, raising on failure.
function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  assert(f:close())
end

--- tempdir() -> a new empty directory (mktemp -d); the caller removes it.
function M.tempdir()
  local dir = M.sh("mktemp -d"):gsub("%s+$", "")
  assert(dir:match("^/[%w%._/-]+$"), "mktemp -d gave no usable directory")
  return dir
end

--- remove(path): removes a file or folder and all below it (rm -rf); nil
--- is let go, for a teardown whose setup did not get that far.
function M.remove(path)
  if path then os.execute("rm -rf " .. path) end
end

--- listing(dir, pattern) -> the names in dir, hidden ones included, sorted;
--- with a Lua pattern, only the names it matches. No dir: an empty list.
function M.listing(dir, pattern)
  local names = {}
  for l in M.sh("ls -A " .. dir .. " 2>/dev/null"):gmatch("[^\n]+") do
    if not pattern or l:match(pattern) then names[#names + 1] = l end
  end
  table.sort(names)
  return names
end

--- locks(dir) -> the lock files (*.lock) anywhere under dir, sorted, as
--- paths below it.
function M.locks(dir)
  local names = {}
  for l in M.sh("cd " .. dir .. " && find . -name '*.lock'"):gmatch("[^\n]+") do names[#names + 1] = l:sub(3) end
  table.sort(names)
  return names
end

--- lines(s) -> the non-empty lines of s.
function M.lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

--- file_lines(path) -> every line of a file, empty ones too; an empty list
--- when it cannot be read.
function M.file_lines(path)
  local out = {}
  local f = io.open(path, "rb")
  if not f then return out end
  for l in f:lines() do out[#out + 1] = l end
  f:close()
  return out
end

--- count_lines(path) -> how many lines a file has, or nil when it cannot be read.
function M.count_lines(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  f:close()
  return #M.file_lines(path)
end

return M
