-- tests.helper.host: runs the auditrun host as a subprocess, as a user
-- would, and reports its exit code, stdout and stderr. AUDITRUN_HOST picks
-- the variant under test (plain, ASan or valgrind), set by tests/run.
local M = {}

M.binary = os.getenv("AUDITRUN_HOST") or "build/auditrun"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  os.remove(path)
  return s
end

--- run({args...}, {env = {NAME = value}, stdin = path}) -> code, stdout, stderr
function M.run(args, opts)
  opts = opts or {}
  local parts = {}
  for name, value in pairs(opts.env or {}) do parts[#parts + 1] = name .. "=" .. quote(value) end
  parts[#parts + 1] = M.binary
  for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
  local out, err = os.tmpname(), os.tmpname()
  local cmd = table.concat(parts, " ") .. " < " .. (opts.stdin or "/dev/null") ..
    " > " .. out .. " 2> " .. err
  if opts.env then cmd = "env " .. cmd end
  local _, how, code = os.execute(cmd)
  if how == "signal" then code = 128 + code end
  return code, slurp(out), slurp(err)
end

--- Writes a throwaway script and returns its path.
function M.script(source)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(source)
  f:close()
  return path
end

return M
