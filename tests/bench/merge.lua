-- make bench, the timeline's merge: SOURCES sources of EVENTS events each
-- (times spread so that every source interleaves with the others) merged
-- by auditrun.activity.merge; prints the CPU seconds of the merge alone
-- and how many events came out. Usage: auditrun merge.lua SOURCES EVENTS
-- (the peer, tests/bench/peer_merge.py, merges the same with heapq.merge).
local activity = require("auditrun.activity")

local n_sources, n_events = tonumber((...)) or 1000, tonumber(select(2, ...)) or 100
local base = 1735689600  -- 2025-01-01
local sources = {}
for s = 1, n_sources do
  local events = {}
  for e = 1, n_events do
    local t = base + e * 1000 + (s * 37) % 1000
    events[e] = { time = os.date("!%Y-%m-%dT%H:%M:%S", t) .. ".000Z", vendor = "bench", user = "u" .. s }
  end
  local i = 0
  sources[s] = function()
    i = i + 1
    return events[i], events[i] and "tag" or nil
  end
end
local t0 = os.clock()
local count, last = 0, ""
for ev in activity.merge(sources) do
  assert(ev.time >= last)
  last = ev.time
  count = count + 1
end
print(string.format("%.4f %d", os.clock() - t0, count))
