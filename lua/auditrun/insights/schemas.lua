-- auditrun.insights.schemas: how Insights user activity (the rows of
-- user_activities_export reports) becomes OCSF and ECS events, as data
-- for auditrun.schemas (which applies it).
--
-- logs: the report rows, keyed by their header: no event id (metadata.uid
-- is then a hash of the row), the original time under the first of these
-- headers present, the user an email address (reports are asked for by
-- email) and the object a URL or a path. verbs: each timeline verb
-- (auditrun.insights.timeline's verbs) as an OCSF class, activity and
-- status and an ECS category, type and outcome. A report holds what was
-- done; whether it succeeded it does not say.
return {
  product = "AvePoint Insights", vendor_name = "AvePoint",
  logs = {
    user_activities = { time = { { "Time (UTC)" }, { "Time" }, { "Date" } }, user_is_email = true,
                        object = "url_or_path" },
  },
  verbs = {
    login = { class = 3002, activity = 1, category = "authentication", type = { "start" } },
    upload = { class = 6006, activity = 1, category = "file", type = { "creation" } },
    download = { class = 6006, activity = 2, category = "file", type = { "access" } },
    modify = { class = 6006, activity = 3, category = "file", type = { "change" } },
    delete = { class = 6006, activity = 4, category = "file", type = { "deletion" } },
    rename = { class = 6006, activity = 5, category = "file", type = { "change" } },
    move = { class = 6006, activity = 7, category = "file", type = { "change" } },
    view = { class = 6006, activity = 9, category = "file", type = { "access" } },
    share = { class = 6006, activity = 12, category = "file", type = { "change" } },
    create = { class = 6003, activity = 1, category = "file", type = { "creation" } },
    member_add = { class = 6003, activity = 3, category = "iam", type = { "group", "change" } },
    other = { class = 6003, activity = 99, category = "web", type = { "info" } },
  },
}
