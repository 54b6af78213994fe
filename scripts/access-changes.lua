-- Compares two export runs' access tables and writes what changed (added, removed) to a CSV
local auditrun = require("auditrun")
local access = require("auditrun.access")
local cli = require("auditrun.cli")
local files = require("auditrun.files")
local sqlite = require("auditrun.sqlite")

local opts = cli.parse({
  name = "access-changes",
  summary = "Compares two export runs' access tables and writes what changed (added, removed) to a CSV.",
  description = "OLD and NEW are the --out folders of two runs of an access workflow (external-group-access, "
    .. "guest-access, user-access, site-permissions, sharing-links), or their access.sqlite files. An access is a "
    .. "group (the export's subject), a principal (its e-mail, else its name), an object URL and a permission; "
    .. "each one only NEW has is 'added', each one only OLD has is 'removed'. The counts are printed at the end.",
  examples = {
    "auditrun access-changes 2026-11/ 2026-12/",
    "auditrun access-changes old/access.sqlite new/access.sqlite --out what-changed.csv",
  },
  flags = function(p)
    p:argument("old", "The earlier run's --out folder (or its access.sqlite).")
    p:argument("new", "The later run's --out folder (or its access.sqlite).")
    p:option("--out", "The CSV the changes go to (replaced whole).", access.CHANGES):argname("FILE")
  end,
}, ...)

local old = auditrun.try(access.table_of(opts.old))
local new = auditrun.try(access.table_of(opts.new))
local db <close> = auditrun.try(sqlite.open(":memory:"))
access.attach(db, new, "new")
access.attach(db, old, "old")
local changes = access.compare(db, "new", "old", opts.out)
auditrun.try(files.put_in_place(changes.tmp, opts.out))
print(string.format("access-changes: %d added, %d removed from %s to %s: %s", changes.added, changes.removed,
  opts.old, opts.new, opts.out))
