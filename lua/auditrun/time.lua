-- auditrun.time: UTC instants as seconds since the epoch, read from and
-- written as ISO 8601, without the local time zone ever taking part
-- (os.time reads its table as local time).
local iso_time = require("auditrun.core").iso_time

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

-- The time of day and zone after a date: "" (midnight UTC), or
-- [T ]HH:mm[:ss[.fff]][Z|+01:00|+0100] -> seconds into the day and the
-- offset from UTC, or nil. us: the .NET form after a MM/dd/yyyy date (an
-- hour of one digit, AM or PM).
local function time_of_day(rest, us)
  if rest == "" then return 0, 0 end
  local hh, mm, tail = rest:match(us and "^[T ](%d%d?):(%d%d)(.*)$" or "^[T ](%d%d):(%d%d)(.*)$")
  if not hh then return nil end
  local h, mi, sec, frac = tonumber(hh), tonumber(mm), 0, 0
  local ss, tail2 = tail:match("^:(%d%d)(.*)$")
  if ss then sec, tail = tonumber(ss), tail2 end
  local f, tail3 = tail:match("^%.(%d+)(.*)$")
  if f then frac, tail = tonumber("0." .. f), tail3 end
  local half, tail4 = tail:match("^ ?([AaPp])[Mm](.*)$")
  if half then
    if not us or h < 1 or h > 12 then return nil end
    h, tail = h % 12 + (half:lower() == "p" and 12 or 0), tail4
  end
  if h > 23 or mi > 59 or sec > 60 then return nil end
  local offset = 0
  if tail ~= "" and tail ~= "Z" and tail ~= "z" then
    local sign, oh, om = tail:match("^ ?([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  return h * 3600 + mi * 60 + sec + frac, offset
end

-- The instant of a date's digits and what follows them (time_of_day), or nil.
local function utc_date(y, mo, d, rest, ampm)
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > 31 then return nil end
  local into_day, offset = time_of_day(rest, ampm)
  if not into_day then return nil end
  return M.utc { year = y, month = mo, day = d } + into_day - offset
end

--- parse(s) -> seconds since the epoch (with any fraction) | nil.
---
--- Takes ISO 8601 as people and the APIs' parameters write it:
--- yyyy-MM-dd, yyyy-MM-ddTHH:mm[:ss[.fff]] with Z, an offset (+01:00,
--- +0100) or nothing (taken as UTC); a space may stand for the T.
function M.parse(s)
  if type(s) ~= "string" then return nil end
  -- The plain form in C (csrc/ltime.c), to the same value.
  local t = iso_time(s)
  if t then return t end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  return utc_date(y, mo, d, rest, false)
end

--- read(s) -> seconds since the epoch | nil: a time as the services write
--- it in their rows. Never for what a person types: 01/05 is 5 January here.
---
--- It takes everything parse takes, and
---   yyyy/MM/dd for the date;
---   MM/dd/yyyy [h]h:mm[:ss[.fff]][ AM|PM] (month first, as .NET writes
---   dates: "01/05/2022 10:00:00", "1/5/2022 10:00:00 AM"), UTC unless an
---   offset follows;
---   /Date(ms)/ and /Date(ms+0100)/ (milliseconds since the epoch, as
---   older .NET JSON writes them; the offset is only the writer's zone).
function M.read(s)
  if type(s) ~= "string" then return nil end
  local t = M.parse(s)
  if t then return t end
  local ms = s:match("^/Date%((%-?%d+)[+-]?%d*%)/$")
  if ms then return tonumber(ms) / 1000 end
  local y, mo, d, rest = s:match("^(%d%d%d%d)/(%d%d)/(%d%d)(.*)$")
  if y then return utc_date(y, mo, d, rest, false) end
  mo, d, y, rest = s:match("^(%d%d?)/(%d%d?)/(%d%d%d%d)(.*)$")
  return utc_date(y, mo, d, rest, true)
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
