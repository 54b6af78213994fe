-- auditrun.each: one workflow for many tenants, a config profile each, in
-- one process (auditrun --each-profile [--profiles a,b] WORKFLOW ARGS).
--
-- The profiles run one after another on the one event loop, each with its
-- own client and so its own five export slots (auditrun.jobs: slots are the
-- tenant's). --out and --out-dir are parent folders: each profile writes
-- in a folder of its own name under them (auditrun.cli does it, told by
-- cli.each). A failing tenant does not stop the others: its failure is
-- said as it happens, one summary line per tenant comes at the end, and
-- the exit status is 1 when any failed (2 for a usage error, which stops
-- at once: it would be the same for every profile; 130 on Ctrl-C).
local cli = require "auditrun.cli"
local config = require "auditrun.config"
local core = require "auditrun.core"
local errors = require "auditrun.errors"
local progress = require "auditrun.progress"
local task = require "auditrun.task"

local M = {}

--- A profile name makes a folder: letters, digits, dot, dash, underscore.
local function folder_safe(name)
  return name:match("^[%w][%w._-]*$") ~= nil
end

local function message_of(err)
  if errors.is(err) then return tostring(err) end
  return tostring(err)
end

-- Runs the script once, as task.main would: the chunk, then its tasks,
-- then what runs at its end (its metrics). -> exit code, message.
local function once(chunk, args)
  local ok, err = xpcall(chunk, function(e)
    if type(e) == "string" then return debug.traceback(e, 2) end
    return e
  end, table.unpack(args, 1, args.n))
  if ok then ok, err = pcall(task.finish) end
  local code = task.exit_code(ok, err)
  return task.run_exit_hooks(code, not ok and errors.redact(message_of(err)) or nil)
end

--- run(path, workflow, profiles, ...) -> raises, or returns nothing after
--- every profile ran (the exit status is set through an error when one
--- failed). profiles: "a,b" or "" (every profile of the config file).
function M.run(path, workflow, profiles, ...)
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
  local results, failed = {}, 0
  for _, name in ipairs(names) do
    if core.interrupted() > 0 then break end
    cli.each = { profile = name }
    local started = task.now()
    local code, message = once(chunk, args)
    cli.each = nil
    if code == task.EXIT_USAGE then
      -- The same for every profile: said once, and the loop stops.
      error(errors.new("usage", message or "usage error"), 0)
    end
    if code ~= 0 then
      failed = failed + 1
      io.stderr:write(string.format("auditrun: %s: %s\n", name, message or ("exit " .. code)))
    end
    results[#results + 1] = { name = name, code = code, message = message, seconds = task.now() - started }
    if code == task.EXIT_INTERRUPTED then break end
  end
  local lines = { string.format("%s for each profile: %d of %d ok, %d failed", workflow, #results - failed, #names,
    failed) }
  for _, r in ipairs(results) do
    local how = r.code == 0 and "ok" or r.code == task.EXIT_INTERRUPTED and "interrupted"
      or ("failed: " .. (r.message or ("exit " .. r.code)):match("^[^\n]*"))
    lines[#lines + 1] = string.format("  %s: %s in %s", r.name, how, progress.duration(r.seconds))
  end
  for i = #results + 1, #names do lines[#lines + 1] = string.format("  %s: not run (interrupted)", names[i]) end
  p:say(table.concat(lines, "\n"))
  if core.interrupted() > 0 then error(errors.new("interrupted", "interrupted"), 0) end
  if failed > 0 then
    error(errors.new("incomplete", string.format("%d of %d profiles failed", failed, #names)), 0)
  end
end

return M
