-- Exports the access report of every guest (#EXT#) account to a folder: auditrun guest-access [DIR]
local auditrun = require "auditrun"
local insights = require "auditrun.insights"

local try = auditrun.try
local dir = ... or "guest-access"
local SOURCES = { "teams", "sharepoint", "onedrive", "group" }

local c = try(insights.connect())
-- One task per guest; the client keeps at most 5 export jobs running.
local guests = {}
for user in c:user_summaries() do
  local login = user.loginName
  if type(login) == "string" and login:lower():find("#ext#", 1, true) then
    guests[#guests + 1] = { login = login, task = auditrun.spawn(function()
      return try(c:export("user_permissions_export", { email = login, data_sources = SOURCES }, { dir = dir }))
    end) }
  end
end

local failed = 0
for _, g in ipairs(guests) do
  local ok, file = g.task:join()
  if ok then
    print(string.format("%s  %s  %d bytes", g.login, file.path, file.size))
  else
    failed = failed + 1
    io.stderr:write(string.format("auditrun: %s: %s\n", g.login, tostring(file)))
  end
end
print(string.format("%d guest access reports in %s, %d failed", #guests - failed, dir, failed))
if failed > 0 then
  error(auditrun.error("job", string.format("%d of %d guest reports failed", failed, #guests)))
end
