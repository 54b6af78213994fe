-- auditrun.sheets: the rows of the spreadsheets inside a report zip, read
-- as a stream: each row is handed out as soon as it ends, so memory holds a
-- chunk and a row, not the sheet.
--
-- A report (Insights exports are zips of .xlsx workbooks, or of .csv files)
-- is read member by member: lua-zlib inflates, lua-expat parses a
-- workbook's worksheet XML as it comes and the CSV reader splits CSV text
-- as it comes. Shared strings aside: a workbook's string table is read
-- first when it has one.
--
--   for row, member, sheet in sheets.rows("report.zip", tmpdir) do print(member, sheet, row[1], row[2]) end
--
-- Rows are lists of cell texts by column (A = 1); an empty cell is nil.
-- Each sheet's rows come in order, its header row first: a CSV member is
-- one sheet, a workbook one per worksheet part. Only what an export needs
-- of the zip format is read: stored and deflated entries, sizes from the
-- central directory (no ZIP64).
local lxp = require("lxp")
local zlib = require("zlib")
local core = require("auditrun.core")
local download = require("auditrun.download")
local errors = require("auditrun.errors")
local files = require("auditrun.files")

local M = {}

local CHUNK = 65536
local CDH, LFH = "PK\1\2", "PK\3\4"

local function fail(fmt, ...)
  error(errors.new("report", string.format(fmt, ...)), 0)
end

--- entries(path) -> list of {name, method, csize, size, offset} of a zip
--- (offset: its local header). Raises an error value on a damaged zip.
function M.entries(path)
  local f <close> = io.open(path, "rb") or fail("cannot read %s", path)
  local count, cd_offset, cd_size = download.zip_directory(f:seek("end"), function(at, n)
    f:seek("set", at)
    return f:read(n)
  end)
  if not count then fail("%s is not a zip (%s)", path, cd_offset) end
  if cd_offset == 0xffffffff then fail("%s is a ZIP64 archive, which is not read here", path) end
  f:seek("set", cd_offset)
  local cd = f:read(cd_size) or ""
  local out, pos = {}, 1
  for _ = 1, count do
    if cd:sub(pos, pos + 3) ~= CDH then fail("%s: damaged central directory", path) end
    local method, _, _, _, csize, usize, nlen, xlen, clen, _, _, _, offset =
      string.unpack("<I2I2I2I4I4I4I2I2I2I2I2I4I4", cd, pos + 10)
    out[#out + 1] = { name = cd:sub(pos + 46, pos + 45 + nlen), method = method, csize = csize, size = usize,
                      offset = offset }
    pos = pos + 46 + nlen + xlen + clen
  end
  return out
end

--- chunks(path, entry) -> iterator over the entry's uncompressed bytes, in
--- chunks.
function M.chunks(path, entry)
  if entry.method ~= 0 and entry.method ~= 8 then fail("%s: %s uses compression method %d", path, entry.name,
    entry.method) end
  local f = io.open(path, "rb") or fail("cannot read %s", path)
  f:seek("set", entry.offset)
  local head = f:read(30) or ""
  if head:sub(1, 4) ~= LFH then f:close() fail("%s: damaged entry %s", path, entry.name) end
  local nlen, xlen = string.unpack("<I2I2", head, 27)
  f:seek("cur", nlen + xlen)
  local left = entry.csize
  local inflate = entry.method == 8 and zlib.inflate(-15)
  return function()
    while left > 0 do
      local raw = f:read(math.min(CHUNK, left))
      if not raw then break end
      left = left - #raw
      if not inflate then return raw end
      local ok, out = pcall(inflate, raw)
      if not ok then f:close() fail("%s: %s does not inflate: %s", path, entry.name, tostring(out)) end
      if out ~= "" then return out end
    end
    f:close()
    return nil
  end
end

--- extract(path, entry, dest) -> dest: the entry written to a new private
--- file dest.
function M.extract(path, entry, dest)
  local ok, err = files.write_atomic(dest, "")
  if not ok then error(err, 0) end
  local out <close> = files.open_write(dest) or fail("cannot write %s", dest)
  for chunk in M.chunks(path, entry) do
    local wrote, werr = out:write(chunk)
    if not wrote then fail("cannot write %s: %s", dest, werr) end
  end
  local closed, cerr = out:close()
  if not closed then fail("cannot write %s: %s", dest, cerr) end
  return dest
end

local function column(ref)
  local letters = ref and ref:match("^(%u+)")
  if not letters then return nil end
  local n = 0
  for i = 1, #letters do n = n * 26 + letters:byte(i) - 64 end
  return n
end

-- Streams an XML entry through expat, calling on(event, ...) handlers.
local function parse(path, entry, callbacks)
  local parser = lxp.new(callbacks)
  local source = M.chunks(path, entry)
  return function()
    local chunk = source()
    local ok, err
    if chunk then
      ok, err = parser:parse(chunk)
    else
      ok, err = parser:parse()
      parser:close()
    end
    if not ok then fail("%s: %s is not well-formed XML: %s", path, entry.name, tostring(err)) end
    return chunk ~= nil
  end
end

-- The shared strings of a workbook, in order.
local function shared_strings(path, entry)
  local list, text, depth = {}, nil, 0
  local step = parse(path, entry, {
    StartElement = function(_, name)
      if name == "si" then text, depth = {}, 0 end
      if name == "t" and text then depth = depth + 1 end
    end,
    EndElement = function(_, name)
      if name == "t" and text then depth = depth - 1 end
      if name == "si" then list[#list + 1] = table.concat(text); text = nil end
    end,
    CharacterData = function(_, s) if text and depth > 0 then text[#text + 1] = s end end,
  })
  while step() do end
  return list
end

-- An element's or attribute's name without its namespace prefix.
local function bare(name)
  return name:match("[^:]*$")
end

-- The names of a workbook's worksheets by part ("xl/worksheets/sheet1.xml"
-- -> "Summary"), from xl/workbook.xml and its relationships; empty when
-- the workbook does not say.
local function sheet_names(path, by_name)
  local book, rels = by_name["xl/workbook.xml"], by_name["xl/_rels/workbook.xml.rels"]
  if not (book and rels) then return {} end
  local targets, out = {}, {}
  local step = parse(path, rels, {
    StartElement = function(_, name, attrs)
      if bare(name) == "Relationship" and attrs.Id and attrs.Target then targets[attrs.Id] = attrs.Target end
    end,
  })
  while step() do end
  step = parse(path, book, {
    StartElement = function(_, name, attrs)
      if bare(name) ~= "sheet" or not attrs.name then return end
      for k, v in pairs(attrs) do
        local target = type(k) == "string" and bare(k) == "id" and targets[v]
        -- A target is relative to xl/ unless it starts with /.
        if target then out[target:match("^/(.*)") or ("xl/" .. target)] = attrs.name end
      end
    end,
  })
  while step() do end
  return out
end

--- workbook_rows(path) -> iterator over (row, sheet name) of every
--- worksheet of an .xlsx file, in order (a sheet the workbook gives no
--- name is named by its part, xl/worksheets/sheet1.xml).
function M.workbook_rows(path)
  local entries, by_name = M.entries(path), {}
  for _, e in ipairs(entries) do by_name[e.name] = e end
  local names = sheet_names(path, by_name)
  local strings = by_name["xl/sharedStrings.xml"] and shared_strings(path, by_name["xl/sharedStrings.xml"]) or {}
  local sheets = {}
  for _, e in ipairs(entries) do
    if e.name:match("^xl/worksheets/sheet%d+%.xml$") then sheets[#sheets + 1] = e end
  end
  table.sort(sheets, function(a, b)
    return tonumber(a.name:match("(%d+)%.xml$")) < tonumber(b.name:match("(%d+)%.xml$"))
  end)
  -- Rows parsed and not yet handed out: queue[qi..qn].
  local queue, qi, qn, si, step = {}, 1, 0, 0, nil
  local row, col, kind, text
  local callbacks = {
    StartElement = function(_, name, attrs)
      if name == "row" then row = {}
      elseif name == "c" and row then col, kind = column(attrs.r) or (#row + 1), attrs.t
      elseif (name == "v" or name == "t") and col then text = {} end
    end,
    EndElement = function(_, name)
      if (name == "v" or name == "t") and text then
        local s = table.concat(text)
        if kind == "s" then s = strings[(math.tointeger(tonumber(s)) or -1) + 1] end
        if s and s ~= "" then row[col] = (row[col] or "") .. s end
        text = nil
      elseif name == "c" then col = nil
      elseif name == "row" and row then
        qn = qn + 1
        queue[qn] = row
        row = nil
      end
    end,
    CharacterData = function(_, s) if text then text[#text + 1] = s end end,
  }
  return function()
    while true do
      if queue[qi] then
        local r = queue[qi]
        queue[qi], qi = nil, qi + 1
        return r, names[sheets[si].name] or sheets[si].name
      end
      if not (step and step()) then
        si = si + 1
        if not sheets[si] then return nil end
        step = parse(path, sheets[si], callbacks)
      end
    end
  end
end

-- ---- CSV ---------------------------------------------------------------------------

--- csv_rows(source, where) -> iterator over the rows of CSV text (RFC
--- 4180) read from source, an iterator over byte chunks (as chunks()
--- gives), and rest(plan, n).
---
--- rest runs the rows not yet read through a row plan (core.row_plan) in
--- C, numbering them from n + 1 -> the last number | nil, err, n (the
--- statement failed at row n). Fields are
--- separated by commas and records by CRLF (or LF, or CR); a field in
--- double quotes may hold commas, line breaks and doubled quotes (""). A
--- UTF-8 byte order mark at the start is dropped and blank lines are passed
--- by. Rows are lists of field texts, an empty field nil, as a workbook's
--- are; memory holds a chunk and a row however long the text. where names
--- the text in errors: an unclosed quote, text after a closing quote,
--- UTF-16 text or a record over 64 MiB raise an error value of kind
--- "report". The reader is core.csv_reader (csrc/lcsv.c).
function M.csv_rows(source, where)
  local reader = core.csv_reader(where)
  local function more()
    reader:feed(source())
  end
  local function rows()
    while true do
      local row, err = reader:row()
      if row then return row end
      if row == nil then
        if err then fail("%s", err) end
        return nil
      end
      more()
    end
  end
  local function rest(plan, n)
    while true do
      local last, status, at = reader:pipe(plan, n)
      if not last then
        if at then return nil, status, at end
        fail("%s", status)
      end
      if status == nil then return last end
      n = last
      more()
    end
  end
  return rows, rest
end

--- layout(header, columns) -> {field = column index}: which column of a
--- header row holds each field.
---
--- columns = {field = {patterns}}: Lua patterns tried in order against
--- each header text in lower case; a field takes the first column the
--- first matching pattern finds.
function M.layout(header, columns)
  local last = 0
  for i in pairs(header) do
    if math.type(i) == "integer" and i > last then last = i end
  end
  local at = {}
  for field, patterns in pairs(columns) do
    for _, pat in ipairs(patterns) do
      for i = 1, last do
        local name = header[i]
        if name and tostring(name):lower():find(pat) then at[field] = i break end
      end
      if at[field] then break end
    end
  end
  return at
end

-- ---- a report's members --------------------------------------------------------------

-- The members rows() reads, by kind: workbooks and CSV files, in the
-- order of the zip (a macOS resource fork folder is not part of a report).
local function sheet_members(zip)
  local out = {}
  for _, e in ipairs(M.entries(zip)) do
    local name = e.name:lower()
    if not name:match("^__macosx/") then
      if name:match("%.xlsx$") then out[#out + 1] = { entry = e, kind = "xlsx" }
      elseif name:match("%.csv$") then out[#out + 1] = { entry = e, kind = "csv" } end
    end
  end
  return out
end

--- rows(zip, tmpdir) -> iterator over (row, member, sheet) of every sheet
--- of a report zip.
---
--- member is the name of the .xlsx or .csv file in the zip, sheet the name
--- of a workbook's worksheet (nil for a CSV file, which is one sheet). A
--- workbook is extracted to tmpdir while it is
--- read; a CSV file is read straight from the zip. The second value,
--- rest(plan, n), runs the rest of the current CSV member's rows through a
--- row plan in C as csv_rows' rest does (false for a workbook's sheet: its
--- rows come one by one).
function M.rows(zip, tmpdir)
  local members = sheet_members(zip)
  local mi, iter, temp = 0, nil, nil
  -- Runs fn(...); on an error the workbook's copy goes, and an error about
  -- the copy names the member of the report instead.
  local function guarded(fn, ...)
    local ok, a, b, c = pcall(fn, ...)
    if ok then return a, b, c end
    if temp then
      os.remove(temp)
      if errors.is(a, "report") and a.message:sub(1, #temp) == temp then
        a = errors.new("report", zip .. ": " .. members[mi].entry.name .. a.message:sub(#temp + 1))
      end
      temp = nil
    end
    error(a, 0)
  end
  local rest_of
  local function open(m)
    rest_of = nil
    if m.kind == "csv" then
      local it
      it, rest_of = M.csv_rows(M.chunks(zip, m.entry), zip .. ": " .. m.entry.name)
      return it
    end
    -- Named after the report, so that reports read side by side never share one.
    temp = string.format("%s/.%s-%d.xlsx", tmpdir, zip:match("[^/]*$"), mi)
    M.extract(zip, m.entry, temp)
    return M.workbook_rows(temp)
  end
  local function rest(plan, n)
    if not (iter and rest_of) then return false end
    return guarded(rest_of, plan, n)
  end
  return function()
    while true do
      if iter then
        local r, sheet = guarded(iter)
        if r then return r, members[mi].entry.name, sheet end
        if temp then os.remove(temp) end
        iter, temp = nil, nil
      end
      mi = mi + 1
      local m = members[mi]
      if not m then return nil end
      iter = guarded(open, m)
    end
  end, rest
end

return M
