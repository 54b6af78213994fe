/* lfsio.c: crash-safe file primitives for Lua. Each returns true, or nil
 * and an error value of kind "file" ("exists" when a rename would replace,
 * "locked" when another process holds a lock). */
#include <limits.h>
#include <unistd.h>

#include "fsio.h"
#include "lcore.h"

static int result(lua_State *L, int rc, const char *err) {
  if (rc == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return core_fail(L, rc > 0 ? "exists" : "file", err);
}

static int mkdirs(lua_State *L) {
  char err[CORE_ERRLEN];
  return result(L, fsio_mkdirs(luaL_checkstring(L, 1), err, sizeof err), err);
}

static int write_atomic(lua_State *L) {
  char err[CORE_ERRLEN];
  size_t len;
  const char *path = luaL_checkstring(L, 1);
  const char *data = luaL_checklstring(L, 2, &len);
  return result(L, fsio_write_atomic(path, data, len, err, sizeof err), err);
}

static int temp_beside(lua_State *L) {
  char err[CORE_ERRLEN], out[PATH_MAX];
  if (fsio_temp_beside(luaL_checkstring(L, 1), out, sizeof out, err, sizeof err) != 0)
    return core_fail(L, "file", err);
  lua_pushstring(L, out);
  return 1;
}

static int fsync_file(lua_State *L) {
  char err[CORE_ERRLEN];
  return result(L, fsio_fsync_file(luaL_checkstring(L, 1), err, sizeof err), err);
}

static int fsync_dir_of(lua_State *L) {
  char err[CORE_ERRLEN];
  return result(L, fsio_fsync_dir_of(luaL_checkstring(L, 1), err, sizeof err), err);
}

static int rename_noreplace(lua_State *L) {
  char err[CORE_ERRLEN];
  const char *from = luaL_checkstring(L, 1), *to = luaL_checkstring(L, 2);
  return result(L, fsio_rename_noreplace(from, to, err, sizeof err), err);
}

static int remove_parts(lua_State *L) {
  char err[CORE_ERRLEN];
  int n = fsio_remove_parts(luaL_checkstring(L, 1), err, sizeof err);
  if (n < 0) return core_fail(L, "file", err);
  lua_pushinteger(L, n);
  return 1;
}

/* A held lock: the fd, -1 once closed. */
#define LOCK_META "auditrun.lock"
typedef struct {
  int fd;
} file_lock;

static int lock_close(lua_State *L) {
  file_lock *l = luaL_checkudata(L, 1, LOCK_META);
  if (l->fd >= 0) {
    int fd = l->fd;
    l->fd = -1;
    close(fd);
  }
  return 0;
}

static int lock_file(lua_State *L) {
  char err[CORE_ERRLEN];
  const char *path = luaL_checkstring(L, 1);
  file_lock *l = lua_newuserdatauv(L, sizeof *l, 0);
  int fd;
  l->fd = -1;
  luaL_setmetatable(L, LOCK_META);
  fd = fsio_lock(path, err, sizeof err);
  if (fd < 0) return core_fail(L, fd == -2 ? "locked" : "file", err);
  l->fd = fd;
  return 1;
}

int lfsio_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"close", lock_close}, {NULL, NULL}};
  static const luaL_Reg fns[] = {{"fsync_dir_of", fsync_dir_of}, {"fsync_file", fsync_file},
                                 {"lock", lock_file},            {"mkdirs", mkdirs},
                                 {"remove_parts", remove_parts}, {"rename_noreplace", rename_noreplace},
                                 {"temp_beside", temp_beside},   {"write_atomic", write_atomic},
                                 {NULL, NULL}};
  core_newmeta(L, LOCK_META, methods, lock_close);
  luaL_setfuncs(L, fns, 0);
  return 0;
}
