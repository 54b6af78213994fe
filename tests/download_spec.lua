-- Downloads that land safely: hostile names, truncated zips, reruns that
-- find their file already there, never a half-written file under a name.
local helper = require("tests.helper")
local sandbox, util = helper.sandbox, helper.util
local download = require("auditrun.download")
local http = sandbox.http()
local files = require("auditrun.files")


local listing = util.listing

describe("download", function()
  local sb = sandbox.for_describe {}
  local dir
  before_each(function()
    dir = util.tempdir() .. "/reports"
  end)
  after_each(function() os.execute("rm -rf " .. dir:gsub("/reports$", "")) end)

  local function fetch(query, extra)
    local o = { url = sb.url .. "/test/download?" .. query, dir = dir, fallback_name = "report_42.zip" }
    for k, v in pairs(extra or {}) do o[k] = v end
    o.ca_file = sb.ca_file
    return download.save(o)
  end

  local names = {
    { 'attachment; filename="Site Permissions_2024.zip"', "Site Permissions_2024.zip" },
    { "attachment; filename*=UTF-8''R%C3%A9sum%C3%A9%20report.zip", "Résumé report.zip" },
    { 'attachment; filename="../../etc/evil name.zip"', "evil name.zip" },
    { 'attachment; filename="..\\..\\windows\\x.zip"', "x.zip" },
    { 'attachment; filename=".hidden.zip"', "hidden.zip" },
    { 'attachment; filename="-rf.zip"', "rf.zip" },
    { 'attachment; filename="a$(reboot)`b`;c|d.zip"', "a_(reboot)_b__c_d.zip" },
    { 'attachment; filename="' .. string.rep("x", 400) .. '.zip"', "report_42.zip" },
    { 'attachment; filename="' .. string.rep("x", 176) .. '.zip"', string.rep("x", 176) .. ".zip" },
    { 'attachment; filename=".."', "report_42.zip" },
    { 'attachment; filename="/"', "report_42.zip" },
    -- Regression: an empty quoted name was read as the bare name '""'.
    { "attachment; filename=\"\"; filename*=UTF-8''", "report_42.zip" },
    { 'attachment; filename="say \\"hi\\".zip"', "say _hi_.zip" },
    { nil, "report_42.zip" },
  }
  for _, case in ipairs(names) do
    it("names the file safely for " .. (case[1] or "no Content-Disposition"):sub(1, 60), function()
      local q = "rows=10" .. (case[1] and ("&disposition=" .. http.escape(case[1])) or "")
      local got = assert(fetch(q))
      assert.equal(case[2], got.name)
      assert.equal(dir .. "/" .. case[2], got.path)
      assert.same({ case[2] }, listing(dir))
      assert.equal(got.size, #files.read(got.path))
      assert.equal(got.sha256, files.sha256(got.path))
    end)
  end

  it("refuses a truncated zip and leaves nothing behind", function()
    local got, err = fetch("kind=truncated&rows=1000")
    assert.is_nil(got)
    assert.equal("download", err.kind)
    assert.matches("not a complete zip", err.message)
    assert.same({}, listing(dir))
  end)

  it("leaves nothing behind when the connection drops", function()
    local got, err = download.save { url = sb.url .. "/test/drop/200000", dir = dir, fallback_name = "x.bin",
                                      ca_file = sb.ca_file,
                                      request = function(o) o.retry = false return http.request(o) end }
    assert.is_nil(got)
    assert.equal("connection", err.kind)
    assert.same({}, listing(dir))
  end)

  it("finds the same report already there on a rerun, and never replaces another", function()
    local q = "rows=50&disposition=" .. http.escape('attachment; filename="r.zip"')
    local first = assert(fetch(q))
    local again = assert(fetch(q))
    assert.is_false(first.reused)
    assert.is_true(again.reused)
    assert.equal(first.path, again.path)
    local other = assert(fetch("rows=60&disposition=" .. http.escape('attachment; filename="r.zip"')))
    assert.equal("r (1).zip", other.name)
    assert.same({ "r (1).zip", "r.zip" }, listing(dir))
  end)

  -- Regression: the temporary file was reopened by name for the transfer, so
  -- a symlink swapped in at that name was followed and the target truncated.
  it("writes only the file it created, even when its name is swapped for a symlink", function()
    local victim = dir:gsub("/reports$", "") .. "/victim"
    util.write(victim, "precious")
    local swapped
    local got, err = fetch("rows=20", { request = function(o)
      local temp = o.output:path()
      util.sh(("ln -s %s %s.link && mv -f %s.link %s"):format(victim, temp, temp, temp))
      swapped = temp
      return http.request(o)
    end })
    assert.truthy(swapped)
    assert.is_nil(got)
    assert.matches("removed or replaced while it was written", err.message)
    assert.equal("precious", util.read(victim))
    assert.is_false(files.exists(dir .. "/report_42.zip"))
  end)

  -- Regression: a link to /dev/zero at a report's name was hashed for over 600 s.
  it("never follows a symlink planted at a report's name", function()
    files.mkdirs(dir)
    util.sh("ln -s /dev/zero " .. dir .. "/r.zip")
    local got = assert(fetch("rows=5&disposition=" .. http.escape('attachment; filename="r.zip"')))
    assert.equal("r (1).zip", got.name)
    assert.is_false(got.reused)
  end)

  it("keeps reports private: 0600 files in a 0700 folder", function()
    local got = assert(fetch("rows=5"))
    assert.equal("600", util.sh("stat -c %a '" .. got.path .. "'"):gsub("%s+$", ""))
    assert.equal("700", util.sh("stat -c %a '" .. dir .. "'"):gsub("%s+$", ""))
  end)

  -- Regression: downloads had no size limit; a ~200 KB gzip answer wrote 200 MiB.
  for _, case in ipairs {
    { "a gzip answer that expands past it", "/test/bytes/3000000?gzip=1" },
    { "a body without a length", "/test/bytes/3000000?chunked=1" },
    { "a Content-Length over it", "/test/bytes/3000000" },
  } do
    it("stops a download larger than max_size: " .. case[1], function()
      local got, err = download.save { ca_file = sb.ca_file, url = sb.url .. case[2], dir = dir, fallback_name = "x.bin",
                                        max_size = 1000000 }
      assert.is_nil(got)
      assert.equal("too_large", err.kind)
      assert.matches("download larger than 1000000 bytes", err.message)
      assert.same({}, listing(dir))
    end)
  end

  it("takes other files as they come, checking only their length", function()
    local got = assert(fetch("kind=text&rows=5&disposition=" .. http.escape('attachment; filename="users.csv"')))
    assert.equal("users.csv", got.name)
    assert.matches("^Name,Permission\nuser0,Read", files.read(got.path))
  end)
end)
