-- auditrun.exavault.endpoints: the ExaVault activity requests, as data
-- for auditrun.catalog (the shared api-docs folder: exavault-activity-api.md).
-- Paths are relative to the account's API base (.../api/v2).
--
-- The document names parameters as its Python client does (start_date,
-- var_resource_path); the wire names are the API's (startDate,
-- resourcePath); both spellings are taken. Answers carry their rows under
-- `data`; the total is always 0, so paging ends on an empty page.
local catalog = require("auditrun.catalog")

-- Operation types: the API value first, then the file manager's name.
local OPERATIONS = {
  { "PASS", "Connect" }, { "EXIT", "Disconnect" }, { "STOR", "Upload" }, { "RETR", "Download" },
  { "DELE", "Delete" }, { "MKD", "Create Folder" }, { "RNTO", "Rename" }, { "MOVE", "Move" }, { "COPY", "Copy" },
  { "COMPR", "Compress" }, { "EXTRACT", "Extract" }, { "SHARE", "Shared Folders" }, { "SEND", "Send Files" },
  { "RECV", "Receive Files" }, { "EDIT_SEND", "Update Send" }, { "EDIT_SHARE", "Update Share" },
  { "EDIT_RECV", "Update Receive" }, { "DELE_SEND", "Delete Send" }, { "DELE_RECV", "Delete Receive" },
  { "DELE_SHARE", "Delete Share" }, { "NOTIFY", "Create Notification" }, { "EDIT_NTFY", "Update Notification" },
  { "DELE_NTFY", "Delete Notification" }, { "USER", "Create User" }, { "EDIT_USER", "Update User" },
  { "DELE_USER", "Delete User" }, { "DFA", "Create Direct Link" }, { "EDIT_DFA", "Update Direct Link" },
  { "DELE_DFA", "Deactivate Direct Link" },
}
local EVENTS = {
  { "resources.upload" }, { "resources.download" }, { "resources.delete" }, { "resources.createFolder" },
  { "resources.rename" }, { "resources.move" }, { "resources.copy" }, { "resources.compress" },
  { "resources.extract" }, { "shares.formSubmit" },
}

-- The activity timeline's common words.
local VERBS = {
  PASS = "login", EXIT = "logout", STOR = "upload", RETR = "download", DELE = "delete", MKD = "create",
  RNTO = "rename", MOVE = "move", COPY = "copy", COMPR = "compress", EXTRACT = "extract", SHARE = "share",
  SEND = "share", RECV = "share", EDIT_SEND = "share", EDIT_SHARE = "share", EDIT_RECV = "share",
  DELE_SEND = "unshare", DELE_RECV = "unshare", DELE_SHARE = "unshare", NOTIFY = "configure",
  EDIT_NTFY = "configure", DELE_NTFY = "configure", USER = "user_admin", EDIT_USER = "user_admin",
  DELE_USER = "user_admin", DFA = "share", EDIT_DFA = "share", DELE_DFA = "unshare",
  ["resources.upload"] = "upload", ["resources.download"] = "download", ["resources.delete"] = "delete",
  ["resources.createFolder"] = "create", ["resources.rename"] = "rename", ["resources.move"] = "move",
  ["resources.copy"] = "copy", ["resources.compress"] = "compress", ["resources.extract"] = "extract",
  ["shares.formSubmit"] = "upload",
}

-- The most rows a page asks for; the service may cap it lower.
local PAGE_SIZE = 1000

local function q(name, ty, o) return catalog.param("query", name, ty, o) end

local function logs(path, doc_name, filters)
  local params = {
    q("startDate", "time", { format = "iso", zulu = true, aliases = { "from" } }),
    q("endDate", "time", { format = "iso", zulu = true, aliases = { "to" } }),
  }
  for _, p in ipairs(filters) do params[#params + 1] = p end
  params[#params + 1] = q("offset", "integer", { min = 0 })
  params[#params + 1] = q("limit", "integer", { min = 1, max = PAGE_SIZE })
  params[#params + 1] = q("sort", "string")
  return {
    method = "GET", path = path, doc = "exavault-activity-api.md#" .. doc_name, kind = "read",
    -- A short page does not prove the end: the total is always 0 and a page
    -- may come shorter than the others with rows after it (a walk that
    -- stopped there would leave them out). Only an empty page ends a walk:
    -- one more request a walk.
    paging = { style = "offset", offset = "offset", size = "limit", default_size = PAGE_SIZE, rows = { "data" },
               ends_on_empty = true },
    params = params,
    rules = { { "not_after", "startDate", "endDate" } },
  }
end

local endpoints = {
  session_logs = logs("/activity/session", "get_session_logs", {
    q("ipAddress", "string"),
    q("username", "string", { aliases = { "user" } }),
    q("path", "string"),
    q("type", "string", { enum = OPERATIONS, aliases = { "operation" } }),
  }),
  webhook_logs = logs("/activity/webhooks", "get_webhook_logs", {
    q("endpointUrl", "string"),
    q("event", "string", { enum = EVENTS }),
    q("statusCode", "integer", { min = 100, max = 599 }),
    q("resourcePath", "string", { aliases = { "var_resource_path" } }),
    q("username", "string", { aliases = { "user" } }),
  }),
}

return {
  title = "ExaVault",
  endpoints = endpoints,
  error_message = { "errors", 1, "detail" },
  enums = { operation = OPERATIONS, event = EVENTS },
  verbs = VERBS,
  -- Where each log keeps its time, user and object.
  fields = {
    session_logs = { time = "date", user = "userName", action = "operation", ip = "ipAddress", object = "fileSource",
                     source = "protocol" },
    webhook_logs = { time = "created", user = "username", action = "event", object = "resourcePath",
                     source = "endpointUrl" },
  },
}
