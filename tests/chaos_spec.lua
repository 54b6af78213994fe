-- variants: plain
-- A short `make chaos`: guest-access into two folders under faults at 10%
-- of the requests and four kill -9, rerun until done; every goal met.
local host = require("tests.helper.host")

describe("chaos", function()
  it("loses, duplicates and corrupts nothing under faults and kill -9", function()
    local code, out, err = host.run { "tests/chaos/run.lua", "--workflow", "guest-access", "--jobs", "40",
                                      "--kills", "4", "--seed", "3" }
    assert.equal(0, code, out .. err)
    for _, goal in ipairs { "lost", "duplicated files", "corrupt zips", "subjects submitted twice without a forced failure",
                            "max jobs in flight", "folders unfinished" } do
      assert.matches("| " .. goal .. " | %d+ | ok |", out, 1, false)
    end
    assert.matches("| kills %(SIGKILL%) | 4 ", out)
    assert.matches("| reports present | 40 | ok |", out, 1, true)
  end)
end)
