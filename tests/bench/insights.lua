-- make bench, Insights paging: the Graph group summaries of a tenant of
-- GROUPS groups (30,000 by default: 300 pages of 100), read by a script
-- through the insights client (tests/bench/groups.lua) and by the python
-- requests peer (tests/bench/peer_groups.py), each a whole process: CPU
-- (user + system) and peak RSS (tests/bench/rusage.py).
local M = {}

local metered = require("tests.bench.activity").metered

--- groups(sb, host, report[, groups]): the bench's lines through report(name, ours, peer, unit, goal).
function M.groups(sb, host, report, groups)
  groups = groups or 30000
  sb:control("POST", "/config", { benchGroups = groups })
  local env = {}
  for k, v in pairs(sb:host_env("/nonexistent")) do env[#env + 1] = k .. "='" .. v:gsub("'", "'\\''") .. "'" end
  table.sort(env)
  local ours_cmd = "env " .. table.concat(env, " ") .. " " .. host .. " tests/bench/groups.lua"
  local peer_cmd = ("python3 tests/bench/peer_groups.py %s/insights %s %s %s '%s' %s"):format(sb.url,
    sb.token_endpoint, sb.clients.secret, sb.clients.secret_value, sb.scope, sb.ca_file)
  local cpu_ours, rss_ours = metered(ours_cmd)
  local cpu_peer, rss_peer = metered(peer_cmd)
  sb:control("POST", "/config", { benchGroups = 0 })
  local name = string.format("Insights group summaries, %d groups", groups)
  report(name .. ": CPU vs python requests", cpu_ours, cpu_peer, "s", "at most 0.25")
  report(name .. ": peak RSS vs python requests", rss_ours / 1024, rss_peer / 1024, "MiB", "under 1.0")
end

return M
