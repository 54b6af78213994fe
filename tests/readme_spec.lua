-- The guide is the README and the docs it lists under "Read on", in that
-- order: every Lua block in them runs. Config files (a block that returns a
-- table of profiles) are read as config files and each profile checked
-- against every vendor's settings; every other block runs as a script in
-- the host against the sandbox tenant, with the environment a user would
-- set (Insights, DealCloud and ExaVault all configured). whoami.lua also
-- fails as the README says it does. The command lines of the ```sh blocks
-- run too, in a shell with `auditrun` the host, in reading order in one
-- temporary folder (see "commands" below).
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local auditrun = require("auditrun")
local http = sandbox.http()
local q = host.quote

--- blocks(text, lang, file) -> the ```LANG blocks of a Markdown text, list
--- items' indentation removed, each {source, line, file, at = "FILE:LINE"}.
local function blocks_of(text, lang, file)
  local out, n, current, indent, start = {}, 0, nil, nil, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if current then
      if line:match("^" .. indent .. "```%s*$") then
        out[#out + 1] = { source = table.concat(current, "\n") .. "\n", line = start, file = file,
                          at = file .. ":" .. start }
        current = nil
      else
        current[#current + 1] = line:sub(#indent + 1)
      end
    else
      local ind = line:match("^( *)```" .. lang .. "%s*$")
      if ind then current, indent, start = {}, ind, n + 1 end
    end
  end
  assert(current == nil, file .. ": a ```" .. lang .. " block is not closed")
  return out
end

local function is_config(source)
  return source:match("^%-%- [^\n]*config%.lua\n") or source:match("^return {")
end

--- commands(block) -> the command lines of a ```sh block as a shell reads
--- them, each {text, line}: a trailing backslash continues a line, a quote
--- runs on to its closing quote, and `# comments` are dropped.
local function commands(b)
  local out, cur, quote, n, start = {}, {}, nil, b.line, nil
  local text = b.source
  local function add(c)
    if not start and c:match("%S") then start = n end
    cur[#cur + 1] = c
    local _, lines = c:gsub("\n", "")
    n = n + lines
  end
  local i = 1
  while i <= #text do
    local c = text:sub(i, i)
    if quote then
      if c == "\\" and quote == '"' then c, i = text:sub(i, i + 1), i + 1
      elseif c == quote then quote = nil end
      add(c)
    elseif c == "'" or c == '"' then
      quote = c
      add(c)
    elseif c == "\\" and text:sub(i + 1, i + 1) == "\n" then
      add(" ")
      n, i = n + 1, i + 1
    elseif c == "\\" then
      add(text:sub(i, i + 1))
      i = i + 1
    elseif c == "#" and (#cur == 0 or cur[#cur]:match("%s$")) then
      i = (text:find("\n", i, true) or #text + 1) - 1
    elseif c == "\n" then
      local line = table.concat(cur):gsub("^%s+", ""):gsub("%s+$", "")
      if line ~= "" then out[#out + 1] = { text = line, line = start } end
      cur, start, n = {}, nil, n + 1
    else
      add(c)
    end
    i = i + 1
  end
  assert(quote == nil and #cur == 0, b.file .. ":" .. tostring(start) .. ": a quote is not closed")
  return out
end

-- The guide's files in reading order: the README, then the docs its "Read
-- on" section links, each once.
local README = assert(util.read("README.md"))
local GUIDE = { "README.md" }
do
  local read_on = assert(README:match("\n## Read on\n(.-)\n## "), "the README has a Read on section")
  for path in read_on:gmatch("%]%((docs/[%w._-]+%.md)%)") do
    if GUIDE[#GUIDE] ~= path then GUIDE[#GUIDE + 1] = path end
  end
end

--- blocks(lang) -> the ```LANG blocks of the whole guide, in reading order.
local function blocks(lang)
  local out = {}
  for _, file in ipairs(GUIDE) do
    for _, b in ipairs(blocks_of(assert(util.read(file), file), lang, file)) do out[#out + 1] = b end
  end
  return out
end
local BLOCKS = blocks("lua")

describe("the README", function()
  it("lists every file of docs/ under Read on", function()
    local listed = {}
    for _, f in ipairs(GUIDE) do listed[f] = true end
    for name in util.sh("ls docs"):gmatch("[^\n]+") do
      assert.is_true(listed["docs/" .. name] == true, "docs/" .. name .. " is not under Read on")
    end
  end)

  -- Jobs of a tenth of a second, as fast as make demo's or faster: the
  -- commands run every export workflow of the guide.
  local sb = sandbox.for_describe { job_seconds = 0.1 }
  local dir
  before_each(function() dir = util.tempdir() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  -- host(args, env) -> code, stdout, stderr: the host in a fresh folder
  -- with only the environment given (and PATH), as a user runs it.
  local function run_host(args, env)
    local parts = {}
    for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. q(v) end
    for i, a in ipairs(args) do args[i] = q(a) end
    local out, err = dir .. "/.out", dir .. "/.err"
    local _, _, code = os.execute(("cd %s && env -i PATH=\"$PATH\" %s %s %s < /dev/null > %s 2> %s")
      :format(q(dir), table.concat(parts, " "), host.binary, table.concat(args, " "), q(out), q(err)))
    return code, util.read(out) or "", util.read(err) or ""
  end

  -- run(source, env): the block as a script.
  local function run(source, env)
    util.write(dir .. "/script.lua", source)
    return run_host({ "script.lua" }, env)
  end

  -- The DealCloud and ExaVault accounts of the sandbox, for their sections.
  local activity
  setup(function()
    activity = auditrun.try(http.request_json { url = sb.url .. "/activity-control/tenant", ca_file = sb.ca_file })
  end)

  local function user_env()
    local env = sb:host_env(dir)
    env.AUDITRUN_DEALCLOUD_URL = sb.url .. "/dealcloud"
    env.AUDITRUN_DEALCLOUD_CLIENT_ID = activity.dealcloud.client_id
    env.AUDITRUN_DEALCLOUD_CLIENT_SECRET = activity.dealcloud.client_secret
    env.AUDITRUN_EXAVAULT_URL = sb.url .. "/exavault/api/v2"
    env.AUDITRUN_EXAVAULT_API_KEY = activity.exavault.api_key
    env.AUDITRUN_EXAVAULT_ACCESS_TOKEN = activity.exavault.access_token
    env.CLIENT_ID, env.CERT, env.PFX_PASSWORD = env.AUDITRUN_CLIENT_ID, env.AUDITRUN_CERT, env.AUDITRUN_CERT_PASSWORD
    env.IDENTITY_URL, env.INSIGHTS_URL = env.AUDITRUN_IDENTITY_URL, env.AUDITRUN_INSIGHTS_URL
    return env
  end

  it("has Lua blocks: a script, a config file and the Insights client at least", function()
    assert.is_true(#BLOCKS >= 3)
  end)

  for _, b in ipairs(BLOCKS) do
    local first = b.source:match("^[^\n]*")
    if is_config(b.source) then
      it(b.at .. ": a config file the host reads, every profile (" .. first .. ")", function()
        local path = dir .. "/config.lua"
        util.write(path, b.source)
        -- the variables it reads are set, as its user would set them
        local env = { HOME = dir, AUDITRUN_CONFIG = path }
        for name in b.source:gmatch('os%.getenv%("([%w_]+)"%)') do
          if name ~= "HOME" then env[name] = "value-of-" .. name end
        end
        local profiles = assert(loadfile(path, "t", { os = { getenv = function(k) return env[k] end }, error = error }))()
        assert.is_table(profiles)
        local names = {}
        for name in pairs(profiles) do names[#names + 1] = name end
        assert.is_true(#names > 0)
        for _, name in ipairs(names) do
          local code, out, err = run_host({ "--profile", name, "config" }, env)
          -- its keys and types are right: every vendor reads it; a file named
          -- in it but absent here (a certificate) is all that may be missing
          assert.matches("profile: +" .. name:gsub("%p", "%%%0"), out)
          assert.is_nil(err:find("config file", 1, true), err)
          assert.is_true(code == 0 or err:match("configured but not ready") ~= nil, err)
        end
      end)
    else
      it(b.at .. ": runs against the sandbox (" .. first .. ")", function()
        local code, out, err = run(b.source, user_env())
        assert.equal(0, code, out .. err)
        assert.equal("", err)
      end)
    end
  end

  -- The command lines of the ```sh blocks, as a user types them: in a shell
  -- with `auditrun` (and `build/auditrun`, as the make sandbox block has it)
  -- the host under test, HOME and the working folder one temporary folder
  -- for the whole README, a block's commands in one shell (cd and export
  -- hold to its end), in the README's order, so a block finds what the
  -- blocks before it wrote. Each command exits 0, so a mistyped flag fails.
  describe("commands", function()
    local SH = blocks("sh")
    -- What cannot run here, and why.
    local SKIP = {
      { "^make demo$", "make demo is the demo itself, run by hand; this suite runs the same workflow" },
      { "^make test$", "make test is the suite this spec is part of" },
      { "cat > ~/%.config/auditrun/[%w.]+$", "reads a secret pasted into the terminal" },
      { "^luarocks .* make %-%-local", "installs into the user's ~/.luarocks" },
      { "^~/%.luarocks/bin/auditrun", "runs what the luarocks install put in ~/.luarocks" },
    }
    -- A block that starts in another folder than the working one, and why:
    -- the access table's queries run where `external-group-access --out
    -- reports/` (the block before) wrote access.sqlite.
    local START = { { "^sqlite3 .* access%.sqlite ", "reports" } }
    -- The absolute paths the README writes to (a service's state folder,
    -- the make sandbox folder) are taken under the working folder: PREFIX
    -- becomes WORK/PREFIX, and the folders above them are made, as a
    -- machine has them.
    local ROOTS = { "/tmp/", "/var/lib/", "/srv/" }
    -- The config file make sandbox prints (its path is rewritten as above):
    -- the sandbox tenant's every vendor as the profile `sandbox`, the
    -- profile `default`, and `contoso` and `fabrikam`, the tenants the
    -- many-tenants block names.
    local CONFIG = "/tmp/tmp.XXXXXXXXXX/config.lua"
    local PROFILES = { "default", "sandbox", "contoso", "fabrikam" }

    local work, bin, config_path

    setup(function()
      work, bin = util.tempdir(), util.tempdir()
      for _, root in ipairs(ROOTS) do os.execute("mkdir -p " .. q(work .. root)) end
      -- `auditrun` and `build/auditrun`: the host of this variant.
      local wrapper = "#!/bin/sh\nexec " .. host.binary .. ' "$@"\n'
      os.execute("mkdir -p " .. q(work .. "/build"))
      for _, path in ipairs { bin .. "/auditrun", work .. "/build/auditrun" } do
        util.write(path, wrapper)
        os.execute("chmod 755 " .. q(path))
      end
      local settings, keys = sb:settings(), {}
      for k in pairs(settings) do keys[#keys + 1] = k end
      table.sort(keys)
      local lines = { "return {" }
      for _, name in ipairs(PROFILES) do
        lines[#lines + 1] = "  " .. name .. " = {"
        for _, k in ipairs(keys) do lines[#lines + 1] = ("    %s = %q,"):format(k, settings[k]) end
        lines[#lines + 1] = "  },"
      end
      lines[#lines + 1] = "}\n"
      config_path = work .. CONFIG
      os.execute("mkdir -p " .. q(config_path:match("^(.*)/")))
      util.write(config_path, table.concat(lines, "\n"))
      os.execute("chmod 600 " .. q(config_path))
    end)
    teardown(function() os.execute("rm -rf " .. q(work) .. " " .. q(bin)) end)

    -- rewrite(text) -> the command with its absolute paths under the working folder.
    local function rewrite(text)
      for _, root in ipairs(ROOTS) do
        text = text:gsub("([%s=])" .. root:gsub("%p", "%%%0"), "%1" .. work .. root)
      end
      return text
    end

    -- The commands a command needs before it: `--compare OLD` wants the
    -- previous run's folder, which is the same workflow into OLD.
    local function before(text)
      local old = text:match("%-%-compare (%S+)")
      if not old then return {} end
      local first = text:gsub(" %-%-compare %S+", ""):gsub("%-%-out %S+", "--out " .. old)
      return { first }
    end

    -- run_block(start, cmds) -> for each command run {text, code, out, err},
    -- up to the first that failed: the commands in one shell, each with its
    -- own output files.
    local function run_block(start, cmds)
      local stage = util.tempdir()
      local script = { "cd " .. q(work .. "/" .. start) .. " || exit 1" }
      for i, c in ipairs(cmds) do
        local f = stage .. "/" .. i
        script[#script + 1] = ("{ %s\n} > %s.out 2> %s.err < /dev/null; echo $? > %s.rc")
          :format(rewrite(c), q(f), q(f), q(f))
        script[#script + 1] = ("[ \"$(cat %s.rc)\" = 0 ] || exit 0"):format(q(f))
      end
      util.write(stage .. "/script.sh", table.concat(script, "\n") .. "\n")
      os.execute(("env -i PATH=%s:\"$PATH\" HOME=%s AUDITRUN_CONFIG=%s bash %s/script.sh")
        :format(q(bin), q(work), q(config_path), q(stage)))
      local ran = {}
      for i, c in ipairs(cmds) do
        local f = stage .. "/" .. i
        local code = tonumber(util.read(f .. ".rc") or "")
        if not code then break end
        ran[i] = { text = c, code = code, out = util.read(f .. ".out"), err = util.read(f .. ".err") }
      end
      os.execute("rm -rf " .. q(stage))
      return ran
    end

    it("has sh blocks with auditrun commands", function()
      assert.is_true(#SH >= 8)
    end)

    -- Under valgrind the command lines are left to the plain and ASan
    -- variants: each is a whole workflow run, the same host paths the
    -- workflow specs already run under valgrind, and together they would
    -- add some ten minutes to the suite.
    local under_valgrind = host.binary:find("valgrind", 1, true) ~= nil
    local blocks_run = {}
    for _, b in ipairs(SH) do
      local runs_host = false
      for _, c in ipairs(commands(b)) do
        -- sqlite3 reads the tables the auditrun lines before it wrote.
        if c.text:match("^[%w/]*auditrun%s") or c.text:match("^sqlite3%s") then runs_host = true end
      end
      if under_valgrind and runs_host then
        pending(b.at .. ": the guide's auditrun command lines (run by the plain and ASan variants)")
      else
        blocks_run[#blocks_run + 1] = b
      end
    end
    for _, b in ipairs(blocks_run) do
      local cmds, shown = {}, {}
      for _, c in ipairs(commands(b)) do
        local reason
        for _, s in ipairs(SKIP) do
          if c.text:match(s[1]) then reason = s[2] end
        end
        if reason then
          pending(b.file .. ":" .. c.line .. ": " .. c.text .. " (not run: " .. reason .. ")")
        else
          for _, pre in ipairs(before(c.text)) do cmds[#cmds + 1] = pre end
          cmds[#cmds + 1] = c.text
          shown[#shown + 1] = c.text:match("^[^\n]*")
        end
      end
      if #cmds > 0 then
        local start = "."
        for _, s in ipairs(START) do
          if cmds[1]:match(s[1]) then start = s[2] end
        end
        it(b.at .. ": " .. table.concat(shown, "; "), function()
          local ran = run_block(start, cmds)
          for i, c in ipairs(cmds) do
            local r = ran[i]
            assert(r, "not run: " .. c)
            assert(r.code == 0, ("%s\nexit %d\n%s%s"):format(c, r.code, r.out, r.err))
            -- a query prints what it found: the sandbox has external access
            if c:match("^sqlite3 ") then assert(r.out:match("\n.+\n"), c .. "\nprinted no rows") end
          end
        end)
      end
    end

    -- The certificate block of "Connect your tenant" makes an app.pfx and
    -- its password file that the README's first config file names, and the
    -- key loads from them.
    it("makes a certificate the README's config file loads", function()
      local config = require("auditrun.config")
      local settings = require("auditrun.insights.settings")
      local jwt = require("auditrun.jwt")
      local source
      for _, b in ipairs(BLOCKS) do
        if not source and is_config(b.source) and b.source:match("cert_password_file") then source = b.source end
      end
      local env = { os = { getenv = function(k) return k == "HOME" and work or nil end }, error = error }
      local profile = assert(load(source, "config.lua", "t", env))().default
      assert(util.read(profile.cert), "no " .. profile.cert)
      assert(config.resolve_credentials(settings.schema, profile))
      assert.is_truthy(jwt.load_key { cert = profile.cert, password = profile.cert_password })
      assert.is_nil(jwt.load_key { cert = profile.cert, password = profile.cert_password .. "x" })
    end)
  end)

  describe("whoami.lua", function()
    local whoami
    for _, b in ipairs(BLOCKS) do
      if b.source:match("^%-%- whoami%.lua") then whoami = b.source end
    end

    it("prints the status of each page", function()
      local code, out, err = run(whoami, user_env())
      assert.equal(0, code, err)
      assert.equal("page 1: HTTP 200\npage 2: HTTP 200\npage 3: HTTP 200\n", out)
    end)

    it("fails with one line and exit 1 when CLIENT_ID is unset", function()
      local env = user_env()
      env.CLIENT_ID = nil
      local code, out, err = run(whoami, env)
      assert.equal(1, code)
      assert.equal("", out)
      assert.equal("auditrun: config: set CLIENT_ID to the app's Application (client) ID\n", err)
    end)

    it("fails with one line and exit 1 when the identity service cannot be reached", function()
      local env = user_env()
      env.IDENTITY_URL = "https://127.0.0.1:1"
      local code, out, err = run(whoami, env)
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^auditrun: connect: [^\n]+\n$", err)
    end)
  end)
end)
