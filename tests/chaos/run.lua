-- tests/chaos/run.lua: the export workflows under fire (make chaos).
--
-- Starts the sandbox tenant on loopback, runs the workflow once without
-- faults (the yardstick), then runs it again into fresh folders with faults
-- injected at --rate of the API requests (429 with Retry-After, 500, 503, a
-- connection reset mid-body, an answer stalled past the client's timeout, a
-- truncated zip, a job that fails, the token revoked) and the identity
-- service briefly down, while the host is killed with SIGKILL: at random
-- moments, and at the worst ones (right after a submit's answer is
-- recorded, right after a report takes its name, right before a submit).
-- Each folder is rerun until the workflow finishes. Then every folder is
-- checked against the fault-free one and the sandbox's own record, and one
-- table is printed. Deterministic in its choices with --seed (the timing
-- of a real server and a real kill is not). Bounded: at most --max-reruns
-- per folder, each run at most --max-seconds. Exits 1 when a goal is
-- missed: nothing lost, duplicated or corrupt, no subject submitted twice
-- without a forced failure, at most 5 jobs in flight.
local argparse = require("argparse")
local cjson = require("cjson")
local auditrun = require("auditrun")
local http = require("auditrun.http")
local sandbox = require("tests.helper.sandbox")
local util = require("tests.helper.util")

local parser = argparse("chaos", "The export workflows against the sandbox with faults and kill -9.")
parser:option("--workflow", "Bundled export workflow to run.", "user-access")
parser:option("--args", "More arguments for the workflow, given as --args='--api legacy'.", "")
parser:option("--jobs", "Run folders until at least this many reports are expected.", "2000"):convert(tonumber)
parser:option("--kills", "SIGKILLs in all, spread over the folders.", "20"):convert(tonumber)
parser:option("--seed", "Seed of the faults and of the kill plan.", "1"):convert(tonumber)
parser:option("--rate", "Share of API requests given a fault.", "0.1"):convert(tonumber)
parser:option("--job-seconds", "How long the sandbox's export jobs take.", "0.05"):convert(tonumber)
parser:option("--timeout", "The client's request timeout, seconds (stalls last twice that).", "2"):convert(tonumber)
parser:option("--max-reruns", "Runs of one folder at most before it counts as unfinished.", "40"):convert(tonumber)
parser:option("--max-seconds", "One run's longest time before it is killed and counted as hung.", "600"):convert(tonumber)
parser:flag("--keep", "Keep the output folders (their path is printed).")
local opts = parser:parse(arg)

local host = arg[-1] or "build/auditrun"
local root = util.tempdir()
math.randomseed(opts.seed)

local sb = sandbox.start { job_seconds = opts.job_seconds, token_ttl = 20 }

local function control(method, path, body)
  return auditrun.try(http.request_json { method = method, url = sb.url .. path, json = body, ca_file = sb.ca_file })
end

local env = {
  HOME = root, AUDITRUN_INSIGHTS_URL = sb.url .. "/insights", AUDITRUN_IDENTITY_URL = sb.issuer,
  AUDITRUN_CLIENT_ID = sb.clients.cert, AUDITRUN_CERT = os.getenv("PWD") .. "/tests/fixtures/app.pfx",
  AUDITRUN_CERT_PASSWORD = "sandbox-pass", AUDITRUN_CA_FILE = sb.ca_file,
  CHAOS_TIMEOUT = tostring(opts.timeout),
}

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- One run of the workflow into `out`, in the background: a handle with
-- poll() -> exit code or nil, stderr(), kill().
local function start(out, extra_env)
  local dir = util.tempdir()
  local parts = {}
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. quote(v) end
  for k, v in pairs(extra_env or {}) do parts[#parts + 1] = k .. "=" .. quote(v) end
  -- The sandbox's jobs take --job-seconds: a rerun holds a slot for a
  -- submit whose outcome is unknown a few seconds, not the 15 minutes a
  -- real tenant's job may take (--job-length).
  local cmd = ("env %s %s tests/chaos/wrap.lua %s --job-length %d %s --out %s -q"):format(table.concat(parts, " "),
    quote(host), opts.workflow, math.ceil(opts.job_seconds) + 2, opts.args, quote(out))
  os.execute(("(%s < /dev/null > %s/out 2> %s/err & echo $! > %s/pid; wait $!; echo $? > %s/code) 2>/dev/null &")
    :format(cmd, dir, dir, dir, dir))
  local h = { dir = dir, started = auditrun.now() }
  for _ = 1, 500 do
    h.pid = (util.read(dir .. "/pid") or ""):match("%d+")
    if h.pid then break end
    auditrun.sleep(0.01)
  end
  assert(h.pid, "the host did not start")
  function h.poll() return tonumber((util.read(dir .. "/code") or ""):match("%d+")) end
  function h.stderr() return util.read(dir .. "/err") or "" end
  function h.kill() os.execute("kill -KILL " .. h.pid .. " 2>/dev/null") end
  function h.wait(seconds)
    local deadline = auditrun.now() + seconds
    while auditrun.now() < deadline do
      local code = h.poll()
      if code then return code end
      auditrun.sleep(0.05)
    end
    h.kill()
    return nil
  end
  function h.cleanup() os.execute("rm -rf " .. dir) end
  return h
end

-- What a folder holds: reports by name with their sha256, manifest lines,
-- zips that fail their CRC check.
local function inspect(out)
  local listing = util.sh(("cd %s 2>/dev/null && python3 -c '%s'"):format(quote(out), [[
import glob, hashlib, json, zipfile
for n in sorted(glob.glob("*.zip")):
    try:
        ok = zipfile.ZipFile(n).testzip() is None
    except Exception:
        ok = False
    print(json.dumps({"name": n, "sha256": hashlib.sha256(open(n, "rb").read()).hexdigest(), "ok": ok}))
]]))
  local reports = {}
  for line in listing:gmatch("[^\n]+") do reports[#reports + 1] = cjson.decode(line) end
  local manifest = {}
  for line in (util.read(out .. "/manifest.jsonl") or ""):gmatch("[^\n]+") do
    manifest[#manifest + 1] = cjson.decode(line)
  end
  return reports, manifest
end

local function subject_key(line)
  local subjects = {}
  for _, s in ipairs(line.subjects or {}) do subjects[#subjects + 1] = tostring(s):lower() end
  table.sort(subjects)
  return (line.kind or "?") .. ":" .. table.concat(subjects, ",")
end

-- ---- the yardstick: one run without faults ----------------------------------

io.stderr:write(("chaos: %s against the sandbox at %s (seed %d)\n"):format(opts.workflow, sb.url, opts.seed))
local base_out = root .. "/fault-free"
local t0 = auditrun.now()
local base = start(base_out)
local base_code = base.wait(opts.max_seconds)
local base_seconds = auditrun.now() - t0
if base_code ~= 0 then
  io.stderr:write("chaos: the fault-free run failed (exit " .. tostring(base_code) .. "):\n" .. base.stderr())
  sb:stop()
  os.exit(2)
end
base.cleanup()
local base_reports, base_manifest = inspect(base_out)
local expected_subjects = {}
for _, line in ipairs(base_manifest) do expected_subjects[subject_key(line)] = true end
local per_folder = #base_manifest
if per_folder == 0 then
  io.stderr:write("chaos: the fault-free run exported nothing\n")
  sb:stop()
  os.exit(2)
end
local folders = math.max(1, math.ceil(opts.jobs / per_folder))
io.stderr:write(("chaos: fault-free: %d reports in %.1f s; %d folders for %d jobs\n")
  :format(per_folder, base_seconds, folders, folders * per_folder))
assert(#base_reports == per_folder, "the fault-free folder holds other files than its manifest lists")

-- ---- under fire ------------------------------------------------------------------

control("POST", "/insights-control/reset")
control("POST", "/insights-control/chaos", { seed = opts.seed, rate = opts.rate,
                                             stall_ms = math.floor(opts.timeout * 2000 + 500) })

local KILL_MODES = { "random", "submitted", "placed", "random", "posting" }
local totals = { kills = 0, kills_by = {}, reruns = 0, identity_down = 0, expected = 0, present = 0, lost = 0,
                 duplicated = 0, corrupt = 0, unfinished = 0, hung = 0, declared = {} }
local t_chaos = auditrun.now()

for f = 1, folders do
  local out = ("%s/run-%03d"):format(root, f)
  local kills_here = opts.kills // folders + ((f <= opts.kills % folders) and 1 or 0)
  control("POST", "/insights-control/chaos/folder")
  local runs, finished = 0, false
  while runs < opts.max_reruns and not finished do
    runs = runs + 1
    if math.random() < 0.15 then
      control("POST", "/test/identity-fail/2")  -- the next two token requests meet a 503
      totals.identity_down = totals.identity_down + 1
    end
    local mode = kills_here > 0 and KILL_MODES[math.random(#KILL_MODES)] or nil
    local h = start(out, mode and mode ~= "random" and { AUDITRUN_PAUSE_AT = mode } or nil)
    local code
    if mode == "random" then
      code = h.wait(math.random() * base_seconds * 0.9 + 0.05)
    elseif mode then
      local deadline = auditrun.now() + opts.max_seconds
      while auditrun.now() < deadline and not h.poll() and not h.stderr():find("paused at", 1, true) do
        auditrun.sleep(0.02)
      end
      code = h.poll()
      if not code then h.kill() end
    else
      code = h.wait(opts.max_seconds)
      if not code then totals.hung = totals.hung + 1 end
    end
    if mode and not code then
      h.wait(10)
      kills_here = kills_here - 1
      totals.kills = totals.kills + 1
      totals.kills_by[mode] = (totals.kills_by[mode] or 0) + 1
    elseif code == 0 then
      finished = true
    end
    if runs > 1 then totals.reruns = totals.reruns + 1 end
    if code and code ~= 0 and opts.keep then
      io.stderr:write(("chaos: folder %d run %d exit %d: %s\n"):format(f, runs, code, h.stderr():sub(-300)))
    end
    h.cleanup()
  end
  if not finished then totals.unfinished = totals.unfinished + 1 end

  local reports, manifest = inspect(out)
  local summary = cjson.decode(util.read(out .. "/summary.json") or "{}")
  for _, key in ipairs(summary.extra_jobs or {}) do
    totals.declared[#totals.declared + 1] = (key:match("^[^:]*:(.*)$") or key):lower()
  end
  local seen, by_sha = {}, {}
  local present = 0
  for _, line in ipairs(manifest) do
    local k = subject_key(line)
    if seen[k] then totals.duplicated = totals.duplicated + 1 else present = present + 1 end
    seen[k] = true
  end
  for _, r in ipairs(reports) do
    if not r.ok then totals.corrupt = totals.corrupt + 1 end
    if by_sha[r.sha256] then totals.duplicated = totals.duplicated + 1 end
    by_sha[r.sha256] = true
  end
  -- a report on disk that the manifest does not list is a duplicate too
  if #reports > #manifest then totals.duplicated = totals.duplicated + (#reports - #manifest) end
  local lost = 0
  for k in pairs(expected_subjects) do if not seen[k] then lost = lost + 1 end end
  totals.expected = totals.expected + per_folder
  totals.present = totals.present + present
  totals.lost = totals.lost + lost
  io.stderr:write(("chaos: folder %d/%d: %d runs, %d of %d reports%s\n"):format(f, folders, runs, present, per_folder,
    finished and "" or " (unfinished)"))
  if not opts.keep then os.execute("rm -rf " .. quote(out)) end
end
local chaos_seconds = auditrun.now() - t_chaos
local c = control("GET", "/insights-control/chaos")
sb:stop()
if not opts.keep then os.execute("rm -rf " .. quote(root)) else io.stderr:write("chaos: folders kept in " .. root .. "\n") end

-- ---- the table --------------------------------------------------------------------

local faults, nfaults = {}, 0
for kind, n in pairs(c.faults or {}) do faults[#faults + 1] = kind .. " " .. n nfaults = nfaults + n end
table.sort(faults)
local kills = {}
for mode, n in pairs(totals.kills_by) do kills[#kills + 1] = mode .. " " .. n end
table.sort(kills)
local fault_free = base_seconds * folders
-- A subject the sandbox saw submitted again after a clean answer is a miss
-- unless the client declared the first outcome unknown (a kill landed
-- while that submit was in flight: the run records an extra job).
local undeclared, declared_again = 0, 0
for _, subject in ipairs(c.repeated_clean) do
  -- the subject sits percent-encoded (twice, in a path) in what the sandbox saw
  local lower, found = http.unescape(http.unescape(subject)):lower(), false
  for _, d in ipairs(totals.declared) do
    if lower:find(d, 1, true) then found = true break end
  end
  if found then declared_again = declared_again + 1 else
    undeclared = undeclared + 1
    io.stderr:write("chaos: submitted again after a clean answer: " .. subject:sub(1, 200) .. "\n")
  end
end
local rows = {
  { "workflow", opts.workflow .. (opts.args ~= "" and (" " .. opts.args) or ""), "" },
  { "seed, fault rate", ("%d, %g"):format(opts.seed, opts.rate), "" },
  { "jobs (reports expected)", totals.expected, "" },
  { "jobs submitted", c.jobs_submitted, "" },
  { "faults injected", nfaults .. " (" .. table.concat(faults, ", ") .. ")", "" },
  { "identity down", totals.identity_down .. " times", "" },
  { "kills (SIGKILL)", totals.kills .. " (" .. table.concat(kills, ", ") .. ")", "" },
  { "reruns", totals.reruns, "" },
  { "reports present", totals.present, totals.present == totals.expected and "ok" or "MISSED" },
  { "lost", totals.lost, totals.lost == 0 and "ok" or "MISSED" },
  { "duplicated files", totals.duplicated, totals.duplicated == 0 and "ok" or "MISSED" },
  { "corrupt zips", totals.corrupt, totals.corrupt == 0 and "ok" or "MISSED" },
  { "subjects submitted twice without a forced failure", undeclared, undeclared == 0 and "ok" or "MISSED" },
  { "subjects submitted again after a kill during their submit (declared extra jobs)", declared_again, "" },
  { "subjects submitted again after a forced failure", c.repeated - #c.repeated_clean, "" },
  { "max jobs in flight", c.max_jobs_in_flight, c.max_jobs_in_flight <= 5 and "ok" or "MISSED" },
  { "folders unfinished", totals.unfinished, totals.unfinished == 0 and "ok" or "MISSED" },
  { "runs hung", totals.hung, totals.hung == 0 and "ok" or "MISSED" },
  { "wall time", ("%.1f s (fault-free %.1f s, x%.2f)"):format(chaos_seconds, fault_free, chaos_seconds / fault_free), "" },
}
print("| measure | value | goal |")
print("|---|---|---|")
local missed = false
for _, r in ipairs(rows) do
  print(("| %s | %s | %s |"):format(r[1], tostring(r[2]), r[3]))
  if r[3] == "MISSED" then missed = true end
end
os.exit(missed and 1 or 0)
