-- Exports the access report of every guest (#EXT#) account to a folder, resuming an interrupted run: auditrun guest-access [DIR]
local auditrun = require "auditrun"
local insights = require "auditrun.insights"
local runs = require "auditrun.run"

local try = auditrun.try
local dir = ... or "guest-access"
local SOURCES = { "teams", "sharepoint", "onedrive", "group" }

local c = try(insights.connect())
-- What earlier runs into this folder submitted and fetched: a rerun after a
-- failure or kill -9 submits nothing twice and fetches nothing twice.
local run = try(runs.open(dir))

-- One task per guest; the client keeps at most 5 export jobs running.
local guests = {}
for user in c:user_summaries() do
  local login = user.loginName
  if type(login) == "string" and login:lower():find("#ext#", 1, true) then
    guests[#guests + 1] = { login = login, task = auditrun.spawn(function()
      return try(run:export(c, login, "user_permissions_export", { email = login, data_sources = SOURCES },
        { dir = dir }))
    end) }
  end
end

local failed, reused = 0, 0
for _, g in ipairs(guests) do
  local ok, file = g.task:join()
  if ok then
    if file.reused then reused = reused + 1 end
    print(string.format("%s  %s  %d bytes%s", g.login, file.path, file.size, file.reused and " (from an earlier run)" or ""))
  else
    failed = failed + 1
    io.stderr:write(string.format("auditrun: %s: %s\n", g.login, tostring(file)))
  end
end
print(string.format("%d guest access reports in %s (%d from an earlier run), %d failed", #guests - failed, dir, reused,
  failed))
if failed > 0 then
  error(auditrun.error("job", string.format("%d of %d guest reports failed; run again to finish", failed, #guests)))
end
