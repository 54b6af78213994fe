-- The recipes for runs nobody watches (docs/unattended.md): the systemd service and
-- timer, the crontab line and the Kubernetes CronJob. Each is parsed and
-- checked for what it promises (a oneshot service its timer starts and
-- catches up, a valid schedule, concurrencyPolicy Forbid, a persistent
-- volume under --out-dir, credentials from a Secret as *_FILE settings);
-- systemd-analyze verify reads the units where it is installed, PyYAML
-- reads the manifests where it is; and each recipe's auditrun command runs,
-- with its settings and its paths moved under a temporary folder, against
-- the sandbox, twice (the second run of the series reads on).
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local cjson = require("cjson")

local GUIDE = assert(util.read("docs/unattended.md"))

-- The fenced blocks of one language, each its text.
local function blocks(lang)
  local out = {}
  for body in GUIDE:gmatch("\n```" .. lang .. "\n(.-)\n```") do out[#out + 1] = body .. "\n" end
  return out
end

-- An INI unit file: {Section = {Key = {values...}}}.
local function unit(text)
  local sections, current = {}, nil
  for line in text:gmatch("[^\n]+") do
    if not line:match("^#") then
      local name = line:match("^%[(.+)%]$")
      if name then
        current = {}
        sections[name] = current
      else
        local k, v = line:match("^(%w+)=(.*)$")
        assert(k and current, "not a unit file line: " .. line)
        current[k] = current[k] or {}
        table.insert(current[k], v)
      end
    end
  end
  return sections
end

local function has_tool(cmd) return os.execute(cmd .. " >/dev/null 2>&1") == true end

describe("the schedule recipes of docs/unattended.md", function()
  local sb = sandbox.for_describe()
  local t, dir

  local function control(method, path, body) return sb:activity_control(method, path, body) end

  before_each(function()
    control("POST", "/reset")
    t = control("GET", "/tenant")
    dir = util.tempdir()
  end)
  after_each(function() util.remove(dir) end)

  -- A path of the recipe, moved under dir (the binary: the one under test).
  local function moved(word)
    if word == "/usr/local/bin/auditrun" or word == "auditrun" then return host.binary end
    if word:match("^/") then return dir .. word end
    return word
  end

  -- The config file the recipes name, with a profile contoso on the sandbox's ExaVault account.
  local function contoso_config()
    local path = dir .. "/etc/auditrun/config.lua"
    os.execute("mkdir -p " .. dir .. "/etc/auditrun")
    util.write(path, ([[return { contoso = { exavault_url = %q, exavault_api_key = %q, exavault_access_token = %q } }
]]):format(sb.url .. "/exavault/api/v2", t.exavault.api_key, t.exavault.access_token))
    os.execute("chmod 600 " .. path)
  end

  -- Runs an auditrun command of a recipe (its words, its environment) twice; the
  -- folders a package or an admin makes first (the metrics folder) are made.
  local function run_twice(words, env)
    local args = {}
    for i = 2, #words do args[#args + 1] = moved(words[i]) end
    for i, a in ipairs(args) do
      if args[i - 1] == "--metrics" then os.execute("mkdir -p " .. a:match("^(.*)/")) end
    end
    env.AUDITRUN_CA_FILE, env.HOME = sb.ca_file, dir
    for i = 1, 2 do
      -- The second a second later: its window ends a second later, and is its own file.
      if i == 2 then os.execute("sleep 1.1") end
      local code, _, err = host.run(args, { env = env })
      assert.equal(0, code, err)
    end
    return args
  end

  local function out_dir(args)
    for i, a in ipairs(args) do if a == "--out-dir" then return args[i + 1] end end
  end

  local function files_in(d, pattern)
    local n = 0
    for name in util.sh("ls " .. d):gmatch("[^\n]+") do if name:match(pattern) then n = n + 1 end end
    return n
  end

  it("a systemd service and timer: a oneshot the timer starts nightly and catches up, and it runs", function()
    local units = {}
    for _, b in ipairs(blocks("ini")) do
      local path = b:match("^# (/etc/systemd/system/[%w.-]+)\n")
      if path then units[path:match("[^/]+$")] = b end
    end
    local service, timer = units["auditrun-exavault.service"], units["auditrun-exavault.timer"]
    assert(service and timer, "docs/unattended.md has the service and its timer")
    local s, tm = unit(service), unit(timer)
    assert.equal("oneshot", s.Service.Type[1])
    assert.equal("true", tm.Timer.Persistent[1])
    assert.equal("timers.target", tm.Install.WantedBy[1])
    assert.is_truthy(tm.Timer.OnCalendar[1])
    local exec = s.Service.ExecStart[1]
    assert.matches("%-%-incremental", exec)
    assert.matches("%-%-metrics", exec)
    if has_tool("command -v systemd-analyze") then
      -- Verified as written, the binary being the one under test.
      os.execute("mkdir -p " .. dir .. "/units")
      util.write(dir .. "/units/auditrun-exavault.service", (service:gsub("/usr/local/bin/auditrun", host.binary)))
      util.write(dir .. "/units/auditrun-exavault.timer", timer)
      local out = util.sh(("systemd-analyze verify --man=no %s/units/auditrun-exavault.service "
        .. "%s/units/auditrun-exavault.timer 2>&1; echo rc=$?"):format(dir, dir))
      assert.matches("rc=0\n$", out)
      out = util.sh("systemd-analyze calendar " .. host.quote(tm.Timer.OnCalendar[1]) .. " 2>&1; echo rc=$?")
      assert.matches("rc=0\n$", out)
    end
    contoso_config()
    local env = {}
    for _, e in ipairs(s.Service.Environment) do
      local k, v = e:match("^([%w_]+)=(.*)$")
      env[k] = moved(v)
    end
    local words = {}
    for w in exec:gmatch("%S+") do words[#words + 1] = w end
    assert.equal("/usr/local/bin/auditrun", words[1])
    local args = run_twice(words, env)
    assert.equal(2, files_in(out_dir(args), "^exavault%-sessions_.*%.jsonl$"))
    assert.matches('auditrun_last_exit_code{profile="contoso",workflow="exavault%-sessions"} 0',
      util.read(dir .. "/var/lib/node_exporter/textfile/auditrun.prom"))
  end)

  it("a crontab line: a valid schedule, and its command runs", function()
    local lines = {}
    for _, b in ipairs(blocks("crontab")) do
      for l in b:gmatch("[^\n]+") do if not l:match("^#") then lines[#lines + 1] = l end end
    end
    assert.equal(1, #lines)
    local fields = {}
    for w in lines[1]:gmatch("%S+") do fields[#fields + 1] = w end
    local ranges = { { 0, 59 }, { 0, 23 }, { 1, 31 }, { 1, 12 }, { 0, 7 } }
    for i, r in ipairs(ranges) do
      local f = fields[i]
      if f ~= "*" then
        for n in f:gmatch("[^,]+") do
          local v = tonumber(n)
          assert(v and v >= r[1] and v <= r[2], "crontab field " .. i .. " out of range: " .. f)
        end
      end
    end
    local env, words = {}, {}
    for i = 6, #fields do
      local k, v = fields[i]:match("^([%u_]+)=(.*)$")
      if k and #words == 0 then env[k] = moved(v) else words[#words + 1] = fields[i] end
    end
    assert.equal("/usr/local/bin/auditrun", words[1])
    contoso_config()
    local args = run_twice(words, env)
    assert.equal(2, files_in(out_dir(args), "^exavault%-sessions_.*%.jsonl$"))
  end)

  it("a Kubernetes CronJob: Forbid, a persistent volume under --out-dir, the secret as *_FILE; and it runs", function()
    local yaml = blocks("yaml")
    assert.equal(1, #yaml)
    if not has_tool("python3 -c 'import yaml'") then
      pending("PyYAML is not installed: the manifests are not parsed")
      return
    end
    util.write(dir .. "/manifests.yaml", yaml[1])
    local docs = cjson.decode(util.sh("python3 -c 'import json, sys, yaml; "
      .. "print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))' " .. dir .. "/manifests.yaml"))
    local by_kind = {}
    for _, d in ipairs(docs) do by_kind[d.kind] = d end
    local cron, secret, pvc = by_kind.CronJob, by_kind.Secret, by_kind.PersistentVolumeClaim
    assert(cron and secret and pvc, "a CronJob, its Secret and its PersistentVolumeClaim")
    assert.equal("batch/v1", cron.apiVersion)
    assert.equal("Forbid", cron.spec.concurrencyPolicy)
    local pod = cron.spec.jobTemplate.spec.template.spec
    assert.is_truthy(({ OnFailure = true, Never = true })[pod.restartPolicy])
    local c = pod.containers[1]
    local volumes = {}
    for _, v in ipairs(pod.volumes) do volumes[v.name] = v end
    local mounts = {}
    for _, m in ipairs(c.volumeMounts) do mounts[#mounts + 1] = { path = m.mountPath, volume = volumes[m.name] } end
    local function volume_of(path)
      for _, m in ipairs(mounts) do
        if path == m.path or path:sub(1, #m.path + 1) == m.path .. "/" then return m.volume end
      end
    end
    local args = c.args
    local out
    for i, a in ipairs(args) do if a == "--out-dir" then out = args[i + 1] end end
    assert.is_truthy(out)
    assert.equal(pvc.metadata.name, volume_of(out).persistentVolumeClaim.claimName)
    -- Every secret a *_FILE setting names is a key of the Secret, mounted from it; none is in the environment.
    local env, files = {}, 0
    for _, e in ipairs(c.env) do
      assert.is_nil(e.name:match("SECRET$") or e.name:match("TOKEN$") or e.name:match("PASSWORD$"), e.name)
      if e.name:match("_FILE$") then
        files = files + 1
        local v = volume_of(e.value)
        assert.equal(secret.metadata.name, v.secret.secretName)
        local key = e.value:match("[^/]+$")
        assert.is_truthy(secret.stringData[key], key)
        -- The file as the pod sees it, holding the sandbox's secret.
        os.execute("mkdir -p " .. (dir .. e.value):match("^(.*)/"))
        util.write(dir .. e.value, t.dealcloud.client_secret .. "\n")
        env[e.name] = dir .. e.value
      else
        env[e.name] = moved(e.value)
      end
    end
    assert.is_true(files > 0)
    env.AUDITRUN_DEALCLOUD_URL = sb.url .. "/dealcloud"
    env.AUDITRUN_DEALCLOUD_CLIENT_ID = t.dealcloud.client_id
    local words = { c.command[1] }
    for _, a in ipairs(args) do words[#words + 1] = a end
    local ran = run_twice(words, env)
    assert.equal(2, files_in(out_dir(ran), "^dealcloud%-activity_.*%.jsonl$"))
    -- The slot files are on the persistent volume too.
    local state
    for _, e in ipairs(c.env) do if e.name == "XDG_STATE_HOME" then state = e.value end end
    assert.equal(pvc.metadata.name, volume_of(state).persistentVolumeClaim.claimName)
  end)
end)
