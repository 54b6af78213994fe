-- The activity timeline's merge: events of many sources, each in time
-- order, come out in time order; ties keep the order of the sources; an
-- event without a time goes out as soon as it is its source's next.
local activity = require("auditrun.activity")

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

  -- The order by its definition, one step at a time: the first source whose
  -- next event has no time, else the earliest (time, source).
  local function by_definition(lists)
    local at, got = {}, {}
    for s = 1, #lists do at[s] = 1 end
    while true do
      local best
      for s, list in ipairs(lists) do
        local ev = list[at[s]]
        if ev and ev.time == nil then
          best = s
          break
        end
        if ev and (not best or ev.time < lists[best][at[best]].time) then best = s end
      end
      if not best then return table.concat(got, " ") end
      got[#got + 1] = lists[best][at[best]].id .. "@" .. best
      at[best] = at[best] + 1
    end
  end

  it("gives the order its definition gives on random sources with ties, untimed events and empty ones", function()
    local rng = math.random
    math.randomseed(20261205)
    for round = 1, 300 do
      local lists = {}
      for s = 1, rng(0, 12) do
        local list, t = {}, 0
        for e = 1, rng(0, 8) do
          t = t + rng(0, 2)  -- equal times are common
          list[e] = { id = round .. "." .. s .. "." .. e, time = rng(5) > 1 and string.format("%04d", t) or nil }
        end
        lists[s] = list
      end
      assert.equal(by_definition(lists), merged(lists))
    end
  end)

  it("stops for good at a source's error instead of giving an event twice", function()
    local calls = 0
    local sources = {
      function() return nil end,
      function()
        calls = calls + 1
        if calls == 2 then error("source broke", 0) end
        return { id = "b" .. calls, time = "0" .. calls }, 2
      end,
    }
    local next_event = activity.merge(sources)
    assert.has_error(next_event, "source broke")
    assert.has_error(next_event, "the timeline's merge stopped at an earlier error")
  end)

  it("raises as Lua's < does when times do not compare", function()
    assert.has_error(function()
      merged { { { id = "a", time = 1 } }, { { id = "b", time = "1" } } }
    end)
  end)

  it("ends at once with no sources, or with empty ones", function()
    assert.equal("", merged {})
    assert.equal("", merged { {}, {} })
  end)
end)
