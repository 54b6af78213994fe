-- auditrun.sheets: the rows of the spreadsheets inside a report zip, read
-- as a stream. A report (Insights exports are zips of .xlsx workbooks) is
-- read entry by entry: lua-zlib inflates, lua-expat parses the worksheet
-- XML as it comes, and each row is handed out as soon as its </row> is
-- seen, so memory holds a chunk and a row, not the sheet (shared strings
-- aside: a workbook's string table is read first when it has one).
--
--   for row, sheet in sheets.rows("report.zip") do print(sheet, row[1], row[2]) end
--
-- Rows are lists of cell texts by column (A = 1); an empty cell is nil.
-- Only what an export needs of the zip format is read: stored and
-- deflated entries, sizes from the central directory (no ZIP64).
local lxp = require "lxp"
local zlib = require "zlib"
local download = require "auditrun.download"
local errors = require "auditrun.errors"
local files = require "auditrun.files"

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
  for chunk in M.chunks(path, entry) do out:write(chunk) end
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

--- workbook_rows(path) -> iterator over (row, sheet part name) of every
--- worksheet of an .xlsx file, in order.
function M.workbook_rows(path)
  local entries, by_name = M.entries(path), {}
  for _, e in ipairs(entries) do by_name[e.name] = e end
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
        return r, sheets[si].name
      end
      if not (step and step()) then
        si = si + 1
        if not sheets[si] then return nil end
        step = parse(path, sheets[si], callbacks)
      end
    end
  end
end

--- rows(zip, tmpdir) -> iterator over (row, workbook name) of every
--- workbook in a report zip (each extracted to tmpdir while it is read).
function M.rows(zip, tmpdir)
  local books = {}
  for _, e in ipairs(M.entries(zip)) do
    if e.name:lower():match("%.xlsx$") then books[#books + 1] = e end
  end
  local bi, iter, temp = 0, nil, nil
  return function()
    while true do
      if iter then
        local r = iter()
        if r then return r, books[bi].name end
        os.remove(temp)
        iter = nil
      end
      bi = bi + 1
      if not books[bi] then return nil end
      -- Named after the report, so that reports read side by side never share one.
      temp = M.extract(zip, books[bi], string.format("%s/.%s-%d.xlsx", tmpdir, zip:match("[^/]*$"), bi))
      iter = M.workbook_rows(temp)
    end
  end
end

return M
