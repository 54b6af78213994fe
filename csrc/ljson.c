/* ljson.c: the JSON text of a records row, and the integers of a decoded
 * value, in C: the two steps every row of a records workflow goes through.
 * lua-cjson still decodes, and auditrun.records still defines the text.
 *
 * core.json_line(order, row, array_mt[, set]) -> the text auditrun.records writes
 * for a row (records.encode_object over the columns of the row: the names
 * in `order` first, then its other string keys sorted; nested objects' keys
 * sorted; '/' left bare), or nil when the row holds anything this file does
 * not write exactly as records.lua would (a table with a metatable other
 * than array_mt, keys that are neither a list 1..n nor all strings, NaN or
 * infinity, a function, nesting past 1000): the caller then encodes it in
 * Lua, which gives the same text or raises the same error as before. set:
 * the names of order as keys (each true), to look them up by.
 * core.json_encode(value, array_mt) is records.encode of one value, the
 * same way. Numbers are written as lua-cjson writes them ("%.14g", as a
 * double); strings with lua-cjson's escapes.
 *
 * core.json_integers(value) -> value, every float in it that is a whole
 * number between -2^53 and 2^53 turned into an integer (auditrun.json: the
 * Debian lua-cjson decodes every number as a float). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "lcore.h"

#define SCRATCH_META "auditrun.json_scratch"
#define MAX_DEPTH 1000 /* records.lua's limit; deeper goes to Lua, which raises */

/* A field written to the buffer, "key":value from `at` to `end`, waiting
 * to be put in its place among the object's fields sorted by key. */
typedef struct {
  const char *s;
  size_t len;
  size_t at, end;
} keyref;

/* The output text and the keys of the objects being written, reused from
 * row to row; a userdata (an upvalue of the functions) so that nothing
 * leaks if Lua raises (out of memory) part way. */
typedef struct {
  char *buf;
  size_t len, cap;
  keyref *keys;
  size_t nkeys, capkeys;
  int sorted; /* objects' keys sorted (0: as lua_next gives them) */
} scratch;

static int scratch_gc(lua_State *L) {
  scratch *s = luaL_checkudata(L, 1, SCRATCH_META);
  free(s->buf);
  free(s->keys);
  s->buf = NULL;
  s->keys = NULL;
  s->len = s->cap = s->nkeys = s->capkeys = 0;
  return 0;
}

/* Room for n more bytes; 0 when memory ran out. */
static int grow(scratch *s, size_t n);

static inline int reserve(scratch *s, size_t n) {
  return s->len + n <= s->cap || grow(s, n);
}

static int grow(scratch *s, size_t n) {
  size_t cap = s->cap ? s->cap : 4096;
  while (cap < s->len + n) cap *= 2;
  char *p = realloc(s->buf, cap);
  if (!p) return 0;
  s->buf = p;
  s->cap = cap;
  return 1;
}

static inline int put(scratch *s, const char *p, size_t n) {
  if (!reserve(s, n)) return 0;
  memcpy(s->buf + s->len, p, n);
  s->len += n;
  return 1;
}

/* lua-cjson's escapes, but '/' bare (records.encode). */
static const char *const escapes[256] = {
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
    "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
    "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
    "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    [34] = "\\\"", [92] = "\\\\", [127] = "\\u007f",
};

static int put_string(scratch *s, const char *p, size_t n) {
  if (!reserve(s, 6 * n + 2)) return 0; /* each byte at most \u00XX */
  char *out = s->buf + s->len;
  *out++ = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    const char *e = escapes[c];
    if (!e) {
      *out++ = (char)c;
    } else {
      while (*e) *out++ = *e++;
    }
  }
  *out++ = '"';
  s->len = (size_t)(out - s->buf);
  return 1;
}

/* A whole number of at most 14 digits, as "%lld" writes it. */
static int put_integer(scratch *s, long long v) {
  char tmp[24], *end = tmp + sizeof tmp, *p = end;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  return put(s, p, (size_t)(end - p));
}

/* As lua-cjson writes a number: the double, "%.14g". Whole numbers of at
 * most 14 digits print alike without printf. 0 for NaN and infinity. */
static int put_number(scratch *s, lua_State *L, int idx) {
  char tmp[64];
  int n;
  if (lua_isinteger(L, idx)) {
    lua_Integer i = lua_tointeger(L, idx);
    if (i > -100000000000000LL && i < 100000000000000LL) return put_integer(s, (long long)i);
  }
  double d = (double)lua_tonumber(L, idx);
  if (isnan(d) || isinf(d)) return 0;
  if (d == floor(d) && d > -1e14 && d < 1e14 && !(d == 0 && signbit(d))) return put_integer(s, (long long)d);
  n = snprintf(tmp, sizeof tmp, "%.14g", d);
  return put(s, tmp, (size_t)n);
}

static int keycmp(const void *a, const void *b) {
  const keyref *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

static int push_key(scratch *s, const char *p, size_t len, size_t at, size_t end) {
  if (s->nkeys == s->capkeys) {
    size_t cap = s->capkeys ? s->capkeys * 2 : 256;
    keyref *k = realloc(s->keys, cap * sizeof *k);
    if (!k) return 0;
    s->keys = k;
    s->capkeys = cap;
  }
  keyref *k = &s->keys[s->nkeys++];
  k->s = p;
  k->len = len;
  k->at = at;
  k->end = end;
  return 1;
}

/* The fields keys[base..] (written from `start` on, in the order they
 * came) put in key order, commas between them; `first`: no comma before
 * the first. The keys from base on are dropped. */
static int sort_fields(scratch *s, size_t base, size_t start, int first) {
  size_t n = s->nkeys - base, written = s->len - start;
  keyref *keys = s->keys + base;
  if (n > 16) {
    qsort(keys, n, sizeof *keys, keycmp);
  } else {
    for (size_t i = 1; i < n; i++) { /* insertion sort: a row has few keys */
      keyref k = keys[i];
      size_t j = i;
      while (j > 0 && keycmp(&keys[j - 1], &k) > 0) {
        keys[j] = keys[j - 1];
        j--;
      }
      keys[j] = k;
    }
  }
  if (!reserve(s, written + n)) return 0;
  size_t out = s->len;
  for (size_t i = 0; i < n; i++) {
    keyref *k = &s->keys[base + i];
    if (!(first && i == 0)) s->buf[out++] = ',';
    memcpy(s->buf + out, s->buf + k->at, k->end - k->at);
    out += k->end - k->at;
  }
  memmove(s->buf + start, s->buf + s->len, out - s->len);
  s->len = start + (out - s->len);
  s->nkeys = base;
  return 1;
}

static int put_value(scratch *s, lua_State *L, int idx, int amt, int depth);

/* Whether the table at idx is one records.lua writes as this file does: no
 * metatable but the array one. */
static int plain_table(lua_State *L, int idx, int amt) {
  if (!lua_getmetatable(L, idx)) return 1;
  int same = amt && lua_rawequal(L, -1, amt);
  lua_pop(L, 1);
  return same;
}

static int put_table(scratch *s, lua_State *L, int idx, int amt, int depth) {
  if (depth > MAX_DEPTH || !plain_table(L, idx, amt)) return 0;
  luaL_checkstack(L, 4, "JSON nested too deep");
  lua_Integer count = 0, ints = 0, strs = 0, maxint = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    if (lua_type(L, -1) == LUA_TSTRING) {
      strs++;
    } else if (lua_isinteger(L, -1)) {
      lua_Integer k = lua_tointeger(L, -1);
      if (k < 1) {
        lua_pop(L, 1);
        return 0;
      }
      ints++;
      if (k > maxint) maxint = k;
    } else {
      lua_pop(L, 1);
      return 0;
    }
  }
  if (count == 0) {
    /* Empty: {} unless marked a list (plain_table: its metatable is array_mt). */
    int list = lua_getmetatable(L, idx);
    if (list) lua_pop(L, 1);
    return put(s, list ? "[]" : "{}", 2);
  }
  if (ints == count && maxint == count) {
    if (!put(s, "[", 1)) return 0;
    for (lua_Integer i = 1; i <= count; i++) {
      if (i > 1 && !put(s, ",", 1)) return 0;
      lua_rawgeti(L, idx, i);
      int ok = put_value(s, L, lua_gettop(L), amt, depth + 1);
      lua_pop(L, 1);
      if (!ok) return 0;
    }
    return put(s, "]", 1);
  }
  if (strs != count) return 0;
  /* Each field written as it comes, then the fields put in key order
   * (sort_fields); unsorted (json_digests) they stay as they came. */
  size_t base = s->nkeys;
  if (!put(s, "{", 1)) return 0;
  size_t start = s->len;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t len, at = s->len;
    const char *k = lua_tolstring(L, -2, &len);
    int ok = (s->sorted || at == start || put(s, ",", 1)) && put_string(s, k, len) && put(s, ":", 1) &&
             put_value(s, L, lua_gettop(L), amt, depth + 1) && (!s->sorted || push_key(s, k, len, at, s->len));
    lua_pop(L, 1);
    if (!ok) {
      lua_pop(L, 1);
      s->nkeys = base;
      return 0;
    }
  }
  if (s->sorted && !sort_fields(s, base, start, 1)) return 0;
  return put(s, "}", 1);
}

/* records.encode's text of the value at idx; 0: not written here. */
static int put_value(scratch *s, lua_State *L, int idx, int amt, int depth) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t len;
      const char *p = lua_tolstring(L, idx, &len);
      return put_string(s, p, len);
    }
    case LUA_TNUMBER:
      return put_number(s, L, idx);
    case LUA_TBOOLEAN:
      return lua_toboolean(L, idx) ? put(s, "true", 4) : put(s, "false", 5);
    case LUA_TLIGHTUSERDATA:
      return lua_touserdata(L, idx) == NULL && put(s, "null", 4);
    case LUA_TTABLE:
      return put_table(s, L, idx, amt, depth);
    default:
      return 0;
  }
}

static scratch *get_scratch(lua_State *L) {
  scratch *s = lua_touserdata(L, lua_upvalueindex(1));
  s->len = 0;
  s->nkeys = 0;
  s->sorted = 1;
  return s;
}

/* The array metatable argument at idx (0 when none). */
static int array_meta(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  return idx;
}

static int push_result(lua_State *L, scratch *s, int ok) {
  if (ok) {
    lua_pushlstring(L, s->buf, s->len);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

/* Whether key (a string) is one of the names in the list at idx. */
static int listed(lua_State *L, int order, lua_Integer n, const char *k, size_t len) {
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, order, i);
    size_t l;
    const char *c = lua_tolstring(L, -1, &l);
    int same = c && l == len && memcmp(c, k, len) == 0;
    lua_pop(L, 1);
    if (same) return 1;
  }
  return 0;
}

/* Appends the line of the row at `row` (no newline): the names of the list
 * at `order` (n of them) first, then the row's other string keys sorted
 * (records.lua: columns_of); set (0: none) holds the names as keys. */
static int put_line(scratch *s, lua_State *L, int order, lua_Integer n, int row, int amt, int set) {
  if (!plain_table(L, row, 0)) return 0;
  luaL_checkstack(L, 4, "JSON nested too deep");
  int first = 1;
  if (!put(s, "{", 1)) return 0;
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, order, i) != LUA_TSTRING) {
      lua_pop(L, 1);
      return 0;
    }
    lua_pushvalue(L, -1);
    lua_rawget(L, row);
    int ok = 1;
    if (!lua_isnil(L, -1)) {
      size_t len;
      const char *k = lua_tolstring(L, -2, &len);
      ok = (first || put(s, ",", 1)) && put_string(s, k, len) && put(s, ":", 1) &&
           put_value(s, L, lua_gettop(L), amt, 1);
      first = 0;
    }
    lua_pop(L, 2);
    if (!ok) return 0;
  }
  size_t base = s->nkeys, start = s->len;
  lua_pushnil(L);
  while (lua_next(L, row)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 1);
      continue;
    }
    size_t len;
    const char *k = lua_tolstring(L, -2, &len);
    int in;
    if (set) {
      lua_pushvalue(L, -2);
      in = lua_rawget(L, set) != LUA_TNIL;
      lua_pop(L, 1);
    } else {
      in = listed(L, order, n, k, len);
    }
    size_t at = s->len;
    int ok = in || (put_string(s, k, len) && put(s, ":", 1) && put_value(s, L, lua_gettop(L), amt, 1) &&
                    push_key(s, k, len, at, s->len));
    lua_pop(L, 1);
    if (!ok) {
      lua_pop(L, 1);
      s->nkeys = base;
      return 0;
    }
  }
  return sort_fields(s, base, start, first) && put(s, "}", 1);
}

/* The optional set of names at idx (0: none). */
static int name_set(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  return idx;
}

static int l_json_line(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  int amt = array_meta(L, 3), set = name_set(L, 4);
  scratch *s = get_scratch(L);
  int ok = plain_table(L, 1, 0) && put_line(s, L, 1, (lua_Integer)lua_rawlen(L, 1), 2, amt, set);
  return push_result(L, s, ok);
}

/* core.json_lines(order, rows, i, j, array_mt[, set]) -> the lines of
 * rows[i..j] (each as json_line writes it, each with its newline) | nil
 * when one of them is not written here (the caller writes those rows one
 * by one). */
static int l_json_lines(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer i = luaL_checkinteger(L, 3), j = luaL_checkinteger(L, 4);
  int amt = array_meta(L, 5), set = name_set(L, 6);
  lua_settop(L, 6);
  scratch *s = get_scratch(L);
  if (!plain_table(L, 1, 0)) return push_result(L, s, 0);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  for (lua_Integer k = i; k <= j; k++) {
    lua_rawgeti(L, 2, k);
    int ok = lua_type(L, -1) == LUA_TTABLE && put_line(s, L, 1, n, 7, amt, set) && put(s, "\n", 1);
    lua_pop(L, 1);
    if (!ok) return push_result(L, s, 0);
  }
  return push_result(L, s, 1);
}

static int l_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  int amt = array_meta(L, 2);
  scratch *s = get_scratch(L);
  return push_result(L, s, put_value(s, L, 1, amt, 1));
}

/* A value's bytes for its digest: each part tagged with its type, strings
 * and keys with their length, numbers as their 8 bytes, tables as their
 * pairs in lua_next's order. Two rows decoded from the same text give the
 * same bytes; no part of one value can read as a part of another. 0: a
 * value of another type, or nesting past MAX_DEPTH. */
static int put_digest_value(scratch *s, lua_State *L, int idx, int depth) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t len;
      const char *p = lua_tolstring(L, idx, &len);
      uint64_t n = len;
      return put(s, "s", 1) && put(s, (const char *)&n, sizeof n) && put(s, p, len);
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer v = lua_tointeger(L, idx);
        return put(s, "i", 1) && put(s, (const char *)&v, sizeof v);
      } else {
        lua_Number v = lua_tonumber(L, idx);
        return put(s, "f", 1) && put(s, (const char *)&v, sizeof v);
      }
    case LUA_TBOOLEAN:
      return put(s, lua_toboolean(L, idx) ? "T" : "F", 1);
    case LUA_TLIGHTUSERDATA:
      return lua_touserdata(L, idx) == NULL && put(s, "n", 1);
    case LUA_TTABLE: {
      if (depth > MAX_DEPTH) return 0;
      luaL_checkstack(L, 3, "JSON nested too deep");
      if (!put(s, "{", 1)) return 0;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        int top = lua_gettop(L);
        if (!put_digest_value(s, L, top - 1, depth + 1) || !put_digest_value(s, L, top, depth + 1)) {
          lua_pop(L, 2);
          return 0;
        }
        lua_pop(L, 1);
      }
      return put(s, "}", 1);
    }
    default:
      return 0;
  }
}

/* core.json_digests(rows[, before]) -> keys, set, missing, seen: keys[i]
 * is the first 16 hex digits of the SHA-256 of row i's bytes
 * (put_digest_value: no JSON text is written for it), or false for a row
 * holding a value of another type (the caller digests those its own way,
 * and adds them to set); set has each key as a key (true); missing counts the
 * false ones; seen: some key is a key of the table before. For
 * auditrun.paging's detector of repeated pages. */
static int l_json_digests(lua_State *L) {
  static const char hex[] = "0123456789abcdef";
  luaL_checktype(L, 1, LUA_TTABLE);
  int before = lua_isnoneornil(L, 2) ? 0 : 2;
  if (before) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  scratch *s = get_scratch(L);
  s->sorted = 0;
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1), missing = 0;
  int seen = 0;
  lua_createtable(L, (int)n, 0);  /* 3: keys */
  lua_createtable(L, 0, (int)n);  /* 4: set */
  for (lua_Integer i = 1; i <= n; i++) {
    s->len = 0;
    s->nkeys = 0;
    lua_rawgeti(L, 1, i);
    int ok = put_digest_value(s, L, 5, 1);
    lua_settop(L, 4);
    if (!ok) {
      missing++;
      lua_pushboolean(L, 0);
      lua_rawseti(L, 3, i);
      continue;
    }
    unsigned char md[32];
    char text[16];
    if (digest_sha256((const unsigned char *)s->buf, s->len, md) != 0) return luaL_error(L, "sha256 failed");
    for (int k = 0; k < 8; k++) {
      text[2 * k] = hex[md[k] >> 4];
      text[2 * k + 1] = hex[md[k] & 15];
    }
    lua_pushlstring(L, text, sizeof text);
    lua_pushvalue(L, -1);
    lua_rawseti(L, 3, i);
    if (before && !seen) {
      lua_pushvalue(L, -1);
      seen = lua_rawget(L, before) != LUA_TNIL;
      lua_pop(L, 1);
    }
    lua_pushboolean(L, 1);
    lua_rawset(L, 4);
  }
  lua_pushinteger(L, missing);
  lua_pushboolean(L, seen);
  return 4;
}

static void integers(lua_State *L, int idx) {
  luaL_checkstack(L, 4, "JSON nested too deep");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      integers(L, lua_gettop(L));
    } else if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      double d = (double)lua_tonumber(L, -1);
      if (d == floor(d) && d > -9007199254740992.0 && d < 9007199254740992.0) {
        lua_pushvalue(L, -2);
        lua_pushinteger(L, (lua_Integer)d);
        lua_rawset(L, idx);
      }
    }
    lua_pop(L, 1);
  }
}

static int l_json_integers(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE) integers(L, 1);
  lua_settop(L, 1);
  return 1;
}

int ljson_open(lua_State *L) {
  scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  if (luaL_newmetatable(L, SCRATCH_META)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  /* module table at 1, scratch on top: the functions share it. */
  lua_pushvalue(L, -1);
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, l_json_line, 1);
  lua_setfield(L, 1, "json_line");
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, l_json_lines, 1);
  lua_setfield(L, 1, "json_lines");
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, l_json_digests, 1);
  lua_setfield(L, 1, "json_digests");
  lua_pushcclosure(L, l_json_encode, 1);
  lua_setfield(L, 1, "json_encode");
  lua_pushcfunction(L, l_json_integers);
  lua_setfield(L, 1, "json_integers");
  return 0;
}
