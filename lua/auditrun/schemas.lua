-- auditrun.schemas: the activity timeline's events in the schemas SIEMs
-- load: OCSF 1.1 and ECS 8.11, besides auditrun's own nine fields.
--
--   local convert = schemas.converter("ocsf", "csv")
--   local row = convert(event, { vendor = "dealcloud", log = "user_activity", tenant = "acme.dealcloud.com" })
--
-- Each vendor's mapping is data beside its catalogue
-- (auditrun.<vendor>.schemas: its logs, and its timeline verbs as an OCSF
-- class, activity and status and an ECS category, type and outcome); this
-- module applies it the same way for every vendor. What a vendor's record
-- lacks gets the schema's "unknown" value (an _id of 0), never invented
-- data. metadata.uid (event.id in ECS) is deterministic, so reloading a
-- file deduplicates: the vendor's event id where it has one, else the
-- SHA-256 of the record's JSON text (keys sorted). CSV and SQLite get the
-- nested fields flattened to dotted column names (actor.user.name); arrays
-- and OCSF's `unmapped` stay whole, as JSON text in one cell.
local activity = require("auditrun.activity")
local core = require("auditrun.core")
local records = require("auditrun.records")
local time = require("auditrun.time")

local M = {}

M.NAMES = { "auditrun", "ocsf", "ecs" }
M.OCSF_VERSION = "1.1.0"
M.ECS_VERSION = "8.11.0"

-- The OCSF classes the timeline uses: category, names and activities.
local CATEGORIES = { [3] = "Identity & Access Management", [6] = "Application Activity" }
local CLASSES = {
  [3002] = { category = 3, name = "Authentication", activities = { [0] = "Unknown", "Logon", "Logoff", [99] = "Other" } },
  [6003] = { category = 6, name = "API Activity",
             activities = { [0] = "Unknown", "Create", "Read", "Update", "Delete", [99] = "Other" } },
  [6006] = { category = 6, name = "File Hosting Activity",
             activities = { [0] = "Unknown", "Upload", "Download", "Update", "Delete", "Rename", "Copy", "Move",
                            "Restore", "Preview", "Lock", "Unlock", "Share", "Unshare", "Open", "Sync", "Unsync",
                            [99] = "Other" } },
}
local STATUS = { [0] = "Unknown", "Success", "Failure", [99] = "Other" }
local OUTCOME = { [1] = "success", [2] = "failure" }

-- Top-level keys in the order each line gives them, and the CSV columns
-- (dotted) of everything a converted event can hold.
local COLUMNS = {
  ocsf = {
    jsonl = { "time", "class_uid", "class_name", "category_uid", "category_name", "activity_id", "activity_name",
              "type_uid", "type_name", "severity_id", "severity", "status_id", "status", "actor", "user",
              "src_endpoint", "file", "api", "resources", "metadata", "unmapped" },
    csv = { "time", "class_uid", "class_name", "category_uid", "category_name", "activity_id", "activity_name",
            "type_uid", "type_name", "severity_id", "severity", "status_id", "status", "actor.user.name",
            "actor.user.email_addr", "actor.user.uid", "actor.user.type_id", "actor.session.uid", "user.name",
            "user.email_addr", "user.uid", "user.type_id",
            "src_endpoint.ip", "src_endpoint.type_id", "file.name", "file.path", "file.type_id", "api.operation",
            "api.service.name", "resources", "metadata.uid", "metadata.version", "metadata.product.name",
            "metadata.product.vendor_name", "metadata.tenant_uid", "metadata.original_time", "metadata.log_name",
            "unmapped" },
  },
  ecs = {
    jsonl = { "@timestamp", "event", "user", "source", "url", "file", "organization", "ecs" },
    csv = { "@timestamp", "event.kind", "event.category", "event.type", "event.action", "event.outcome", "event.id",
            "event.provider", "event.module", "event.dataset", "user.name", "user.email", "user.id", "source.ip",
            "url.full",
            "file.path", "file.name", "organization.id", "ecs.version", "event.original" },
  },
}
-- Objects CSV keeps whole (JSON text in one cell).
local WHOLE = { unmapped = true }

local tables = {}
local function vendor_table(vendor)
  tables[vendor] = tables[vendor] or require("auditrun." .. vendor .. ".schemas")
  return tables[vendor]
end

-- The value at a path ({"attributes", "date"}) in a record, or nil.
local function at(record, path)
  local v = record
  for _, k in ipairs(path) do
    if type(v) ~= "table" then return nil end
    v = v[k]
  end
  return v
end

local function text(v)
  if type(v) == "string" and v ~= "" then return v end
  if math.type(v) then return string.format("%d", v) end
  if type(v) == "number" and v == math.floor(v) then return string.format("%d", v) end
  return nil
end

-- The deterministic id of a record: the vendor's (its parts joined by ':'),
-- else the SHA-256 of its JSON text.
local function uid(log, raw)
  if log.id then
    local parts = {}
    for _, path in ipairs(log.id) do
      local v = text(at(raw, path))
      if not v then parts = nil break end
      parts[#parts + 1] = v
    end
    if parts then return table.concat(parts, ":") end
  end
  return core.sha256(records.encode(raw))
end

local function original_time(log, raw)
  for _, path in ipairs(log.time or {}) do
    local v = text(at(raw, path))
    if v then return v end
  end
end

-- What the event's record says about success: 1, 2 or nil (not known).
local function status_of(log, mapping, raw)
  local code = log.http_status and tonumber(at(raw, log.http_status))
  if code then return (code >= 200 and code < 400) and 1 or 2 end
  return mapping.status
end

-- The vendor's table, the log's and the verb's mapping for an event.
local function lookup(ev, tag)
  local vt = vendor_table(ev.vendor)
  local log = vt.logs[tag.log] or error("auditrun.schemas: " .. ev.vendor .. " has no log " .. tostring(tag.log), 0)
  return vt, log, vt.verbs[ev.verb] or vt.verbs.other
end

local function email_of(log, user)
  if log.user_is_email and type(user) == "string" and user:find("^[^@%s]+@[^@%s]+$") then return user end
end

-- The object as a URL or a path, as the log's table says it is.
local function object_kind(log, object)
  if type(object) ~= "string" or object == "" or not log.object then return nil end
  if log.object == "url_or_path" then return object:find("^[Hh][Tt][Tt][Pp][Ss]?://") and "url" or "path" end
  return log.object
end

local function basename(path)
  return path:match("([^/]+)/*$") or path
end

--- ocsf(event, tag) -> the event as OCSF 1.1: its class (Authentication,
--- File Hosting Activity or API Activity) and every field the class
--- requires. tag = {vendor=, log=, tenant=}.
function M.ocsf(ev, tag)
  local vt, log, m = lookup(ev, tag)
  local class = CLASSES[m.class]
  local status = status_of(log, m, ev.raw)
  local uid_of_user = log.user_uid and text(at(ev.raw, log.user_uid))
  local user = ev.user and { name = ev.user, email_addr = email_of(log, ev.user), uid = uid_of_user }
    or { type_id = 0 }
  local session = log.session_uid and text(at(ev.raw, log.session_uid))
  local out = {
    -- An event whose time the vendor wrote unreadably has none (its text is in original_time).
    time = ev.time and math.floor(time.parse(ev.time) * 1000 + 0.5),
    class_uid = m.class, class_name = class.name, category_uid = class.category,
    category_name = CATEGORIES[class.category], activity_id = m.activity, activity_name = class.activities[m.activity],
    type_uid = m.class * 100 + m.activity, type_name = class.name .. ": " .. class.activities[m.activity],
    severity_id = 1, severity = "Informational", status_id = status, status = status and STATUS[status],
    actor = { user = user, session = session and { uid = session } or nil },
    src_endpoint = ev.ip and { ip = ev.ip } or { type_id = 0 },
    metadata = {
      product = { name = vt.product, vendor_name = vt.vendor_name }, version = M.OCSF_VERSION,
      uid = uid(log, ev.raw), tenant_uid = tag.tenant, original_time = original_time(log, ev.raw),
      log_name = tag.log,
    },
    unmapped = ev.raw,
  }
  if m.class == 3002 then
    out.user = user
  elseif m.class == 6006 then
    local kind = object_kind(log, ev.object)
    if kind == "path" then
      out.file = { name = basename(ev.object), path = ev.object, type_id = 0 }
    elseif kind == "url" then
      out.file = { name = basename(ev.object:gsub("[?#].*$", "")), type_id = 0 }
      out.resources = { { name = ev.object, type = "url" } }
    else
      out.file = { name = "Unknown", type_id = 0 }
    end
  else
    out.api = { operation = ev.action or "Unknown", service = { name = vt.product } }
    if ev.object ~= nil then out.resources = { { name = tostring(ev.object) } } end
  end
  return out
end

--- ecs(event, tag) -> the event as ECS 8.11: event.kind, category, type,
--- action (the vendor's name), outcome and id, the user, source.ip, the
--- object as url.full or file.path, and the record as event.original.
function M.ecs(ev, tag)
  local _, log, m = lookup(ev, tag)
  local out = {
    ["@timestamp"] = ev.time,
    event = {
      kind = "event", category = { m.category }, type = m.type, action = ev.action,
      outcome = OUTCOME[status_of(log, m, ev.raw)] or "unknown", id = uid(log, ev.raw),
      provider = tag.log, module = ev.vendor, dataset = ev.vendor .. "." .. tag.log,
      original = records.encode(ev.raw),
    },
    organization = tag.tenant and { id = tag.tenant } or nil,
    ecs = { version = M.ECS_VERSION },
  }
  if ev.user then
    out.user = { name = ev.user, email = email_of(log, ev.user), id = log.user_uid and text(at(ev.raw, log.user_uid)) }
  end
  if ev.ip then out.source = { ip = ev.ip } end
  local kind = object_kind(log, ev.object)
  if kind == "url" then
    out.url = { full = ev.object }
  elseif kind == "path" then
    out.file = { path = ev.object, name = basename(ev.object) }
  end
  return out
end

-- A nested row with dotted keys; arrays and WHOLE objects stay as they are.
local function flatten(row, prefix, out)
  for k, v in pairs(row) do
    local key = prefix .. k
    if type(v) == "table" and next(v) ~= nil and #v == 0 and not WHOLE[key] then
      flatten(v, key .. ".", out)
    else
      out[key] = v
    end
  end
  return out
end

-- Formats whose rows are flat: a column a field.
local FLAT = { csv = true, sqlite = true }

--- columns(name, format) -> the declared columns of a timeline file in
--- that schema and format (auditrun.records' columns).
function M.columns(name, format)
  if name == "auditrun" then return activity.FIELDS end
  return COLUMNS[name][FLAT[format] and "csv" or "jsonl"]
end

--- converter(name, format) -> function(event, tag) -> the row to write:
--- the event as it is (auditrun), or in OCSF or ECS, flattened for CSV and
--- SQLite.
function M.converter(name, format)
  if name == "auditrun" then return function(ev) return ev end end
  local convert = assert(M[name], "a schema is auditrun, ocsf or ecs")
  if not FLAT[format] then return convert end
  return function(ev, tag) return flatten(convert(ev, tag), "", {}) end
end

--- tenant(client) -> the tenant a vendor client reads: its profile's
--- `tenant` setting (AUDITRUN_TENANT), else the host of its URL.
function M.tenant(c)
  local cfg = c.config or {}
  return cfg.tenant or (type(c.base) == "string" and c.base:match("^%a[%w+.-]*://([^/?#:]+)")) or nil
end

return M
