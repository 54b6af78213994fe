-- auditrun.exavault.settings: the settings of an ExaVault client, as an
-- auditrun.config schema: the account's API base (https://ACCOUNT.exavault.com/api/v2),
-- an API key and an access token.
local M = {}

M.schema = {
  name = "ExaVault",
  keys = {
    exavault_url = "string", exavault_api_key = "string", exavault_access_token = "string",
    exavault_access_token_file = "string",
  },
  secrets = { "exavault_api_key", "exavault_access_token" },
  files = { exavault_access_token_file = "exavault_access_token" },
  groups = { exavault_access_token = "cred", exavault_access_token_file = "cred" },
  url = "exavault_url",
  url_example = "https://contoso.exavault.com/api/v2",
  credentials = { "exavault_api_key", "exavault_access_token" },
  credential_urls = { "exavault_url" },
  required = { "exavault_url", "exavault_api_key", "exavault_access_token" },
  exclusive = { { "exavault_access_token", "exavault_access_token_file" } },
}

return M
