"""What a browser would make of summary.html, read with Python's own HTML
parser: the tags used, any event-handler or URL attributes, the text of
each element with an id, each table's rows (cell texts) and its data-rows
attribute, and the whole text. Printed as JSON. Usage: python3 page.py FILE"""
import json
import sys
from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.bad_attrs, self.ids, self.tables = set(), [], {}, {}
        self.text, self.open_ids, self.table, self.row, self.cell = [], [], None, None, None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        a = dict(attrs)
        for k, v in attrs:
            if k.startswith("on") or k in ("src", "href", "srcset", "action", "formaction"):
                self.bad_attrs.append(k)
        if "id" in a and tag != "table":
            self.open_ids.append([tag, a["id"], []])
        if tag == "table":
            self.table = a.get("id")
            self.tables[self.table] = {"data_rows": a.get("data-rows"), "rows": []}
        elif tag == "tr" and self.table is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if self.open_ids and self.open_ids[-1][0] == tag:
            _, ident, parts = self.open_ids.pop()
            self.ids[ident] = "".join(parts)
        if tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.row:
                self.tables[self.table]["rows"].append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        self.text.append(data)
        for o in self.open_ids:
            o[2].append(data)
        if self.cell is not None:
            self.cell.append(data)


p = Page()
p.feed(open(sys.argv[1], encoding="utf-8").read())
p.close()
# The first row of each table is its header.
tables = {k: {"data_rows": v["data_rows"], "rows": v["rows"][1:], "header": v["rows"][:1]} for k, v in p.tables.items()}
print(json.dumps({"tags": sorted(p.tags), "bad_attrs": p.bad_attrs, "ids": p.ids, "tables": tables,
                  "text": "".join(p.text)}))
