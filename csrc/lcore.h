/* lcore.h: what the Lua binding files (l*.c) share. */
#ifndef AUDITRUN_LCORE_H
#define AUDITRUN_LCORE_H

#include <lauxlib.h>
#include <lua.h>

#include "loop.h"

#define CORE_ERRLEN 512

/* Set when no request may be made at all (SSLKEYLOGFILE outside a lab):
 * every request fails with this message, kind "tls". */
extern char http_refusal[CORE_ERRLEN];

/* Push nil and an error value {kind=, message=} and return 2. */
int core_fail(lua_State *L, const char *kind, const char *message);
/* The loop, raising a Lua error if it cannot be created. */
loop *core_loop(lua_State *L);
/* Keep the userdata at idx alive while the loop owns `it`. */
void core_track(lua_State *L, int idx, loop_item *it);
void core_untrack(lua_State *L, loop_item *it);

/* Sets the named metatable, built once, with methods and __gc/__close/__index. */
void core_newmeta(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc);

/* The fd of the temporary file (auditrun.tempfile) at idx: -2 when idx is
 * not one, -1 when it is closed. */
int lfsio_tofd(lua_State *L, int idx);

int lloop_open(lua_State *L);
int lfsio_open(lua_State *L);
int lhttp_open(lua_State *L);
int ljwt_open(lua_State *L);
int ldigest_open(lua_State *L);
int lsqlite_open(lua_State *L);
int lcsv_open(lua_State *L);
int ljson_open(lua_State *L);
int ltime_open(lua_State *L);
int lmerge_open(lua_State *L);

/* Where the prepared statement of the userdata at idx is kept (lsqlite.c):
 * NULL there once it is closed. Raises when it is not an open one. */
struct sqlite3_stmt;
struct sqlite3_stmt **lsqlite_stmt_slot(lua_State *L, int idx);

#endif
