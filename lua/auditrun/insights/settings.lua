-- auditrun.insights.settings: the settings of an Insights client, as an
-- auditrun.config schema: data centers by region code, the identity service
-- of each environment, and app credentials (a certificate or a secret).
local M = {}

-- Data centers, from the union of the Graph API's and the legacy Web API's
-- tables. FedRAMP is the one host off the graph-<dc> pattern.
local DC = {
  "au", "ca", "cn", "us", "fr", "de", "jp", "kr", "ne", "za", "sg", "ch", "uk", "gov", "we", "uae",
  "qa", "aos2", "gcp-au", "gcp-we", "gcp-jp", "gcp-us", "gcp-kr",
}
M.REGIONS = { fedramp = "https://graphusgovapi.online15.net/insights" }
for _, dc in ipairs(DC) do
  M.REGIONS[dc] = "https://graph-" .. dc .. ".avepointonlineservices.com/insights"
end

-- Identity services by environment (register-app-and-sign-in.md).
M.IDENTITY = {
  commercial = "https://identity.avepointonlineservices.com",
  gov = "https://identity-gov.avepointonlineservices.com",
  aos2 = "https://identity-aos2.avepointonlineservices.com",
  fedramp = "https://identity.online15.net",
}
local ENVIRONMENT_OF = { gov = "gov", aos2 = "aos2", fedramp = "fedramp" }

-- The region, the certificate against the secret, and what each needs.
local function resolve(s, from)
  if s.insights_url and s.insights_region then
    return string.format("give insights_url (%s) or insights_region (%s), not both",
      from("insights_url"), from("insights_region"))
  end
  if s.insights_region then
    local region = s.insights_region:lower()
    if not M.REGIONS[region] then
      local known = {}
      for r in pairs(M.REGIONS) do known[#known + 1] = r end
      table.sort(known)
      return string.format("unknown region '%s' (%s); known: %s", s.insights_region, from("insights_region"),
        table.concat(known, " "))
    end
    s.insights_url = M.REGIONS[region]
    s.identity_url = s.identity_url or M.IDENTITY[ENVIRONMENT_OF[region] or "commercial"]
  end
  if not s.insights_url then
    return "no Insights endpoint: set AUDITRUN_INSIGHTS_URL or AUDITRUN_INSIGHTS_REGION"
  end
  if not s.client_id then return "no client id: set AUDITRUN_CLIENT_ID" end
  local has_secret = s.client_secret or s.client_secret_file
  if s.cert and has_secret then
    return string.format("both a certificate (%s) and a client secret (%s) are configured: keep one",
      from("cert"), from(s.client_secret and "client_secret" or "client_secret_file"))
  end
  if not s.cert and not has_secret then
    return "no credentials: set AUDITRUN_CERT (with AUDITRUN_CERT_PASSWORD or _FILE) or AUDITRUN_CLIENT_SECRET"
  end
  if s.key and not s.cert then return "a key file was given without its certificate (AUDITRUN_CERT)" end
end

M.schema = {
  name = "Insights",
  keys = {
    insights_url = "string", insights_region = "string", identity_url = "string",
    client_id = "string", cert = "string", key = "string", cert_password = "string",
    cert_password_file = "string", client_secret = "string", client_secret_file = "string",
    scope = "string", audience = "string", kid = "string", max_jobs = "number",
  },
  defaults = { scope = "insights.graph.readwrite.all", identity_url = M.IDENTITY.commercial },
  secrets = { "client_secret", "cert_password" },
  files = { client_secret_file = "client_secret", cert_password_file = "cert_password" },
  -- A layer that names the Insights URL or region replaces both from the
  -- layers below; the same for a certificate against a secret.
  groups = {
    insights_url = "endpoint", insights_region = "endpoint",
    cert = "cred", key = "cred", cert_password = "cred", cert_password_file = "cred",
    client_secret = "cred", client_secret_file = "cred",
  },
  -- The environment's certificate password goes with the file's certificate.
  attached = { cert_password = true, cert_password_file = true },
  url = "insights_url",
  url_example = "https://graph-us.avepointonlineservices.com/insights",
  credentials = { "client_id", "cert", "client_secret", "scope" },
  credential_urls = { "insights_url", "identity_url" },
  exclusive = { { "client_secret", "client_secret_file" }, { "cert_password", "cert_password_file" } },
  -- What a first profile needs, each entry one key or its alternatives (`auditrun config` shows it).
  setup = { { "insights_region", "insights_url" }, { "client_id" }, { "cert", "client_secret" } },
  resolve = resolve,
}

return M
