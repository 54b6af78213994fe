-- auditrun.time: UTC instants as seconds since the epoch, read from and
-- written as ISO 8601, without the local time zone ever taking part
-- (os.time reads its table as local time).
local M = {}

-- Days from 1970-01-01 to a civil date (proleptic Gregorian); H. Hinnant's
-- days_from_civil.
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m > 2 and m - 3 or m + 9) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- utc{year=, month=, day=, hour=, min=, sec=} -> seconds since the epoch.
function M.utc(t)
  return days_from_civil(t.year, t.month, t.day) * 86400 + (t.hour or 0) * 3600 + (t.min or 0) * 60 + (t.sec or 0)
end

--- parse(s) -> seconds since the epoch (with any fraction) | nil. Takes
--- yyyy-MM-dd, yyyy-MM-ddTHH:mm[:ss[.fff]] with Z, an offset (+01:00,
--- +0100) or nothing (taken as UTC); a space may stand for the T.
function M.parse(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > 31 then return nil end
  local h, mi, sec, frac, zone = 0, 0, 0, 0, ""
  if rest ~= "" then
    local hh, mm, tail = rest:match("^[T ](%d%d):(%d%d)(.*)$")
    if not hh then return nil end
    h, mi = tonumber(hh), tonumber(mm)
    local ss, tail2 = tail:match("^:(%d%d)(.*)$")
    if ss then sec, tail = tonumber(ss), tail2 end
    local f, tail3 = tail:match("^%.(%d+)(.*)$")
    if f then frac, tail = tonumber("0." .. f), tail3 end
    zone = tail
    if h > 23 or mi > 59 or sec > 60 then return nil end
  end
  local offset = 0
  if zone ~= "" and zone ~= "Z" and zone ~= "z" then
    local sign, oh, om = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  return M.utc { year = y, month = mo, day = d, hour = h, min = mi, sec = sec } - offset + frac
end

--- iso(t[, digits]) -> "yyyy-MM-ddTHH:mm:ss[.fff]Z" for seconds since the
--- epoch; digits (0 to 6) of fraction when asked for.
function M.iso(t, digits)
  local whole = math.floor(t)
  local s = os.date("!%Y-%m-%dT%H:%M:%S", whole)
  if digits and digits > 0 then
    local frac = math.floor((t - whole) * 10 ^ digits + 0.5)
    if frac >= 10 ^ digits then frac = 10 ^ digits - 1 end
    s = s .. string.format(".%0" .. digits .. "d", frac)
  end
  return s .. "Z"
end

--- day(t) -> the start (00:00 UTC) of the day holding t.
function M.day(t)
  return math.floor(t / 86400) * 86400
end

M.DAY = 86400

return M
