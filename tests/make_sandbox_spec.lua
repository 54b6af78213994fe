-- make sandbox, started as a terminal starts it (its own process group,
-- SIGINT at its default): it prints a config profile and export lines; a
-- workflow of each vendor runs through the real host against it, with the
-- profile saved as a config file and with the export lines alone; Ctrl-C
-- (SIGINT to the group) stops it, leaving no process and no folder behind.
local helper = require("tests.helper")
local host, util = helper.host, helper.util
local task = require("auditrun.task")
local q = host.quote

-- make checks the packages and the build before the tenant starts.
local START_SECONDS = 120
local STOP_SECONDS = 15

-- state_and_group(pid) -> its state letter and its process group | nil.
local function state_and_group(pid)
  return (util.read("/proc/" .. pid .. "/stat") or ""):match("^%d+ %b() (%a) %d+ (%d+)")
end

-- The live (not zombie) processes of process group pgid.
local function group_members(pgid)
  local left = {}
  for pid in util.sh("ls /proc"):gmatch("%d+") do
    local state, group = state_and_group(pid)
    if group == pgid and state ~= "Z" then left[#left + 1] = pid end
  end
  return left
end

-- The value of a printed `export NAME='value'` line.
local function unquote(s)
  return (s:match("^'(.*)'$") or s):gsub("'\\''", "'")
end

describe("make sandbox", function()
  local run, dir, out, pgid
  setup(function()
    run, dir = util.tempdir(), util.tempdir()
    -- perl puts SIGINT back to its default (a background shell job ignores
    -- it) and makes the group a terminal would give make.
    os.execute(("(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL perl -e '$SIG{INT} = \"DEFAULT\"; setpgrp(0, 0); exec @ARGV' " ..
      "make --no-print-directory sandbox < /dev/null > %s/out 2> %s/err & echo $! > %s/pid; wait $!; echo $? > %s/code) &")
      :format(run, run, run, run))
    local deadline = task.now() + START_SECONDS
    repeat
      pgid = pgid or (util.read(run .. "/pid") or ""):match("%d+")
      out = util.read(run .. "/out") or ""
      if out:match("\n# ready\n") or util.read(run .. "/code") then break end
      task.sleep(0.1)
    until task.now() > deadline
    assert(out:match("\n# ready\n"), "make sandbox did not get ready: " .. out .. (util.read(run .. "/err") or ""))
    -- make leads a group of its own: signals to the group reach nothing else
    assert(select(2, state_and_group(pgid)) == pgid, "make sandbox is not in a process group of its own")
  end)
  teardown(function()
    if pgid and select(2, state_and_group(pgid)) == pgid then os.execute("kill -KILL -" .. pgid .. " 2>/dev/null") end
    os.execute("rm -rf " .. q(run) .. " " .. q(dir))
  end)

  -- The profile as a config file of its own.
  local function config_env()
    local profile = assert(out:match("\n(return {\n.-\n}\n)"), out)
    util.write(dir .. "/config.lua", profile)
    os.execute("chmod 600 " .. q(dir .. "/config.lua"))
    return { HOME = dir, AUDITRUN_CONFIG = dir .. "/config.lua" }
  end

  local function export_env()
    local env = { HOME = dir }
    for name, value in out:gmatch("\nexport (AUDITRUN_[%w_]+)=([^\n]*)") do env[name] = unquote(value) end
    return env
  end

  local FROM = os.date("!%Y-%m-%d", os.time() - 30 * 86400)

  it("prints the paths of its credential files, each private, in a private folder", function()
    local profile = assert(out:match("\n(return {\n.-\n}\n)"), out)
    local paths = {}
    for _, key in ipairs { "cert", "cert_password_file", "dealcloud_client_secret_file", "exavault_access_token_file" } do
      paths[#paths + 1] = assert(profile:match("\n +" .. key .. ' = "([^"]+)"'), key)
    end
    paths[#paths + 1] = assert(out:match("\n#   (/[^ \n]+/config%.lua)"), out)
    for _, path in ipairs(paths) do
      assert.matches("\n#   " .. path:gsub("%p", "%%%0"), out)
      assert.equal("600", util.sh("stat -c %a " .. q(path)):match("%d+"), path)
    end
    assert.equal("700", util.sh("stat -c %a " .. q(paths[1]:match("^(.*)/"))):match("%d+"))
    -- the profile names the files: no secret in it but the ExaVault API key
    assert.is_nil(profile:find("sandbox-pass", 1, true))
    assert.is_nil(profile:find("dealcloud-sandbox-secret", 1, true))
  end)

  it("serves an Insights workflow with its profile as a config file", function()
    local code, _, err = host.run({ "--profile", "sandbox", "guest-access", "--out", dir .. "/guests", "-q" },
      { env = config_env() })
    assert.equal(0, code, err)
    assert.is_true(#util.lines(util.read(dir .. "/guests/manifest.jsonl") or "") > 0)
  end)

  it("serves DealCloud and ExaVault records workflows with its profile", function()
    local code, _, err = host.run({ "--profile", "sandbox", "dealcloud-activity", "--from", FROM,
      "--out", dir .. "/dc.jsonl", "-q" }, { env = config_env() })
    assert.equal(0, code, err)
    assert.is_true(#util.lines(util.read(dir .. "/dc.jsonl") or "") > 0)
    code, _, err = host.run({ "--profile", "sandbox", "exavault-sessions", "--from", FROM,
      "--out", dir .. "/ev.csv", "-q" }, { env = config_env() })
    assert.equal(0, code, err)
    assert.is_true(#util.lines(util.read(dir .. "/ev.csv") or "") > 1)
  end)

  it("serves every vendor with its export lines alone", function()
    local env = export_env()
    local code, shown, err = host.run({ "config" }, { env = env })
    local _
    assert.equal(0, code, shown .. err)
    for _, vendor in ipairs { "Insights", "DealCloud", "ExaVault" } do assert.matches(vendor .. ": ready", shown) end
    code, shown, err = host.run({ "token-check", env.AUDITRUN_INSIGHTS_URL .. "/groups/summary?startPage=1&pageSize=1" },
      { env = env })
    assert.equal(0, code, err)
    assert.matches("%-> 200", shown)
    code, _, err = host.run({ "exavault-webhooks", "--out", dir .. "/webhooks.jsonl", "-q" }, { env = env })
    assert.equal(0, code, err)
    code, _, err = host.run({ "dealcloud-activity", "--from", FROM, "--out", dir .. "/dc-env.jsonl", "-q" },
      { env = env })
    assert.equal(0, code, err)
  end)

  it("stops on Ctrl-C: exits, and leaves no process and no folder behind", function()
    local folder = assert(out:match("\n#   (/[^ \n]+)/config%.lua"), out)
    assert.is_true(#group_members(pgid) >= 2)  -- the host and the server, at least
    os.execute("kill -INT -" .. pgid)
    local deadline, code = task.now() + STOP_SECONDS
    repeat
      code = tonumber(util.read(run .. "/code") or "")
      if not code then task.sleep(0.1) end
    until code or task.now() > deadline
    assert.equal(130, code)  -- make ends by the SIGINT it was sent, as after any Ctrl-C
    deadline = task.now() + STOP_SECONDS
    while #group_members(pgid) > 0 and task.now() < deadline do task.sleep(0.1) end
    assert.same({}, group_members(pgid))
    assert.matches("# The sandbox tenant stopped", util.read(run .. "/out"))
    assert.equal("", util.read(run .. "/err"))
    assert.is_nil(util.read(folder .. "/config.lua"))
    assert.equal("no", util.sh("test -e " .. q(folder) .. " && echo yes || echo no"):match("%a+"))
  end)
end)
