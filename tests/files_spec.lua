-- Crash-safe files: atomic replace, no-replace rename, directories.
local files = require "auditrun.files"

local util = require "tests.helper.util"

local tempdir = util.tempdir
local function listing(dir) return table.concat(util.listing(dir), " ") end

describe("files", function()
  local dir
  before_each(function() dir = tempdir() end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  it("write atomically, replacing the old content and leaving no temporary file", function()
    assert.is_true(files.write_atomic(dir .. "/state.json", "one"))
    assert.is_true(files.write_atomic(dir .. "/state.json", "two\0binary"))
    assert.equal("two\0binary", files.read(dir .. "/state.json"))
    assert.equal("state.json", listing(dir))
  end)

  it("give new files the mode a plain create would", function()
    files.write_atomic(dir .. "/f", "x")
    local p = io.popen("umask; stat -c %a " .. dir .. "/f")
    local umask, mode = p:read("l"), p:read("l")
    p:close()
    assert.equal(string.format("%o", 438 & ~tonumber(umask, 8)), mode)
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

  it("make temporary files beside a target, hidden from listings", function()
    local t1 = files.temp_beside(dir .. "/report.zip")
    local t2 = files.temp_beside(dir .. "/report.zip")
    assert.are_not.equal(t1, t2)
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/%.report%.zip%.part%-", t1)
    assert.is_true(files.fsync(t1))
    assert.is_true(files.fsync_dir_of(t1))
  end)

  it("sweep the temporary files a crash left, and nothing else", function()
    local leftover = files.temp_beside(dir .. "/report.zip")
    for _, name in ipairs { "report.zip", ".report.zip.part-abc12", "keep.part-abc123", ".part-abc123",
                            ".hidden", ".x.part-abc12!" } do
      files.write_atomic(dir .. "/" .. name, "x")
    end
    assert.equal(1, files.remove_parts(dir))
    assert.is_false(files.exists(leftover))
    assert.equal(".hidden .part-abc123 .report.zip.part-abc12 .x.part-abc12! keep.part-abc123 report.zip", listing(dir))
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
end)
