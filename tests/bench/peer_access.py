"""The access table bench's peer: Python's zipfile, csv and sqlite3 build
the same table auditrun does (access.sqlite: the same columns, the report's
other columns as JSON in extra, the same three indexes) from the reports
an export run's manifest lists. Usage: python3 peer_access.py DIR OUT.sqlite"""
import csv
import io
import json
import os
import sqlite3
import sys
import zipfile

COLUMNS = ["group_id", "group_name", "object_title", "object_url", "object_type", "permission", "via", "principal",
           "principal_email", "principal_type", "external", "report_file", "report_row", "extra"]
FIELDS = {"group": "group_name", "name": "object_title", "url": "object_url", "objecttype": "object_type",
          "permission": "permission", "inherittype": "via"}


def main(folder, out):
    if os.path.exists(out):
        os.remove(out)
    db = sqlite3.connect(out)
    db.execute("pragma journal_mode = off")
    db.execute("pragma synchronous = off")
    db.execute("create table access (%s, primary key (report_file, report_row))" % ", ".join(COLUMNS))
    insert = "insert into access values (%s)" % ", ".join("?" * len(COLUMNS))
    for line in open(os.path.join(folder, "manifest.jsonl")):
        entry = json.loads(line)
        with zipfile.ZipFile(os.path.join(folder, entry["file"])) as z:
            for member in z.namelist():
                if not member.lower().endswith(".csv"):
                    continue
                reader = csv.reader(io.TextIOWrapper(z.open(member), encoding="utf-8-sig", newline=""))
                header = next(reader)
                at = {FIELDS[h.lower()]: i for i, h in enumerate(header) if h.lower() in FIELDS}
                others = [(i, h) for i, h in enumerate(header) if h.lower() not in FIELDS]

                def rows():
                    for n, r in enumerate(reader, 1):
                        get = lambda f: r[at[f]] if f in at and r[at[f]] != "" else None
                        name = get("group_name")
                        extra = {h: r[i] for i, h in others if r[i] != ""}
                        yield (entry["subjects"][0], name, get("object_title"), get("object_url"), get("object_type"),
                               get("permission"), get("via"), name, None, "Group", 1, entry["file"], n,
                               json.dumps(extra) if extra else None)
                db.executemany(insert, rows())
    db.execute("create index access_principal_email on access (principal_email)")
    db.execute("create index access_object_url on access (object_url)")
    db.execute("create index access_group_id on access (group_id)")
    db.commit()
    db.close()


main(sys.argv[1], sys.argv[2])
