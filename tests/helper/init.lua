-- tests.helper: the specs' shared kit in one require: the sandbox tenant,
-- the host run as a subprocess, the readers of what a run leaves and the
-- shell and file helpers (tests.helper.sandbox, .host, .reports, .util).
return {
  sandbox = require("tests.helper.sandbox"),
  host = require("tests.helper.host"),
  reports = require("tests.helper.reports"),
  util = require("tests.helper.util"),
}
