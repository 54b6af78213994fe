/* lmerge.c: the activity timeline's merge in C, for auditrun.activity.
 * core.merge(sources) -> an iterator over (event, tag) of every source in
 * time order: the heads wait in two binary heaps kept here.
 *
 * sources is a list of functions, each giving (event, tag) in time order
 * and nil at its end; Lua still calls them, one call a head. Heads with a
 * time (event.time) wait by (time, source), those without by source, and
 * one without goes out first (the first such source's first). Times are
 * compared as Lua's < compares them: two strings as Lua's l_strcmp does
 * (strcoll, past embedded zeros), anything else through lua_compare, so a
 * number and a string raise the error Lua's < raises. A source's next
 * head is asked for before its event is given out, as the Lua merge did. */
#include <stdlib.h>
#include <string.h>

#include "lcore.h"

/* The user values of the merge's userdata. */
enum { UV_SOURCES = 1, UV_HEADS, UV_TAGS, UV_TIMES, UV_COUNT = UV_TIMES };

typedef struct {
  const char *s;  /* the head's time when it is a string (kept alive in UV_TIMES), else NULL */
  size_t len;
} head_time;

typedef struct {
  lua_Integer n;            /* sources */
  lua_Integer ntimed, nuntimed;
  lua_Integer *timed;       /* heap of source indices (1-based), by (time, index) */
  lua_Integer *untimed;     /* heap of source indices, by index */
  head_time *times;         /* times[i - 1]: source i's head's time */
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

/* Whether source a's head goes before source b's in the heap of times. */
static int time_before(lua_State *L, merge_state *m, int ud, lua_Integer a, lua_Integer b) {
  const head_time *ta = &m->times[a - 1], *tb = &m->times[b - 1];
  int c;
  if (ta->s && tb->s) {
    c = str_compare(ta->s, ta->len, tb->s, tb->len);
  } else {
    lua_getiuservalue(L, ud, UV_TIMES);
    lua_rawgeti(L, -1, a);
    lua_rawgeti(L, -2, b);
    c = lua_compare(L, -2, -1, LUA_OPLT) ? -1 : lua_compare(L, -2, -1, LUA_OPEQ) ? 0 : 1;
    lua_pop(L, 3);
  }
  return c < 0 || (c == 0 && a < b);
}

static int before(lua_State *L, merge_state *m, int ud, int timed, lua_Integer a, lua_Integer b) {
  return timed ? time_before(L, m, ud, a, b) : a < b;
}

static void heap_push(lua_State *L, merge_state *m, int ud, int timed, lua_Integer i) {
  lua_Integer *heap = timed ? m->timed : m->untimed;
  lua_Integer n = timed ? ++m->ntimed : ++m->nuntimed;
  heap[n - 1] = i;
  while (n > 1) {
    lua_Integer up = n / 2;
    if (!before(L, m, ud, timed, heap[n - 1], heap[up - 1])) break;
    lua_Integer t = heap[n - 1];
    heap[n - 1] = heap[up - 1];
    heap[up - 1] = t;
    n = up;
  }
}

static lua_Integer heap_pop(lua_State *L, merge_state *m, int ud, int timed) {
  lua_Integer *heap = timed ? m->timed : m->untimed;
  lua_Integer *count = timed ? &m->ntimed : &m->nuntimed;
  lua_Integer top = heap[0], n = --*count;
  heap[0] = heap[n];
  lua_Integer i = 1;
  for (;;) {
    lua_Integer l = 2 * i, small = i;
    if (l <= n && before(L, m, ud, timed, heap[l - 1], heap[small - 1])) small = l;
    if (l + 1 <= n && before(L, m, ud, timed, heap[l], heap[small - 1])) small = l + 1;
    if (small == i) break;
    lua_Integer t = heap[i - 1];
    heap[i - 1] = heap[small - 1];
    heap[small - 1] = t;
    i = small;
  }
  return top;
}

/* Asks source i for its next head and puts it in its heap (none at its end). */
static void take(lua_State *L, merge_state *m, int ud, lua_Integer i) {
  int top = lua_gettop(L);
  lua_getiuservalue(L, ud, UV_SOURCES);
  lua_geti(L, -1, i);
  lua_call(L, 0, 2);  /* top+2: event, top+3: tag */
  lua_getiuservalue(L, ud, UV_HEADS);
  lua_pushvalue(L, top + 2);
  lua_rawseti(L, -2, i);
  lua_getiuservalue(L, ud, UV_TAGS);
  lua_pushvalue(L, top + 3);
  lua_rawseti(L, -2, i);
  if (!lua_isnil(L, top + 2)) {
    head_time *t = &m->times[i - 1];
    t->s = NULL;
    if (lua_getfield(L, top + 2, "time") == LUA_TNIL) {
      heap_push(L, m, ud, 0, i);
    } else {
      lua_getiuservalue(L, ud, UV_TIMES);
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, i);  /* keeps the string t->s points into */
      if (lua_type(L, -2) == LUA_TSTRING) t->s = lua_tolstring(L, -2, &t->len);
      heap_push(L, m, ud, 1, i);
    }
  }
  lua_settop(L, top);
}

static int merge_next(lua_State *L) {
  int ud = lua_upvalueindex(1);
  merge_state *m = lua_touserdata(L, ud);
  lua_Integer best;
  if (m->nuntimed > 0) best = heap_pop(L, m, ud, 0);
  else if (m->ntimed > 0) best = heap_pop(L, m, ud, 1);
  else return 0;
  lua_settop(L, 0);
  lua_getiuservalue(L, ud, UV_HEADS);
  lua_rawgeti(L, 1, best);  /* 2: event */
  lua_getiuservalue(L, ud, UV_TAGS);
  lua_rawgeti(L, 3, best);  /* 4: tag */
  take(L, m, ud, best);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 4);
  return 2;
}

static int l_merge(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_Integer n = luaL_len(L, 1);
  if (n < 0 || (size_t)n > ((size_t)-1 / 4) / (2 * sizeof(lua_Integer) + sizeof(head_time)))
    return luaL_error(L, "too many sources");
  size_t heaps = (size_t)n * sizeof(lua_Integer);
  merge_state *m = lua_newuserdatauv(L, sizeof *m + 2 * heaps + (size_t)n * sizeof(head_time), UV_COUNT);
  m->n = n;
  m->ntimed = m->nuntimed = 0;
  m->timed = (lua_Integer *)(m + 1);
  m->untimed = m->timed + n;
  m->times = (head_time *)(m->untimed + n);
  int ud = lua_gettop(L);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, ud, UV_SOURCES);
  for (int uv = UV_HEADS; uv <= UV_TIMES; uv++) {
    lua_createtable(L, n > 0x7fffffff ? 0 : (int)n, 0);
    lua_setiuservalue(L, ud, uv);
  }
  for (lua_Integer i = 1; i <= n; i++) take(L, m, ud, i);
  lua_pushcclosure(L, merge_next, 1);
  return 1;
}

int lmerge_open(lua_State *L) {
  lua_pushcfunction(L, l_merge);
  lua_setfield(L, 1, "merge");
  return 0;
}
