"""The peer for `make bench`'s Insights paging: every Graph group summary,
100 a page by startPage until a short page, with one requests.Session (a
client-credentials token first); prints how many.

  peer_groups.py INSIGHTS_URL TOKEN_URL CLIENT_ID SECRET SCOPE CA
"""
import sys

import requests

base, token_url, client_id, secret, scope, ca = sys.argv[1:7]
s = requests.Session()
s.trust_env = False  # else REQUESTS_CA_BUNDLE silently replaces verify=
tok = s.post(token_url, verify=ca, data={"grant_type": "client_credentials", "client_id": client_id,
                                         "client_secret": secret, "scope": scope}).json()["access_token"]
headers = {"Authorization": "Bearer " + tok}
n, page = 0, 1
while True:
    r = s.get(base + "/groups/summary", verify=ca, headers=headers, params={"startPage": page, "pageSize": 100})
    r.raise_for_status()
    rows = r.json()["values"]
    n += sum(1 for g in rows if g.get("groupId") is not None)
    if len(rows) < 100:
        break
    page += 1
print(n)
