/* lhttp.c: HTTP requests for Lua. core.request{...} starts a transfer and
 * returns its userdata at once; the caller waits on it (core.wait) and reads
 * req:result().
 *
 * auditrun.http checks option names and fills in every default
 * (http.DEFAULTS); here only types are checked, and the limits that keep a
 * transfer bounded must be given. */
#include <string.h>

#include "http.h"
#include "lcore.h"

#define REQUEST_META "auditrun.request"
#define torequest(L) ((http_request *)luaL_checkudata(L, 1, REQUEST_META))

static const char *opt_string(lua_State *L, const char *name) {
  const char *s;
  lua_getfield(L, 1, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "request option '%s' must be a string", name);
  s = lua_tostring(L, -1);
  lua_pop(L, 1);  /* still referenced by the options table */
  return s;
}

static double opt_number(lua_State *L, const char *name, double dflt) {
  double v;
  lua_getfield(L, 1, name);
  if (lua_isnil(L, -1)) v = dflt;
  else if (lua_type(L, -1) == LUA_TNUMBER) v = lua_tonumber(L, -1);
  else return luaL_error(L, "request option '%s' must be a number", name);
  lua_pop(L, 1);
  return v;
}

static double req_number(lua_State *L, const char *name) {
  double v;
  lua_getfield(L, 1, name);
  if (lua_type(L, -1) != LUA_TNUMBER) return luaL_error(L, "request option '%s' must be a number", name);
  v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static int request_new(lua_State *L) {
  char err[CORE_ERRLEN];
  loop *lp = core_loop(L);
  http_request *req;
  const char *s, *url, *method;
  size_t len;
  double max_redirects, max_body, connect_timeout;

  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  /* The defaults are auditrun.http.DEFAULTS: they come with every request. */
  max_redirects = req_number(L, "max_redirects");
  max_body = req_number(L, "max_body");
  connect_timeout = req_number(L, "connect_timeout");
  if (http_refusal[0]) return core_fail(L, "tls", http_refusal);
  url = opt_string(L, "url");
  luaL_argcheck(L, url != NULL, 1, "request needs a url");
  method = opt_string(L, "method");
  if (!method) method = "GET";

  req = lua_newuserdatauv(L, sizeof *req, 0);  /* index 2 */
  memset(req, 0, sizeof *req);
  req->item.ref = LUA_NOREF;
  luaL_setmetatable(L, REQUEST_META);
  if (http_init(req, lp, err, sizeof err) != 0) return luaL_error(L, "%s", err);
  if (http_set_method(req, method, err, sizeof err) != 0 ||
      http_set_url(req, url, err, sizeof err) != 0)
    return luaL_error(L, "%s", err);

  lua_getfield(L, 1, "headers");
  if (!lua_isnil(L, -1)) {
    luaL_argcheck(L, lua_istable(L, -1), 1, "headers must be a list of 'Name: value'");
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
      const char *line = lua_tostring(L, -1);
      if (!line) return luaL_error(L, "header %d is not a string", (int)i);
      if (http_add_header(req, line, err, sizeof err) != 0) return luaL_error(L, "%s", err);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  lua_getfield(L, 1, "body");
  if (!lua_isnil(L, -1)) {
    s = luaL_checklstring(L, -1, &len);
    http_set_body(req, s, len, err, sizeof err);
  }
  lua_pop(L, 1);
  if ((s = opt_string(L, "body_file")) && http_set_body_file(req, s, err, sizeof err) != 0)
    return core_fail(L, "file", err);
  if ((s = opt_string(L, "ca_file")) && http_set_ca_file(req, s, err, sizeof err) != 0)
    return core_fail(L, "tls", err);
  lua_getfield(L, 1, "output");
  if (lua_type(L, -1) == LUA_TSTRING) {
    if (http_set_output_file(req, lua_tostring(L, -1), err, sizeof err) != 0) return core_fail(L, "file", err);
  } else if (!lua_isnil(L, -1)) {
    int fd = lfsio_tofd(L, -1);
    luaL_argcheck(L, fd != -2, 1, "output must be a file name or a temporary file");
    luaL_argcheck(L, fd >= 0, 1, "output is a closed temporary file");
    if (http_set_output_fd(req, fd, err, sizeof err) != 0) return core_fail(L, "file", err);
  }
  lua_pop(L, 1);
  http_set_timeouts(req, connect_timeout, opt_number(L, "timeout", 0),
                    (long)opt_number(L, "low_speed_limit", 0), opt_number(L, "low_speed_time", 0));
  http_set_max_redirects(req, (long)max_redirects);
  lua_getfield(L, 1, "same_origin");
  http_set_same_origin(req, lua_toboolean(L, -1));
  lua_pop(L, 1);
  http_set_max_body(req, (size_t)max_body);
  http_set_max_download(req, (unsigned long long)opt_number(L, "max_download", 0));

  if (http_start(req, lp, err, sizeof err) != 0) return core_fail(L, "transfer", err);
  core_track(L, 2, &req->item);
  return 1;
}

static void set_time(lua_State *L, CURL *e, CURLINFO info, const char *name) {
  curl_off_t us = 0;
  curl_easy_getinfo(e, info, &us);
  lua_pushnumber(L, (double)us / 1e6);
  lua_setfield(L, -2, name);
}

static void push_headers(lua_State *L, const http_request *req) {
  /* headers: name -> value, repeated ones joined by ", " as HTTP allows;
   * header_list keeps every line, in order, for Set-Cookie and friends. */
  lua_createtable(L, 0, (int)req->nresp);
  for (size_t i = 0; i < req->nresp; i++) {
    if (lua_getfield(L, -1, req->resp[i].name) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushstring(L, req->resp[i].value);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushstring(L, req->resp[i].value);
    }
    lua_setfield(L, -2, req->resp[i].name);
  }
  lua_setfield(L, -2, "headers");
  lua_createtable(L, (int)req->nresp, 0);
  for (size_t i = 0; i < req->nresp; i++) {
    lua_createtable(L, 2, 0);
    lua_pushstring(L, req->resp[i].name);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, req->resp[i].value);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "header_list");
}

static int request_result(lua_State *L) {
  char msg[CORE_ERRLEN];
  http_request *req = torequest(L);
  const char *kind, *url = NULL;
  long status = 0, connects = 0, redirects = 0;
  curl_off_t bytes = 0;
  if (!req->easy) return luaL_error(L, "attempt to use a closed request");
  if (!req->finished) return luaL_error(L, "request has not finished");
  kind = http_error(req, msg, sizeof msg);
  curl_easy_getinfo(req->easy, CURLINFO_EFFECTIVE_URL, &url);
  if (kind) {
    core_fail(L, kind, msg);
    lua_pushstring(L, url);
    lua_setfield(L, -2, "url");
    return 2;
  }
  curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(req->easy, CURLINFO_NUM_CONNECTS, &connects);
  curl_easy_getinfo(req->easy, CURLINFO_REDIRECT_COUNT, &redirects);
  curl_easy_getinfo(req->easy, CURLINFO_SIZE_DOWNLOAD_T, &bytes);
  lua_createtable(L, 0, 9);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  lua_pushstring(L, url);
  lua_setfield(L, -2, "url");
  lua_pushinteger(L, (lua_Integer)bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, connects);
  lua_setfield(L, -2, "new_connections");
  lua_pushinteger(L, redirects);
  lua_setfield(L, -2, "redirects");
  if (!req->to_file) {
    lua_pushlstring(L, req->body ? req->body : "", req->body_len);
    lua_setfield(L, -2, "body");
  }
  push_headers(L, req);
  lua_createtable(L, 0, 5);
  set_time(L, req->easy, CURLINFO_NAMELOOKUP_TIME_T, "dns");
  set_time(L, req->easy, CURLINFO_CONNECT_TIME_T, "connect");
  set_time(L, req->easy, CURLINFO_APPCONNECT_TIME_T, "tls");
  set_time(L, req->easy, CURLINFO_STARTTRANSFER_TIME_T, "first_byte");
  set_time(L, req->easy, CURLINFO_TOTAL_TIME_T, "total");
  lua_setfield(L, -2, "timings");
  return 1;
}

static int request_done(lua_State *L) {
  lua_pushboolean(L, torequest(L)->finished);
  return 1;
}

static int request_abort(lua_State *L) {
  http_request *req = torequest(L);
  loop *lp = loop_current();
  if (req->easy && lp) http_abort(req, lp);
  core_untrack(L, &req->item);
  return 0;
}

/* close, __gc and __close: safe twice. */
static int request_close(lua_State *L) {
  http_request *req = torequest(L);
  loop *lp = loop_current();
  core_untrack(L, &req->item);
  if (lp) http_free(req, lp);
  return 0;
}

static int url_escape(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char *e = curl_easy_escape(NULL, s, (int)len);
  if (!e) return luaL_error(L, "out of memory");
  lua_pushstring(L, e);
  curl_free(e);
  return 1;
}

static int url_unescape(lua_State *L) {
  size_t len;
  int outlen = 0;
  const char *s = luaL_checklstring(L, 1, &len);
  char *u = curl_easy_unescape(NULL, s, (int)len, &outlen);
  if (!u) return luaL_error(L, "out of memory");
  lua_pushlstring(L, u, (size_t)outlen);
  curl_free(u);
  return 1;
}

int lhttp_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"abort", request_abort}, {"close", request_close},
                                     {"done", request_done}, {"result", request_result},
                                     {NULL, NULL}};
  static const luaL_Reg fns[] = {{"request", request_new}, {"url_escape", url_escape},
                                 {"url_unescape", url_unescape}, {NULL, NULL}};
  core_newmeta(L, REQUEST_META, methods, request_close);
  luaL_setfuncs(L, fns, 0);
  return 0;
}
