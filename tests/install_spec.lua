-- Installing: `make install PREFIX=...` and `luarocks make` into temporary
-- trees, from a copy of the sources, then the installed module and host.
local helper = require("tests.helper")
local host, util = helper.host, helper.util
local q = host.quote


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
    assert.equal(0, (sh(("cp -r csrc lua scripts docs Makefile auditrun-scm-1.rockspec LICENSE README.md %s/"):format(q(src)))))
  end)
  teardown(function() os.execute("rm -rf " .. q(src)) end)

  it("builds on the first make demo of a machine where make demo-deps installs pkg-config", function()
    -- A machine without pkg-config until `make demo-deps` runs: dpkg-query
    -- says every package is missing, apt-get (which notes what it was asked
    -- for) puts pkg-config where PKG_CONFIG points. The flags must be
    -- computed after that, in the same make.
    local fake = tempdir()
    util.write(fake .. "/dpkg-query", "#!/bin/sh\nexit 1\n")
    util.write(fake .. "/apt-get", ("#!/bin/sh\n[ \"$1\" = update ] && exit 0\necho \"$@\" >> %s/asked\n" ..
      "printf '#!/bin/sh\\nexec /usr/bin/pkg-config \"$@\"\\n' > %s/pkg-config && chmod +x %s/pkg-config\n")
      :format(fake, fake, fake))
    local tree = tempdir()
    assert.equal(0, (sh(("cp -r %s/. %s/ && mkdir -p %s/tests/sandbox/node_modules && " ..
      "touch %s/tests/sandbox/package-lock.json && touch -d '+1 min' %s/tests/sandbox/node_modules/.package-lock.json")
      :format(q(src), q(tree), q(tree), q(tree), q(tree)))))
    util.write(tree .. "/tests/demo.lua", 'print("demo ran", require("auditrun").sha256(""):sub(1, 8))\n')
    local code, out = sh(("chmod +x %s/dpkg-query %s/apt-get && PATH=%s:$PATH make -C %s demo PKG_CONFIG=%s/pkg-config")
      :format(q(fake), q(fake), q(fake), q(tree), q(fake)))
    assert.equal(0, code, out)
    assert.matches("demo ran\te3b0c442", out)
    -- the demo's packages, not the test toolchain; make deps (make test's) asks for both
    local asked = util.read(fake .. "/asked") or ""
    assert.matches(" libcurl4%-openssl%-dev ", asked)
    assert.matches(" lua%-expat", asked)
    for _, p in ipairs { "valgrind", "clang", "lua-busted", "lua-check", "luarocks", "python3" } do
      assert.is_nil(asked:find(" " .. p, 1, true), asked)
    end
    os.remove(fake .. "/asked")
    code, out = sh(("PATH=%s:$PATH make -C %s deps"):format(q(fake), q(tree)))
    assert.equal(0, code, out)
    asked = util.read(fake .. "/asked") or ""
    for _, p in ipairs { "libcurl4-openssl-dev", "lua-expat", "valgrind", "clang", "lua-busted", "lua-check" } do
      assert.is_truthy(asked:find(" " .. p, 1, true), asked)
    end
    os.execute("rm -rf " .. q(fake) .. " " .. q(tree))
  end)

  -- A script that says which copy of the modules and the core it runs.
  local whereami = 'local a = require("auditrun") print(a.version, package.searchpath("auditrun", package.path), ' ..
    'package.searchpath("auditrun.core", package.cpath))'
  local function installed_host_works(bin, root)
    local code, out = sh(("cd / && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 %s --list")
      :format(q(bin)))
    assert.equal(0, code, out)
    assert.matches("token%-check ", out)
    assert.matches("guest%-access ", out)
    -- --version finds the installed core; completion the installed workflows.
    code, out = sh(("cd / && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 %s --version")
      :format(q(bin)))
    assert.equal(0, code, out)
    assert.matches("^auditrun 0%.1%.0\nlibcurl %S+\nOpenSSL ", out)
    code, out = sh(("cd / && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 %s completion bash")
      :format(q(bin)))
    assert.equal(0, code, out)
    assert.matches("\n            guest%-access%)\n", out)
    assert.matches("\ncomplete %-F _auditrun ", out)
    local script = host.script(whereami)
    code, out = sh(("cd / && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 %s %s")
      :format(q(bin), q(script)))
    os.remove(script)
    assert.equal(0, code, out)
    local version, init, core = out:match("^(%S+)\t(%S+)\t(%S+)")
    assert.equal("0.1.0", version, out)
    assert.equal(root, init:sub(1, #root), init)
    assert.equal(root, core:sub(1, #root), core)
  end

  it("with luarocks make, then make install PREFIX in the same checkout, gives hosts that find their own files",
    function()
    local tree, prefix = tempdir(), tempdir()
    -- No CURL_INCDIR: Debian's multiarch curl.h is found without it.
    local code, out = sh(("cd %s && luarocks --lua-version 5.4 --tree %s make --deps-mode=none auditrun-scm-1.rockspec")
      :format(q(src), q(tree)))
    assert.equal(0, code, out)
    -- no `eval "$(luarocks path)"`: the host finds the tree from where it is
    installed_host_works(tree .. "/bin/auditrun", tree)
    -- workflows are scripts in the rock's folder, not modules
    assert.is_nil(out:match("auditrun%.scripts"))
    local listed = util.sh(("luarocks --lua-version 5.4 --tree %s show auditrun"):format(q(tree)))
    assert.is_nil(listed:match("auditrun%.scripts"), listed)

    code, out = sh(("make -C %s install PREFIX=%s"):format(q(src), q(prefix)))
    assert.equal(0, code, out)
    os.execute("rm -rf " .. q(tree))  -- nothing of the first install may be needed
    installed_host_works(prefix .. "/bin/auditrun", prefix)
    -- copied away from its files, it says so in one line
    local away = tempdir()
    assert.equal(0, (sh(("mkdir -p %s/bin && cp %s/bin/auditrun %s/bin/"):format(q(away), q(prefix), q(away)))))
    local script = host.script "print(1)"
    local code2, out2 = sh(("cd / && env -u LUA_CPATH -u LUA_CPATH_5_4 %s/bin/auditrun --version"):format(q(away)))
    code, out = sh(("cd / && env -u LUA_PATH -u LUA_PATH_5_4 %s/bin/auditrun %s"):format(q(away), q(script)))
    os.remove(script)
    os.execute("rm -rf " .. q(away))
    assert.equal(1, code)
    assert.equal(("auditrun: its Lua modules are not where it looks (%s/share/lua/5.4/auditrun, then LUA_PATH): " ..
      "run the auditrun that make install or luarocks installed with them\n"):format(away), out)
    -- --version without its core: what it knows, and one line on what it cannot.
    assert.equal(1, code2)
    assert.equal(("auditrun 0.1.0\nauditrun: cannot load its core (%s/lib/lua/5.4/auditrun/core.so) to name libcurl's " ..
      "and OpenSSL's versions: module 'auditrun.core' not found\n"):format(away), out2)
    code, out = sh(("cd / && LUA_PATH=%q LUA_CPATH=%q lua5.4 -e 'print(require(\"auditrun\").uuid4())'")
      :format(prefix .. "/share/lua/5.4/?.lua;" .. prefix .. "/share/lua/5.4/?/init.lua;;",
              prefix .. "/lib/lua/5.4/?.so;;"))
    assert.equal(0, code, out)
    assert.matches("^%x+%-%x+%-4", out)
    os.execute("rm -rf " .. q(prefix))
  end)

  it("with make dist and luarocks pack gives a .src.rock that installs without network", function()
    local dist, tree = tempdir(), tempdir()
    local code, out = sh(("make -C %s dist DIST_URL=file://%s/auditrun-0.1.0.tar.gz && cp %s/build/dist/* %s/")
      :format(q(src), dist, q(src), q(dist)))
    assert.equal(0, code, out)
    code, out = sh(("cd %s && luarocks --lua-version 5.4 pack auditrun-0.1.0-1.rockspec"):format(q(dist)))
    assert.equal(0, code, out)
    -- the tarball is gone: the rock carries its own sources
    os.remove(dist .. "/auditrun-0.1.0.tar.gz")
    code, out = sh(("cd / && luarocks --lua-version 5.4 --tree %s --only-server=/nonexistent install --deps-mode=none " ..
      "%s/auditrun-0.1.0-1.src.rock"):format(q(tree), q(dist)))
    assert.equal(0, code, out)
    installed_host_works(tree .. "/bin/auditrun", tree)
    local spec = util.read(dist .. "/auditrun-0.1.0-1.rockspec")
    assert.matches('homepage = "https://', spec)
    assert.matches('license = "MIT"', spec)
    os.execute("rm -rf " .. q(dist) .. " " .. q(tree))
  end)

  it("honours LUA_INCDIR and the external dependencies' folders without pkg-config", function()
    local tree = tempdir()
    assert.equal(0, (sh(("cp -r %s/. %s/ && rm -rf %s/build"):format(q(src), q(tree), q(tree)))))
    local code, out = sh(("make -C %s all PKG_CONFIG=false LUA_INCDIR=/usr/include/lua5.4 " ..
      "CURL_INCDIR=/usr/include/x86_64-linux-gnu CURL_LIBDIR=/usr/lib/x86_64-linux-gnu " ..
      "OPENSSL_INCDIR=/usr/include OPENSSL_LIBDIR=/usr/lib/x86_64-linux-gnu"):format(q(tree)))
    assert.equal(0, code, out)
    assert.matches("%-I/usr/include/lua5%.4", out)
    assert.matches("%-I/usr/include/x86_64%-linux%-gnu", out)
    os.execute("rm -rf " .. q(tree))
  end)
end)
