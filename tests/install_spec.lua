-- Installing: `make install PREFIX=...` and `luarocks make` into temporary
-- trees, from a copy of the sources, then the installed module and host.
local host = require "tests.helper.host"
local q = host.quote

local util = require "tests.helper.util"

local tempdir = util.tempdir
-- sh(cmd) -> exit code, stdout and stderr together
local function sh(cmd)
  local out, _, code = util.run(cmd .. " 2>&1")
  return code, out
end

describe("installing", function()
  local src
  setup(function()
    src = tempdir()
    assert.equal(0, (sh(("cp -r csrc lua scripts Makefile auditrun-scm-1.rockspec %s/"):format(q(src)))))
  end)
  teardown(function() os.execute("rm -rf " .. q(src)) end)

  it("with make install PREFIX gives a host that finds its modules and workflows", function()
    local prefix = tempdir()
    local code, out = sh(("make -C %s install PREFIX=%s"):format(q(src), q(prefix)))
    assert.equal(0, code, out)
    code, out = sh(("cd / && %s/bin/auditrun --list"):format(q(prefix)))
    assert.equal(0, code, out)
    assert.matches("token%-check", out)
    local script = host.script 'print(require("auditrun").version, require("auditrun.core").version)'
    code, out = sh(("cd / && %s/bin/auditrun %s"):format(q(prefix), q(script)))
    assert.equal(0, code, out)
    assert.equal("0.1.0\t0.1.0\n", out:gsub("exit=%d+%s*$", ""))
    code, out = sh(("LUA_PATH=%q LUA_CPATH=%q lua5.4 -e 'print(require(\"auditrun\").uuid4())'")
      :format(prefix .. "/share/lua/5.4/?.lua;" .. prefix .. "/share/lua/5.4/?/init.lua;;",
              prefix .. "/lib/lua/5.4/?.so;;"))
    assert.equal(0, code, out)
    assert.matches("^%x+%-%x+%-4", out)
    os.remove(script)
    os.execute("rm -rf " .. q(prefix))
  end)

  it("with luarocks make into a tree gives the module, the scripts and the host", function()
    local tree = tempdir()
    local code, out = sh(("cd %s && luarocks --lua-version 5.4 --tree %s make --deps-mode=none auditrun-scm-1.rockspec")
      :format(q(src), q(tree)))
    assert.equal(0, code, out)
    local env = ("eval \"$(luarocks --lua-version 5.4 --tree %s path)\" && cd / && "):format(q(tree))
    code, out = sh(env .. "lua5.4 -e 'local a = require \"auditrun\" print(a.version, a.sha256(\"\"))'")
    assert.equal(0, code, out)
    assert.matches("^0%.1%.0\te3b0c442", out)
    code, out = sh(env .. q(tree .. "/bin/auditrun") .. " --list")
    assert.equal(0, code, out)
    assert.matches("token%-check", out)
    os.execute("rm -rf " .. q(tree))
  end)
end)
