"""The peer for `make bench`'s timeline merge: SOURCES sources of EVENTS
events each, as tests/bench/merge.lua builds them, merged by time with
heapq.merge; prints the CPU seconds of the merge and the events merged."""
import datetime as dt
import heapq
import sys
import time

n_sources = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
n_events = int(sys.argv[2]) if len(sys.argv) > 2 else 100
base = 1735689600
sources = []
for s in range(1, n_sources + 1):
    events = []
    for e in range(1, n_events + 1):
        t = base + e * 1000 + (s * 37) % 1000
        stamp = dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + ".000Z"
        events.append({"time": stamp, "vendor": "bench", "user": "u%d" % s})
    sources.append(events)
t0 = time.process_time()
count, last = 0, ""
for ev in heapq.merge(*[iter(s) for s in sources], key=lambda e: e["time"]):
    assert ev["time"] >= last
    last = ev["time"]
    count += 1
print("%.4f %d" % (time.process_time() - t0, count))
