-- auditrun.each: one workflow for many tenants, a config profile each, in
-- one process (auditrun --each-profile [--profiles a,b] [--parallel N]
-- WORKFLOW ARGS), the tenants side by side on the one event loop.
--
-- Each profile's run is a task in a scope of its own (auditrun.task): its
-- own client and so its own five export slots (auditrun.jobs: slots are
-- the tenant's), its own metrics and log listener, its tasks waited for
-- and its failures counted apart; at most N runs go at once (default 10).
-- --out and --out-dir are parent folders: each profile writes in a folder
-- of its own name under them (auditrun.cli does it, told by the scope's
-- `each`), and its log lines start with its name (auditrun.progress). A
-- failing tenant does not stop the others: its failure is said as it
-- happens, one summary line per tenant comes at the end, and the exit
-- status is 3 when any failed (2 for a usage error, which stops every run
-- at once: it would be the same for every profile; 130 on Ctrl-C).
local cli = require("auditrun.cli")
local config = require("auditrun.config")
local core = require("auditrun.core")
local errors = require("auditrun.errors")
local progress = require("auditrun.progress")
local task = require("auditrun.task")

local M = {}

--- A profile name makes a folder: letters, digits, dot, dash, underscore.
local function folder_safe(name)
  return name:match("^[%w][%w._-]*$") ~= nil
end

--- run(path, workflow, profiles, parallel, ...) -> raises, or returns
--- nothing after every profile ran (the exit status is set through an
--- error when one failed).
---
--- profiles: "a,b" or "" (every profile of the config file); parallel:
--- how many run at once.
function M.run(path, workflow, profiles, parallel, ...)
  local args = table.pack(...)
  for i = 1, args.n do
    local a = args[i]
    if a == "--profile" or tostring(a):match("^%-%-profile=") then
      error(errors.new("usage", "--each-profile picks the profile: leave --profile out (--profiles a,b picks some)"),
        0)
    end
  end
  local names
  if profiles ~= "" then
    names = assert(cli.words(profiles))
    local known = errors.try(config.profiles())
    local have = {}
    for _, n in ipairs(known) do have[n] = true end
    for _, n in ipairs(names) do
      if not have[n] then
        error(errors.new("usage", string.format("--profiles: the config file has no profile '%s' (it has: %s)", n,
          table.concat(known, ", "))), 0)
      end
    end
  else
    names = errors.try(config.profiles())
    if #names == 0 then error(errors.new("usage", "--each-profile: the config file has no profiles"), 0) end
  end
  for _, n in ipairs(names) do
    if not folder_safe(n) then
      error(errors.new("usage", string.format("--each-profile: profile '%s' cannot name a folder (letters, digits, "
        .. ". - _)", n)), 0)
    end
  end
  local chunk = assert(loadfile(path))
  local p = progress.new { live = false }
  local results, ok, failed, usage = {}, 0, 0, nil
  local slots = task.semaphore(math.max(1, math.min(parallel, #names)))
  local runs = {}
  for i, name in ipairs(names) do
    runs[i] = task.spawn_scope({ each = { profile = name } }, function()
      local _ <close> = slots:acquire()
      if usage or core.interrupted() > 0 then return end
      local started = task.now()
      local code, message = task.run_script(chunk, table.unpack(args, 1, args.n))
      if code == task.EXIT_USAGE then
        -- The same for every profile: said once, and no other run starts.
        usage = usage or message or "usage error"
        return
      end
      if code == 0 then ok = ok + 1 end
      if code ~= 0 and code ~= task.EXIT_INTERRUPTED then
        failed = failed + 1
        io.stderr:write(string.format("auditrun: %s: %s\n", name, message or ("exit " .. code)))
      end
      results[i] = { name = name, code = code, message = message, seconds = task.now() - started }
    end)
  end
  -- Ctrl-C ends the waits below with an error once the runs have stopped:
  -- the summary still says where each tenant got to.
  local joined, jerr = pcall(function()
    for _, r in ipairs(runs) do r:join() end
  end)
  if usage then error(errors.new("usage", usage), 0) end
  if not joined and not errors.is(jerr, "interrupted") then error(jerr, 0) end
  local lines = { string.format("%s for each profile: %d of %d ok, %d failed", workflow, ok, #names,
    failed) }
  for i, name in ipairs(names) do
    local r = results[i]
    if r then
      local how = r.code == 0 and "ok" or r.code == task.EXIT_INTERRUPTED and "interrupted"
        or ("failed: " .. (r.message or ("exit " .. r.code)):match("^[^\n]*"))
      lines[#lines + 1] = string.format("  %s: %s in %s", name, how, progress.duration(r.seconds))
    else
      lines[#lines + 1] = string.format("  %s: not run (interrupted)", name)
    end
  end
  p:say(table.concat(lines, "\n"))
  if core.interrupted() > 0 then error(errors.new("interrupted", "interrupted"), 0) end
  if failed > 0 then
    error(errors.new("incomplete", string.format("%d of %d profiles failed", failed, #names)), 0)
  end
end

return M
