-- Hostile and malformed input: whatever a server names its files, whatever
-- it answers, whatever a user's local files hold, auditrun answers with one
-- clear line, writes nothing outside the output folder and replaces
-- nothing there.
local helper = require("tests.helper")
local sandbox, util = helper.sandbox, helper.util
local core = require("auditrun.core")
local download = require("auditrun.download")
local http = sandbox.http()
local files = require("auditrun.files")

describe("hostile file names", function()
  local sb = sandbox.for_describe {}
  local root, dir
  before_each(function()
    root = util.tempdir()
    dir = root .. "/reports"
  end)
  after_each(function() util.remove(root) end)

  -- The TC2231 Content-Disposition cases (greenbytes.de/tech/tc2231),
  -- traversal, NUL and control characters, dot-only names, device names,
  -- bidi controls, a fullwidth solidus, bad filename* escapes, invalid
  -- UTF-8, a 1,000-character name and xfilename=. nil: the fallback name.
  local cases = {
    { "inline", nil },
    { "inline; filename=\"foo.html\"", "foo.html" },
    { "inline; filename=\"Not an attachment!\"", "Not an attachment_" },
    { "attachment", nil },
    { "attachment; filename=\"foo.html\"", "foo.html" },
    { "attachment; filename=\"f\\oo.html\"", "oo.html" },
    { "attachment; filename=\"\\\"quoting\\\" tested.html\"", "_quoting_ tested.html" },
    { "attachment; filename=\"Here's a semicolon;.html\"", "Here_s a semicolon_.html" },
    { "attachment; foo=\"bar\"; filename=\"foo.html\"", "foo.html" },
    { "attachment; foo=\"\\\"\\\\\";filename=\"foo.html\"", "foo.html" },
    { "attachment; FILENAME=\"foo.html\"", "foo.html" },
    { "attachment; filename=foo.html", "foo.html" },
    { "attachment; filename=foo,bar.html", "foo,bar.html" },
    { "attachment; filename=foo.html ;", "foo.html" },
    { "attachment; ;filename=foo", "foo" },
    { "attachment; filename=foo bar.html", "foo bar.html" },
    { "attachment; filename='foo.bar'", "_foo.bar_" },
    { "attachment; filename=\"foo-ä.html\"", "foo-ä.html" },
    { "attachment; filename=\"foo-%41.html\"", "foo-_41.html" },
    { "attachment; filename=\"50%.html\"", "50_.html" },
    { "attachment; filename=\"foo-%\\41.html\"", "41.html" },
    { "attachment; name=\"foo-%41.html\"", nil },
    { "attachment; filename=\"ä-%41.html\"", "ä-_41.html" },
    { "attachment; filename=\"foo-%c3%a4-%e2%82%ac.html\"", "foo-_c3_a4-_e2_82_ac.html" },
    { "attachment; filename =\"foo.html\"", "foo.html" },
    { "attachment; filename=\"foo.html\"; filename=\"bar.html\"", "foo.html" },
    { "attachment; filename=foo[1](2).html", "foo[1](2).html" },
    { "attachment; filename=\"/foo.html\"", "foo.html" },
    { "attachment; filename=\"\\\\foo.html\"", "foo.html" },
    { "attachment; filename*=iso-8859-1''foo-%E4.html", "foo-ä.html" },
    { "attachment; filename*=UTF-8''foo-%c3%a4-%e2%82%ac.html", "foo-ä-€.html" },
    { "attachment; filename*=''foo-%c3%a4-%e2%82%ac.html", nil },
    { "attachment; filename*=UTF-8''foo-a%cc%88.html", "foo-ä.html" },
    { "attachment; filename*=iso-8859-1''foo-%c3%a4-%e2%82%ac.html", "foo-Ã¤-â¬.html" },
    { "attachment; filename*=utf-8''foo-%E4.html", nil },
    { "attachment; filename *=UTF-8''foo-%c3%a4.html", nil },
    { "attachment; filename*= UTF-8''foo-%c3%a4.html", "foo-ä.html" },
    { "attachment; filename* =UTF-8''foo-%c3%a4.html", "foo-ä.html" },
    { "attachment; filename*=\"UTF-8''foo-%c3%a4.html\"", nil },
    { "attachment; filename*=UTF-8''A-%2541.html", "A-_41.html" },
    { "attachment; filename*=UTF-8''%5cfoo.html", "foo.html" },
    { "attachment; filename=\"foo-ae.html\"; filename*=UTF-8''foo-%c3%a4.html", "foo-ä.html" },
    { "attachment; filename*=UTF-8''foo-%c3%a4.html; filename=\"foo-ae.html\"", "foo-ä.html" },
    { "attachment; xfilename=foo.html", nil },
    { "attachment; filename=\"foo.html\"; xfilename=\"x.html\"", "foo.html" },
    { "attachment; filename=\"..\"", nil },
    { "attachment; filename=\"...\"", nil },
    { "attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd", "passwd" },
    { "attachment; filename*=UTF-8''a%00b.zip", "ab.zip" },
    { "attachment; filename*=UTF-8''a%09b%0Dc.zip", "abc.zip" },
    { "attachment; filename=\"NUL\"", "_NUL" },
    { "attachment; filename=\"aux.zip\"", "_aux.zip" },
    { "attachment; filename=\"Com1.csv\"", "_Com1.csv" },
    { "attachment; filename*=UTF-8''invoice%E2%80%AEpiz.exe", "invoicepiz.exe" },
    { "attachment; filename*=UTF-8''a%E2%81%A6b%E2%80%8Fc.zip", "abc.zip" },
    { "attachment; filename*=UTF-8''evil%EF%BC%8F..%EF%BC%8Fx.zip", "x.zip" },
    { "attachment; filename*=UTF-8''%FF%FE.zip", nil },
    { "attachment; filename*=UTF-8''%ZZ.zip", nil },
    { "attachment; filename*=UTF-8''a%2", nil },
    { 'attachment; filename="' .. string.rep("n", 1000) .. '.zip"', nil },
  }
  for _, case in ipairs(cases) do
    it("lands " .. case[1]:sub(1, 70) .. " under a safe name", function()
      local got = assert(download.save { ca_file = sb.ca_file, url = sb.url .. "/test/download?rows=3&disposition_b64="
        .. core.b64url_encode(case[1]), dir = dir, fallback_name = "report_42.csv" })
      local want = case[2] or "report_42.csv"
      assert.equal(want, got.name)
      assert.same({ want }, util.listing(dir))
      assert.same({ "reports" }, util.listing(root))
      assert.is_nil(want:find("[/\\%z\1-\31]"))
    end)
  end

  it("never replaces a file already there under the offered name", function()
    files.mkdirs(dir)
    util.write(dir .. "/foo.html", "mine")
    local got = assert(download.save { ca_file = sb.ca_file, url = sb.url .. "/test/download?kind=text&rows=3&disposition="
      .. http.escape('attachment; filename="../reports/foo.html"'), dir = dir, fallback_name = "x.zip" })
    assert.equal("foo (1).html", got.name)
    assert.equal("mine", util.read(dir .. "/foo.html"))
  end)
end)
