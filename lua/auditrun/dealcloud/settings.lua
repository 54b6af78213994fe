-- auditrun.dealcloud.settings: the settings of a DealCloud client, as an
-- auditrun.config schema: the site's URL and an API client's id and
-- secret (client credentials).
local M = {}

M.schema = {
  name = "DealCloud",
  keys = {
    dealcloud_url = "string", dealcloud_client_id = "string", dealcloud_client_secret = "string",
    dealcloud_client_secret_file = "string", dealcloud_scope = "string",
  },
  -- The user activity log needs user_management.
  defaults = { dealcloud_scope = "user_management" },
  secrets = { "dealcloud_client_secret" },
  files = { dealcloud_client_secret_file = "dealcloud_client_secret" },
  groups = { dealcloud_client_secret = "cred", dealcloud_client_secret_file = "cred" },
  url = "dealcloud_url",
  url_example = "https://contoso.dealcloud.com",
  credentials = { "dealcloud_client_id", "dealcloud_client_secret" },
  credential_urls = { "dealcloud_url" },
  required = { "dealcloud_url", "dealcloud_client_id", "dealcloud_client_secret" },
  exclusive = { { "dealcloud_client_secret", "dealcloud_client_secret_file" } },
}

return M
