-- Crash-safe files: atomic replace, no-replace rename, directories.
local core = require("auditrun.core")
local files = require("auditrun.files")

local helper = require("tests.helper")
local host, util = helper.host, helper.util

local tempdir = util.tempdir
local function listing(dir) return table.concat(util.listing(dir), " ") end

describe("files", function()
  local dir
  before_each(function() dir = tempdir() end)
  after_each(function() util.remove(dir) end)

  it("write atomically, replacing the old content and leaving no temporary file", function()
    assert.is_true(files.write_atomic(dir .. "/state.json", "one"))
    assert.is_true(files.write_atomic(dir .. "/state.json", "two\0binary"))
    assert.equal("two\0binary", files.read(dir .. "/state.json"))
    assert.equal("state.json", listing(dir))
  end)

  local function mode(path)
    local p = io.popen("stat -c %a '" .. path .. "'")
    local m = p:read("l")
    p:close()
    return m
  end

  -- Regression: reports, state and lock files were 0644 under 0755 folders.
  it("keep files 0600 and folders 0700, whatever the umask", function()
    assert.is_true(files.mkdirs(dir .. "/a/b"))
    files.write_atomic(dir .. "/a/b/state.json", "x")
    local lock = assert(files.lock(dir .. "/a/b/run.lock"))
    local tmp = assert(files.temp(dir .. "/a/b/report.zip"))
    assert.is_true(tmp:link(dir .. "/a/b/report.zip"))
    tmp:close()
    lock:close()
    assert.equal("700", mode(dir .. "/a"))
    assert.equal("700", mode(dir .. "/a/b"))
    for _, f in ipairs { "state.json", "run.lock", "report.zip" } do
      assert.equal("600", mode(dir .. "/a/b/" .. f), f)
    end
  end)

  it("widen the modes with AUDITRUN_FILE_MODE, and refuse a mode that locks the owner out", function()
    local script = dir .. "/modes.lua"
    util.write(script, [[
      local files = require("auditrun.files")
      assert(files.mkdirs(arg[1] .. "/shared"))
      assert(files.write_atomic(arg[1] .. "/shared/r.csv", "x"))
    ]])
    local code, _, stderr = host.run({ script, dir }, { env = { AUDITRUN_FILE_MODE = "0640" } })
    assert.equal(0, code, stderr)
    assert.equal("750", mode(dir .. "/shared"))
    assert.equal("640", mode(dir .. "/shared/r.csv"))
    code, _, stderr = host.run({ script, dir }, { env = { AUDITRUN_FILE_MODE = "0044" } })
    assert.equal(1, code)
    assert.equal("auditrun: config: AUDITRUN_FILE_MODE=0044: give an octal mode with owner read and write, "
      .. "such as 0640\n", stderr)
    assert.same({ 416, 488 }, { files.parse_mode("0640") })  -- 0640, 0750
    assert.is_nil(files.parse_mode("rw-r-----"))
  end)

  it("fail with a clear error when the directory is missing", function()
    local ok, err = files.write_atomic(dir .. "/missing/f", "x")
    assert.is_nil(ok)
    assert.equal("file", err.kind)
    assert.matches("missing", err.message)
  end)

  it("create nested directories, and accept existing ones", function()
    assert.is_true(files.mkdirs(dir .. "/a/b/c"))
    assert.is_true(files.mkdirs(dir .. "/a/b/c"))
    files.write_atomic(dir .. "/a/file", "x")
    local ok, err = files.mkdirs(dir .. "/a/file/d")
    assert.is_nil(ok)
    assert.equal("file", err.kind)
  end)

  it("rename without ever replacing an existing file", function()
    files.write_atomic(dir .. "/a", "A")
    files.write_atomic(dir .. "/b", "B")
    local ok, err = files.rename_noreplace(dir .. "/a", dir .. "/b")
    assert.is_nil(ok)
    assert.equal("exists", err.kind)
    assert.equal("B", files.read(dir .. "/b"))
    assert.equal("A", files.read(dir .. "/a"))
    assert.is_true(files.rename_noreplace(dir .. "/a", dir .. "/c"))
    assert.equal("A", files.read(dir .. "/c"))
    assert.is_false(files.exists(dir .. "/a"))
  end)

  it("make temporary files beside a target, hidden from listings, removed unless named", function()
    local t1 = assert(files.temp(dir .. "/report.zip"))
    local t2 = assert(files.temp(dir .. "/report.zip"))
    assert.are_not.equal(t1:path(), t2:path())
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/%.report%.zip%.part%-", t1:path())
    assert.is_true(t1:fsync())
    assert.is_true(files.fsync_dir_of(t1:path()))
    assert.equal(0, t1:size())
    assert.equal("", t1:read_at(0, 10))
    assert.equal(core.sha256(""), t1:sha256())
    t1:close()
    t1:close()
    assert.is_false(files.exists(t1:path()))
    assert.has_error(function() t1:size() end, "attempt to use a closed temporary file")
    assert.is_true(t2:link(dir .. "/report.zip"))
    local t3 = assert(files.temp(dir .. "/report.zip"))
    local ok, err = t3:link(dir .. "/report.zip")
    assert.is_nil(ok)
    assert.equal("exists", err.kind)
    t2:close()
    t3:close()
    assert.equal("report.zip", listing(dir))
  end)

  -- Regression: the temporary file was closed after creation and reopened
  -- by name, so a symlink swapped in at its name was written through.
  it("name only the file they hold, never what was swapped in at its name", function()
    local victim = dir .. "/victim"
    util.write(victim, "precious")
    local tmp = assert(files.temp(dir .. "/report.csv"))
    util.sh(("ln -s %s %s/link && mv -f %s/link %s"):format(victim, dir, dir, tmp:path()))
    local ok, err = tmp:link(dir .. "/report.csv")
    assert.is_nil(ok)
    assert.equal("file", err.kind)
    assert.matches("removed or replaced while it was written", err.message)
    tmp:close()
    assert.is_false(files.exists(dir .. "/report.csv"))
    assert.equal("precious", util.read(victim))
  end)

  it("open journals and reports for appending privately, never through a symlink", function()
    local f = assert(files.open_append(dir .. "/journal.jsonl"))
    f:write("one\n")
    f:close()
    f = assert(files.open_append(dir .. "/journal.jsonl"))
    f:write("two\n")
    assert(f:close())
    assert.equal("one\ntwo\n", util.read(dir .. "/journal.jsonl"))
    assert.equal("600", mode(dir .. "/journal.jsonl"))
    f = assert(files.open_write(dir .. "/journal.jsonl"))
    f:close()
    assert.equal("", util.read(dir .. "/journal.jsonl"))
    util.write(dir .. "/victim", "precious")
    util.sh("ln -s " .. dir .. "/victim " .. dir .. "/link.jsonl")
    local none, err = files.open_append(dir .. "/link.jsonl")
    assert.is_nil(none)
    assert.matches("link.jsonl", err)
    assert.equal("precious", util.read(dir .. "/victim"))
  end)

  it("never write or read through a symlink at a name they are given", function()
    local victim = dir .. "/victim"
    util.write(victim, "precious")
    util.sh(("ln -s %s %s/state.json; ln -s %s %s/run.lock; ln -s /dev/zero %s/zero.zip")
      :format(victim, dir, victim, dir, dir))
    assert.is_true(files.write_atomic(dir .. "/state.json", "new"))  -- the link is replaced
    assert.equal("new", util.read(dir .. "/state.json"))
    assert.equal("precious", util.read(victim))
    local lock, err = files.lock(dir .. "/run.lock")
    assert.is_nil(lock)
    assert.matches("is a symbolic link", err.message)
    -- Regression: a link to /dev/zero at a report's name was hashed for ever.
    local digest, derr = files.sha256(dir .. "/zero.zip")
    assert.is_nil(digest)
    assert.matches("symbolic link", derr.message)
    digest, derr = files.sha256("/dev/zero")
    assert.is_nil(digest)
    assert.matches("not a regular file", derr.message)
  end)

  it("sweep the temporary files a crash left, and nothing else", function()
    local held = assert(files.temp(dir .. "/report.zip"))
    local leftover = held:path()
    for _, name in ipairs { "report.zip", ".report.zip.part-abc12", "keep.part-abc123", ".part-abc123",
                            ".hidden", ".x.part-abc12!" } do
      files.write_atomic(dir .. "/" .. name, "x")
    end
    assert.equal(1, files.remove_parts(dir))
    assert.is_false(files.exists(leftover))
    assert.equal(".hidden .part-abc123 .report.zip.part-abc12 .x.part-abc12! keep.part-abc123 report.zip", listing(dir))
    -- Only one file's: its own and those of files named after it, even cut off at 200 bytes.
    local long = ("n"):rep(230)
    for _, name in ipairs { ".a.csv.part-abc123", ".a.csv.sha.part-abc123", ".a.csvx.part-abc123",
                            "." .. long:sub(1, 200) .. ".part-abc123" } do
      files.write_atomic(dir .. "/" .. name, "x")
    end
    assert.equal(2, files.remove_parts(dir, "a.csv"))
    assert.equal(1, files.remove_parts(dir, long))
    assert.truthy(files.exists(dir .. "/.a.csvx.part-abc123"))
    local n, err = files.remove_parts(dir .. "/missing")
    assert.is_nil(n)
    assert.equal("file", err.kind)
  end)

  it("lock a file for one holder at a time, released by close (safe twice)", function()
    local path = dir .. "/run.lock"
    local first = assert(files.lock(path))
    local second, err = files.lock(path)
    assert.is_nil(second)
    assert.equal("locked", err.kind)
    assert.matches("held by another process", err.message)
    first:close()
    first:close()
    second = assert(files.lock(path))
    do
      local _held <close> = second
    end
    assert(files.lock(path)):close()
    local none, lerr = files.lock(dir .. "/missing/run.lock")
    assert.is_nil(none)
    assert.equal("file", lerr.kind)
  end)

  it("remove a lock file while holding it: the next lock makes a new one; a replaced file stays", function()
    local path = dir .. "/run.lock"
    local first = assert(files.lock(path))
    assert.equal("run.lock", listing(dir))
    assert.is_true(first:remove())
    assert.equal("", listing(dir))
    assert.is_true(first:remove())  -- safe twice, and after close
    local second = assert(files.lock(path))
    assert.equal("run.lock", listing(dir))
    -- Someone put another file at the name: it is not this lock's to remove.
    os.execute(("mv %s/run.lock %s/moved && touch %s/run.lock"):format(dir, dir, dir))
    assert.is_true(second:remove())
    assert.equal("moved run.lock", listing(dir))
    -- Moved with its folder: removed under the name it has now.
    os.execute(("rm %s/moved"):format(dir))
    local moving = assert(files.lock(path))
    os.execute(("mv %s/run.lock %s/now.lock"):format(dir, dir))
    assert.is_true(moving:remove(dir .. "/now.lock"))
    assert.equal("", listing(dir))
    -- A closed lock keeps its file (a slot file others share).
    local third = assert(files.lock(path))
    third:close()
    assert.is_true(third:remove())
    assert.equal("run.lock", listing(dir))
  end)

  -- Each process takes the lock, writes its name in a file, reads it back a
  -- few times and removes the lock, as fast as it can for a second. A lock
  -- taken on a file its holder had just unlinked would let two in at once:
  -- without the check that the path still leads to the locked file, about
  -- one take in six clashes here.
  it("never let two processes in at once while holders remove the lock file", function()
    local script = host.script [[
      local files = require("auditrun.files")
      local task = require("auditrun.task")
      local path, owner, me = ...
      local took, clashes, deadline = 0, 0, nil
      for _ = 1, 10000000 do
        local l = files.lock(path)
        if l then
          -- A hundred takes each, or ten seconds on a machine too busy for that.
          deadline = deadline or task.now() + 10
          took = took + 1
          local f = assert(io.open(owner, "w"))
          f:write(me)
          f:close()
          for _ = 1, 3 do
            local g = assert(io.open(owner))
            local who = g:read("a")
            g:close()
            if who ~= me then clashes = clashes + 1 break end
          end
          assert(l:remove())
        end
        if took >= 100 or deadline and task.now() > deadline then break end
      end
      print(took .. " " .. clashes)
    ]]
    local runs = {}
    for i = 1, 3 do
      runs[i] = ("%s %s %s/x.lock %s/owner p%d > %s/out%d 2>&1"):format(host.binary, script, dir, dir, i, dir, i)
    end
    os.execute("(" .. table.concat(runs, " & ") .. "; wait) 2>/dev/null")
    os.remove(script)
    for i = 1, 3 do
      local took, clashes = util.read(dir .. "/out" .. i):match("^(%d+) (%d+)\n$")
      assert.truthy(took, util.read(dir .. "/out" .. i))
      assert.is_true(tonumber(took) >= 20, "p" .. i .. " took the lock only " .. took .. " times")
      assert.equal("0", clashes, "p" .. i .. " shared the lock " .. clashes .. " times")
    end
  end)
end)
