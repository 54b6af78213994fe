-- Out of room mid-run: the host runs a records workflow and an export
-- workflow against the sandbox under a file size limit (RLIMIT_FSIZE, as
-- ulimit -f: no root needed) and, where the machine lets this process mount
-- one, on a small tmpfs that fills up. Each failure is one line naming the
-- file and a non-zero exit; nothing half-written is listed as done; the
-- length a records file's state records never runs past what is on disk;
-- and once there is room again a rerun finishes with every row (and every
-- report) once.
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local auditrun = require("auditrun")
local cjson = require("cjson")


local function size_of(path)
  return tonumber(util.sh("stat -c %s " .. host.quote(path) .. " 2>/dev/null")) or 0
end

-- The state a records file keeps beside it.
local function records_state(path)
  local dir, name = path:match("^(.*/)([^/]*)$")
  return cjson.decode(util.read(dir .. "." .. name .. ".auditrun"))
end

-- One line of the host's own (the progress lines go first), naming the
-- file (or the state beside it: `name` is the file's name) and why, and no
-- Lua traceback.
local function assert_one_line_naming(err, name, why)
  assert.is_nil(err:find("traceback", 1, true), err)
  local last = util.lines(err)[#util.lines(err)]
  assert.matches("^auditrun: ", last)
  assert.is_truthy(last:find("/" .. name, 1, true) or last:find("/." .. name .. ".auditrun", 1, true), last)
  assert.matches(why, last)
end

local function assert_each_object_once(path, count)
  local rows, twice = helper.reports.ids_twice(path)
  assert.same({}, twice)
  assert.equal(count, #rows)
end

-- kill -9 once the file has `bytes` bytes; returns what is on disk then.
local function kill_at(args, env, path, bytes)
  local h = host.start(args, { env = env })
  local deadline = auditrun.now() + 60
  while size_of(path) < bytes and auditrun.now() < deadline do auditrun.sleep(0.01) end
  h:signal("KILL")
  assert.equal(137, (h:wait(30)))
  return size_of(path)
end

describe("out of room in the records writer", function()
  local records = require("auditrun.records")

  it("takes a record whose empty file was never made (no room left for it) as a file just started", function()
    local dir = util.tempdir()
    local path = dir .. "/early.jsonl"
    auditrun.try(records.open(path, {})):abandon()
    os.remove(path)
    local w = auditrun.try(records.open(path, {}))
    auditrun.try(w:write { a = 1 })
    auditrun.try(w:close())
    assert.equal('{"a":1}\n', util.read(path))
    os.execute("rm -rf " .. dir)
  end)
end)

describe("out of room", function()
  local sb = sandbox.for_describe {}
  local home, env, tenant

  setup(function()
    home, env = sb:new_home()
    tenant = sb:control("GET", "/tenant")
  end)
  teardown(function() util.remove(home) end)

  it("a records file that reaches the file size limit fails in one line; a rerun with room finishes it", function()
    local path = home .. "/limited.jsonl"
    local code, _, err = host.run({ "detail-records", "--out", path }, { env = env, file_limit = 300000 })
    assert.equal(1, code, err)
    assert_one_line_naming(err, path:match("[^/]*$"), "File too large")
    local st = records_state(path)
    assert.is_nil(st.complete)
    assert.is_true(st.bytes <= size_of(path), ("recorded %d bytes, %d on disk"):format(st.bytes, size_of(path)))
    code, _, err = host.run({ "detail-records", "--out", path }, { env = env })
    assert.equal(0, code, err)
    assert_each_object_once(path, tenant.counts.objects)
  end)

  it("a rerun after kill -9 under a limit below what the file holds cuts it in place and loses nothing", function()
    local path = home .. "/killed.jsonl"
    kill_at({ "detail-records", "--out", path }, env, path, 1500000)
    local recorded = records_state(path).bytes
    assert.is_true(recorded > 200000, "the kill came too early: " .. recorded .. " bytes recorded")
    -- The limit lies below the bytes kept: cutting the torn tail needs no
    -- room, the first append after it fails.
    local code, _, err = host.run({ "detail-records", "--out", path }, { env = env, file_limit = recorded - 100000 })
    assert.equal(1, code, err)
    assert_one_line_naming(err, path:match("[^/]*$"), "File too large")
    local st = records_state(path)
    assert.is_nil(st.complete)
    assert.equal(recorded, st.bytes)
    assert.equal(recorded, size_of(path))
    code, _, err = host.run({ "detail-records", "--out", path }, { env = env })
    assert.equal(0, code, err)
    assert.matches("[1-9]%d* from an earlier run", err)
    assert_each_object_once(path, tenant.counts.objects)
  end)

  it("an export workflow whose reports meet the limit lists none of them half-written; a rerun finishes", function()
    local dir = home .. "/guests"
    local code, _, err = host.run({ "guest-access", "-q", "--out", dir }, { env = env, file_limit = 4000 })
    assert.equal(1, code, err)
    assert.is_nil(err:find("traceback", 1, true), err)
    -- Each failure names the file it could not write: a report or the run state.
    for _, l in ipairs(util.lines(err)) do
      if l:find("File too large", 1, true) then assert.matches("cannot write " .. dir:gsub("%p", "%%%0") .. "/", l) end
    end
    assert.matches("File too large", err)
    -- Whatever the manifest lists is on disk whole.
    for _, l in ipairs(util.lines(util.read(dir .. "/manifest.jsonl") or "")) do
      local entry = cjson.decode(l)
      assert.equal(entry.bytes, size_of(dir .. "/" .. entry.file), entry.file)
    end
    code, _, err = host.run({ "guest-access", "--out", dir }, { env = env })
    assert.equal(0, code, err)
    local listed, seen = util.lines(util.read(dir .. "/manifest.jsonl")), {}
    assert.equal(tenant.counts.guests, #listed)
    for _, l in ipairs(listed) do
      local entry = cjson.decode(l)
      assert.is_nil(seen[entry.file], "listed twice: " .. entry.file)
      seen[entry.file] = true
      assert.equal(entry.bytes, size_of(dir .. "/" .. entry.file), entry.file)
    end
  end)

  -- A small tmpfs needs mount rights (root, here); elsewhere this is skipped.
  local mounted = util.sh("id -u"):match("^0%s*$") ~= nil
  local test = mounted and it or pending
  test("a rerun after kill -9 on a nearly full disk fails in one line; after space is freed nothing is lost", function()
    local mnt = util.tempdir()
    assert.is_true(os.execute("mount -t tmpfs -o size=8m tmpfs " .. mnt) == true, "cannot mount a tmpfs")
    local ok, why = pcall(function()
      local path = mnt .. "/records.jsonl"
      local menv = {}
      for k, v in pairs(env) do menv[k] = v end
      kill_at({ "detail-records", "--out", path }, menv, path, 1500000)
      local recorded = records_state(path).bytes
      -- Fill the disk but for a little, as another program might.
      os.execute("dd if=/dev/zero of=" .. mnt .. "/ballast bs=64k 2>/dev/null")
      os.execute("truncate -s -100k " .. mnt .. "/ballast")
      local code, _, err = host.run({ "detail-records", "--out", path }, { env = menv })
      assert.equal(1, code, err)
      assert_one_line_naming(err, "records.jsonl", "No space left on device")
      local st = records_state(path)
      assert.is_nil(st.complete)
      assert.is_true(st.bytes >= recorded)
      assert.is_true(st.bytes <= size_of(path), ("recorded %d bytes, %d on disk"):format(st.bytes, size_of(path)))
      os.remove(mnt .. "/ballast")
      code, _, err = host.run({ "detail-records", "--out", path }, { env = menv })
      assert.equal(0, code, err)
      assert_each_object_once(path, tenant.counts.objects)
    end)
    os.execute("umount " .. mnt .. " && rmdir " .. mnt)
    assert(ok, why)
  end)
end)
