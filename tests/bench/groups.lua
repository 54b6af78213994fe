-- make bench, Insights paging: every Graph group summary of the tenant,
-- page by page (startPage, 100 a page), through the insights client as a
-- script reads them; prints how many. Usage: auditrun groups.lua (the
-- sandbox's settings in the environment, as sandbox:host_env gives them).
local auditrun = require("auditrun")
local insights = require("auditrun.insights")

local c = auditrun.try(insights.connect())
local n = 0
for g in c:groups { pageSize = 100 } do
  if g.groupId ~= nil then n = n + 1 end
end
print(n)
