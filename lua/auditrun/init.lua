-- auditrun: the public facade. A script writes `local auditrun = require
-- "auditrun"` and finds here the tasks, HTTP, JWT, files and error values;
-- the vendor clients are the modules beside this one (auditrun.insights ...).
local core = require("auditrun.core")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local http = require("auditrun.http")
local jwt = require("auditrun.jwt")
local task = require("auditrun.task")

local M = {
  version = core.version,
  errors = errors,
  files = files,
  http = http,
  jwt = jwt,
  task = task,
}

-- Tasks
M.spawn = task.spawn
M.sleep = task.sleep
M.now = task.now
M.semaphore = task.semaphore
M.event = task.event
M.signal = task.signal
M.wait = task.wait

-- Errors: library calls return nil, err; scripts raise with try().
M.error = errors.new
M.try = errors.try
M.protect = errors.protect

-- Randomness and digests from OpenSSL
M.uuid4 = core.uuid4
M.random_bytes = core.random
M.sha256 = core.sha256
M.sha256_file = core.sha256_file

return M
