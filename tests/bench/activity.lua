-- make bench, the activity logs to JSON Lines: a year of DealCloud activity
-- (100 rows a day) and 100,000 ExaVault session rows, the workflows run by
-- the host against the python requests peer (tests/bench/peer_activity.py)
-- asking for the same pages; then the timeline over the same year; and
-- the timeline's merge of many sources against Python's heapq.merge.
--
-- CPU (user + system) and peak RSS of the whole process each
-- (tests/bench/rusage.py).
local M = {}

local auditrun = require("auditrun")
local sh = require("tests.helper.util").sh

--- metered(cmd) -> CPU seconds, peak RSS in KiB of the command's process.
local function metered(cmd)
  local code, cpu_s, kib = sh("python3 tests/bench/rusage.py " .. cmd):match("^(%d+) (%S+) (%d+)")
  assert(code == "0", "failed: " .. cmd)
  return tonumber(cpu_s), tonumber(kib)
end
M.metered = metered

local function count_lines(path) return tonumber(sh("wc -l < " .. path)) end

--- logs(sb, http, host, report): the bench's lines through report(name, ours, peer, unit, goal).
--- Each side runs three times, one after the other, and its best CPU and
--- RSS count (one run varies by a tenth on a busy machine).
function M.logs(sb, http, host, report)
  local function control(path, body)
    return auditrun.try(http.request_json { method = "POST", url = sb.url .. "/activity-control" .. path, json = body })
  end
  local t = control("/config", { dcPerDay = 100, evSessions = 100000 })
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  local from = t.dealcloud.last:sub(1, 10) .. "T00:00:00"
  local year_ago = os.date("!%Y-%m-%dT%H:%M:%S", require("auditrun.time").parse(from) - 365 * 86400)
  local env = ("env HOME=/nonexistent AUDITRUN_CA_FILE=%s AUDITRUN_DEALCLOUD_URL=%s/dealcloud "
    .. "AUDITRUN_DEALCLOUD_CLIENT_ID=%s AUDITRUN_DEALCLOUD_CLIENT_SECRET=%s AUDITRUN_EXAVAULT_URL=%s/exavault/api/v2 "
    .. "AUDITRUN_EXAVAULT_API_KEY=%s AUDITRUN_EXAVAULT_ACCESS_TOKEN=%s "):format(sb.ca_file, sb.url,
    t.dealcloud.client_id, t.dealcloud.client_secret, sb.url, t.exavault.api_key, t.exavault.access_token)
  local runs = {
    { "DealCloud, a year",
      ("%s%s dealcloud-activity --from %s --to %s --out %s/dc.jsonl -q"):format(env, host, year_ago, from, dir),
      ("python3 tests/bench/peer_activity.py dealcloud %s/dealcloud %s %s %s %s %s %s/dc-peer.jsonl"):format(sb.url,
        sb.ca_file, t.dealcloud.client_id, t.dealcloud.client_secret, year_ago, from, dir), "dc" },
    { "ExaVault, 100,000 session rows",
      ("%s%s exavault-sessions --out %s/ev.jsonl -q"):format(env, host, dir),
      ("python3 tests/bench/peer_activity.py exavault %s/exavault/api/v2 %s %s %s %s/ev-peer.jsonl"):format(sb.url,
        sb.ca_file, t.exavault.api_key, t.exavault.access_token, dir), "ev" },
  }
  local rss_single
  local function best(cmd, out)
    local cpu, rss
    for _ = 1, 3 do
      os.execute("rm -f " .. out .. " " .. out:gsub("([^/]*)$", ".%1") .. "*")
      local c, k = metered(cmd)
      cpu, rss = math.min(cpu or c, c), math.min(rss or k, k)
    end
    return cpu, rss
  end
  for _, r in ipairs(runs) do
    local cpu_ours, rss_ours = best(r[2], dir .. "/" .. r[4] .. ".jsonl")
    rss_single = math.max(rss_single or 0, rss_ours)
    local cpu_peer, rss_peer = best(r[3], dir .. "/" .. r[4] .. "-peer.jsonl")
    local rows, peer_rows = count_lines(dir .. "/" .. r[4] .. ".jsonl"), count_lines(dir .. "/" .. r[4] .. "-peer.jsonl")
    report(r[1] .. ": CPU vs python requests", cpu_ours, cpu_peer, "s", "at most 0.5")
    report(r[1] .. ": peak RSS vs python requests", rss_ours / 1024, rss_peer / 1024, "MiB", "under 1.0")
    print(string.format("%-44s auditrun %d rows, peer %d rows   (goal: the same)", r[1] .. ": rows", rows, peer_rows))
  end
  -- The timeline over the same year: both vendors merged, memory as flat as one.
  local _, rss_timeline = metered(("%s%s activity-timeline --from %s --to %s --out %s/timeline.jsonl -q"):format(env,
    host, year_ago, from, dir))
  report(("timeline, %d events: peak RSS vs one log"):format(count_lines(dir .. "/timeline.jsonl")),
    rss_timeline / 1024, rss_single / 1024, "MiB", "about 1")
  os.execute("rm -rf " .. dir)
end

--- merge(host, report, sources, events): the timeline's merge of that many
--- sources (1,000 of 100 events by default) against Python's heapq.merge
--- (tests/bench/merge.lua, tests/bench/peer_merge.py): CPU of the merge.
function M.merge(host, report, sources, events)
  sources, events = sources or 1000, events or 100
  local args = string.format("%d %d", sources, events)
  local ours, n = sh(host .. " tests/bench/merge.lua " .. args):match("^(%S+) (%d+)")
  local peer, peer_n = sh("python3 tests/bench/peer_merge.py " .. args):match("^(%S+) (%d+)")
  local name = string.format("timeline merge, %d sources x %d", sources, events)
  report(name .. ": CPU vs python heapq.merge", tonumber(ours), tonumber(peer), "s", "at most 0.5")
  print(string.format("%-44s auditrun %d events, peer %d events   (goal: the same)", name .. ": events", n, peer_n))
end

return M
