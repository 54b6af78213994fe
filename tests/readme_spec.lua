-- The README is the guide: every Lua block in it runs. Config files (a block
-- that returns a table of profiles) are read as config files and each
-- profile checked against every vendor's settings; every other block runs
-- as a script in the host against the sandbox tenant, with the environment
-- a user would set (Insights, DealCloud and ExaVault all configured).
-- whoami.lua also fails as the README says it does.
local sandbox = require "tests.helper.sandbox"
local auditrun = require "auditrun"
local http = sandbox.http()
local host = require "tests.helper.host"
local util = require "tests.helper.util"
local q = host.quote

--- blocks(text) -> the ```lua blocks of a Markdown text, list items'
--- indentation removed, each {source, line}.
local function blocks(text)
  local out, n, current, indent, start = {}, 0, nil, nil, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if current then
      if line:match("^" .. indent .. "```%s*$") then
        out[#out + 1] = { source = table.concat(current, "\n") .. "\n", line = start }
        current = nil
      else
        current[#current + 1] = line:sub(#indent + 1)
      end
    else
      local ind = line:match("^( *)```lua%s*$")
      if ind then current, indent, start = {}, ind, n + 1 end
    end
  end
  assert(current == nil, "README: a ```lua block is not closed")
  return out
end

local function is_config(source)
  return source:match("^%-%- [^\n]*config%.lua\n") or source:match("^return {")
end

local README = assert(util.read("README.md"))
local BLOCKS = blocks(README)

describe("the README", function()
  local sb = sandbox.for_describe {}
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
      it("line " .. b.line .. ": a config file the host reads, every profile (" .. first .. ")", function()
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
      it("line " .. b.line .. ": runs against the sandbox (" .. first .. ")", function()
        local code, out, err = run(b.source, user_env())
        assert.equal(0, code, out .. err)
        assert.equal("", err)
      end)
    end
  end

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
