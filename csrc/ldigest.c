/* ldigest.c: SHA-256 of a string or a file, random bytes and version 4
 * uuids for Lua (core.sha256, core.sha256_file, core.random, core.uuid4).
 * Digests come back as lower-case hex. */
#include <openssl/evp.h>
#include <stdio.h>
#include <unistd.h>

#include "digest.h"
#include "fsio.h"
#include "lcore.h"

static void push_hex(lua_State *L, const unsigned char *d, size_t n) {
  static const char digits[] = "0123456789abcdef";
  char hex[2 * EVP_MAX_MD_SIZE];
  for (size_t i = 0; i < n; i++) {
    hex[2 * i] = digits[d[i] >> 4];
    hex[2 * i + 1] = digits[d[i] & 15];
  }
  lua_pushlstring(L, hex, 2 * n);
}

/* sha256(s) -> hex digest */
static int sha256_string(lua_State *L) {
  size_t len;
  unsigned char md[32];
  const char *s = luaL_checklstring(L, 1, &len);
  if (digest_sha256((const unsigned char *)s, len, md) != 0) return luaL_error(L, "sha256 failed");
  push_hex(L, md, sizeof md);
  return 1;
}

/* sha256_file(path) -> hex digest | nil, err. Never through a symlink and
 * never a device: a link to /dev/zero planted at a report's name would
 * otherwise be read for ever. */
static int sha256_file(lua_State *L) {
  char err[CORE_ERRLEN];
  unsigned char md[32];
  const char *path = luaL_checkstring(L, 1);
  int rc, fd = fsio_open_regular(path, err, sizeof err);
  if (fd < 0) return core_fail(L, "file", err);
  rc = digest_sha256_fd(fd, md, err, sizeof err);
  close(fd);
  if (rc != 0) return core_fail(L, "file", err);
  push_hex(L, md, sizeof md);
  return 1;
}

static int random_bytes(lua_State *L) {
  char err[CORE_ERRLEN];
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_Buffer b;
  unsigned char *out;
  luaL_argcheck(L, n >= 0 && n <= 1 << 20, 1, "between 0 and 1 MiB");
  out = (unsigned char *)luaL_buffinitsize(L, &b, (size_t)n);
  if (digest_random(out, (size_t)n, err, sizeof err) != 0) return luaL_error(L, "%s", err);
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

static int uuid4(lua_State *L) {
  char err[CORE_ERRLEN];
  unsigned char u[16];
  if (digest_random(u, sizeof u, err, sizeof err) != 0) return luaL_error(L, "%s", err);
  u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);  /* version 4 */
  u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);  /* RFC 4122 variant */
  char s[37];
  snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                  u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
                  u[12], u[13], u[14], u[15]);
  lua_pushstring(L, s);
  return 1;
}

int ldigest_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"random", random_bytes}, {"sha256", sha256_string}, {"sha256_file", sha256_file},
                                 {"uuid4", uuid4},         {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  return 0;
}
