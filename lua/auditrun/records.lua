-- auditrun.records: rows to a file, streamed and resumable, whatever the
-- vendor: JSON Lines, CSV or SQLite. A rerun after a kill ends with each row
-- once.
--
-- JSON Lines: one object a line. CSV: RFC 4180 (UTF-8, a header row, CRLF
-- line ends, fields with a comma, quote, line break, semicolon or tab
-- quoted and their quotes doubled; a text a spreadsheet would run as a
-- formula after a ', unless csv_raw). SQLite: one table, `records`, in the
-- CSV's columns; nested values as JSON text.
--
--   local w = auditrun.try(records.open("sites.csv", { format = "csv", columns = { "siteUrl", "siteName" } }))
--   if not w.complete then
--     for row in client:rows("site_overview") do auditrun.try(w:write(row)) end
--     auditrun.try(w:close())
--   end
--
-- Memory stays flat: rows go out as they come, through a small buffer.
-- Every CHECKPOINT rows or megabyte (and at close) the file is fsynced and its length
-- and row count recorded in a hidden file beside it (.NAME.auditrun, written
-- atomically). A rerun after a failure, Ctrl-C or kill -9 cuts the file back
-- to the last recorded length (dropping a torn row) and skips as many rows
-- as were recorded: the caller reads its source from the start again (or
-- from the cursor it marked after its last whole page: mark) and
-- the file ends with each row once, provided the source gives its rows in
-- the same order each time (the paged APIs here do). An SQLite file commits
-- at each checkpoint and its record follows; a rerun deletes the rows past
-- the recorded count (a kill between the two) the same way. A file complete from
-- an earlier run is left alone (`w.complete`). One writer per file at a
-- time (a lock beside it, removed when the writer closes or abandons the
-- file; a killed writer's lock is taken over by the next).
local core = require("auditrun.core")
local json = require("auditrun.json")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local sqlite = require("auditrun.sqlite")
local util = require("auditrun.util")

local M = {}

M.CHECKPOINT = 500               -- rows, or
M.CHECKPOINT_BYTES = 1 << 20     -- bytes written, between two checkpoints
local FORMAT = "auditrun-records/1"

local Writer = {}
Writer.__index = Writer
Writer.__name = "auditrun.records"

local function fail(message)
  return nil, errors.new("records", message)
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  f:close()
  return size
end

-- ---- JSON ---------------------------------------------------------------------

local MAX_DEPTH = 1000           -- lua-cjson's own limit on nesting

-- JSON text of a value with every object's keys sorted: lua-cjson writes
-- scalars, and a table is an array when its keys are 1..n (as lua-cjson
-- decides; an empty table is {}, unless marked by array()), else an object.
local ARRAY = { __name = "auditrun.records.array" }

--- array(t) -> t, marked as a list: encode writes it as [] even when empty.
function M.array(t)
  return setmetatable(t or {}, ARRAY)
end

local function encode_sorted(v, depth)
  if type(v) ~= "table" or next(v) == nil then
    if type(v) == "table" and getmetatable(v) == ARRAY then return "[]" end
    return json.encode(v)
  end
  if depth > MAX_DEPTH then error("records.encode: tables nested deeper than " .. MAX_DEPTH .. " (a cycle?)", 0) end
  local keys, n = {}, 0
  for k in pairs(v) do
    n = n + 1
    keys[n] = k
  end
  local parts = {}
  if n == #v then
    for i = 1, n do parts[i] = encode_sorted(v[i], depth + 1) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  for i = 1, n do keys[i] = tostring(keys[i]) end
  table.sort(keys)
  for i, k in ipairs(keys) do
    local value = v[k]
    if value == nil then value = v[math.tointeger(tonumber(k))] end
    parts[i] = json.encode(k) .. ":" .. encode_sorted(value, depth + 1)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- encode(value) -> JSON text, with every object's keys sorted (equal
--- values give equal text: two runs diff cleanly) and '/' left bare.
---
--- lua-cjson writes "\/": valid, but not what people expect in URLs and
--- paths. Safe: in its output a '/' is always right after the one
--- backslash that escapes it.
function M.encode(value)
  -- In C (csrc/ljson.c) unless the value holds what only this file writes.
  return core.json_encode(value, ARRAY) or (encode_sorted(value, 1):gsub("\\/", "/"))
end

--- encode_object(order, values, lists) -> a JSON object with its fields in
--- the given order (lines read and diff alike); keys in `lists` are arrays
--- even when empty (lua-cjson writes an empty table as {}).
function M.encode_object(order, values, lists)
  local parts = {}
  for _, k in ipairs(order) do
    local v = values[k]
    if v ~= nil then
      local text = (lists and lists[k] and next(v) == nil) and "[]" or M.encode(v)
      parts[#parts + 1] = M.encode(k) .. ":" .. text
    end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- ---- CSV ----------------------------------------------------------------------

-- One cell's text, quoted as needed; raw: a formula-like text as it is,
-- else after a ' (a spreadsheet shows it as text). Returns the text and
-- whether it was neutralised. Lua numbers, booleans and tables (JSON) are
-- never formula-like. The rule is core.csv_cell's (csrc/lcsv.c): a text
-- that starts with = + - @ TAB or CR and is not a plain negative number
-- such as -5 or -2.5 (OWASP's CSV injection list) is formula-like; a cell
-- with a comma, quote or line break is quoted (RFC 4180), and one with a
-- semicolon or tab too: a spreadsheet that splits on those (a locale's
-- list separator, a TSV import) must not start a cell inside this one.
local function cell(v, raw)
  if v == nil or v == json.null then return "" end
  local t = type(v)
  if t == "table" then
    v, raw = M.encode(v), true
  elseif math.type(v) == "float" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
    v, raw = string.format("%d", v), true  -- JSON numbers decode as floats: 17, not 17.0
  elseif t ~= "string" then
    v, raw = tostring(v), true
  end
  return core.csv_cell(v, raw)
end

--- csv_line(values, n, raw) -> one RFC 4180 record, CRLF included, and how
--- many of its cells were neutralised: a text that starts with = + - @
--- TAB or CR (not a plain negative number) gets a leading ', unless raw.
function M.csv_line(values, n, raw)
  local out, neutralised = {}, 0
  for i = 1, n or #values do
    local text, changed = cell(values[i], raw)
    out[i] = text
    if changed then neutralised = neutralised + 1 end
  end
  return table.concat(out, ",") .. "\r\n", neutralised
end

-- ---- state beside the file ---------------------------------------------------------

local function state_path(path)
  local dir, name = path:match("^(.*/)([^/]*)$")
  if not dir then dir, name = "", path end
  return dir .. "." .. name .. ".auditrun"
end

-- How a CSV's cells are written, in its record: "neutralised" or "raw". A
-- CSV record without it was started before cells were neutralised.
local function cells_of(format, raw)
  if format ~= "csv" then return nil end
  return raw and "raw" or "neutralised"
end

local function save(self)
  return files.write_atomic(self.state_path, json.encode {
    format = FORMAT, file_format = self.format, cells = cells_of(self.format, self.csv_raw), rows = self.rows,
    bytes = self.bytes, columns = self.columns, complete = self.complete or nil, cursor = self.cursor,
    cursor_rows = self.cursor_rows, answer = self.answer, coverage = self.coverage, sha256 = self.sha256,
  })
end

--- state_path(path) -> the hidden record beside a records file.
M.state_path = state_path

--- format_of(path) -> "csv", "jsonl" or "sqlite" when the extension of
--- path names one (.csv; .jsonl, .ndjson; .sqlite, .sqlite3, .db; in any
--- case), else nil.
function M.format_of(path)
  local ext = tostring(path):match("%.([%w]+)$")
  ext = ext and ext:lower()
  if ext == "csv" then return "csv" end
  if ext == "jsonl" or ext == "ndjson" then return "jsonl" end
  if ext == "sqlite" or ext == "sqlite3" or ext == "db" then return "sqlite" end
end

-- ---- SQLite ---------------------------------------------------------------------

--- The table a records file in SQLite holds.
M.TABLE = "records"

local function quoted(name)
  return '"' .. tostring(name):gsub('"', '""') .. '"'
end

-- The SQLite file of a writer, in the place of the text file the other
-- formats append to: rows go in as they come, inside a transaction that
-- each checkpoint commits (flush) before the record beside it is saved.
local Table = {}
Table.__index = Table

-- open_table(w) -> table | nil, err: the database of writer w, holding
-- exactly the w.rows rows its record counts (rows a run committed after
-- its last record was saved are deleted; they come again).
local function open_table(w)
  local db, err = sqlite.open(w.path)
  if not db then return nil, err end
  local t = setmetatable({ db = db }, Table)
  local ok, cut = pcall(function()
    local exists = db:value("select count(*) from sqlite_master where type = 'table' and name = ?", { M.TABLE }) == 1
    if w.columns and exists then
      errors.try(db:exec(string.format("delete from %s where rowid > %d", quoted(M.TABLE), w.rows)))
      local n = db:value("select count(*) from " .. quoted(M.TABLE))
      if n ~= w.rows then
        error(errors.new("records", string.format("%s holds %d rows but its record says %d", w.path, n, w.rows)), 0)
      end
      t:prepare(w.columns)
    elseif exists then
      -- Made by a run killed before it recorded the columns: none of it counts.
      errors.try(db:exec("drop table " .. quoted(M.TABLE)))
    elseif w.rows > 0 then
      error(errors.new("records", string.format("%s has no %s table but its record says %d rows", w.path, M.TABLE,
        w.rows)), 0)
    end
    errors.try(db:exec("begin"))
  end)
  if not ok then
    db:close()
    return nil, errors.is(cut) and cut or errors.new("records", tostring(cut))
  end
  return t
end

function Table:prepare(columns)
  self.insert = errors.try(self.db:prepare(string.format("insert into %s values (%s)", quoted(M.TABLE),
    string.rep("?, ", #columns - 1) .. "?")))
end

-- create(columns) -> true | nil, err: the table, in the first row's columns.
function Table:create(columns)
  local names = {}
  for i, c in ipairs(columns) do names[i] = quoted(c) end
  local ok, err = self.db:exec(string.format("create table %s (%s)", quoted(M.TABLE), table.concat(names, ", ")))
  if not ok then return nil, err end
  ok, err = pcall(self.prepare, self, columns)
  if not ok then return nil, err end
  return true
end

-- add(values, n) -> true | nil, err: one row; nested values as JSON text.
function Table:add(values, n)
  for i = 1, n do
    local v = values[i]
    if type(v) == "table" then values[i] = M.encode(v) elseif v == json.null then values[i] = nil end
  end
  return self.insert:run(values, n)
end

-- flush(): what was added so far is committed, durably.
function Table:flush()
  local ok, err = self.db:exec("commit; begin")
  if not ok then return nil, err end
  return true
end

function Table:close()
  local ok, err = self.db:exec("commit")
  if self.insert then self.insert:close() end
  self.db:close()
  if not ok then return nil, err end
  return true
end

--- open(path, {format = "jsonl"|"csv", columns = {...}, csv_raw = bool, answer = {...}}) -> writer | nil, err.
--- format: by default what the extension of path names, else jsonl. csv_raw: CSV cells exactly as given; by
--- default a text a spreadsheet would run as a formula gets a leading ' (csv_line).
---
--- The record beside the file keeps which, and a rerun must ask for the same. columns: the order of a row's
--- keys: the CSV columns (the first row's other keys follow, sorted), and each JSON line's keys (its other
--- keys follow, sorted; nested objects' keys sorted). answer: what defines the rows (a workflow's options,
--- auditrun.cli.answer), recorded with a new file; writer.answer is the one recorded (a file an earlier
--- version started takes this one). writer.coverage: a JSON value the workflow keeps with the file's record
--- (saved with each checkpoint: its account of what was walked, auditrun.coverage); writer.sha256: the
--- finished file's SHA-256. writer.complete: the file was finished by an earlier run.
function M.open(path, o)
  o = o or {}
  local format = o.format or M.format_of(path) or "jsonl"
  assert(format == "jsonl" or format == "csv" or format == "sqlite", "records format is jsonl, csv or sqlite")
  local w = setmetatable({ path = path, state_path = state_path(path), format = format, rows = 0, bytes = 0,
                           written = 0, seen = 0, skip = 0, saved_bytes = 0, saved_rows = 0, buffer = {}, pending = 0,
                           want_columns = o.columns, dropped = {}, csv_raw = o.csv_raw == true, neutralised = 0,
                           answer = o.answer }, Writer)
  w.column_set = {}
  for _, c in ipairs(o.columns or {}) do w.column_set[c] = true end
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then
    local ok, err = files.mkdirs(dir)
    if not ok then return nil, err end
  end
  local lock, lerr = files.lock(w.state_path .. ".lock")
  if not lock then
    if lerr.kind == "locked" then return fail("another run is writing " .. path) end
    return nil, lerr
  end
  w.lock = lock
  -- A killed run may have left temporary files of this file, of its record
  -- (".NAME.auditrun") and of the reports named after it (NAME.coverage.json).
  local name = path:match("([^/]*)$")
  for _, of in ipairs { name, "." .. name } do
    local swept, serr = files.remove_parts(dir == "" and "/" or dir or ".", of)
    if not swept then lock:remove() return nil, serr end
  end
  local text = files.exists(w.state_path) and files.read(w.state_path)
  if text then
    local st = json.decode(text)
    if type(st) ~= "table" or st.format ~= FORMAT then
      lock:remove()
      return fail(w.state_path .. " is not a record this auditrun wrote; move it away to start " .. path .. " over")
    end
    if st.file_format ~= format then
      lock:remove()
      return fail(string.format("%s was started as %s; give --format %s, or another file", path, st.file_format,
        st.file_format))
    end
    -- A resumed CSV goes on as it was started: never half neutralised.
    local cells = st.cells ~= json.null and st.cells or cells_of(format, true)
    if cells ~= cells_of(format, w.csv_raw) then
      lock:remove()
      if cells == "raw" then
        return fail(path .. " was started with its cells as the vendor gave them; give --csv-raw to finish it, "
          .. "or another file")
      end
      return fail(path .. " was started with formula-like cells neutralised (a leading '); finish it without "
        .. "--csv-raw, or give another file")
    end
    w.rows, w.bytes = math.tointeger(st.rows) or 0, math.tointeger(st.bytes) or 0
    -- Rows past the last cursor (mark) are read again and passed by.
    if st.cursor ~= nil and st.cursor ~= json.null then w.cursor, w.cursor_rows = st.cursor, st.cursor_rows end
    w.skip = w.rows - (math.tointeger(w.cursor_rows) or 0)
    w.saved_bytes, w.saved_rows = w.bytes, w.rows
    w.columns = st.columns ~= json.null and st.columns or nil
    w.complete = st.complete == true
    if type(st.answer) == "table" then w.answer = st.answer end
    if type(st.coverage) == "table" then w.coverage = st.coverage end
    if type(st.sha256) == "string" then w.sha256 = st.sha256 end
    local size = format ~= "sqlite" and file_size(path)
    if format == "sqlite" then
      -- Its rows are counted in the table itself (open_table).
      if not files.exists(path) and w.rows > 0 then
        lock:remove()
        return fail(string.format("%s is gone but %s says %d rows were written; remove that too to start over",
          path, w.state_path, w.rows))
      end
    elseif not size and w.rows == 0 and w.bytes == 0 then
      -- Stopped (a kill, a full disk) between the record and the empty file it describes.
      local made, merr = files.write_atomic(path, "")
      if not made then lock:remove() return nil, merr end
      size = 0
    end
    if format ~= "sqlite" and not size then
      lock:remove()
      return fail(string.format("%s is gone but %s says %d rows were written; remove that too to start over",
        path, w.state_path, w.rows))
    elseif format ~= "sqlite" and size > w.bytes then
      -- Cut in place: a full disk or a file size limit cannot stop it.
      local ok2, err = files.truncate(path, w.bytes)
      if not ok2 then lock:remove() return nil, err end
    elseif format ~= "sqlite" and size < w.bytes then
      lock:remove()
      return fail(string.format("%s is shorter than the %d bytes recorded in %s", path, w.bytes, w.state_path))
    end
  elseif files.exists(path) then
    lock:remove()
    return fail(path .. " exists and was not written by auditrun; move it away or choose another file")
  else
    -- The record first, then the (private, empty) file it describes.
    local ok, err = save(w)
    if ok then ok, err = files.write_atomic(path, "") end
    if not ok then lock:remove() return nil, err end
  end
  if not w.complete and format == "sqlite" then
    local t, terr = open_table(w)
    if not t then lock:remove() return nil, terr end
    w.file = t
  elseif not w.complete then
    local f, ferr = files.open_append(path)
    if not f then lock:remove() return fail(tostring(ferr)) end
    w.file = f
  end
  return w
end

local NO_COLUMNS = {}
-- Lines held before they are written to the file.
local FLUSH_ROWS = 64

local function columns_of(self, row)
  local cols, seen = {}, {}
  for _, c in ipairs(self.want_columns or {}) do
    cols[#cols + 1] = c
    seen[c] = true
  end
  local extra = {}
  for k in pairs(row) do
    if type(k) == "string" and not seen[k] then extra[#extra + 1] = k end
  end
  table.sort(extra)
  for _, k in ipairs(extra) do cols[#cols + 1] = k end
  return cols
end

-- A write, flush or fsync that failed (a full disk, a file size limit)
-- leaves an unknown part of the data on disk: the writer stops there, and
-- the record keeps the length of the last checkpoint, which a rerun cuts
-- the file back to.
local function broken(self, what, err)
  self.broken = errors.new("records", string.format("cannot %s %s: %s", what, self.path, tostring(err)))
  return nil, self.broken
end

local function flush(self)
  if self.broken then return nil, self.broken end
  if #self.buffer == 0 then return true end
  local data = table.concat(self.buffer)
  self.buffer, self.pending = {}, 0
  local ok, err = self.file:write(data)
  if not ok then return broken(self, "write", err) end
  self.bytes = self.bytes + #data
  return true
end

--- checkpoint() -> true | nil, err: what is written so far survives a kill.
function Writer:checkpoint()
  local ok, err = flush(self)
  if not ok then return nil, err end
  ok, err = self.file:flush()
  if not ok then return broken(self, "write", err) end
  ok, err = files.fsync(self.path)
  if not ok then
    self.broken = err
    return nil, err
  end
  -- An SQLite file's size, for the summary (its rows are counted in the table).
  if self.format == "sqlite" then self.bytes = file_size(self.path) or self.bytes end
  self.saved_bytes = self.bytes
  ok, err = save(self)
  if not ok then return nil, err end
  self.saved_rows = self.rows
  return true
end

-- The CSV's header row, its column names neutralised as any cell.
local function header(self)
  local line, neutralised = M.csv_line(self.columns, #self.columns, self.csv_raw)
  self.buffer[#self.buffer + 1] = line
  self.pending = self.pending + 1
  self.neutralised = self.neutralised + neutralised
end

-- The row's values in the file's columns (CSV, SQLite); its other keys are
-- noted as dropped.
local function column_values(self, row)
  local values, known = {}, {}
  for i, c in ipairs(self.columns) do
    values[i] = row[c]
    known[c] = true
  end
  for k in pairs(row) do
    if not known[k] then self.dropped[k] = true end
  end
  return values
end

--- write(row) -> true | nil, err. A row an earlier run wrote is passed by.
function Writer:write(row)
  assert(type(row) == "table", "a record is a table")
  assert(self.file, "the records file is closed")
  self.seen = self.seen + 1
  if self.seen <= self.skip then return true end
  local line
  if self.format == "jsonl" then
    -- Keys in a fixed order: the declared columns, then the others sorted
    -- (in C, csrc/ljson.c, unless the row holds what only Lua writes).
    line = (core.json_line(self.want_columns or NO_COLUMNS, row, ARRAY, self.column_set)
      or M.encode_object(columns_of(self, row), row)) .. "\n"
  elseif self.format == "sqlite" then
    if not self.columns then
      local cols = columns_of(self, row)
      local ok, err = self.file:create(cols)
      if not ok then return broken(self, "write", err) end
      self.columns = cols
    end
    local values = column_values(self, row)
    local ok, err = self.file:add(values, #self.columns)
    if not ok then return broken(self, "write", err) end
  else
    if not self.columns then
      self.columns = columns_of(self, row)
      header(self)
    end
    local values = column_values(self, row)
    local neutralised
    line, neutralised = M.csv_line(values, #self.columns, self.csv_raw)
    self.neutralised = self.neutralised + neutralised
  end
  self.buffer[#self.buffer + 1] = line
  self.pending = self.pending + 1
  self.rows = self.rows + 1
  self.written = self.written + 1
  if self.pending >= FLUSH_ROWS then
    local ok, err = flush(self)
    if not ok then return nil, err end
  end
  if self.written % M.CHECKPOINT == 0 or self.bytes - self.saved_bytes >= M.CHECKPOINT_BYTES then
    return self:checkpoint()
  end
  return true
end

--- write_rows(rows[, page]) -> true | nil, err: each of rows (a list) as
--- write takes it, in order; the same file and errors. JSON Lines rows go
--- to C (csrc/ljson.c) in runs that end where write would flush.
---
--- page: the caller marks (mark) right after these rows, and that
--- checkpoint stands for them in place of one every CHECKPOINT rows (one
--- every CHECKPOINT_BYTES still holds: a page may be long).
function Writer:write_rows(rows, page)
  local every = not page and M.CHECKPOINT or nil
  local n, i = #rows, 1
  if self.format ~= "jsonl" then
    for k = 1, n do
      local ok, err = self:write(rows[k])
      if not ok then return nil, err end
    end
    return true
  end
  assert(self.file, "the records file is closed")
  while i <= n and self.seen < self.skip do
    local ok, err = self:write(rows[i])
    if not ok then return nil, err end
    i = i + 1
  end
  local order, set = self.want_columns or NO_COLUMNS, self.column_set
  while i <= n do
    -- As far as write would go before its next flush or row checkpoint.
    local room = FLUSH_ROWS - self.pending
    if every then room = math.min(room, every - self.written % every) end
    local j = math.min(n, i + room - 1)
    local text = core.json_lines(order, rows, i, j, ARRAY, set)
    if not text then
      for k = i, j do
        local ok, err = self:write(rows[k])
        if not ok then return nil, err end
      end
    else
      local count = j - i + 1
      self.buffer[#self.buffer + 1] = text
      self.pending = self.pending + count
      self.seen, self.rows, self.written = self.seen + count, self.rows + count, self.written + count
      if self.pending >= FLUSH_ROWS then
        local ok, err = flush(self)
        if not ok then return nil, err end
      end
      if (every and self.written % every == 0) or self.bytes - self.saved_bytes >= M.CHECKPOINT_BYTES then
        local ok, err = self:checkpoint()
        if not ok then return nil, err end
      end
    end
    i = j + 1
  end
  return true
end

--- mark(cursor) -> true | nil, err: every row written so far came before
--- `cursor` (a JSON value: the page, offset or window to read next).
---
--- Saved with a checkpoint; a rerun gets it back as writer.cursor, reads
--- its source from there, and passes by only the rows written after it.
function Writer:mark(cursor)
  self.cursor, self.cursor_rows = cursor, self.rows
  return self:checkpoint()
end

--- close() -> true | nil, err: the file is complete (a rerun leaves it
--- alone). An empty CSV still gets its header row when columns were given.
function Writer:close()
  if not self.file then
    -- Complete from an earlier run (nothing to write), or closed already.
    self.lock:remove()
    return true
  end
  if self.format == "csv" and not self.columns and self.want_columns then
    self.columns = self.want_columns
    header(self)
  elseif self.format == "sqlite" and not self.columns and self.want_columns then
    -- An empty table still has its columns.
    local ok, err = self.file:create(self.want_columns)
    if not ok then return broken(self, "write", err) end
    self.columns = self.want_columns
  end
  local ok, err = self:checkpoint()
  if not ok then return nil, err end
  ok, err = self.file:close()
  self.file = nil
  if not ok then
    self.lock:remove()
    return broken(self, "close", err)
  end
  -- The finished file's SHA-256 is kept with it (a coverage report names it).
  self.sha256, err = files.sha256(self.path)
  if not self.sha256 then
    self.lock:remove()
    return nil, err
  end
  self.complete = true
  ok, err = save(self)
  if not ok then self.complete = false end
  self.lock:remove()
  return ok, err
end

--- abandon(): stops without marking the file complete (a rerun resumes);
--- what was written is checkpointed first, unless a write already failed.
function Writer:abandon()
  if self.file then
    if not self.broken then pcall(self.checkpoint, self) end
    self.file:close()
    self.file = nil
  end
  self.lock:remove()
end

--- set_aside(path) -> the name the file now has | nil (there was none) |
--- nil, err: an earlier run's file and its state renamed, so that a new
--- run starts over at path.
---
--- The new names are PATH.old-<UTC time> and .PATH.old-<time>.auditrun:
--- still a records file that can be resumed or read.
function M.set_aside(path)
  local lock, lerr = files.lock(state_path(path) .. ".lock")
  if not lock then
    if lerr.kind == "locked" then return fail("another run is writing " .. path) end
    return nil, lerr
  end
  local moved, err
  local has_file, has_state = files.exists(path), files.exists(state_path(path))
  if has_file or has_state then
    for n = 1, 99 do
      local to = files.old_name(path, n)
      if not (files.exists(to) or files.exists(state_path(to))) then
        local ok = true
        if has_state then ok, err = files.rename_noreplace(state_path(path), state_path(to)) end
        if ok and has_file then ok, err = files.rename_noreplace(path, to) end
        if ok then moved = to end
        break
      end
    end
    if not moved and not err then err = errors.new("records", "no free name to set " .. path .. " aside") end
  end
  lock:remove()
  if err then return nil, err end
  return moved
end

--- writer.neutralised: how many CSV cells this run wrote with a leading '.

--- dropped_columns() -> sorted keys some row had that the CSV has no column for.
function Writer:dropped_columns()
  return util.sorted_keys(self.dropped)
end

return M
