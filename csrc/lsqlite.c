/* lsqlite.c: SQLite databases for Lua, through libsqlite3, wrapped by the
 * auditrun.sqlite module. Errors are values of kind "sqlite" (nil, err),
 * never raised.
 *
 * A database is an object holding its connection; a statement is prepared
 * once and run many times (bind, step, reset in one call), so a table of
 * millions of rows is written without building SQL text for each.
 *
 *   db = core.sqlite_open(path)          -> db | nil, err
 *   db:exec(sql)                         -> true | nil, err (many statements)
 *   st = db:prepare(sql)                 -> statement | nil, err
 *   st:run(values, n)                    -> true | nil, err: binds values[1..n]
 *                                           (nil is NULL), steps once, resets
 *   st:bind(values, n)                   -> true | nil, err
 *   st:step()                            -> row (a list of n values, NULL as
 *                                           nil), or false when done (reset) |
 *                                           nil, err
 *   st:columns()                         -> the result's column names
 *   st:close(), db:close()               -> also at __gc and __close
 */
#include <sqlite3.h>
#include <string.h>

#include "lcore.h"

#define DB_META "auditrun.sqlite"
#define STMT_META "auditrun.sqlite.statement"

typedef struct {
  sqlite3 *db;
} sqlite_db;

typedef struct {
  sqlite3_stmt *stmt;
  int db_ref;  /* keeps the database alive while the statement is */
} sqlite_stmt;

static int fail_db(lua_State *L, sqlite3 *db, const char *what) {
  char msg[CORE_ERRLEN];
  snprintf(msg, sizeof msg, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
  return core_fail(L, "sqlite", msg);
}

static sqlite_db *checkdb(lua_State *L) {
  sqlite_db *d = luaL_checkudata(L, 1, DB_META);
  if (!d->db) luaL_error(L, "attempt to use a closed database");
  return d;
}

static sqlite_stmt *checkstmt(lua_State *L) {
  sqlite_stmt *s = luaL_checkudata(L, 1, STMT_META);
  if (!s->stmt) luaL_error(L, "attempt to use a closed statement");
  return s;
}

/* sqlite_open(path) -> db | nil, err. A busy database is waited for up to
 * five seconds before the error. */
static int db_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sqlite_db *d = lua_newuserdatauv(L, sizeof *d, 0);
  d->db = NULL;
  luaL_setmetatable(L, DB_META);
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    int n = fail_db(L, db, path);
    sqlite3_close(db);
    return n;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_extended_result_codes(db, 1);
  d->db = db;
  return 1;
}

static int db_close(lua_State *L) {
  sqlite_db *d = luaL_checkudata(L, 1, DB_META);
  if (d->db) {
    /* Statements left open are finalised with the connection. */
    sqlite3_close_v2(d->db);
    d->db = NULL;
  }
  return 0;
}

static int db_exec(lua_State *L) {
  sqlite_db *d = checkdb(L);
  const char *sql = luaL_checkstring(L, 2);
  char *err = NULL;
  if (sqlite3_exec(d->db, sql, NULL, NULL, &err) != SQLITE_OK) {
    char msg[CORE_ERRLEN];
    snprintf(msg, sizeof msg, "%s", err ? err : sqlite3_errmsg(d->db));
    sqlite3_free(err);
    return core_fail(L, "sqlite", msg);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int db_prepare(lua_State *L) {
  sqlite_db *d = checkdb(L);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  sqlite_stmt *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->stmt = NULL;
  s->db_ref = LUA_NOREF;
  luaL_setmetatable(L, STMT_META);
  if (sqlite3_prepare_v2(d->db, sql, (int)len, &s->stmt, NULL) != SQLITE_OK) return fail_db(L, d->db, "prepare");
  lua_pushvalue(L, 1);
  s->db_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

static int stmt_close(lua_State *L) {
  sqlite_stmt *s = luaL_checkudata(L, 1, STMT_META);
  if (s->stmt) {
    sqlite3_finalize(s->stmt);
    s->stmt = NULL;
  }
  if (s->db_ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, s->db_ref);
    s->db_ref = LUA_NOREF;
  }
  return 0;
}

/* Binds t[1..n] (the table at index 2) to the statement's parameters. */
static int bind_values(lua_State *L, sqlite_stmt *s) {
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luaL_optinteger(L, 3, (lua_Integer)lua_rawlen(L, 2));
  sqlite3 *db = sqlite3_db_handle(s->stmt);
  if (n != sqlite3_bind_parameter_count(s->stmt)) {
    char msg[128];
    snprintf(msg, sizeof msg, "the statement takes %d values, not %d", sqlite3_bind_parameter_count(s->stmt), n);
    return core_fail(L, "sqlite", msg);
  }
  for (int i = 1; i <= n; i++) {
    int rc;
    switch (lua_rawgeti(L, 2, i)) {
      case LUA_TNIL:
        rc = sqlite3_bind_null(s->stmt, i);
        break;
      case LUA_TBOOLEAN:
        rc = sqlite3_bind_int(s->stmt, i, lua_toboolean(L, -1));
        break;
      case LUA_TNUMBER:
        if (lua_isinteger(L, -1)) rc = sqlite3_bind_int64(s->stmt, i, (sqlite3_int64)lua_tointeger(L, -1));
        else rc = sqlite3_bind_double(s->stmt, i, lua_tonumber(L, -1));
        break;
      case LUA_TSTRING: {
        size_t len;
        const char *text = lua_tolstring(L, -1, &len);
        rc = sqlite3_bind_text64(s->stmt, i, text, len, SQLITE_TRANSIENT, SQLITE_UTF8);
        break;
      }
      default:
        /* lua-cjson's null (a light userdata) is NULL too. */
        if (lua_islightuserdata(L, -1)) {
          rc = sqlite3_bind_null(s->stmt, i);
          break;
        }
        return luaL_error(L, "value %d: a %s cannot be stored", i, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    if (rc != SQLITE_OK) return fail_db(L, db, "bind");
  }
  return 0;
}

static int stmt_bind(lua_State *L) {
  sqlite_stmt *s = checkstmt(L);
  sqlite3_reset(s->stmt);
  int n = bind_values(L, s);
  if (n) return n;
  lua_pushboolean(L, 1);
  return 1;
}

static int stmt_run(lua_State *L) {
  sqlite_stmt *s = checkstmt(L);
  int n = bind_values(L, s);
  if (n) {
    sqlite3_reset(s->stmt);
    return n;
  }
  int rc = sqlite3_step(s->stmt);
  sqlite3_reset(s->stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return fail_db(L, sqlite3_db_handle(s->stmt), "insert");
  lua_pushboolean(L, 1);
  return 1;
}

static int stmt_step(lua_State *L) {
  sqlite_stmt *s = checkstmt(L);
  int rc = sqlite3_step(s->stmt);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(s->stmt);
    lua_pushboolean(L, 0);
    return 1;
  }
  if (rc != SQLITE_ROW) {
    int n = fail_db(L, sqlite3_db_handle(s->stmt), "query");
    sqlite3_reset(s->stmt);
    return n;
  }
  int cols = sqlite3_column_count(s->stmt);
  lua_createtable(L, cols, 0);
  for (int i = 0; i < cols; i++) {
    switch (sqlite3_column_type(s->stmt, i)) {
      case SQLITE_NULL:
        continue;
      case SQLITE_INTEGER:
        lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(s->stmt, i));
        break;
      case SQLITE_FLOAT:
        lua_pushnumber(L, sqlite3_column_double(s->stmt, i));
        break;
      default: {
        const unsigned char *text = sqlite3_column_text(s->stmt, i);
        lua_pushlstring(L, (const char *)text, (size_t)sqlite3_column_bytes(s->stmt, i));
        break;
      }
    }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* Where the statement of the userdata at idx is kept, for the other
 * bindings: it holds NULL once the statement is closed. */
sqlite3_stmt **lsqlite_stmt_slot(lua_State *L, int idx) {
  sqlite_stmt *s = luaL_checkudata(L, idx, STMT_META);
  if (!s->stmt) luaL_error(L, "attempt to use a closed statement");
  return &s->stmt;
}

static int stmt_columns(lua_State *L) {
  sqlite_stmt *s = checkstmt(L);
  int cols = sqlite3_column_count(s->stmt);
  lua_createtable(L, cols, 0);
  for (int i = 0; i < cols; i++) {
    lua_pushstring(L, sqlite3_column_name(s->stmt, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

int lsqlite_open(lua_State *L) {
  /* No memory statistics: they take a global mutex on every allocation
   * (a table of millions of rows makes tens of millions). It can only be
   * set before SQLite's first use in the process; later it stays as it is. */
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  static const luaL_Reg db_methods[] = {
      {"close", db_close}, {"exec", db_exec}, {"prepare", db_prepare}, {NULL, NULL}};
  static const luaL_Reg stmt_methods[] = {{"bind", stmt_bind},       {"close", stmt_close}, {"columns", stmt_columns},
                                          {"run", stmt_run},         {"step", stmt_step},   {NULL, NULL}};
  static const luaL_Reg fns[] = {{"sqlite_open", db_open}, {NULL, NULL}};
  core_newmeta(L, DB_META, db_methods, db_close);
  core_newmeta(L, STMT_META, stmt_methods, stmt_close);
  luaL_setfuncs(L, fns, 0);
  lua_pushstring(L, sqlite3_libversion());
  lua_setfield(L, -2, "sqlite_version");
  return 0;
}
