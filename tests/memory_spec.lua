-- variants: plain
-- What one big page costs: the host reading a 50 MB page of ExaVault's
-- session log into a records file, measured by its peak resident memory
-- (the plain build only: ASan and valgrind have their own).
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util

describe("a big page", function()
  local sb = sandbox.for_describe()

  -- Regression: a 50 MB page was held several times over (the response
  -- kept while its rows were written, the page encoded whole for the
  -- repeat check and kept until the next page): 367 MB of peak memory.
  it("costs the host little more than twice its size", function()
    local t = sb:activity_control("POST", "/config", { evSessions = 1000, evLimitCap = 1000, evPadBytes = 52000 })
    local dir = util.tempdir()
    local out, rss = dir .. "/sessions.jsonl", dir .. "/rss"
    local env = {
      HOME = "/nonexistent", AUDITRUN_CA_FILE = sb.ca_file, AUDITRUN_EXAVAULT_URL = sb.url .. "/exavault/api/v2",
      AUDITRUN_EXAVAULT_API_KEY = t.exavault.api_key, AUDITRUN_EXAVAULT_ACCESS_TOKEN = t.exavault.access_token,
    }
    assert(io.open("/usr/bin/time"), "the measure needs /usr/bin/time (Debian's time package)"):close()
    local binary = host.binary
    host.binary = "/usr/bin/time -f %M -o " .. rss .. " " .. binary
    local ok, code, _, err = pcall(host.run, { "exavault-sessions", "--out", out, "-q" }, { env = env })
    host.binary = binary
    assert(ok, code)
    assert.equal(0, code, err)
    local size = assert(io.open(out)):seek("end")
    assert.is_true(size > 50e6, "the page is " .. size .. " bytes")
    local peak = tonumber(util.read(rss):match("(%d+)%s*$")) * 1024
    os.execute("rm -rf " .. dir)
    assert.is_true(peak < 3 * size, string.format("peak %.0f MB for a page of %.0f MB", peak / 1e6, size / 1e6))
  end)
end)
