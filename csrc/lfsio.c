/* lfsio.c: crash-safe file primitives for Lua. Each returns true, or nil
 * and an error value of kind "file" ("exists" when a rename would replace,
 * "locked" when another process holds a lock).
 *
 * A temporary file is an object holding its descriptor from creation to
 * naming: it is written (core.request's output), read, hashed and named
 * through that fd, never reopened by its name. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"

#include "fsio.h"
#include "lcore.h"

#define TEMP_META "auditrun.tempfile"

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

typedef struct {
  int fd;          /* -1 once closed */
  int named;       /* given its final name: closing leaves the file */
  char path[PATH_MAX];
} temp_file;

#define totemp(L) ((temp_file *)luaL_checkudata(L, 1, TEMP_META))

static temp_file *checkopentemp(lua_State *L) {
  temp_file *t = totemp(L);
  if (t->fd < 0) luaL_error(L, "attempt to use a closed temporary file");
  return t;
}

int lfsio_tofd(lua_State *L, int idx) {
  temp_file *t = luaL_testudata(L, idx, TEMP_META);
  if (!t) return -2;
  return t->fd;
}

/* temp_file(beside) -> temporary file | nil, err */
static int temp_new(lua_State *L) {
  char err[CORE_ERRLEN];
  const char *beside = luaL_checkstring(L, 1);
  temp_file *t = lua_newuserdatauv(L, sizeof *t, 0);
  t->fd = -1;
  t->named = 0;
  t->path[0] = '\0';
  luaL_setmetatable(L, TEMP_META);
  t->fd = fsio_temp_beside(beside, t->path, sizeof t->path, err, sizeof err);
  if (t->fd < 0) return core_fail(L, "file", err);
  return 1;
}

/* close, __gc and __close: an unnamed temporary file is removed. */
static int temp_close(lua_State *L) {
  temp_file *t = totemp(L);
  if (t->fd >= 0) {
    int fd = t->fd;
    struct stat mine, there;
    t->fd = -1;
    fsio_untrack_temp(t->path);
    if (!t->named && fstat(fd, &mine) == 0 && lstat(t->path, &there) == 0 &&
        mine.st_dev == there.st_dev && mine.st_ino == there.st_ino)
      unlink(t->path);
    close(fd);
  }
  return 0;
}

static int temp_path(lua_State *L) {
  lua_pushstring(L, totemp(L)->path);
  return 1;
}

static int temp_size(lua_State *L) {
  struct stat st;
  temp_file *t = checkopentemp(L);
  if (fstat(t->fd, &st) != 0) return core_fail(L, "file", strerror(errno));
  lua_pushinteger(L, (lua_Integer)st.st_size);
  return 1;
}

/* read_at(offset, n) -> up to n bytes from offset ("" at the end) */
static int temp_read_at(lua_State *L) {
  temp_file *t = checkopentemp(L);
  lua_Integer off = luaL_checkinteger(L, 2), n = luaL_checkinteger(L, 3);
  luaL_Buffer b;
  char *buf;
  ssize_t got;
  luaL_argcheck(L, off >= 0, 2, "offset must be at least 0");
  luaL_argcheck(L, n >= 0 && n <= (1 << 24), 3, "between 0 and 16 MiB");
  buf = luaL_buffinitsize(L, &b, (size_t)n);
  do got = pread(t->fd, buf, (size_t)n, (off_t)off);
  while (got < 0 && errno == EINTR);
  if (got < 0) return core_fail(L, "file", strerror(errno));
  luaL_pushresultsize(&b, (size_t)got);
  return 1;
}

static int temp_fsync(lua_State *L) {
  char err[CORE_ERRLEN];
  temp_file *t = checkopentemp(L);
  if (fsync(t->fd) != 0) {
    snprintf(err, sizeof err, "cannot sync %.400s: %s", t->path, strerror(errno));
    return core_fail(L, "file", err);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int temp_sha256(lua_State *L) {
  static const char digits[] = "0123456789abcdef";
  char err[CORE_ERRLEN], hex[64];
  unsigned char md[32];
  temp_file *t = checkopentemp(L);
  if (digest_sha256_fd(t->fd, md, err, sizeof err) != 0) return core_fail(L, "file", err);
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  lua_pushlstring(L, hex, sizeof hex);
  return 1;
}

/* link(target) -> true | nil, err ("exists"): the file gets its final name. */
static int temp_link(lua_State *L) {
  char err[CORE_ERRLEN];
  temp_file *t = checkopentemp(L);
  int rc = fsio_link_noreplace(t->fd, t->path, luaL_checkstring(L, 2), err, sizeof err);
  if (rc == 0) t->named = 1;
  return result(L, rc, err);
}

/* An io library file, as io.open makes them, over an fd we opened. */
static int stream_close(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  return luaL_fileresult(L, fclose(p->f) == 0, NULL);
}

/* open_private(path, "a"|"w") -> a Lua file | nil, message, errno: opened
 * for appending (or emptied for writing), created with the private mode,
 * never through a symlink. */
static int open_private(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "a");
  int append = mode[0] == 'a', fd;
  luaL_Stream *p;
  luaL_argcheck(L, append || mode[0] == 'w', 2, "'a' or 'w'");
  p = (luaL_Stream *)lua_newuserdatauv(L, sizeof(luaL_Stream), 0);
  p->f = NULL;
  p->closef = NULL;  /* a closed file until it is open */
  luaL_setmetatable(L, LUA_FILEHANDLE);
  fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), fsio_file_mode());
  if (fd < 0) return luaL_fileresult(L, 0, path);
  p->f = fdopen(fd, append ? "ab" : "wb");
  if (!p->f) {
    close(fd);
    return luaL_fileresult(L, 0, path);
  }
  p->closef = stream_close;
  return 1;
}

/* set_file_modes(file_mode, dir_mode): for every file and folder made from
 * now on (auditrun.files reads them from the environment). */
static int set_file_modes(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 1), d = luaL_checkinteger(L, 2);
  luaL_argcheck(L, f >= 0 && f <= 0777, 1, "a mode between 0 and 0777");
  luaL_argcheck(L, d >= 0 && d <= 0777, 2, "a mode between 0 and 0777");
  fsio_set_modes((mode_t)f, (mode_t)d);
  return 0;
}

static int fsync_file(lua_State *L) {
  char err[CORE_ERRLEN];
  return result(L, fsio_fsync_file(luaL_checkstring(L, 1), err, sizeof err), err);
}

/* file_mode(path) -> its permission bits (0644 is 420) | nil, err */
static int file_mode(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char err[CORE_ERRLEN];
  struct stat st;
  if (stat(path, &st) != 0) {
    snprintf(err, sizeof err, "cannot stat %s: %s", path, strerror(errno));
    return core_fail(L, "file", err);
  }
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  return 1;
}

/* truncate(path, length) -> true | nil, err: the file cut back in place. */
static int truncate_file(lua_State *L) {
  char err[CORE_ERRLEN];
  const char *path = luaL_checkstring(L, 1);
  lua_Integer length = luaL_checkinteger(L, 2);
  luaL_argcheck(L, length >= 0, 2, "a length of at least 0");
  return result(L, fsio_truncate(path, (off_t)length, err, sizeof err), err);
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

/* A folder being read: the DIR closed when the listing is done, or by the
 * collector when pushing a name raised. */
#define DIR_META "auditrun.dir"
typedef struct {
  DIR *d;
} dir_box;

static int dir_close(lua_State *L) {
  dir_box *b = luaL_checkudata(L, 1, DIR_META);
  if (b->d) {
    DIR *d = b->d;
    b->d = NULL;
    closedir(d);
  }
  return 0;
}

/* list_dir(path) -> {name, ...} (every entry but . and .., in no set
 * order) | nil, err */
static int list_dir(lua_State *L) {
  char err[CORE_ERRLEN];
  const char *path = luaL_checkstring(L, 1);
  dir_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  struct dirent *e;
  lua_Integer n = 0;
  int failed;
  b->d = NULL;
  luaL_setmetatable(L, DIR_META);
  if ((b->d = opendir(path)) == NULL) {
    snprintf(err, sizeof err, "cannot read the directory %s: %s", path, strerror(errno));
    return core_fail(L, "file", err);
  }
  lua_newtable(L);
  while ((errno = 0, e = readdir(b->d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  failed = errno;
  closedir(b->d);
  b->d = NULL;
  if (failed) {
    snprintf(err, sizeof err, "cannot read the directory %s: %s", path, strerror(failed));
    return core_fail(L, "file", err);
  }
  return 1;
}

static int remove_parts(lua_State *L) {
  char err[CORE_ERRLEN];
  int n = fsio_remove_parts(luaL_checkstring(L, 1), luaL_optstring(L, 2, NULL), err, sizeof err);
  if (n < 0) return core_fail(L, "file", err);
  lua_pushinteger(L, n);
  return 1;
}

/* A held lock: the fd, -1 once closed; its path is the userdata's user
 * value, for remove. */
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

/* lock:remove([path]) -> true | nil, err: the lock file unlinked while
 * held, then the lock released (safe twice; a closed lock removes nothing).
 * path: the name the file has now, when it moved with its folder. */
static int lock_remove(lua_State *L) {
  char err[CORE_ERRLEN];
  file_lock *l = luaL_checkudata(L, 1, LOCK_META);
  int fd = l->fd;
  const char *path;
  lua_getiuservalue(L, 1, 1);
  path = luaL_optstring(L, 2, lua_tostring(L, -1));
  l->fd = -1;
  if (fd >= 0 && fsio_unlock_remove(fd, path, err, sizeof err) != 0) return core_fail(L, "file", err);
  lua_pushboolean(L, 1);
  return 1;
}

static int lock_file(lua_State *L) {
  char err[CORE_ERRLEN];
  const char *path = luaL_checkstring(L, 1);
  file_lock *l = lua_newuserdatauv(L, sizeof *l, 1);
  int fd;
  l->fd = -1;
  luaL_setmetatable(L, LOCK_META);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  fd = fsio_lock(path, err, sizeof err);
  if (fd < 0) return core_fail(L, fd == -2 ? "locked" : "file", err);
  l->fd = fd;
  return 1;
}

int lfsio_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"close", lock_close}, {"remove", lock_remove}, {NULL, NULL}};
  static const luaL_Reg temp_methods[] = {
      {"close", temp_close}, {"fsync", temp_fsync},     {"link", temp_link}, {"path", temp_path},
      {"read_at", temp_read_at}, {"sha256", temp_sha256}, {"size", temp_size}, {NULL, NULL}};
  static const luaL_Reg fns[] = {{"file_mode", file_mode},       {"fsync_dir_of", fsync_dir_of}, {"fsync_file", fsync_file},
                                 {"list_dir", list_dir},         {"lock", lock_file},
                                 {"mkdirs", mkdirs},
                                 {"remove_parts", remove_parts}, {"rename_noreplace", rename_noreplace},
                                 {"open_private", open_private}, {"set_file_modes", set_file_modes},
                                 {"temp_file", temp_new},        {"truncate", truncate_file},
                                 {"write_atomic", write_atomic},
                                 {NULL, NULL}};
  static const luaL_Reg no_methods[] = {{NULL, NULL}};
  core_newmeta(L, LOCK_META, methods, lock_close);
  core_newmeta(L, DIR_META, no_methods, dir_close);
  core_newmeta(L, TEMP_META, temp_methods, temp_close);
  luaL_setfuncs(L, fns, 0);
  return 0;
}
