/* lcore.c: the private module auditrun.core: its entry point, the error
 * value every binding returns, and the helpers the l*.c files share. */
#define _GNU_SOURCE
#include "lcore.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <stdio.h>
#include <string.h>

#include "jwt.h"
#include "exitcode.h"
#include "version.h"

#define ERROR_META "auditrun.error"

char http_refusal[CORE_ERRLEN];

static int error_tostring(lua_State *L) {
  const char *kind, *msg;
  lua_getfield(L, 1, "kind");
  lua_getfield(L, 1, "message");
  kind = lua_tostring(L, -2);
  msg = lua_tostring(L, -1);
  lua_pushfstring(L, "%s: %s", kind ? kind : "error", msg ? msg : "(no message)");
  return 1;
}

int core_fail(lua_State *L, const char *kind, const char *message) {
  lua_pushnil(L);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  luaL_setmetatable(L, ERROR_META);
  return 2;
}

loop *core_loop(lua_State *L) {
  char err[CORE_ERRLEN];
  loop *lp = loop_get(err, sizeof err);
  if (!lp) luaL_error(L, "%s", err);
  return lp;
}

void core_track(lua_State *L, int idx, loop_item *it) {
  lua_pushvalue(L, idx);
  it->ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void core_untrack(lua_State *L, loop_item *it) {
  if (it->ref != LUA_NOREF && it->ref != LUA_REFNIL) {
    luaL_unref(L, LUA_REGISTRYINDEX, it->ref);
  }
  it->ref = LUA_NOREF;
}

void core_newmeta(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
}

/* Error values read as strings where scripts treat them so:
 * "failed: " .. err, err:match(...), err:lower(). Their own fields come
 * first; a missing key that names a string method gives that method,
 * applied to the error's one line. */
static int error_concat(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  luaL_tolstring(L, 2, NULL);
  lua_concat(L, 2);
  return 1;
}

static int error_string_method(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  lua_replace(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static int error_index(lua_State *L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  lua_pushliteral(L, "");
  if (luaL_getmetafield(L, -1, "__index") != LUA_TTABLE) return 0;
  if (lua_getfield(L, -1, lua_tostring(L, 2)) != LUA_TFUNCTION) return 0;
  lua_pushcclosure(L, error_string_method, 1);
  return 1;
}

/* Error values are made here and in Lua (auditrun.errors) with one
 * metatable, so tostring() reads the same everywhere. */
static int core_error(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setmetatable(L, ERROR_META);
  return 1;
}

/* Process-wide state ends with the Lua state that loaded the core: a
 * finaliser in the registry runs at lua_close. */
static int core_release(lua_State *L) {
  (void)L;
  loop_shutdown();
  jwt_shutdown();
  curl_global_cleanup();
  return 0;
}

/* libcurl writes TLS session keys to $SSLKEYLOGFILE, which it opens when
 * it initialises: anyone who reads that file reads every token. Unless
 * AUDITRUN_LAB=1, the variable is removed before libcurl sees it and every
 * request is refused (lhttp.c), so the run stops with a clear line rather
 * than leak or silently ignore it. In a lab the file is created 0600 first
 * (libcurl would make it 0644) and a warning says where the keys go. */
static void keylog_check(void) {
  const char *path = getenv("SSLKEYLOGFILE");
  const char *lab = getenv("AUDITRUN_LAB");
  if (!path || !*path) return;
  if (lab && strcmp(lab, "1") == 0) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    fprintf(stderr, "auditrun: warning: SSLKEYLOGFILE is set (AUDITRUN_LAB=1): TLS session keys are written to %s\n",
            path);
    return;
  }
  snprintf(http_refusal, sizeof http_refusal,
           "SSLKEYLOGFILE is set: TLS session keys would be written to %.200s; unset it "
           "(AUDITRUN_LAB=1 allows it for a lab)", path);
  unsetenv("SSLKEYLOGFILE");
}

static const lua_CFunction opens[] = {lfsio_open, lhttp_open, ljwt_open, ldigest_open, lloop_open, lsqlite_open, lcsv_open, ljson_open,
                                       ltime_open, lmerge_open, NULL};

/* The exit codes Lua sees as core.EXIT_<name>. */
static const struct exit_code {
  const char *name;
  int code;
} exit_codes[] = {
  {"EXIT_FAILURE", AUDITRUN_EXIT_FAILURE},
  {"EXIT_USAGE", AUDITRUN_EXIT_USAGE},
  {"EXIT_INCOMPLETE", AUDITRUN_EXIT_INCOMPLETE},
  {"EXIT_INTERRUPTED", AUDITRUN_EXIT_INTERRUPTED},
  {NULL, 0},
};

int luaopen_auditrun_core(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"error", core_error}, {NULL, NULL}};
  if (luaL_getmetatable(L, "auditrun.release") == LUA_TNIL) {
    /* Stay loaded until the process ends: lua_close would dlclose us, and
     * with us libcurl and OpenSSL, whose own exit handlers still run later
     * (and whose process-wide state would look leaked to the sanitizers). */
    Dl_info self;
    if (dladdr((void *)luaopen_auditrun_core, &self) && self.dli_fname)
      (void)dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE);
    keylog_check();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return luaL_error(L, "cannot initialise libcurl");
    lua_pop(L, 1);
    lua_newuserdatauv(L, 0, 0);
    luaL_newmetatable(L, "auditrun.release");
    lua_pushcfunction(L, core_release);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "auditrun.release.sentinel");
  } else {
    lua_pop(L, 1);
  }
  luaL_newmetatable(L, ERROR_META);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, error_concat);
  lua_setfield(L, -2, "__concat");
  lua_pushcfunction(L, error_index);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, "auditrun.error");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  lua_pushliteral(L, AUDITRUN_VERSION);
  lua_setfield(L, -2, "version");
  /* curl_version_info, not curl_version(): the latter initialises OpenLDAP
   * and SASL just to name their versions, some 4 ms of every start-up. */
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");
  lua_pushstring(L, jwt_openssl_version());
  lua_setfield(L, -2, "openssl_version");
  for (const struct exit_code *e = exit_codes; e->name; e++) {
    lua_pushinteger(L, e->code);
    lua_setfield(L, -2, e->name);
  }
  for (const lua_CFunction *f = opens; *f; f++) {
    lua_pushcfunction(L, *f);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 0);  /* each adds its functions to the module table */
  }
  return 1;
}
