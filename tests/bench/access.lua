-- make bench, the access table: built from REPORTS report zips of ROWS
-- rows each (one CSV member apiece, tests/bench/access_reports.py) by
-- auditrun (tests/bench/access_build.lua: auditrun.access, as an export
-- workflow's end does) and by Python's zipfile, csv and sqlite3
-- (tests/bench/peer_access.py), each a whole process: CPU (user + system)
-- and peak RSS (tests/bench/rusage.py).
local M = {}

local sh = require("tests.helper.util").sh

local function metered(cmd)
  local code, cpu_s, kib = sh("python3 tests/bench/rusage.py " .. cmd):match("^(%d+) (%S+) (%d+)")
  assert(code == "0", "failed: " .. cmd)
  return tonumber(cpu_s), tonumber(kib)
end

local function rows_of(db)
  return tonumber(sh(("sqlite3 %s 'select count(*) from access'"):format(db)))
end

--- table(host, report, reports, rows): the bench's lines through report(name, ours, peer, unit, goal).
function M.table(host, report, reports, rows)
  reports, rows = reports or 200, rows or 10000
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  os.execute(("python3 tests/bench/access_reports.py %s/reports %d %d"):format(dir, reports, rows))
  -- Both read the zips from the page cache.
  os.execute(("cat %s/reports/*.zip > /dev/null"):format(dir))
  local cpu_ours, rss_ours = metered(("%s tests/bench/access_build.lua %s/reports"):format(host, dir))
  local cpu_peer, rss_peer = metered(("python3 tests/bench/peer_access.py %s/reports %s/peer.sqlite"):format(dir, dir))
  local name = string.format("access table, %d reports x %d rows", reports, rows)
  report(name .. ": CPU vs python csv+sqlite3", cpu_ours, cpu_peer, "s", "at most 0.5")
  report(name .. ": peak RSS vs python", rss_ours / 1024, rss_peer / 1024, "MiB", "at most 40 MiB, flat")
  print(string.format("%-44s auditrun %d rows, peer %d rows   (goal: the same)", name .. ": rows",
    rows_of(dir .. "/reports/access.sqlite"), rows_of(dir .. "/peer.sqlite")))
  -- Flat: a tenth of the reports takes as much memory.
  os.execute(("python3 tests/bench/access_reports.py %s/tenth %d %d"):format(dir, math.max(1, reports // 10), rows))
  local _, rss_tenth = metered(("%s tests/bench/access_build.lua %s/tenth"):format(host, dir))
  report(name .. ": peak RSS vs a tenth of the reports", rss_ours / 1024, rss_tenth / 1024, "MiB", "about 1")
  os.execute("rm -rf " .. dir)
end

return M
