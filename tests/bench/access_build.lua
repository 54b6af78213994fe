-- The access table bench's own side: builds DIR's access table as an
-- export workflow's end does (auditrun.access). Usage: auditrun access_build.lua DIR
local auditrun = require("auditrun")
local access = require("auditrun.access")

local dir = assert(..., "usage: access_build.lua DIR")
local t = auditrun.try(access.build(dir, { run = { workflow = "bench" } }))
print(t.rows, t.reports)
