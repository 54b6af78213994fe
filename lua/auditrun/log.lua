-- auditrun.log: what the library does on its own while a script waits — a
-- request retried, a busy service waited out, a token renewed — told to
-- whoever listens. Nothing is printed when nobody listens.
--
-- A workflow listens (auditrun.workflow; -v shows the details). Messages
-- carry no secret: URLs without their query, error values as the errors
-- module shows them.
local task = require("auditrun.task")

local M = {}

--- listen(fn) -> the previous listener.
---
--- fn(event, message, level, n) is called for each report (level "debug",
--- "info" for what a person should see without -v, or "warning"; n: how
--- many of the thing a warning counts); nil stops listening. The listener
--- is the run's (task.scope): under --each-profile each tenant's run
--- hears its own library.
function M.listen(fn)
  local scope = task.scope()
  local previous = scope.log_listener
  scope.log_listener = fn
  return previous
end

--- debug(event, fmt, ...): reports one thing the library did.
function M.debug(event, fmt, ...)
  local listener = task.scope().log_listener
  if listener then listener(event, string.format(fmt, ...), "debug", 1) end
end

--- info(event, fmt, ...): reports something a person should see without
--- -v, such as a long wait the service asked for.
function M.info(event, fmt, ...)
  local listener = task.scope().log_listener
  if listener then listener(event, string.format(fmt, ...), "info", 1) end
end

--- warn(event, n, fmt, ...): reports n of something the library mended or
--- let through as it was, that the person should know of.
---
--- For example a lone surrogate replaced, or a time it could not read; a
--- workflow counts them by event in its summary.
function M.warn(event, n, fmt, ...)
  local listener = task.scope().log_listener
  if listener then listener(event, string.format(fmt, ...), "warning", n) end
end

return M
