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
local core = require "auditrun.core"
local errors = require "auditrun.errors"
local files = require "auditrun.files"
local http = require "auditrun.http"

local M = {}

local MAX_NAME = 180
local ZIP_EOCD = "PK\5\6"
local ZIP_CDH = "PK\1\2"

--- The file name a Content-Disposition header offers, or nil. RFC 6266:
--- filename* (RFC 5987, percent-encoded UTF-8) wins over filename.
function M.disposition_name(header)
  if type(header) ~= "string" then return nil end
  local ext = header:match("[Ff][Ii][Ll][Ee][Nn][Aa][Mm][Ee]%*%s*=%s*[%w%-]*'[%w%-]*'([^;]+)")
  if ext then return http.unescape((ext:gsub("%s+$", ""))) end
  -- A quoted string, possibly empty. A backslash stays a backslash (a
  -- Windows path separator to strip), except before a quote.
  local start = select(2, header:find('[Ff][Ii][Ll][Ee][Nn][Aa][Mm][Ee]%s*=%s*"'))
  if start then
    local out, i = {}, start + 1
    while i <= #header do
      local ch = header:sub(i, i)
      if ch == "\\" and header:sub(i + 1, i + 1) == '"' then
        out[#out + 1], i = '"', i + 2
      elseif ch == '"' then
        return table.concat(out)
      else
        out[#out + 1], i = ch, i + 1
      end
    end
    return nil  -- no closing quote
  end
  local bare = header:match("[Ff][Ii][Ll][Ee][Nn][Aa][Mm][Ee]%s*=%s*([^;]+)")
  return bare and (bare:gsub("%s+$", ""))
end

--- A name that is safe to create in a directory, or nil: the last path
--- component only, no control or shell-hostile characters, no leading dot
--- or dash, at most 180 bytes.
function M.safe_name(name)
  if type(name) ~= "string" then return nil end
  name = name:match("([^/\\]*)$")                   -- last component, either separator
  name = name:gsub("[%z\1-\31\127]", "")             -- control characters
  name = name:gsub("[^%w%.%-_ ()%[%]@+,=#&~\128-\255]", "_")
  name = name:gsub("^[%s%.%-]+", ""):gsub("[%s%.]+$", "")
  -- An over-long name is refused, not cut: a cut could split a UTF-8
  -- character or lose what told two reports apart.
  if name == "" or #name > MAX_NAME then return nil end
  return name
end

--- Checks that a zip ends with an End Of Central Directory record whose
--- central directory lies inside the file and starts where it says.
--- `f` is a temporary file (files.temp) or anything with size() and
--- read_at(offset, n). -> entries | nil, reason
function M.check_zip(f)
  local size = f:size()
  local tail_len = math.min(size, 65535 + 22)
  local tail = f:read_at(size - tail_len, tail_len) or ""
  local pos
  for i = #tail - 21, 1, -1 do
    if tail:sub(i, i + 3) == ZIP_EOCD then pos = i break end
  end
  if not pos then return nil, "no end of central directory: the zip is truncated" end
  local entries, cd_size, cd_offset = string.unpack("<I2I4I4", tail, pos + 10)
  local eocd_at = size - tail_len + pos - 1
  if cd_offset + cd_size > eocd_at then return nil, "the central directory lies outside the file" end
  local sig = f:read_at(cd_offset, 4)
  if entries > 0 and sig ~= ZIP_CDH then return nil, "the central directory is not where the zip says" end
  return entries
end

local function fail(kind, message, fields)
  return nil, errors.new(kind, message, fields)
end

--- save{request=fn(opts)->res|nil,err, url=, dir=, fallback_name=,
--- zip=bool, max_size=, before_rename=fn(file)->true|nil,err} -> {path=, name=, size=,
--- sha256=, reused=bool} | nil, err
--- `request` defaults to http.request (a session's request adds a token).
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
                              max_download = o.max_size }
  if not res then return nil, rerr end

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
