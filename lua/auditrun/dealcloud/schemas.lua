-- auditrun.dealcloud.schemas: how DealCloud's user activity becomes OCSF
-- and ECS events, as data for auditrun.schemas (which applies it).
--
-- logs: each log the timeline reads, with where its records keep the
-- vendor's event id (none here: metadata.uid is then a hash of the
-- record), their original time (the first of these paths present),
-- whether the user is an email address, and where the user's id and the
-- session's id are.
-- verbs: each timeline verb (auditrun.dealcloud.endpoints' verbs) as an
-- OCSF class, activity and status and an ECS category, type and outcome.
return {
  product = "DealCloud", vendor_name = "Intapp",
  logs = {
    user_activity = { time = { { "eventDate" } }, user_is_email = true, user_uid = { "userId" },
                      session_uid = { "sessionId" } },
  },
  verbs = {
    login = { class = 3002, activity = 1, status = 1, category = "authentication", type = { "start" } },
    login_failed = { class = 3002, activity = 1, status = 2, category = "authentication", type = { "start" } },
    -- Verification required: the sign-in is neither done nor refused yet.
    login_challenge = { class = 3002, activity = 1, status = 99, category = "authentication", type = { "info" } },
    logout = { class = 3002, activity = 2, status = 1, category = "authentication", type = { "end" } },
    download = { class = 6006, activity = 2, status = 1, category = "file", type = { "access" } },
    export = { class = 6003, activity = 2, status = 1, category = "web", type = { "access" } },
    access = { class = 6003, activity = 2, status = 1, category = "web", type = { "access" } },
    impersonate = { class = 6003, activity = 99, status = 1, category = "iam", type = { "admin" } },
    other = { class = 6003, activity = 99, category = "web", type = { "info" } },
  },
}
