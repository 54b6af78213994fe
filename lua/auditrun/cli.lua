-- auditrun.cli: a workflow's command line, declared once on lua-argparse.
--
--   local cli = require("auditrun.cli")
--   local opts = cli.parse({
--     name = "my-report", summary = "What it does, in one line.",
--     kind = "export",                       -- adds --out DIR, --max-attempts, --dry-run
--     apis = { "graph", "legacy" },          -- adds --api (the first is the default)
--     flags = function(p) p:option("--batch-size", "Groups per job."):convert(cli.count) end,
--   }, ...)
--
-- `NAME --help` prints the usage built from that declaration and exits 0
-- before anything is read or sent. An unknown flag, a stray argument or a
-- bad value prints the usage line and one error line and exits 2. Every
-- workflow takes --profile NAME (or --profile=NAME); export workflows also
-- --out DIR, --max-attempts N, --job-timeout SECONDS, --job-length SECONDS
-- and --dry-run (the access workflows --compare DIR), records workflows
-- --out FILE and --format jsonl|csv|sqlite (inferred from the extension of
-- --out; the two contradicting each other is a usage error) and --csv-raw,
-- and both --fresh, -q, -v and --log-format. `examples = { "auditrun
-- my-report --out r.csv", ... }`: whole command lines, which end its help
-- (a spec checks each is one the workflow reads).
--
-- The options define the answer a run writes (answer): they are recorded
-- with its output, and a rerun into that output with other options is
-- refused (answer_change) unless it starts over with --fresh.
local argparse = require("argparse")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local incremental = require("auditrun.incremental")
local jobs = require("auditrun.jobs")
local json = require("auditrun.json")
local metrics = require("auditrun.metrics")
local records = require("auditrun.records")
local task = require("auditrun.task")
local time = require("auditrun.time")

local M = {}


--- The default of --job-timeout: 6 hours.
M.JOB_TIMEOUT = 6 * 3600

-- Converters: argparse calls them with the text; nil and a reason refuse it.

--- A whole number of at least 1.
function M.count(s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 or not s:match("^%s*%d+%s*$") then return nil, "'" .. s .. "' is not a whole number of at least 1" end
  return n
end

--- Seconds: a whole number of at least 0.
function M.seconds(s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 0 or not s:match("^%s*%d+%s*$") then return nil, "'" .. s .. "' is not a whole number of seconds" end
  return n
end

--- A duration: a whole number of seconds, or with s, m, h or d after it.
function M.duration(s)
  local n, unit = s:match("^%s*(%d+)%s*([smhd]?)%s*$")
  n = n and math.tointeger(tonumber(n))
  if not n then return nil, "'" .. s .. "' is not a duration (90s, 15m, 2h, 1d)" end
  return n * ({ [""] = 1, s = 1, m = 60, h = 3600, d = 86400 })[unit]
end

-- yyyy-MM-dd or yyyy-MM-ddTHH:mm:ss (UTC), read once, here, into seconds
-- since the epoch, the one currency of time below the command line; a bare
-- date is the start of that day (from) or its last second (to).
local function time_converter(end_of_day, flag)
  return function(s)
    local t
    if s:match("^%d%d%d%d%-%d%d%-%d%d$") then
      t = s .. (end_of_day and "T23:59:59" or "T00:00:00")
    elseif s:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$") then
      t = s
    end
    -- The shape alone lets 2025-13-45 through: said here, before anything is read.
    local seconds = t and time.parse(t)
    if seconds then return math.tointeger(math.floor(seconds)) end
    return nil, flag .. " must be a date (2025-06-30) or a time (2025-06-30T08:00:00), not '" .. s .. "'"
  end
end

-- The options that hold a time (seconds): an answer and a message show them
-- as the command line takes them, yyyy-MM-ddTHH:mm:ss (UTC).
local TIME_OPTIONS = { from = true, to = true }
--- time_text(seconds) -> the time as --from and --to take it.
function M.time_text(t) return os.date("!%Y-%m-%dT%H:%M:%S", t) end
M.from_time = time_converter(false, "--from")
M.to_time = time_converter(true, "--to")

--- time_flags(p, {from=, to=}): --from and --to, each a date (its first or
--- last second, UTC) or a time; the notes end their help lines.
function M.time_flags(p, notes)
  notes = notes or {}
  p:option("--from", "Start: a date (its first second) or a time" .. (notes.from or "") .. ".")
    :argname("TIME"):convert(M.from_time)
  p:option("--to", "End, included: a date (its last second) or a time" .. (notes.to or "") .. ".")
    :argname("TIME"):convert(M.to_time)
end

-- A usage error message when --from is after --to, or (a single run
-- reading up to now) in the future; nil when they are fine. M.read checks
-- every workflow's times so.
local function check_times(o)
  if o.from and o.to and o.from > o.to then
    return "--from " .. M.time_text(o.from) .. " is after --to " .. M.time_text(o.to)
  end
  if o.from and not o.to and not o.incremental and o.from >= os.time() then
    return "--from " .. M.time_text(o.from) .. " is in the future: there is nothing to read yet"
  end
end

--- Words separated by commas (and the flag repeatable): --x a,b --x c.
function M.words(s)
  local out = {}
  for w in s:gmatch("[^,]+") do
    w = w:match("^%s*(.-)%s*$")
    if w ~= "" then out[#out + 1] = w end
  end
  if #out == 0 then return nil, "needs at least one value" end
  return out
end

--- one_of(list) -> a converter for comma-separated words, each one of list.
function M.one_of(list)
  local known = {}
  for _, w in ipairs(list) do known[w] = true end
  return function(s)
    local words, why = M.words(s)
    if not words then return nil, why end
    for _, w in ipairs(words) do
      if not known[w:lower()] then
        return nil, string.format("unknown value '%s' (one of %s)", w, table.concat(list, ", "))
      end
      words[_] = w:lower()
    end
    return words
  end
end

--- Flattens the values of a repeatable --flag whose converter gives lists.
function M.flatten(lists)
  local out = {}
  for _, l in ipairs(lists or {}) do
    if type(l) == "table" then
      for _, v in ipairs(l) do out[#out + 1] = v end
    else
      out[#out + 1] = l
    end
  end
  return out
end

--- read_list(path) -> the non-empty lines of a file that are not # comments,
--- trimmed, each once (names that differ only in case are one) | nil, err
--- message (a line that is not UTF-8). For --users FILE, --sites FILE.
function M.read_list(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local out, seen, n = {}, {}, 0
  for line in f:lines() do
    n = n + 1
    line = line:gsub("^\239\187\191", ""):match("^%s*(.-)%s*$")
    if not utf8.len(line) then
      f:close()
      return nil, string.format("line %d is not UTF-8 text", n)
    end
    -- A name listed twice is one subject: exported once.
    if line ~= "" and line:sub(1, 1) ~= "#" and not seen[line:lower()] then
      seen[line:lower()] = true
      out[#out + 1] = line
    end
  end
  f:close()
  if #out == 0 then return nil, path .. " lists nothing" end
  return out
end

-- A records workflow's --out and --format, settled: the format the
-- extension of --out names, the format given, or jsonl; the file the
-- workflow's name and that format make. nil, or why they contradict.
local function records_output(o, name)
  local implied = o.out and records.format_of(o.out)
  if implied and o.format and implied ~= o.format then
    return string.format("--out %s is a %s file but --format is %s: give one of the two, or make them agree", o.out,
      implied, o.format)
  end
  o.format = o.format or implied or "jsonl"
  o.out = o.out or (name .. "." .. o.format)
  if o.csv_raw and o.format ~= "csv" then
    return "--csv-raw is for CSV (--format csv, or an --out ending in .csv); JSON Lines and SQLite keep every value "
      .. "as it is"
  end
end

-- --incremental and its --out-dir: a usage error message, or nil. An
-- incremental run names its own files; --out names one file.
local function incremental_output(o)
  if o.incremental then
    if not o.out_dir then return "--incremental needs --out-dir DIR: the folder of the series' files" end
    if o.out then
      return "--incremental writes a file per run in --out-dir; --out names one file: give one of the two"
    end
    o.format = o.format or "jsonl"
    if o.csv_raw and o.format ~= "csv" then return "--csv-raw is for CSV (--format csv)" end
  elseif o.out_dir then
    return "--out-dir is for --incremental runs; a single run writes --out FILE"
  elseif o.lookback then
    return "--lookback is for --incremental runs"
  end
end

--- each() -> under --each-profile, {profile=} of the tenant whose run
--- this is (its task.scope().each, set by auditrun.each); else nil.
function M.each() return task.scope().each end

-- Under --each-profile: the profile, and --out and --out-dir as parent
-- folders with a folder per profile in them.
local function each_output(o, spec)
  local name = M.each().profile
  o.profile = name
  if o.out_dir then o.out_dir = o.out_dir .. "/" .. name end
  if spec.kind == "export" then
    if o.out then o.out = o.out .. "/" .. name end
  elseif spec.kind == "records" then
    if not o.incremental then
      local parent = o.out or "."
      local format = o.format or "jsonl"
      o.out = string.format("%s/%s/%s.%s", parent, name, spec.name, format)
    end
  end
end

-- An export workflow that also runs as a series (spec.incremental): a
-- single run writes reports into --out (default: the workflow's name), an
-- --incremental one a file per window into --out-dir. nil, or the usage
-- error.
local function export_series_output(o, spec)
  if o.incremental then
    if o.out then
      return "--incremental writes a file per run in --out-dir; --out is the folder of a single run: give one of the two"
    end
    if o.dry_run then return "--dry-run lists the jobs of a single run: leave out --incremental" end
    return incremental_output(o)
  end
  if o.format or o.csv_raw then
    return (o.format and "--format" or "--csv-raw") .. " is for --incremental runs (a single run keeps the reports as "
      .. "they come)"
  end
  o.out = o.out or spec.name
  return incremental_output(o)
end

-- --incremental, --out-dir and --lookback: a workflow run again and
-- again (auditrun.incremental), each run a file of its own.
local function incremental_flags(p, spec, more)
  p:flag("--incremental", "One run of a series (cron, a timer): read on from where the last completed run with "
    .. "the same settings into --out-dir ended, up to --to (default: now less " .. (incremental.SAFETY_LAG // 60)
    .. " minutes), into a file of its own, DIR/" .. spec.name .. "_<from>_<to>.<ext>. Every event is written "
    .. "once across all runs. The first run starts at --from" .. (spec.incremental_default or "") .. "."
    .. (more or ""))
  p:option("--out-dir", "With --incremental: the folder of the series' files and its bookmark (in "
    .. "DIR/.auditrun/incremental/).")
    :argname("DIR")
  p:option("--lookback", "With --incremental: read this much before where the last run ended again, for "
    .. "events that reach the service late (90s, 15m, 2h, 1d); those written before are not written again.")
    :argname("DURATION"):convert(M.duration)
end

local function format_flag(p, default)
  p:option("--format", "jsonl: one JSON object a line; csv: RFC 4180, UTF-8, with a header row; sqlite: one "
    .. "table, records, in the CSV's columns (nested values as JSON text). " .. default)
    :choices { "jsonl", "csv", "sqlite" }
end

local function csv_raw_flag(p)
  p:flag("--csv-raw", "CSV: write every cell as the vendor gave it, for programs that read the file. By default a "
    .. "text a spreadsheet would run as a formula (one starting with = + - @, a tab or a carriage return; not a "
    .. "plain negative number) gets a leading ' so it shows as text.")
end

local function common_flags(p, spec)
  p:option("--profile", "The config file profile to sign in with (as auditrun --profile NAME).")
    :argname("NAME")
  if spec.apis and #spec.apis > 1 then
    p:option("--api", "Which API to use.", spec.apis[1]):choices(spec.apis)
  end
  if spec.kind then
    p:flag("--fresh", "Start over: an earlier run's output at --out is set aside (renamed NAME.old-TIME), not "
      .. "resumed; needed when the other options differ from that run's.")
  end
  if spec.kind == "export" then
    -- A workflow that also runs as a series fills in --out's default itself
    -- (M.read): an --incremental run has --out-dir instead.
    p:option("--out", "Folder for the reports, manifest.jsonl and summary.json; the run state goes in its "
      .. "hidden .auditrun/ folder. A rerun into the same folder resumes" .. (spec.incremental
      and (". Default: " .. spec.name .. ".") or "."), not spec.incremental and spec.name or nil):argname("DIR")
    p:option("--max-attempts", "Tries per report when a job ends failed.", "3"):convert(M.count):argname("N")
    p:option("--job-timeout", "Seconds to wait for a report's job, to be started by a busy service and then to "
      .. "be done; a report whose job is not done by then fails (a rerun waits for the same job again).",
      tostring(M.JOB_TIMEOUT)):convert(M.count):argname("SECONDS")
    p:option("--job-length", "Seconds a job may run at the service when none of its export has been seen done: "
      .. "a submit whose outcome is unknown (the run was killed while it was out, or it got no answer) keeps one "
      .. "of the tenant's job slots this long after it was sent, or twice the longest job seen plus 5 s.",
      tostring(jobs.JOB_LENGTH)):convert(M.count):argname("SECONDS")
    p:flag("--dry-run", "List what would be submitted; submit nothing.")
    if spec.incremental then
      incremental_flags(p, spec, " Its events (each report's rows, in the activity timeline's fields, raw: the row) "
        .. "go to that file; the window's reports are kept beside it, in .<file>.insights/.")
      format_flag(p, "With --incremental (a single run keeps the reports as they come). Default: jsonl.")
      csv_raw_flag(p)
    end
    if spec.access then
      p:option("--compare", "An earlier run's --out folder: what changed in access since then goes to "
        .. "DIR/changes.csv and the page.")
        :argname("PREVIOUS_OUT")
    end
  elseif spec.kind == "records" then
    p:option("--out", "The file the rows go to (default: " .. spec.name .. ".jsonl, or .csv with --format csv); "
      .. "a rerun after an interruption resumes it.")
      :argname("FILE")
    format_flag(p, "Default: what the extension of --out says (.jsonl, .ndjson, .csv, .sqlite, .db), else jsonl.")
    if spec.incremental then incremental_flags(p, spec) end
    csv_raw_flag(p)
  end
  if not spec.kind then return end
  p:option("--metrics", "At the end of the run, whatever its outcome, write its metrics (last success, duration, "
    .. "rows or reports written, failures, retries, seconds throttled; labelled by workflow and profile) to FILE "
    .. "in Prometheus text format, as node_exporter's textfile collector reads it. A file several workflows or "
    .. "profiles share keeps each one's series."):argname("FILE")
  p:option("--progress-every", "When stderr is not a terminal, a progress line at least this often, so a log shows "
    .. "the run is alive (0: none).", "30"):argname("SECONDS"):convert(M.seconds)
  p:mutex(p:flag("-q --quiet", "Print only failures and the final summary."),
    p:flag("-v --verbose", "Also log retries, waits for the service (429) and token renewals."))
  p:option("--log-format", "How log lines look when stderr is not a terminal.", "text"):choices { "text", "json" }
end

--- The options that do not change what a run writes. Every other option
--- (the range, filters, API, batch size, profile ...) defines the answer.
---
--- They are: how it talks (-q, -v, --log-format, --progress-every,
--- --metrics), how hard and how long it tries (--max-attempts,
--- --job-timeout, --job-length), whether it writes at all (--dry-run), where
--- it writes (--out, --out-dir), --fresh, and how a series of runs reads on
--- (--incremental, --lookback: auditrun.incremental).
M.NOT_THE_ANSWER = { quiet = true, verbose = true, log_format = true, max_attempts = true, job_timeout = true,
                     job_length = true, progress_every = true, metrics = true, incremental = true,
                     out_dir = true, lookback = true, dry_run = true, out = true, fresh = true, name = true,
                     kind = true, answer = true, access = true, compare = true }

--- answer(opts, lists) -> {["--flag"] = value}: what defines the output of
--- a run with these parsed options (an option not given is left out;
--- --profile is "default" when none is picked).
---
--- lists: the flags that name a FILE the run reads (--users FILE): their
--- value is the name and the SHA-256 of what the file holds, so an edited
--- list is another answer.
function M.answer(opts, lists)
  local out = {}
  for k, v in pairs(opts) do
    if type(k) == "string" and not M.NOT_THE_ANSWER[k] and v ~= false
      and not (type(v) == "table" and next(v) == nil) then
      local flag = "--" .. k:gsub("_", "-")
      local digest = lists and lists[flag] and type(v) == "string" and files.sha256(v)
      if TIME_OPTIONS[k] and math.type(v) == "integer" then v = M.time_text(v) end
      out[flag] = digest and string.format("%s (sha256 %s)", v, digest:sub(1, 16)) or v
    end
  end
  out["--profile"] = opts.profile or "default"
  return out
end

-- The flags of a parser whose value names a FILE (argparse keeps no other
-- record of an option's argname).
local function list_flags(p)
  local out = {}
  for _, option in ipairs(p._options or {}) do
    if option._argname == "FILE" then
      for _, alias in ipairs(option._aliases or {}) do out[alias] = true end
    end
  end
  return out
end

local function shown(flag, v)
  if v == nil then return "without " .. flag end
  if type(v) == "table" then v = table.concat(M.flatten(v), ",") end
  if v == true then return "with " .. flag end
  return string.format("with %s %s", flag, tostring(v))
end

--- answer_change(output, recorded, wanted) -> nil when the answers agree,
--- else a message naming the first option that differs, its value in the
--- run that started `output` and in this one, and how to start over.
function M.answer_change(output, recorded, wanted)
  local flags = {}
  for k in pairs(recorded) do flags[#flags + 1] = k end
  for k in pairs(wanted) do
    if recorded[k] == nil then flags[#flags + 1] = k end
  end
  table.sort(flags)
  for _, flag in ipairs(flags) do
    local was, now = recorded[flag], wanted[flag]
    if json.encode(was) ~= json.encode(now) then
      return string.format("%s was started %s; this run is %s: rerun with --fresh to start over (the earlier "
        .. "output is set aside), or give another --out", output, shown(flag, was), shown(flag, now))
    end
  end
end

-- A workflow's flags, declared on p: its own parser, or its command in
-- the parser of the whole command line (command_line).
local function declare(p, spec)
  p:add_help(false)
  p:flag("-h --help", "Show this help and exit (nothing is sent).")
  if spec.flags then spec.flags(p) end
  common_flags(p, spec)
  return p
end

--- parser(spec) -> the argparse parser of a workflow (its help and usage
--- come from here; spec.examples, whole command lines, end its help).
function M.parser(spec)
  assert(type(spec) == "table" and spec.name and spec.summary, "a workflow needs a name and a summary")
  local p = argparse("auditrun " .. spec.name, spec.summary,
    spec.examples and ("Examples:\n  " .. table.concat(spec.examples, "\n  ")) or nil)
    :help_max_width(100)
    :usage_max_width(100)
  if spec.description then p:description(spec.summary .. "\n\n" .. spec.description) end
  return declare(p, spec)
end

--- command_line(specs) -> the parser of auditrun's whole command line, for
--- the shell completion scripts argparse writes. It parses nothing: the
--- host does.
---
--- It holds the host's options (as csrc/main.c reads them) and a command
--- per workflow of specs (get_bash_complete, get_zsh_complete).
function M.command_line(specs)
  local root = argparse("auditrun", "Runs Lua workflow scripts against reporting APIs.")
    :add_help(false)
  root:flag("-h --help", "Show the host's help and exit.")
  root:option("--profile", "The config file profile to sign in with."):argname("NAME")
  root:flag("--each-profile", "Run the workflow once for each profile of the config file.")
  root:option("--profiles", "With --each-profile: only these profiles, comma-separated."):argname("A,B")
  root:option("--parallel", "With --each-profile: at most N tenants at once (default 10)."):argname("N")
  root:flag("--list", "List the bundled workflows.")
  root:flag("--version", "Print the version, and those of libcurl, OpenSSL and Lua.")
  for _, spec in ipairs(specs) do declare(root:command(spec.name, spec.summary), spec) end
  return root
end

-- While spec_of runs a script: where cli.parse hands the spec back.
local capturing

--- spec_of(path) -> the spec the workflow script at path gives cli.parse |
--- nil, message.
---
--- The script runs up to that call, which raises to hand the spec back
--- here instead of reading a command line: nothing past it runs, nothing
--- is read or sent.
function M.spec_of(path)
  local chunk, err = loadfile(path)
  if not chunk then return nil, err end
  local box = {}
  capturing = box
  local ok, why = pcall(chunk)
  capturing = nil
  if box.spec then return box.spec end
  return nil, ok and (path .. " declares no command line (cli.parse)") or tostring(why)
end

--- bundled_specs() -> the specs of the bundled workflows, by name: the
--- scripts beside the one running (arg[0]), each declaring its command
--- line. For what is made from all of them (completion, the reference).
function M.bundled_specs()
  local dir = arg[0]:match("^(.*)/[^/]*$") or "."
  local specs = {}
  for _, file in ipairs(assert(files.list(dir))) do
    if file:match("^[^.].*%.lua$") then specs[#specs + 1] = assert(M.spec_of(dir .. "/" .. file)) end
  end
  table.sort(specs, function(a, b) return a.name < b.name end)
  return specs
end

-- os.exit with the state closed: the core's finaliser runs, files are
-- flushed, and what runs at the end of a run (the metrics) has run.
local function leave(code)
  local why
  code, why = task.run_exit_hooks(code)
  if why then io.stderr:write("auditrun: ", why, "\n") end
  io.stdout:flush()
  os.exit(code, true)
end

--- usage_error(spec, message): the usage line and one error line on
--- stderr, exit 2. For checks argparse cannot express (one of two flags).
function M.usage_error(spec, message)
  if M.each() then
    -- Under --each-profile the loop says it once and stops (auditrun.each).
    error(errors.new("usage", string.format("%s: %s (auditrun %s --help lists the flags)", spec.name, message,
      spec.name)), 0)
  end
  io.stderr:write(M.parser(spec):get_usage(), "\n", "auditrun: ", spec.name, ": ", message,
    " (auditrun ", spec.name, " --help lists the flags)\n")
  leave(task.EXIT_USAGE)
end

--- measure(opts): the run's metrics go to opts.metrics at its end
--- (auditrun.metrics), labelled by opts.name and opts.profile.
function M.measure(opts)
  metrics.start { file = opts.metrics, workflow = opts.name, profile = opts.profile }
  task.at_exit(function(code)
    local ok, err = metrics.finish(code)
    if not ok then return err end
  end)
end

--- read(spec, args) -> options | options, message | nil, message: a
--- command line (a list of strings, without the workflow's name) read and
--- checked as parse does, printing and exiting nothing.
---
--- A message is the usage error: with the options when argparse read them
--- and a check of what they say together refused them.
function M.read(spec, args)
  local p = M.parser(spec)
  local ok, opts = p:pparse(args)
  if not ok then return nil, opts end
  opts.help = nil
  opts.name = spec.name
  opts.kind = spec.kind
  opts.access = spec.access
  if opts.profile == nil then opts.profile = os.getenv("AUDITRUN_PROFILE") end
  if opts.profile == "" then opts.profile = nil end
  local why = spec.kind == "export" and spec.incremental and export_series_output(opts, spec)
  if M.each() then each_output(opts, spec) end
  why = why or spec.kind == "records" and (incremental_output(opts) or (not opts.incremental
    and records_output(opts, spec.name)))
  why = why or check_times(opts) or (spec.check and spec.check(opts))
  if why then return opts, why end
  -- Taken now, before a script adds to opts what it derives from them.
  if spec.kind then opts.answer = M.answer(opts, list_flags(p)) end
  return opts
end

--- parse(spec, ...) -> options (argparse's table, dashes as underscores,
--- plus `name`). Exits 0 after --help, 2 on a usage error.
function M.parse(spec, ...)
  if capturing then
    capturing.spec = spec
    error(capturing, 0)
  end
  local args = table.pack(...)
  local list = {}
  for i = 1, args.n do list[i] = tostring(args[i]) end
  -- --help wins over everything else on the line, a missing flag included.
  for _, a in ipairs(list) do
    if a == "--" then break end
    if a == "-h" or a == "--help" then
      io.stdout:write(M.parser(spec):get_help(), "\n")
      leave(0)
    end
  end
  local opts, why = M.read(spec, list)
  if not opts then M.usage_error(spec, why) end
  if opts.metrics then
    -- A file that cannot be written is said now, not after the run; from
    -- here on, a usage error is measured too.
    local bad = metrics.check(opts.metrics)
    if bad then M.usage_error(spec, bad) end
    M.measure(opts)
  end
  if why then M.usage_error(spec, why) end
  return opts
end

return M
