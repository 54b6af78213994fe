"""The peer for `make bench`: N sequential GETs with one requests.Session,
printing the CPU seconds this process spent on them."""
import sys
import time

import requests

url, ca_file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = requests.Session()
s.trust_env = False  # else REQUESTS_CA_BUNDLE silently replaces verify=
s.get(url, verify=ca_file).raise_for_status()  # warm up: connect and handshake
t0 = time.process_time()
for _ in range(n):
    r = s.get(url, verify=ca_file)
    r.raise_for_status()
    r.json()
print(time.process_time() - t0)
