-- The activity timeline's merge: events of many sources, each in time
-- order, come out in time order; ties keep the order of the sources; an
-- event without a time goes out as soon as it is its source's next.
local activity = require "auditrun.activity"

local function sources_of(lists)
  local out = {}
  for s, list in ipairs(lists) do
    local i = 0
    out[s] = function()
      i = i + 1
      return list[i], list[i] and s or nil
    end
  end
  return out
end

local function merged(lists)
  local got = {}
  for ev, tag in activity.merge(sources_of(lists)) do got[#got + 1] = ev.id .. "@" .. tag end
  return table.concat(got, " ")
end

describe("activity.merge", function()
  it("gives every event in time order, ties in the order of the sources", function()
    assert.equal("a1@1 b1@2 c1@3 a2@1 b2@2 c2@3", merged {
      { { id = "a1", time = "01" }, { id = "a2", time = "02" } },
      { { id = "b1", time = "01" }, { id = "b2", time = "02" } },
      { { id = "c1", time = "01" }, { id = "c2", time = "02" } },
    })
    assert.equal("b1@2 a1@1 b2@2 a2@1", merged {
      { { id = "a1", time = "02" }, { id = "a2", time = "04" } },
      { { id = "b1", time = "01" }, { id = "b2", time = "03" } },
    })
  end)

  it("lets an event without a time out as soon as it is its source's next, the first source's first", function()
    assert.equal("b1@2 c1@3 a1@1 b2@2 a2@1 c2@3", merged {
      { { id = "a1", time = "05" }, { id = "a2", time = "07" } },
      { { id = "b1" }, { id = "b2", time = "06" } },
      { { id = "c1" }, { id = "c2", time = "09" } },
    })
  end)

  it("merges a thousand sources of a hundred events each, all of them in order", function()
    local lists = {}
    for s = 1, 1000 do
      local list = {}
      for e = 1, 100 do list[e] = { id = s .. "." .. e, time = string.format("%08d", e * 1000 + (s * 37) % 1000) } end
      lists[s] = list
    end
    local n, last = 0, ""
    for ev in activity.merge(sources_of(lists)) do
      assert(ev.time >= last, "out of order")
      last, n = ev.time, n + 1
    end
    assert.equal(100000, n)
  end)

  it("ends at once with no sources, or with empty ones", function()
    assert.equal("", merged {})
    assert.equal("", merged { {}, {} })
  end)
end)
