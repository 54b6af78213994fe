-- tests/chaos/wrap.lua WORKFLOW ARGS...: runs a bundled workflow as the host
-- would, with request timeouts short enough that a stalled answer is a
-- timeout within the chaos run's patience (the sandbox stalls for longer).
-- Nothing else is changed: the workflow, the retry policy, the run state
-- and the downloads are the ones a user runs.
local http = require("auditrun.http")

local timeout = tonumber(os.getenv("CHAOS_TIMEOUT") or "2")
http.DEFAULTS.timeout = timeout
http.DOWNLOAD_DEFAULTS.timeout = timeout * 2
http.DOWNLOAD_DEFAULTS.low_speed_time = timeout

local name = ...
local root = debug.getinfo(1, "S").source:match("^@(.*)/tests/chaos/[^/]*$") or "."
local chunk = assert(loadfile(root .. "/scripts/" .. name .. ".lua"))
arg = { [0] = root .. "/scripts/" .. name .. ".lua", select(2, ...) } -- luacheck: ignore 121
return chunk(select(2, ...))
