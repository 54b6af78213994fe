-- auditrun.exavault.schemas: how ExaVault's session and webhook logs
-- become OCSF and ECS events, as data for auditrun.schemas (which applies
-- it).
--
-- logs: each log the timeline reads, with where its items keep the
-- vendor's event id (JSON:API's type and id, which together name an item),
-- their original time, the object (a path), the session's id and, for webhooks, the HTTP
-- status the listener answered (2xx and 3xx: success, else failure).
-- verbs: each timeline verb (auditrun.exavault.endpoints' verbs) as an
-- OCSF class, activity and status and an ECS category, type and outcome.
-- A session log holds what was done; whether it succeeded it does not say.
return {
  product = "ExaVault", vendor_name = "ExaVault",
  logs = {
    session_logs = { id = { { "type" }, { "id" } }, time = { { "attributes", "date" } }, object = "path",
                     session_uid = { "attributes", "sessionId" } },
    webhook_logs = { id = { { "type" }, { "id" } }, time = { { "attributes", "created" } }, object = "path",
                     http_status = { "attributes", "statusCode" } },
  },
  verbs = {
    login = { class = 3002, activity = 1, category = "authentication", type = { "start" } },
    logout = { class = 3002, activity = 2, category = "authentication", type = { "end" } },
    upload = { class = 6006, activity = 1, category = "file", type = { "creation" } },
    download = { class = 6006, activity = 2, category = "file", type = { "access" } },
    delete = { class = 6006, activity = 4, category = "file", type = { "deletion" } },
    rename = { class = 6006, activity = 5, category = "file", type = { "change" } },
    copy = { class = 6006, activity = 6, category = "file", type = { "creation" } },
    move = { class = 6006, activity = 7, category = "file", type = { "change" } },
    share = { class = 6006, activity = 12, category = "file", type = { "change" } },
    unshare = { class = 6006, activity = 13, category = "file", type = { "change" } },
    create = { class = 6003, activity = 1, category = "file", type = { "creation" } },
    compress = { class = 6003, activity = 1, category = "file", type = { "creation" } },
    extract = { class = 6003, activity = 1, category = "file", type = { "creation" } },
    configure = { class = 6003, activity = 3, category = "configuration", type = { "change" } },
    user_admin = { class = 6003, activity = 3, category = "iam", type = { "user", "change" } },
    other = { class = 6003, activity = 99, category = "web", type = { "info" } },
  },
}
