-- auditrun.sqlite: SQLite databases, through libsqlite3 bound in the C core
-- (csrc/lsqlite.c). Statements are prepared once and run for each row, so
-- tables of millions of rows are written at the speed of SQLite itself.
--
--   local db = auditrun.try(sqlite.open("access.sqlite"))
--   local insert = auditrun.try(db:prepare("insert into t values (?, ?)"))
--   auditrun.try(insert:run({ "a", 1 }, 2))
--   for row in db:rows("select a, b from t where b > ?", { 0 }) do print(row.a, row.b) end
--   db:close()
--
-- Values: strings are TEXT, integers INTEGER, other numbers REAL, booleans
-- 1 or 0, nil (and JSON null) NULL. Errors are values of kind "sqlite".
local core = require("auditrun.core")
local errors = require("auditrun.errors")
local files = require("auditrun.files")

local M = {}

M.version = core.sqlite_version

local Database = {}
Database.__index = Database

--- open(path) -> database | nil, err. A new file is created private to its
--- owner (as every file auditrun writes), never through a symlink.
--- ":memory:" is a database of this process's memory alone.
function M.open(path)
  if path ~= ":memory:" and not files.exists(path) then
    local ok, err = files.write_atomic(path, "")
    if not ok then return nil, err end
  end
  local db, err = core.sqlite_open(path)
  if not db then return nil, err end
  return setmetatable({ db = db, path = path }, Database)
end

--- exec(sql) -> true | nil, err: one or more statements, no values.
function Database:exec(sql)
  return self.db:exec(sql)
end

--- prepare(sql) -> statement | nil, err: st:run(values, n) binds values[1..n],
--- runs it once and resets it; st:close() when done.
function Database:prepare(sql)
  return self.db:prepare(sql)
end

--- rows(sql, values) -> iterator over the result rows, each a table by
--- column name. Raises an error value on a bad query.
function Database:rows(sql, values)
  local st = errors.try(self.db:prepare(sql))
  if values then errors.try(st:bind(values, #values)) end
  local names = st:columns()
  return function()
    local row = st and errors.try(st:step())
    if not row then
      if st then st:close() end
      st = nil
      return nil
    end
    local out = {}
    for i, name in ipairs(names) do out[name] = row[i] end
    return out
  end
end

--- value(sql, values) -> the first column of the first row (or nil).
function Database:value(sql, values)
  local st = errors.try(self.db:prepare(sql))
  if values then errors.try(st:bind(values, #values)) end
  local row = errors.try(st:step())
  st:close()
  return row and row[1]
end

function Database:close()
  self.db:close()
end
Database.__close = Database.close

return M
