"""The peer for `make bench`'s activity figures: the same pages auditrun's
dealcloud-activity and exavault-sessions workflows ask for, with one
requests.Session, written as JSON Lines the same way (DealCloud rows with
their ip as a dotted quad, cut to the exact range, the end second included;
ExaVault items flattened).

  peer_activity.py dealcloud BASE CA CLIENT_ID SECRET FROM TO OUT
  peer_activity.py exavault BASE CA API_KEY TOKEN OUT
"""
import datetime as dt
import json
import sys

import requests

DAY = 86400


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(s):
    s = s.rstrip("Z")
    if "." in s:
        whole, frac = s.split(".")
        return dt.datetime.fromisoformat(whole).replace(tzinfo=dt.timezone.utc).timestamp() + float("0." + frac)
    return dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc).timestamp()


def dotted(n):
    return "%d.%d.%d.%d" % (n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255)


def dealcloud(base, ca, client_id, secret, start, end, out):
    s = requests.Session()
    s.trust_env = False  # else REQUESTS_CA_BUNDLE silently replaces verify=
    tok = s.post(base + "/api/rest/v1/oauth/token", verify=ca, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": "user_management"}).json()["access_token"]
    headers = {"Authorization": "Bearer " + tok}
    frm, to = parse(start), parse(end) + 1   # --to names the last second wanted
    with open(out, "w") as f:
        ws = frm
        while ws < to:
            day = ws - ws % DAY
            we = min(day + 90 * DAY, to)
            send_to = max(we if we % DAY == 0 else we - we % DAY + DAY, day + DAY)
            page, seen = 1, 0
            while True:
                r = s.post(base + "/api/rest/v1/management/user/activity", verify=ca, headers=headers,
                           params={"pageNumber": page, "pageSize": 1000},
                           json={"dateFrom": iso(day), "dateTo": iso(send_to)})
                r.raise_for_status()
                body = r.json()
                rows = body["rows"]
                if not rows:
                    break
                seen += len(rows)
                for row in rows:
                    t = parse(row["eventDate"])
                    if ws <= t < we:
                        if "ipAddress" in row:
                            row["ip"] = dotted(row["ipAddress"])
                        f.write(json.dumps(row) + "\n")
                if seen >= body["totalRecords"]:
                    break
                page += 1
            ws = we


def exavault(base, ca, key, token, out):
    s = requests.Session()
    s.trust_env = False
    headers = {"ev-api-key": key, "ev-access-token": token}
    offset, longest = 0, 0
    with open(out, "w") as f:
        while True:
            r = s.get(base + "/activity/session", verify=ca, headers=headers,
                      params={"offset": offset, "limit": 1000, "sort": "date"})
            r.raise_for_status()
            data = r.json()["data"]
            for item in data:
                row = dict(item["attributes"])
                row["id"], row["type"] = item["id"], item["type"]
                f.write(json.dumps(row) + "\n")
            if not data or len(data) < longest:
                break
            longest = max(longest, len(data))
            offset += len(data)


if __name__ == "__main__":
    if sys.argv[1] == "dealcloud":
        dealcloud(*sys.argv[2:9])
    else:
        exavault(*sys.argv[2:7])
