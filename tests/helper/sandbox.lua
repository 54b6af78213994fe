-- tests.helper.sandbox: starts the sandbox tenant (tests/sandbox/server.js)
-- on a free loopback port for a spec, and stops it. The server exits by
-- itself if this process dies, so a crashed run leaves nothing behind.
local cjson = require "cjson"
local task = require "auditrun.task"

local M = {}

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local function own_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("a"):match("^(%d+)")
  f:close()
  return pid
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local Sandbox = {}
Sandbox.__index = Sandbox

--- start{http=, token_ttl=, job_seconds=} -> sandbox with url, port,
--- ca_file, issuer, token_endpoint, clients, scope, pid, dir.
function M.start(opts)
  opts = opts or {}
  if not read("tests/sandbox/node_modules/.package-lock.json") then
    error("the sandbox's npm packages are missing: run npm ci --prefix tests/sandbox (make test does)")
  end
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  local args = { "--dir", dir, "--parent-pid", own_pid(), "--max-seconds", "3600" }
  if opts.http then args[#args + 1] = "--http" end
  if opts.token_ttl then args[#args + 1] = "--token-ttl" args[#args + 1] = tostring(opts.token_ttl) end
  if opts.job_seconds then args[#args + 1] = "--job-seconds" args[#args + 1] = tostring(opts.job_seconds) end
  os.execute(("node tests/sandbox/server.js %s > %s/ready.json 2> %s/server.log &")
    :format(table.concat(args, " "), dir, dir))
  local deadline = task.now() + 30
  while task.now() < deadline do
    local line = read(dir .. "/ready.json")
    if line and line:find("\n") then
      local sb = setmetatable(cjson.decode(line), Sandbox)
      sb.port, sb.pid = math.tointeger(sb.port), math.tointeger(sb.pid)
      sb.dir = dir
      return sb
    end
    task.sleep(0.05)
  end
  local log = read(dir .. "/server.log") or ""
  os.execute("rm -rf " .. dir)
  error("the sandbox did not start in 30 s:\n" .. log:sub(-2000))
end

function Sandbox:stop()
  if not self.pid then return end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  local deadline = task.now() + 10
  while task.now() < deadline and os.execute("kill -0 " .. self.pid .. " 2>/dev/null") do
    task.sleep(0.05)
  end
  os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
  os.execute("rm -rf " .. self.dir)
  self.pid = nil
end

--- The server's stderr so far (for a failing spec's message).
function Sandbox:log()
  return read(self.dir .. "/server.log") or ""
end

return M
