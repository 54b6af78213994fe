-- variants: plain
-- Run state as an append-only journal: one line per change, a torn last
-- line dropped, compacted on open, the earlier whole-file format read, one
-- run at a time, a crashed run's temporary files swept.
local state = require("auditrun.state")
local util = require("tests.helper.util")

local function lines_of(path) return util.lines(util.read(path)) end

describe("state", function()
  local dir, path
  before_each(function()
    dir = util.tempdir()
    path = dir .. "/.auditrun/state.jsonl"
  end)
  after_each(function() util.remove(dir) end)

  it("appends one line per change and reads every change back after a reopen", function()
    local st = assert(state.open(path))
    assert.is_true(st:set("a", { job = "1" }))
    assert.is_true(st:set("b", { job = "2", path = "x.zip" }))
    assert.is_true(st:set("a", { job = "3" }))
    assert.is_true(st:set("b", nil))
    assert.equal(5, #lines_of(path))
    st:close()
    st = assert(state.open(path))
    assert.same({ job = "3" }, st:get("a"))
    assert.is_nil(st:get("b"))
    local n = 0
    for k, v in st:each() do
      n = n + 1
      assert.equal("a", k)
      assert.same({ job = "3" }, v)
    end
    assert.equal(1, n)
    -- Compacted: the header and the one live key.
    assert.equal(2, #lines_of(path))
    st:close()
  end)

  it("drops a last line a kill cut short, and keeps everything before it", function()
    local st = assert(state.open(path))
    st:set("a", { job = "1" })
    st:close()
    local f = assert(io.open(path, "ab"))
    f:write('{"k":"b","v":{"jo')
    f:close()
    st = assert(state.open(path))
    assert.same({ job = "1" }, st:get("a"))
    assert.is_nil(st:get("b"))
    assert.is_true(st:set("b", { job = "2" }))
    st:close()
    st = assert(state.open(path))
    assert.same({ job = "2" }, st:get("b"))
    st:close()
  end)

  it("reads the whole-file state of earlier versions and continues it as a journal", function()
    os.execute("mkdir -p " .. dir .. "/.auditrun")
    util.write(path, '{"format":"auditrun-state/1","entries":{"jane":{"job":"7"}}}')
    local st = assert(state.open(path))
    assert.same({ job = "7" }, st:get("jane"))
    st:set("joe", { job = "8" })
    st:close()
    st = assert(state.open(path))
    assert.same({ job = "7" }, st:get("jane"))
    assert.same({ job = "8" }, st:get("joe"))
    st:close()
  end)

  it("refuses a file it did not write, or a journal with a bad line in the middle, in one line", function()
    os.execute("mkdir -p " .. dir .. "/.auditrun")
    for _, text in ipairs {
      '{"entries": [',
      '{"format":"auditrun-journal/1"}\n{"k":"a","v":1}\nnot json\n{"k":"b","v":2}\n',
      '{"format":"auditrun-journal/1"}\n{"v":1}\n',
      'hello\n',
    } do
      util.write(path, text)
      local st, err = state.open(path)
      assert.is_nil(st)
      assert.equal("state", err.kind)
      assert.matches("is not a run state this auditrun wrote", err.message)
      assert.is_nil(tostring(err):find("\n"))
      -- The refused file is left as it was.
      assert.equal(text, util.read(path))
    end
  end)

  it("lets one run at a time use a state, and sweeps temporary files in the folders it is given", function()
    os.execute("mkdir -p " .. dir .. "/.auditrun && touch " .. dir .. "/.r.zip.part-abc123 " .. dir
      .. "/.auditrun/.state.jsonl.part-XYZ789 " .. dir .. "/keep.zip")
    local st = assert(state.open(path, { sweep = { dir } }))
    local again, err = state.open(path)
    assert.is_nil(again)
    assert.matches("another run is using", err.message)
    assert.same({ ".auditrun", "keep.zip" }, util.listing(dir))
    assert.same({ "state.jsonl", "state.jsonl.lock" }, util.listing(dir .. "/.auditrun"))
    st:close()
    st = assert(state.open(path))
    st:close()
  end)
end)
