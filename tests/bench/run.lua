-- make bench: auditrun against peers measured in the same run, printed as
-- ratios. Nothing here asserts: timing belongs in numbers, not in tests.
local sandbox = require("tests.helper.sandbox")
local auditrun = require("auditrun")
-- Requests trust the sandbox's CA (the helper's http facade).
local http = sandbox.http()

local HOST = os.getenv("PWD") .. "/build/auditrun"
local sh = require("tests.helper.util").sh

local function timed(cmd, n)
  local t0 = auditrun.now()
  for _ = 1, n do os.execute(cmd) end
  return (auditrun.now() - t0) / n
end

-- AUDITRUN_BENCH=merge,insights runs only those parts (startup, requests, download, logs, merge,
-- insights, jobs, access); unset, all of them.
local only = os.getenv("AUDITRUN_BENCH")
local function want(part)
  return only == nil or only == "" or ("," .. only .. ","):find("," .. part .. ",", 1, true) ~= nil
end

local function report(name, ours, peer, unit, goal)
  print(string.format("%-44s auditrun %10.4f %-4s peer %10.4f %-4s ratio %6.2f   (goal: %s)",
    name, ours, unit, peer, unit, ours / peer, goal))
end

print("# auditrun " .. auditrun.version .. " bench, " .. os.date("!%Y-%m-%d %H:%M:%S UTC"))

if want("startup") then
  -- 1. Start-up
  local n = 200
  -- --help starts no more than Lua (--version loads the core, to name libcurl's and OpenSSL's versions).
  timed(HOST .. " --help > /dev/null", 10)  -- warm the page cache for both
  timed("lua5.4 -e '' > /dev/null", 10)
  local ours = timed(HOST .. " --help > /dev/null", n)
  local peer = timed("lua5.4 -e '' > /dev/null", n)
  report("start-up: --help vs lua5.4 -e ''", ours * 1000, peer * 1000, "ms", "at most 2x")

  -- CPU (user + system) per run of a command, from the shell's `times`.
  local function cpu_per_run(cmd, runs)
    local out = sh(("bash -c 'for i in $(seq %d); do %s > /dev/null; done; times'"):format(runs, cmd))
    local um, us, sm, ss = out:match("\n(%d+)m([%d.]+)s (%d+)m([%d.]+)s%s*$")
    return (tonumber(um) * 60 + tonumber(us) + tonumber(sm) * 60 + tonumber(ss)) / runs
  end
  -- Scripts start with the core loaded, and with it libcurl: the floor is a
  -- C program that links libcurl and initialises it (tests/bench/curl_floor.c).
  local dir0 = sh("mktemp -d"):gsub("%s+$", "")
  local empty, insights = dir0 .. "/empty.lua", dir0 .. "/insights.lua"
  os.execute(("printf '' > %s && printf 'require \"auditrun.insights\"\\n' > %s"):format(empty, insights))
  local floor = os.getenv("PWD") .. "/build/bench/curl-floor"
  cpu_per_run(HOST .. " " .. empty, 10)
  cpu_per_run(floor, 10)
  local cpu_empty = cpu_per_run(HOST .. " " .. empty, n)
  local cpu_floor = cpu_per_run(floor, n)
  local cpu_insights = cpu_per_run(HOST .. " " .. insights, n)
  report("start-up CPU: empty script vs libcurl floor", cpu_empty * 1000, cpu_floor * 1000, "ms", "at most 1.3x")
  report("start-up CPU: require auditrun.insights vs empty", cpu_insights * 1000, cpu_empty * 1000, "ms", "under 1.2x")
  os.execute("rm -rf " .. dir0)
end

-- Parts that need no sandbox start none.
local sb
if want("requests") or want("download") or want("logs") or want("insights") or want("jobs") then
  sb = sandbox.start {}
end

if want("requests") then
  -- 2. 1,000 sequential GETs over HTTPS: connections, handshakes, CPU.
  -- A fresh sandbox: the first GET opens the one connection all should use.
  local small = sb.url .. "/test/small"
  local cpu0 = os.clock()
  local requests = 1000
  for _ = 1, requests do
    local v = auditrun.try(http.request_json { url = small })
    assert(v.ok)
  end
  local cpu = os.clock() - cpu0
  local stats = auditrun.try(http.request_json { url = sb.url .. "/test/stats" })
  print(string.format("%-44s tcp connections %d, tls handshakes %d, resumed %d   (goal: 1 each)",
    "1,000 sequential GETs:", stats.tcp_connections, stats.tls_handshakes, stats.tls_sessions_resumed or 0))
  local peer_cpu = tonumber(sh(("python3 tests/bench/peer_requests.py %s %s %d"):format(small, sb.ca_file, requests)))
  if peer_cpu then
    report("client CPU per GET vs python requests", cpu / requests * 1e6, peer_cpu / requests * 1e6, "us",
      "under 0.33")
  else
    print("python requests peer did not run (python3 with requests needed)")
  end
end

if want("download") then
  -- 3. 1 GiB streamed to disk: throughput against curl, peak RSS.
  local size = 1024 * 1024 * 1024
  local big = sb.url .. "/test/bytes/" .. size
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  local out = sh(("%s tests/bench/download.lua %s %s/ours %s"):format(HOST, big, dir, sb.ca_file))
  local secs, rss_kib, bytes = out:match("^(%S+) (%d+) (%d+)")
  local t0 = auditrun.now()
  os.execute(("curl -s --cacert %s -o %s/curl %s"):format(sb.ca_file, dir, big))
  local curl_secs = auditrun.now() - t0
  if secs and tonumber(bytes) == size then
    local mib = size / 1048576
    report("1 GiB download: MiB/s vs curl", mib / tonumber(secs), mib / curl_secs, "MiB/s", "at least 0.9")
    print(string.format("%-44s %.1f MiB   (goal: under 20 MiB)", "1 GiB download: peak RSS", tonumber(rss_kib) / 1024))
  else
    print("download failed: " .. tostring(out))
  end
  os.execute("rm -rf " .. dir)
end

-- 4. Activity logs to JSON Lines, the timeline's merge, Insights paging
-- (tests/bench/activity.lua, tests/bench/insights.lua).
if want("logs") then require("tests.bench.activity").logs(sb, http, HOST, report) end
if want("merge") then require("tests.bench.activity").merge(HOST, report) end
if want("insights") then require("tests.bench.insights").groups(sb, HOST, report) end

-- 5. Export jobs: makespan and polls per job; the cost of a state record.
if want("jobs") then
  local bench_jobs = require("tests.bench.jobs")
  bench_jobs.jobs(sb)
  bench_jobs.state_records()
end
if sb then sb:stop() end

-- 6. The access table: 200 reports of 10,000 rows each.
if want("access") then require("tests.bench.access").table(HOST, report) end
