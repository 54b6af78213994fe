-- busted's TAP output with each test's wall time after its line.
-- tests/run gives it to busted (-o), so a slow test shows in the logs as
-- "# took 12.3 s" right under its "ok N - name".
local clock = require("auditrun.core").now

return function(options)
  local busted = require("busted")
  local handler = require("busted.outputHandlers.TAP")(options)
  local started
  busted.subscribe({ "test", "start" }, function()
    started = clock()
    return nil, true
  end)
  busted.subscribe({ "test", "end" }, function()
    if started then io.write(string.format("# took %.1f s\n", clock() - started)) io.flush() end
    return nil, true
  end)
  return handler
end
