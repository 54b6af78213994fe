-- The Lua-side parsers under libFuzzer (tests/fuzz/lua_target.c runs one
-- function here per input). Each takes any bytes, must not raise, and
-- asserts what its answer must satisfy whatever the input.
local download = require("auditrun.download")
local errors = require("auditrun.errors")
local http = require("auditrun.http")
local jwt = require("auditrun.jwt")

local M = {}

-- Code points a safe name never holds: bidi controls and other invisible
-- ones, and lookalikes of a slash.
local NEVER = {}
for _, c in ipairs { 0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068,
                     0x2069, 0xFEFF, 0x2215, 0xFF0F, 0xFF3C } do NEVER[c] = true end
local DEVICES = { con = true, prn = true, aux = true, nul = true, com1 = true, lpt1 = true }

--- jwt.decode: claims and header tables, or nil and a "jwt" error.
function M.jwt_decode(data)
  local claims, header = jwt.decode(data)
  if claims then
    assert(type(claims) == "table" and type(header) == "table")
  else
    assert(errors.is(header, "jwt"))
  end
end

--- Content-Disposition to a file name: nil, or a name that is safe to
--- create in the output folder.
function M.disposition(data)
  local offered = download.disposition_name(data)
  assert(offered == nil or type(offered) == "string")
  for _, name in ipairs { offered, data } do
    local safe = download.safe_name(name)
    if safe then
      assert(#safe >= 1 and #safe <= 180, "length")
      assert(not safe:find("[/\\%z\1-\31\127]"), "separator or control character")
      assert(not safe:find("^[%.%-%s]") and not safe:find("[%.%s]$"), "leading or trailing dot, dash, space")
      assert(utf8.len(safe), "not UTF-8")
      for _, c in utf8.codes(safe) do assert(not NEVER[c], "invisible or slash-like character") end
      assert(not DEVICES[safe:match("^[^.]*"):lower()], "a device name")
      assert(download.safe_name(safe) == safe, "not stable")
    end
  end
end

--- The zip check, on a string: entries, or nil and a reason.
function M.zip(data)
  local file = {
    size = function() return #data end,
    read_at = function(_, offset, n) return data:sub(offset + 1, offset + n) end,
  }
  local entries, why = download.check_zip(file)
  if entries then
    assert(math.type(entries) == "integer" and entries >= 0)
  else
    assert(type(why) == "string")
  end
end

local policy = http.policy { wallclock = function() return 1700000000 end }

--- Retry-After and retry-after-ms: nil, or a finite wait of 0 or more.
function M.retry_after(data)
  for _, name in ipairs { "retry-after", "retry-after-ms" } do
    local wait = policy:server_delay { [name] = data }
    assert(wait == nil or (type(wait) == "number" and wait >= 0 and wait < math.huge), "bad wait")
  end
end

return M
