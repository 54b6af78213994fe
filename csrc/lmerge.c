/* lmerge.c: the activity timeline's merge in C, for auditrun.activity.
 * core.merge(sources) -> an iterator over (event, tag) of every source in
 * time order: the heads wait in a tournament tree (a loser tree) kept here.
 *
 * sources is a list of functions, each giving (event, tag) in time order
 * and nil at its end; Lua still calls them, one call a head. A head without
 * a time (event.time nil) goes out before any with one, the first such
 * source's first; heads with a time go out by (time, source). Times are
 * compared as Lua's < compares them: two strings as Lua's l_strcmp does
 * (strcoll, past embedded zeros; byte by byte when the collation is "C",
 * which is what strcoll does there), anything else through lua_compare, so
 * a number and a string raise the error Lua's < raises. A source's next
 * head is asked for before its event is given out, as the Lua merge did.
 *
 * The tree has a leaf per source and keeps at each inner node the source
 * that lost the match played there; the overall winner is kept apart. After
 * the winner's source gives its next head, that head replays the matches on
 * its leaf's path to the root: one comparison a level, log2(sources) in all
 * (a binary heap's sift costs two a level). */
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lcore.h"

/* The user values of the merge's userdata. */
enum { UV_SOURCES = 1, UV_HEADS, UV_TAGS, UV_TIMES, UV_KEY, UV_COUNT = UV_KEY };

/* How many leading bytes of a string time are kept beside the tree, as
 * big-endian words: an ISO 8601 time fits, so most comparisons read no
 * string at all. */
#define KEY_WORDS 4
#define KEY_BYTES (KEY_WORDS * 8)

/* What a source's head is: none left, one without a time, one with a time. */
enum { HEAD_NONE, HEAD_UNTIMED, HEAD_TIMED };

typedef struct {
  uint64_t key[KEY_WORDS];  /* the first KEY_BYTES bytes, zero-padded (bytewise collation only) */
  const char *s;  /* the head's time when it is a string (kept alive in UV_TIMES), else NULL */
  size_t len;
  int kind;       /* HEAD_NONE, HEAD_UNTIMED or HEAD_TIMED */
} head_time;

typedef struct {
  lua_Integer n;            /* sources */
  lua_Integer winner;       /* the source (0-based) whose head goes out next */
  int stopped;              /* a call raised: the tree may be half replayed */
  int bytewise;             /* the collation is "C" or "POSIX": strings compare as bytes */
  lua_Integer *losers;      /* losers[node], node 1..n-1; leaf of source i is node n + i */
  head_time *times;         /* times[i]: source i's head */
} merge_state;

/* Lua's l_strcmp: strcoll over the parts between embedded zeros. */
static int str_compare(const char *l, size_t ll, const char *r, size_t lr) {
  for (;;) {
    int temp = strcoll(l, r);
    if (temp != 0) return temp;
    size_t len = strlen(l);
    if (len == lr) return (len == ll) ? 0 : 1;
    if (len == ll) return -1;
    len++;
    l += len;
    ll -= len;
    r += len;
    lr -= len;
  }
}

/* Two string times in the "C" collation: as strcoll there, bytes and then
 * length; the kept words first, the strings only past them. */
static int bytes_compare(const head_time *l, const head_time *r) {
  for (int w = 0; w < KEY_WORDS; w++)
    if (l->key[w] != r->key[w]) return l->key[w] < r->key[w] ? -1 : 1;
  if (l->len > KEY_BYTES && r->len > KEY_BYTES) {
    size_t ll = l->len - KEY_BYTES, lr = r->len - KEY_BYTES;
    int c = memcmp(l->s + KEY_BYTES, r->s + KEY_BYTES, ll < lr ? ll : lr);
    if (c != 0) return c;
  }
  return l->len < r->len ? -1 : l->len > r->len;
}

/* Keeps the first bytes of t's string as words that compare as the bytes do. */
static void key_fill(head_time *t) {
  for (int w = 0; w < KEY_WORDS; w++) {
    uint64_t v = 0;
    for (size_t b = 0; b < 8; b++) {
      size_t at = (size_t)w * 8 + b;
      v = (v << 8) | (at < t->len ? (unsigned char)t->s[at] : 0);
    }
    t->key[w] = v;
  }
}

/* Whether source a's head (0-based) goes out before source b's. */
static int before(lua_State *L, merge_state *m, int ud, lua_Integer a, lua_Integer b) {
  const head_time *ta = &m->times[a], *tb = &m->times[b];
  if (ta->kind != tb->kind) return ta->kind == HEAD_NONE ? 0 : tb->kind == HEAD_NONE ? 1 : ta->kind == HEAD_UNTIMED;
  if (ta->kind != HEAD_TIMED) return a < b;
  int c;
  if (ta->s && tb->s) {
    c = m->bytewise ? bytes_compare(ta, tb) : str_compare(ta->s, ta->len, tb->s, tb->len);
  } else {
    lua_getiuservalue(L, ud, UV_TIMES);
    lua_rawgeti(L, -1, a + 1);
    lua_rawgeti(L, -2, b + 1);
    c = lua_compare(L, -2, -1, LUA_OPLT) ? -1 : lua_compare(L, -2, -1, LUA_OPEQ) ? 0 : 1;
    lua_pop(L, 3);
  }
  return c < 0 || (c == 0 && a < b);
}

/* The merge's tables on the stack while take runs, from the slot
 * push_tables returns: the sources, the heads, their tags, their times
 * and the key "time". */
enum { AT_SOURCES, AT_HEADS, AT_TAGS, AT_TIMES, AT_KEY };

static int push_tables(lua_State *L, int ud) {
  int base = lua_gettop(L) + 1;
  for (int uv = UV_SOURCES; uv <= UV_KEY; uv++) lua_getiuservalue(L, ud, uv);
  return base;
}

/* Asks source i (0-based) for its next head and keeps it, its tag and its
 * time; the merge's tables are at base + AT_*. */
static void take(lua_State *L, merge_state *m, int base, lua_Integer i) {
  int top = lua_gettop(L);
  head_time *t = &m->times[i];
  lua_geti(L, base + AT_SOURCES, i + 1);
  lua_call(L, 0, 2);  /* top+1: event, top+2: tag */
  lua_pushvalue(L, top + 1);
  lua_rawseti(L, base + AT_HEADS, i + 1);
  lua_rawseti(L, base + AT_TAGS, i + 1);
  t->kind = HEAD_NONE;
  t->s = NULL;
  if (!lua_isnil(L, top + 1)) {
    lua_pushvalue(L, base + AT_KEY);
    if (lua_gettable(L, top + 1) == LUA_TNIL) {
      t->kind = HEAD_UNTIMED;
    } else {
      t->kind = HEAD_TIMED;
      if (lua_type(L, -1) == LUA_TSTRING) {
        t->s = lua_tolstring(L, -1, &t->len);
        if (m->bytewise) key_fill(t);
      }
      lua_rawseti(L, base + AT_TIMES, i + 1);  /* keeps the string t->s points into */
    }
  }
  lua_settop(L, top);
}

/* The next (event, tag): the winner's head. Its source's next head then
 * replays the matches from its leaf up. A merge that raised (a source, or
 * times that do not compare) stays stopped: going on could give an event
 * twice or not at all. */
static int merge_next(lua_State *L) {
  int ud = lua_upvalueindex(1);
  merge_state *m = lua_touserdata(L, ud);
  if (m->stopped) return luaL_error(L, "the timeline's merge stopped at an earlier error");
  lua_Integer w = m->winner;
  if (m->n == 0 || m->times[w].kind == HEAD_NONE) return 0;
  m->stopped = 1;
  lua_settop(L, 0);
  int base = push_tables(L, ud);
  lua_rawgeti(L, base + AT_HEADS, w + 1);  /* the event */
  lua_rawgeti(L, base + AT_TAGS, w + 1);   /* its tag */
  take(L, m, base, w);
  for (lua_Integer node = (m->n + w) / 2; node >= 1; node /= 2) {
    if (before(L, m, ud, m->losers[node], w)) {
      lua_Integer t = m->losers[node];
      m->losers[node] = w;
      w = t;
    }
  }
  m->winner = w;
  m->stopped = 0;
  return 2;
}

static int l_merge(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_Integer n = luaL_len(L, 1);
  if (n < 0 || (size_t)n > ((size_t)-1 / 4) / (3 * sizeof(lua_Integer) + sizeof(head_time)))
    return luaL_error(L, "too many sources");
  /* losers[1..n-1], then the winners while the tree is built (nodes 1..2n-1) */
  size_t nodes = 2 * (size_t)n + 1;
  merge_state *m = lua_newuserdatauv(L, sizeof *m + (size_t)n * sizeof(head_time) + 2 * nodes * sizeof(lua_Integer), UV_COUNT);
  m->n = n;
  m->winner = 0;
  m->stopped = 0;
  m->times = (head_time *)(m + 1);
  m->losers = (lua_Integer *)(m->times + n);
  lua_Integer *wins = m->losers + nodes;
  int ud = lua_gettop(L);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, ud, UV_SOURCES);
  for (int uv = UV_HEADS; uv <= UV_TIMES; uv++) {
    lua_createtable(L, n > 0x7fffffff ? 0 : (int)n, 0);
    lua_setiuservalue(L, ud, uv);
  }
  lua_pushliteral(L, "time");
  lua_setiuservalue(L, ud, UV_KEY);
  const char *collation = setlocale(LC_COLLATE, NULL);
  m->bytewise = collation && (strcmp(collation, "C") == 0 || strcmp(collation, "POSIX") == 0);
  m->stopped = 1;
  int base = push_tables(L, ud);
  for (lua_Integer i = 0; i < n; i++) {
    take(L, m, base, i);
    wins[n + i] = i;
  }
  for (lua_Integer node = n - 1; node >= 1; node--) {
    lua_Integer a = wins[2 * node], b = wins[2 * node + 1];
    int a_first = before(L, m, ud, a, b);
    wins[node] = a_first ? a : b;
    m->losers[node] = a_first ? b : a;
  }
  if (n > 0) m->winner = n == 1 ? 0 : wins[1];
  m->stopped = 0;
  lua_settop(L, ud);
  lua_pushcclosure(L, merge_next, 1);
  return 1;
}

int lmerge_open(lua_State *L) {
  lua_pushcfunction(L, l_merge);
  lua_setfield(L, 1, "merge");
  return 0;
}
