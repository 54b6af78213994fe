-- Downloads URL to PATH with the auditrun HTTP client and prints
-- "seconds peak_rss_kib" (VmHWM of this process).
local auditrun = require("auditrun")
local url, path, ca_file = ...
local t0 = auditrun.now()
local res = auditrun.try(auditrun.http.get(url, { output = path, ca_file = ca_file, timeout = 0 }))
local elapsed = auditrun.now() - t0
local hwm
for line in io.lines("/proc/self/status") do
  hwm = hwm or line:match("^VmHWM:%s+(%d+)")
end
io.write(string.format("%.3f %s %d\n", elapsed, hwm, res.bytes))
