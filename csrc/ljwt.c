/* ljwt.c: keys, signatures and base64url for Lua.
 * auditrun.jwt builds the JWT itself with lua-cjson; only the bytes that
 * need OpenSSL come through here. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jwt.h"
#include "lcore.h"

#define KEY_META "auditrun.key"
#define tokey(L) ((jwt_key *)luaL_checkudata(L, 1, KEY_META))

static jwt_key *checkopenkey(lua_State *L) {
  jwt_key *k = tokey(L);
  if (!k->pkey) luaL_error(L, "attempt to use a closed key");
  return k;
}

static const char *field_string(lua_State *L, const char *name) {
  const char *s;
  lua_getfield(L, 1, name);
  s = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
  if (!lua_isnil(L, -1) && !s) luaL_error(L, "key option '%s' must be a string", name);
  lua_pop(L, 1);  /* the table keeps the string alive */
  return s;
}

/* core.load_key{cert=, key=, password=, now=} -> key | nil, err */
static int key_load(lua_State *L) {
  char err[CORE_ERRLEN];
  const char *cert, *keyfile, *password;
  time_t now;
  jwt_key *k;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  cert = field_string(L, "cert");
  keyfile = field_string(L, "key");
  password = field_string(L, "password");
  lua_getfield(L, 1, "now");
  now = lua_isnil(L, -1) ? time(NULL) : (time_t)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  luaL_argcheck(L, cert != NULL, 1, "load_key needs a 'cert' file");
  k = lua_newuserdatauv(L, sizeof *k, 0);
  memset(k, 0, sizeof *k);
  luaL_setmetatable(L, KEY_META);
  if (jwt_key_load(k, cert, keyfile, password, now, err, sizeof err) != 0)
    return core_fail(L, "key", err);
  return 1;
}

static int key_close(lua_State *L) {
  jwt_key_free(tokey(L));
  return 0;
}

static int key_sign(lua_State *L) {
  char err[CORE_ERRLEN];
  jwt_key *k = checkopenkey(L);
  const char *alg = luaL_checkstring(L, 2);
  size_t len, siglen;
  const char *data = luaL_checklstring(L, 3, &len);
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, jwt_signature_size(k));
  if (jwt_sign(k, alg, (const unsigned char *)data, len, out, &siglen, err, sizeof err) != 0)
    return luaL_error(L, "%s", err);  /* unknown alg is a programming mistake */
  luaL_pushresultsize(&b, siglen);
  return 1;
}

static int key_thumbprint(lua_State *L) {
  char err[CORE_ERRLEN];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  jwt_key *k = checkopenkey(L);
  if (jwt_thumbprint(k, luaL_optstring(L, 2, "sha1"), md, &n, err, sizeof err) != 0)
    return luaL_error(L, "%s", err);
  lua_pushlstring(L, (const char *)md, n);
  return 1;
}

static int key_subject(lua_State *L) {
  char buf[1024];
  if (jwt_subject(checkopenkey(L), buf, sizeof buf) != 0) return luaL_error(L, "cannot read subject");
  lua_pushstring(L, buf);
  return 1;
}

static int key_not_after(lua_State *L) {
  time_t t;
  if (jwt_not_after(checkopenkey(L), &t) != 0) return luaL_error(L, "cannot read expiry");
  lua_pushinteger(L, (lua_Integer)t);
  return 1;
}

static int key_warning(lua_State *L) {
  jwt_key *k = checkopenkey(L);
  if (k->warning[0]) lua_pushstring(L, k->warning);
  else lua_pushnil(L);
  return 1;
}

static int b64url_encode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, 4 * ((len + 2) / 3) + 1);
  luaL_pushresultsize(&b, jwt_b64url_encode((const unsigned char *)s, len, out));
  return 1;
}

static int b64url_decode(lua_State *L) {
  size_t len;
  long n;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, len + 3);
  n = jwt_b64url_decode(s, len, out);
  if (n < 0) return core_fail(L, "decode", "not valid base64url");
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

int ljwt_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"close", key_close},       {"not_after", key_not_after},
                                     {"sign", key_sign},         {"subject", key_subject},
                                     {"thumbprint", key_thumbprint}, {"warning", key_warning},
                                     {NULL, NULL}};
  static const luaL_Reg fns[] = {{"b64url_decode", b64url_decode}, {"b64url_encode", b64url_encode},
                                 {"load_key", key_load},           {NULL, NULL}};
  core_newmeta(L, KEY_META, methods, key_close);
  luaL_setfuncs(L, fns, 0);
  return 0;
}
