"""The access rows of the reports an export run's manifest lists, read with
Python's own zipfile, XML parser and csv module (independently of
auditrun.sheets), as
tab-separated lines: report file, row number in the report, permission,
object URL (or location). An access sheet is one whose header has a
permission (or role) column. Usage: python3 access_rows.py DIR"""
import csv
import io
import json
import re
import sys
import xml.etree.ElementTree as ET
import zipfile

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def col(ref):
    n = 0
    for ch in re.match(r"[A-Z]+", ref).group(0):
        n = n * 26 + ord(ch) - 64
    return n


def sheet_rows(book, name, strings):
    for _, el in ET.iterparse(book.open(name)):
        if el.tag != NS + "row":
            continue
        row = {}
        for c in el.findall(NS + "c"):
            t = c.get("t")
            if t == "inlineStr":
                v = "".join(x.text or "" for x in c.iter(NS + "t"))
            else:
                v = c.findtext(NS + "v")
                if v is not None and t == "s":
                    v = strings[int(v)]
            if v not in (None, ""):
                row[col(c.get("r"))] = v
        el.clear()
        yield row


def csv_rows(data):
    for r in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")):
        yield {i + 1: v for i, v in enumerate(r) if v != ""}


def member_sheets(z, member):
    """The sheets of one member of a report: each an iterator over rows."""
    if member.lower().endswith(".csv"):
        yield csv_rows(z.read(member))
        return
    book = zipfile.ZipFile(io.BytesIO(z.read(member)))
    strings = []
    if "xl/sharedStrings.xml" in book.namelist():
        root = ET.fromstring(book.read("xl/sharedStrings.xml"))
        strings = ["".join(t.text or "" for t in si.iter(NS + "t")) for si in root.findall(NS + "si")]
    sheets = sorted((m for m in book.namelist() if re.match(r"xl/worksheets/sheet\d+\.xml$", m)),
                    key=lambda m: int(re.search(r"(\d+)\.xml$", m).group(1)))
    for sheet in sheets:
        yield sheet_rows(book, sheet, strings)


def main(folder):
    for line in open(folder + "/manifest.jsonl"):
        entry = json.loads(line)
        n = 0
        with zipfile.ZipFile(folder + "/" + entry["file"]) as z:
            for member in z.namelist():
                if not member.lower().endswith((".xlsx", ".csv")):
                    continue
                for rows in member_sheets(z, member):
                    header = next(rows, {})
                    names = {v.lower(): k for k, v in header.items()}
                    perm = names.get("permission", names.get("role"))
                    if perm is None:
                        continue
                    url = names.get("url", names.get("objecturl", names.get("location", names.get("file id"))))
                    for row in rows:
                        if not row:
                            continue
                        n += 1
                        print("\t".join([entry["file"], str(n), row.get(perm, ""), row.get(url, "")]))


main(sys.argv[1])
