-- auditrun.download: files fetched so that a kill -9 at any moment leaves
-- either nothing or a complete, checked file under its final name.
--
-- The body streams into a hidden temporary file in the target directory
-- (never into memory), is checked (Content-Length; a zip must have an
-- intact central directory), fsynced, and named without ever replacing a
-- file. The temporary file is held open from creation to naming, and every
-- read, check and the naming itself go through that descriptor: swapping
-- its name for a symlink changes nothing. Downloads are bounded (max_size,
-- else http.DOWNLOAD_DEFAULTS.max_download), decoded bytes counted. The
-- name comes from Content-Disposition, made safe: a server cannot write
-- outside the directory, hide a file, or use names the file system or a
-- shell would trip on.
local core = require("auditrun.core")
local errors = require("auditrun.errors")
local files = require("auditrun.files")
local http = require("auditrun.http")

local M = {}

local MAX_NAME = 180
local ZIP_EOCD = "PK\5\6"
local ZIP_CDH = "PK\1\2"

-- The parameters of a Content-Disposition value: lower-cased name -> value
-- (unquoted), the first of each name kept, and the names whose value was
-- quoted. A parameter is only ever a whole token after a ";": "xfilename="
-- is not "filename=". In a quoted value \" and \\ are escapes; any other
-- backslash stays (a Windows path separator, stripped later). A value
-- without its closing quote is dropped.
local function parameters(header)
  local params, quoted, i, n = {}, {}, 1, #header
  local function next_param()
    local semi = header:find(";", i, true)
    i = semi and semi + 1 or n + 1
  end
  next_param()  -- past the disposition type
  while i <= n do
    local _, e, name = header:find("^%s*([!#$%%&'*+%-.%^_`|~%w]+)%s*=%s*", i)
    if not name then
      next_param()
    else
      i = e + 1
      local value, was_quoted
      if header:sub(i, i) == '"' then
        local out = {}
        i, was_quoted = i + 1, true
        while i <= n do
          local ch = header:sub(i, i)
          local after = header:sub(i + 1, i + 1)
          if ch == "\\" and (after == '"' or after == "\\") then
            out[#out + 1], i = after, i + 2
          elseif ch == '"' then
            value, i = table.concat(out), i + 1
            break
          else
            out[#out + 1], i = ch, i + 1
          end
        end
      else
        value = header:match("^[^;]*", i)
        i = i + #value
        value = value:gsub("%s+$", "")
      end
      name = name:lower()
      if value and params[name] == nil then params[name], quoted[name] = value, was_quoted end
      next_param()
    end
  end
  return params, quoted
end

-- ISO-8859-1 bytes as UTF-8.
local function latin1_to_utf8(s)
  return (s:gsub("[\128-\255]", function(c) return utf8.char(c:byte()) end))
end

-- An RFC 8187 ext-value (charset'language'percent-encoded), decoded to
-- UTF-8, or nil when it is malformed or in another charset.
local function ext_value(v)
  local charset, encoded = v:match("^([%w!#$%%&+%-%^_`{}~]+)'[%w%-]*'(.*)$")
  if not charset or encoded:find("[^%w!#$&+%-%.%^_`|~%%]") then return nil end  -- not attr-chars
  for at in encoded:gmatch("()%%") do
    if not encoded:sub(at + 1, at + 2):match("^%x%x$") then return nil end   -- a bad escape
  end
  charset = charset:lower()
  local decoded = http.unescape(encoded)
  if charset == "utf-8" then return utf8.len(decoded) and decoded or nil end
  if charset == "iso-8859-1" then return latin1_to_utf8(decoded) end
  return nil
end

--- The file name a Content-Disposition header offers, or nil. RFC 6266:
--- filename* (RFC 8187, percent-encoded UTF-8 or ISO-8859-1) wins over
--- filename; a malformed filename* is ignored. The result is UTF-8.
function M.disposition_name(header)
  if type(header) ~= "string" then return nil end
  local params, quoted = parameters(header)
  local ext = params["filename*"]
  local plain = params.filename
  -- Header bytes that are not UTF-8 are ISO-8859-1, as HTTP had them.
  if plain and not utf8.len(plain) then plain = latin1_to_utf8(plain) end
  return (ext and not quoted["filename*"] and ext_value(ext)) or plain
end

-- Characters that change how a name reads without being visible (bidi
-- overrides and isolates, marks, zero-width ones), and lookalikes of a path
-- separator.
local INVISIBLE = { 0x00AD, 0x061C, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C,
                    0x202D, 0x202E, 0x2060, 0x2066, 0x2067, 0x2068, 0x2069, 0xFEFF }
local SLASHES = { 0x2044, 0x2215, 0x2216, 0x29F8, 0x29F9, 0xFF0F, 0xFF3C }
local RESERVED = { con = true, prn = true, aux = true, nul = true }
for d = 1, 9 do RESERVED["com" .. d], RESERVED["lpt" .. d] = true, true end

local function codepoint_set(list)
  local set = {}
  for _, c in ipairs(list) do set[utf8.char(c)] = true end
  return set
end
local INVISIBLE_SET, SLASH_SET = codepoint_set(INVISIBLE), codepoint_set(SLASHES)

--- A name that is safe to create in a directory, or nil.
---
--- Safe: valid UTF-8, the last path component only (lookalike slashes
--- count), no control, invisible or bidi characters, none a shell trips on,
--- no leading dot or dash, not a Windows device name, at most 180 bytes.
function M.safe_name(name)
  if type(name) ~= "string" or not utf8.len(name) then return nil end
  name = name:gsub(utf8.charpattern, function(c)
    if SLASH_SET[c] then return "/" end
    if INVISIBLE_SET[c] or c:match("^\194[\128-\159]$") then return "" end  -- C1 controls too
  end)
  name = name:match("([^/\\]*)$")                   -- last component, either separator
  name = name:gsub("[%z\1-\31\127]", "")             -- control characters
  name = name:gsub("[^%w%.%-_ ()%[%]@+,=#&~\128-\255]", "_")
  name = name:gsub("^[%s%.%-]+", ""):gsub("[%s%.]+$", "")
  local stem = name:match("^([^.]*)"):gsub("%s+$", ""):lower()
  if RESERVED[stem] then name = "_" .. name end
  -- An over-long name is refused, not cut: a cut could split a UTF-8
  -- character or lose what told two reports apart.
  if name == "" or #name > MAX_NAME then return nil end
  return name
end

--- zip_directory(size, read_at) -> entries, cd_offset, cd_size | nil, reason:
--- where a zip of `size` bytes keeps its central directory, from its End Of
--- Central Directory record; read_at(offset, length) reads the file.
function M.zip_directory(size, read_at)
  local tail_len = math.min(size, 65535 + 22)
  local tail = read_at(size - tail_len, tail_len) or ""
  local pos
  for i = #tail - 21, 1, -1 do
    if tail:sub(i, i + 3) == ZIP_EOCD then pos = i break end
  end
  if not pos then return nil, "no end of central directory: the zip is truncated" end
  local entries, cd_size, cd_offset = string.unpack("<I2I4I4", tail, pos + 10)
  local eocd_at = size - tail_len + pos - 1
  if cd_offset + cd_size > eocd_at then return nil, "the central directory lies outside the file" end
  return entries, cd_offset, cd_size
end

--- Checks that a zip ends with an End Of Central Directory record whose
--- central directory lies inside the file and starts where it says.
---
--- `f` is a temporary file (files.temp) or anything with size() and
--- read_at(offset, n). -> entries | nil, reason
function M.check_zip(f)
  local entries, cd_offset = M.zip_directory(f:size(), function(at, n) return f:read_at(at, n) end)
  if not entries then return nil, cd_offset end
  local sig = f:read_at(cd_offset, 4)
  if entries > 0 and sig ~= ZIP_CDH then return nil, "the central directory is not where the zip says" end
  return entries
end

local function fail(kind, message, fields)
  return nil, errors.new(kind, message, fields)
end

--- save{request=, url=, dir=, fallback_name=, zip=bool, max_size=, ca_file=,
--- before_rename=} -> {path=, name=, size=, sha256=, reused=bool} | nil, err:
--- one download into dir under a safe name.
---
--- request=fn(opts)->res|nil,err defaults to http.request (a session's
--- request adds a token); before_rename=fn(file)->true|nil,err.
--- before_rename(file) is called with the final path, name, size and
--- sha256 before the file takes that name (and before an identical file
--- already there is taken as this one): a caller records it there, so a
--- kill right after the rename leaves a record that finds the file.
function M.save(o)
  assert(o.url and o.dir and o.fallback_name, "save needs url, dir and fallback_name")
  local ok, err = files.mkdirs(o.dir)
  if not ok then return nil, err end
  local fallback = assert(M.safe_name(o.fallback_name), "fallback_name is not a usable file name")
  -- Every way out closes it, which removes it unless it was named.
  local temp <close>, terr = files.temp(o.dir .. "/" .. fallback)
  if not temp then return nil, terr end

  local request = o.request or http.request
  local res, rerr = request { url = o.url, output = temp, timeout = o.timeout, low_speed_time = o.low_speed_time,
                              max_download = o.max_size, ca_file = o.ca_file }
  if not res then
    -- A full disk or a file size limit: say which report could not be written.
    if errors.is(rerr, "file") then
      rerr.message = string.format("cannot write %s/%s: %s", o.dir, fallback,
        (rerr.message:gsub("^cannot write response body: ", "")))
    end
    return nil, rerr
  end

  local size = temp:size()
  local expected = tonumber(res.headers["content-length"])
  if expected and not res.headers["content-encoding"] and size ~= expected then
    return fail("download", string.format("%s: got %d bytes of %d", o.url, size or 0, expected),
      { retryable = true })
  end
  local name = M.safe_name(M.disposition_name(res.headers["content-disposition"])) or fallback
  local is_zip = o.zip or name:lower():match("%.zip$") or (res.headers["content-type"] or ""):match("zip")
  if is_zip then
    local entries, why = M.check_zip(temp)
    if not entries then
      return fail("download", string.format("%s: not a complete zip (%s)", name, why), { retryable = true })
    end
  end
  ok, err = temp:fsync()
  if not ok then return nil, err end
  local digest = temp:sha256()

  -- Never replace: an identical file already there is this same report
  -- fetched before (a rerun); a different one keeps its name and we take
  -- the next free "name (n).ext". What is there is read only if it is a
  -- regular file (a symlink or a device is never followed).
  local stem, ext = name:match("^(.-)(%.[^.]*)$")
  if not stem or stem == "" then stem, ext = name, "" end
  for n = 0, 999 do
    local candidate = n == 0 and name or string.format("%s (%d)%s", stem, n, ext)
    local target = o.dir .. "/" .. candidate
    local file = { path = target, name = candidate, size = size, sha256 = digest, reused = false }
    if o.before_rename then
      local noted, nerr = o.before_rename(file)
      if not noted then return nil, nerr end
    end
    local linked, link_err = temp:link(target)
    if linked then return file end
    if link_err.kind ~= "exists" then return nil, link_err end
    if core.sha256_file(target) == digest then
      file.reused = true
      return file
    end
  end
  return fail("download", "too many files named like " .. name .. " in " .. o.dir)
end

return M
