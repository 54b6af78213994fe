-- tests.helper.host: runs the auditrun host as a subprocess, as a user
-- would, and reports its exit code, stdout and stderr. AUDITRUN_HOST picks
-- the variant under test (plain, ASan or valgrind), set by tests/run.
local M = {}

M.binary = os.getenv("AUDITRUN_HOST") or (os.getenv("PWD") .. "/build/auditrun")

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

-- The command that starts the host: under a file size limit (RLIMIT_FSIZE,
-- as ulimit -f) when opts.file_limit gives one in bytes.
local function binary(opts)
  if opts.file_limit then return ("prlimit --fsize=%d %s"):format(opts.file_limit, M.binary) end
  return M.binary
end

--- run({args...}, {env = {NAME = value}, stdin = path, file_limit = bytes}) -> code, stdout, stderr
function M.run(args, opts)
  opts = opts or {}
  local parts = {}
  for name, value in pairs(opts.env or {}) do parts[#parts + 1] = name .. "=" .. quote(value) end
  parts[#parts + 1] = binary(opts)
  for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
  local out, err = os.tmpname(), os.tmpname()
  local cmd = table.concat(parts, " ") .. " < " .. (opts.stdin or "/dev/null") ..
    " > " .. out .. " 2> " .. err
  if opts.env then cmd = "env " .. cmd end
  local _, how, code = os.execute(cmd)
  if how == "signal" then code = 128 + code end
  return code, slurp(out), slurp(err)
end

--- Starts the host in the background. The handle has `pid`, `dir` (where
--- its stdout and stderr go) and wait(seconds) -> code, stdout, stderr, a
--- bounded wait that kills the process if it overstays.
function M.start(args, opts)
  opts = opts or {}
  local dir = require("tests.helper.util").tempdir()
  local parts = { binary(opts) }
  for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
  local env = ""
  for name, value in pairs(opts.env or {}) do env = env .. name .. "=" .. quote(value) .. " " end
  os.execute(("(%s%s < /dev/null > %s/out 2> %s/err & echo $! > %s/pid; wait $!; echo $? > %s/code) &")
    :format(env ~= "" and ("env " .. env) or "", table.concat(parts, " "), dir, dir, dir, dir))
  local task = require("auditrun.task")
  local handle = { dir = dir }
  for _ = 1, 500 do
    local f = io.open(dir .. "/pid")
    local pid = f and f:read("l")
    if f then f:close() end
    if pid then handle.pid = pid break end
    task.sleep(0.01)
  end
  assert(handle.pid, "host did not start")
  function handle.signal(_, sig) os.execute("kill -" .. sig .. " " .. handle.pid .. " 2>/dev/null") end
  function handle.wait(_, seconds)
    local deadline = task.now() + (seconds or 60)
    while task.now() < deadline do
      local f = io.open(dir .. "/code")
      local code = f and tonumber(f:read("l"))
      if f then f:close() end
      if code then
        local out, err = slurp(dir .. "/out"), slurp(dir .. "/err")
        os.execute("rm -rf " .. dir)
        return code, out, err
      end
      task.sleep(0.02)
    end
    os.execute("kill -KILL " .. handle.pid .. " 2>/dev/null")
    error("host still running after " .. seconds .. " s")
  end
  return handle
end

--- Writes a throwaway script and returns its path.
function M.script(source)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(source)
  f:close()
  return path
end

--- run_script(source[, opts]) -> code, stdout, stderr: the host run (run)
--- on a throwaway script of source, removed after.
function M.run_script(source, opts)
  local script = M.script(source)
  local code, out, err = M.run({ script }, opts)
  os.remove(script)
  return code, out, err
end

return M
