"""Writes an export run's folder for the access table bench: N report zips
(GroupAccessReport_<i>.zip), each one CSV member with a summary-free access
sheet of ROWS rows in the group access report's columns, and the
manifest.jsonl that lists them. Usage: python3 access_reports.py DIR N ROWS"""
import io
import json
import os
import random
import sys
import zipfile

COLUMNS = ["group", "module", "name", "url", "objectType", "permission", "inheritType"]
MODULES = ["Microsoft Teams", "SharePoint Online", "OneDrive", "Microsoft 365 Group"]
TYPES = ["File", "Folder", "Library", "Site"]
PERMISSIONS = ["Read", "Edit", "Contribute", "Full Control", "Design"]


def main(folder, reports, rows):
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(42)
    with open(os.path.join(folder, "manifest.jsonl"), "w") as manifest:
        for i in range(reports):
            group = "Group %d" % i
            gid = "%08d-0000-4000-8000-%012d" % (i, i)
            out = io.StringIO(newline="")
            out.write("\ufeff" + ",".join(COLUMNS) + "\r\n")
            for r in range(rows):
                site = rng.randrange(300)
                out.write("%s,%s,doc-%d.docx,https://tenant.sharepoint.com/sites/site%d/shared documents/doc-%d.docx,"
                          "%s,%s,%s\r\n" % (group, rng.choice(MODULES), r, site, r, rng.choice(TYPES),
                                            rng.choice(PERMISSIONS), "Unique" if r % 3 else "Inherited"))
            name = "GroupAccessReport_%d.zip" % (5000 + i)
            with zipfile.ZipFile(os.path.join(folder, name), "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("GroupAccessReport_%d.csv" % (5000 + i), out.getvalue().encode("utf-8"))
            manifest.write(json.dumps({"kind": "group_access_export", "api": "graph", "subjects": [gid],
                                       "job_id": str(5000 + i), "file": name}) + "\n")


main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
