/* lcsv.c: CSV text read and written in C, and rows mapped into a prepared
 * statement without a Lua table apiece: the per-row work of building a
 * table (auditrun.access) from report sheets of many thousands of rows.
 *
 *   rd = core.csv_reader(where)      a reader of RFC 4180 text, fed in chunks
 *   rd:feed(chunk)                   more text; nil: the text ends
 *   rd:row()                         -> row (cell texts by column, empty ones
 *                                       nil) | false (feed more) | nil (end) |
 *                                       nil, message (bad text)
 *   rd:pipe(plan, n)                 -> n, false | nil: every whole row left is
 *                                       run through the plan (numbered from
 *                                       n + 1), then feed more (false) or the
 *                                       end (nil) | nil, message | nil, err, n
 *   plan = core.row_plan(spec)       how a row becomes the statement's values
 *   plan:add(row, n)                 -> true | nil, err: one row (a table)
 *   core.csv_cell(text, raw)         -> the text as one CSV cell, neutralised
 *
 * The reader: fields separated by commas, records by CRLF, LF or CR; a field
 * in double quotes may hold commas, line breaks and doubled quotes. A UTF-8
 * byte order mark at the start is dropped, blank lines are passed by, a NUL
 * byte is text like any other. An unclosed quote, text after a closing
 * quote, UTF-16 text and a record longer than CSV_MAX_RECORD are errors
 * (a message naming `where` and the record). Memory holds a chunk and a row.
 *
 * A plan (spec, a table): spec.stmt, the statement; spec.params[i] for each
 * of its n parameters, a chain: a list of sources, the first that gives a
 * value wins (none: NULL): {col = c} (the row's cell c, when not empty),
 * {value = v} (a string, number or boolean), {email = chain} (the chain's
 * value in lower case when it reads as an e-mail address); chain.lower: the
 * value in lower case. A parameter may instead be spec.row (the row's
 * number), spec.extra (the other columns as a JSON object: spec.extra is a
 * list of {key = '"name":', cols = {c...}}, the last non-empty cell of cols
 * the value, JSON-encoded by spec.encode(text) unless plain) or
 * spec.external (the row's external flag: see external_of). spec.csv, a
 * Lua file: each row inserted is also written there, as a CSV line of the
 * values the table now holds (csv_cell's rule for texts; a number in a text
 * column as SQLite writes it, so constants are best given as texts). */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lcore.h"

#define READER_META "auditrun.csv_reader"
#define PLAN_META "auditrun.row_plan"
#define CSV_MAX_RECORD (64u << 20)
#define CSV_MAX_FIELDS 65536

/* ---- cells out ------------------------------------------------------------ */

/* A text a spreadsheet would read as a formula (OWASP's CSV injection list):
 * it starts with = + - @ TAB or CR, and is not a plain negative number such
 * as -5 or -2.5. */
static int formula_like(const char *s, size_t len) {
  if (len == 0) return 0;
  switch (s[0]) {
    case '=': case '+': case '@': case '\t': case '\r':
      return 1;
    case '-':
      break;
    default:
      return 0;
  }
  size_t i = 1;
  while (i < len && s[i] >= '0' && s[i] <= '9') i++;
  if (i == 1) return 1;
  if (i < len && s[i] == '.') i++;
  while (i < len && s[i] >= '0' && s[i] <= '9') i++;
  return i != len;
}

/* Writes s as one CSV cell to dst (room for 2 * len + 3 bytes): its length.
 * *neutralised: whether it got a leading '. */
static size_t csv_cell_put(char *dst, const char *s, size_t len, int raw, int *neutralised) {
  static const unsigned char special[256] = {['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [','] = 1, ['"'] = 1, [';'] = 1};
  *neutralised = !raw && formula_like(s, len);
  int quote = 0;
  for (size_t i = 0; i < len; i++) {
    if (special[(unsigned char)s[i]]) {
      quote = 1;
      break;
    }
  }
  size_t n = 0;
  if (quote) dst[n++] = '"';
  if (*neutralised) dst[n++] = '\'';
  if (!quote) {
    memcpy(dst + n, s, len);
    return n + len;
  }
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '"') dst[n++] = '"';
    dst[n++] = s[i];
  }
  dst[n++] = '"';
  return n;
}

/* Adds s as one CSV cell to b: quoted when it holds a comma, quote, line
 * break, semicolon or tab; a formula-like text gets a leading ' unless raw.
 * Returns whether it did. */
static int csv_cell_add(luaL_Buffer *b, const char *s, size_t len, int raw) {
  int neutralised;
  char *dst = luaL_prepbuffsize(b, 2 * len + 3);
  luaL_addsize(b, csv_cell_put(dst, s, len, raw, &neutralised));
  return neutralised;
}

/* csv_cell(text, raw) -> cell, neutralised */
static int l_csv_cell(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int raw = lua_toboolean(L, 2);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int n = csv_cell_add(&b, s, len, raw);
  luaL_pushresult(&b);
  lua_pushboolean(L, n);
  return 2;
}

/* ---- the reader ------------------------------------------------------------- */

enum { M_START, M_PLAIN, M_QUOTED, M_QUOTE, M_CR };

typedef struct {
  const char *s;
  size_t len;
  int present;
} cell;

typedef struct {
  char *in;
  size_t in_len, in_cap, pos; /* unread text: in[pos..in_len) */
  char *out;
  size_t out_len, out_cap, field; /* the row's cell bytes; where this field began */
  size_t *ends;                   /* end of each finished field in out */
  int nfields, fields_cap;
  cell *cells; /* the row handed out, by column */
  int cells_cap;
  int mode, at_end, started, ready, record;
  char where[256];
  char err[CORE_ERRLEN];
} reader;

static int grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return 1;
  size_t n = *cap ? *cap : 64;
  while (n < need) n *= 2;
  void *q = realloc(*p, n * size);
  if (!q) return 0;
  *p = q;
  *cap = n;
  return 1;
}

static int fail_reader(reader *r, const char *fmt, int a, int b) {
  snprintf(r->err, sizeof r->err, fmt, r->where, a, b);
  return -2;
}

static int add_out(reader *r, const char *s, size_t n) {
  if (n == 0) return 0;
  if (r->out_len + n > CSV_MAX_RECORD)
    return fail_reader(r, "%s: record %d is longer than %d MiB", r->record, (int)(CSV_MAX_RECORD >> 20));
  if (!grow((void **)&r->out, &r->out_cap, r->out_len + n, 1)) return fail_reader(r, "%s: record %d: out of memory",
                                                                                   r->record, 0);
  memcpy(r->out + r->out_len, s, n);
  r->out_len += n;
  return 0;
}

static int end_field(reader *r) {
  if (r->nfields >= CSV_MAX_FIELDS)
    return fail_reader(r, "%s: record %d has more than %d fields", r->record, CSV_MAX_FIELDS);
  size_t cap = (size_t)r->fields_cap;
  if (!grow((void **)&r->ends, &cap, (size_t)r->nfields + 1, sizeof *r->ends))
    return fail_reader(r, "%s: record %d: out of memory", r->record, 0);
  r->fields_cap = (int)cap;
  r->ends[r->nfields++] = r->out_len;
  r->field = r->out_len;
  return 0;
}

/* The finished row's cells, by column (cells[0] is column 1). */
static int row_cells(reader *r) {
  size_t cap = (size_t)r->cells_cap;
  if (!grow((void **)&r->cells, &cap, (size_t)r->nfields + 1, sizeof *r->cells))
    return fail_reader(r, "%s: record %d: out of memory", r->record, 0);
  r->cells_cap = (int)cap;
  size_t start = 0;
  for (int i = 0; i < r->nfields; i++) {
    r->cells[i].s = r->out ? r->out + start : "";
    r->cells[i].len = r->ends[i] - start;
    r->cells[i].present = r->cells[i].len > 0;
    start = r->ends[i];
  }
  return 1;
}

/* The next row: 1 (r->cells, r->nfields), 0 (feed more), -1 (the end), -2
 * (an error, r->err). */
static int next_row(reader *r) {
  if (r->err[0]) return -2;
  if (r->ready) {
    r->ready = 0;
    r->nfields = 0;
    r->out_len = r->field = 0;
    r->record++;
  }
  if (!r->started) {
    /* The first three bytes decide the encoding, however the chunks fall. */
    if (r->in_len - r->pos < 3 && !r->at_end) return 0;
    r->started = 1;
    const unsigned char *u = (const unsigned char *)(r->in ? r->in + r->pos : "");
    size_t have = r->in_len - r->pos;
    if (have >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) r->pos += 3;
    else if (have >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF)))
      return fail_reader(r, "%s is UTF-16 text; only UTF-8 CSV is read (save it as CSV UTF-8)", 0, 0);
  }
  for (;;) {
    if (r->pos >= r->in_len) {
      if (!r->at_end) return 0;
      if (r->mode == M_QUOTED) return fail_reader(r, "%s: record %d: a quoted field is not closed at the end",
                                                  r->record, 0);
      if (r->mode == M_CR || (r->mode == M_START && r->nfields == 0)) {
        r->mode = M_START;
        return -1;
      }
      if (end_field(r)) return -2;
      r->mode = M_START;
      r->ready = 1;
      return row_cells(r) ? 1 : -2;
    }
    const char *in = r->in;
    switch (r->mode) {
      case M_START: {
        char c = in[r->pos];
        if (c == '"') {
          r->pos++;
          r->mode = M_QUOTED;
        } else if (r->nfields == 0 && (c == '\r' || c == '\n')) {
          r->pos++; /* a blank line */
          r->mode = c == '\r' ? M_CR : M_START;
        } else {
          r->mode = M_PLAIN;
        }
        break;
      }
      case M_PLAIN: {
        size_t i = r->pos;
        while (i < r->in_len && in[i] != ',' && in[i] != '\r' && in[i] != '\n') i++;
        if (add_out(r, in + r->pos, i - r->pos)) return -2;
        r->pos = i;
        if (i == r->in_len) break;
        char c = in[i];
        r->pos = i + 1;
        if (end_field(r)) return -2;
        if (c == ',') {
          r->mode = M_START;
        } else {
          r->mode = c == '\r' ? M_CR : M_START;
          r->ready = 1;
          return row_cells(r) ? 1 : -2;
        }
        break;
      }
      case M_QUOTED: {
        const char *close = memchr(in + r->pos, '"', r->in_len - r->pos);
        size_t stop = close ? (size_t)(close - in) : r->in_len;
        if (add_out(r, in + r->pos, stop - r->pos)) return -2;
        r->pos = stop;
        if (close) {
          r->pos++;
          r->mode = M_QUOTE;
        }
        break;
      }
      case M_QUOTE: {
        char c = in[r->pos++];
        if (c == '"') {
          if (add_out(r, "\"", 1)) return -2;
          r->mode = M_QUOTED;
        } else if (c == ',') {
          if (end_field(r)) return -2;
          r->mode = M_START;
        } else if (c == '\r' || c == '\n') {
          if (end_field(r)) return -2;
          r->mode = c == '\r' ? M_CR : M_START;
          r->ready = 1;
          return row_cells(r) ? 1 : -2;
        } else {
          return fail_reader(r, "%s: record %d: text after the closing quote of field %d", r->record, r->nfields + 1);
        }
        break;
      }
      default: /* M_CR: a LF right after it is the same line end */
        if (in[r->pos] == '\n') r->pos++;
        r->mode = M_START;
        break;
    }
  }
}

static reader *checkreader(lua_State *L) { return luaL_checkudata(L, 1, READER_META); }

static int reader_gc(lua_State *L) {
  reader *r = luaL_checkudata(L, 1, READER_META);
  free(r->in);
  free(r->out);
  free(r->ends);
  free(r->cells);
  r->in = r->out = NULL;
  r->ends = NULL;
  r->cells = NULL;
  r->in_cap = r->out_cap = 0;
  r->fields_cap = r->cells_cap = 0;
  return 0;
}

static int l_csv_reader(lua_State *L) {
  const char *where = luaL_checkstring(L, 1);
  reader *r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  r->record = 1;
  snprintf(r->where, sizeof r->where, "%s", where);
  luaL_setmetatable(L, READER_META);
  return 1;
}

/* Adds text after what is left unread: 0, or -1 when out of memory. */
static int reader_append(reader *r, const char *s, size_t len) {
  if (r->pos > 0) {
    memmove(r->in, r->in + r->pos, r->in_len - r->pos);
    r->in_len -= r->pos;
    r->pos = 0;
  }
  if (!grow((void **)&r->in, &r->in_cap, r->in_len + len, 1)) return -1;
  if (len) memcpy(r->in + r->in_len, s, len);
  r->in_len += len;
  return 0;
}

static int reader_feed(lua_State *L) {
  reader *r = checkreader(L);
  if (lua_isnoneornil(L, 2)) {
    r->at_end = 1;
    return 0;
  }
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (r->at_end) return luaL_error(L, "csv_reader: fed after the end");
  if (reader_append(r, s, len)) return luaL_error(L, "csv_reader: out of memory");
  return 0;
}

static int reader_row(lua_State *L) {
  reader *r = checkreader(L);
  int rc = next_row(r);
  if (rc == 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (rc == -1) {
    lua_pushnil(L);
    return 1;
  }
  if (rc == -2) {
    lua_pushnil(L);
    lua_pushstring(L, r->err);
    return 2;
  }
  lua_createtable(L, r->nfields, 0);
  for (int i = 0; i < r->nfields; i++) {
    if (!r->cells[i].present) continue;
    lua_pushlstring(L, r->cells[i].s, r->cells[i].len);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* ---- plans ------------------------------------------------------------------ */

enum { S_COL, S_VALUE, S_EMAIL, S_LOOKUP };
enum { V_NIL, V_TEXT, V_INT, V_FLOAT, V_BOOL };
enum { P_CHAIN, P_ROW, P_EXTRA, P_EXTERNAL };
#define MAX_PARAMS 64

typedef struct {
  int type; /* V_* */
  const char *s;
  size_t len;
  lua_Integer i;
  double d;
  int lower; /* text to be written in lower case */
} value;

typedef struct {
  int type; /* S_* */
  int col;  /* S_COL */
  value v;  /* S_VALUE */
  int sub, nsub; /* S_EMAIL, S_LOOKUP: the chain sources[sub..sub+nsub) */
  int map;       /* S_LOOKUP: the map's place in the plan's second user value */
} source;

typedef struct {
  int type; /* P_* */
  int first, n, lower;
} param;

typedef struct {
  const char *key;
  size_t key_len;
  int first, n; /* columns: cols[first..first+n) */
} extra_field;

typedef struct {
  sqlite3_stmt **stmt; /* the statement's slot in its userdata: NULL once closed */
  int nparams;
  param *params;
  source *sources;
  int nsources;
  extra_field *extra;
  int nextra;
  int *cols;
  int maxcol;
  /* The external flag: its own value (a chain), the group's (-1: none),
   * the link type's chain (n = 0: none), and the parameters the guest
   * checks read. */
  int ext_first, ext_n, ext_group, link_first, link_n, p_principal, p_email, p_type;
  char *scratch; /* the extra column's JSON and lower-case texts of a row */
  size_t scratch_len, scratch_cap;
  luaL_Stream *csv; /* spec.csv: where each row inserted is written as CSV */
  char *line;
  size_t line_cap;
} plan;

static plan *checkplan(lua_State *L, int idx) { return luaL_checkudata(L, idx, PLAN_META); }

static int plan_gc(lua_State *L) {
  plan *p = luaL_checkudata(L, 1, PLAN_META);
  free(p->params);
  free(p->sources);
  free(p->extra);
  free(p->cols);
  free(p->scratch);
  free(p->line);
  memset(p, 0, sizeof *p);
  return 0;
}

/* Counts the sources of the chain at idx (nested ones too). */
static int count_sources(lua_State *L, int idx) {
  int n = 0;
  idx = lua_absindex(L, idx);
  int len = (int)lua_rawlen(L, idx);
  for (int i = 1; i <= len; i++) {
    lua_rawgeti(L, idx, i);
    luaL_checktype(L, -1, LUA_TTABLE);
    n++;
    if (lua_getfield(L, -1, "email") == LUA_TTABLE) n += count_sources(L, -1);
    if (lua_getfield(L, -2, "lookup") == LUA_TTABLE) n += count_sources(L, -1);
    lua_pop(L, 3);
  }
  return n;
}

/* A constant (kept alive by the plan's user value, the spec). */
static void const_value(lua_State *L, int idx, value *v) {
  memset(v, 0, sizeof *v);
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
      v->type = V_TEXT;
      v->s = lua_tolstring(L, idx, &v->len);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        v->type = V_INT;
        v->i = lua_tointeger(L, idx);
      } else {
        v->type = V_FLOAT;
        v->d = lua_tonumber(L, idx);
      }
      break;
    case LUA_TBOOLEAN:
      v->type = V_BOOL;
      v->i = lua_toboolean(L, idx);
      break;
    default:
      luaL_error(L, "row_plan: a value must be a string, number or boolean, not a %s", luaL_typename(L, idx));
  }
}

static int note_col(lua_State *L, plan *p, lua_Integer c) {
  if (c < 1 || c > 100000) luaL_error(L, "row_plan: column %d is out of range", (int)c);
  if (c > p->maxcol) p->maxcol = (int)c;
  return (int)c;
}

/* Reads the chain at idx into p->sources from *next on; returns its first. */
static int read_chain(lua_State *L, plan *p, int idx, int *next, int *n) {
  idx = lua_absindex(L, idx);
  int len = (int)lua_rawlen(L, idx);
  int first = *next;
  *next += len;
  *n = len;
  for (int i = 0; i < len; i++) {
    source *s = &p->sources[first + i];
    lua_rawgeti(L, idx, i + 1);
    if (lua_getfield(L, -1, "col") != LUA_TNIL) {
      s->type = S_COL;
      s->col = note_col(L, p, luaL_checkinteger(L, -1));
    } else if (lua_getfield(L, -2, "value") != LUA_TNIL) {
      s->type = S_VALUE;
      const_value(L, -1, &s->v);
      lua_pop(L, 1);
    } else if (lua_getfield(L, -3, "email") == LUA_TTABLE) {
      s->type = S_EMAIL;
      int nsub;
      s->sub = read_chain(L, p, -1, next, &nsub);
      s->nsub = nsub;
      lua_pop(L, 2);
    } else if (lua_getfield(L, -4, "lookup") == LUA_TTABLE) {
      s->type = S_LOOKUP;
      int nsub;
      s->sub = read_chain(L, p, -1, next, &nsub);
      s->nsub = nsub;
      /* The map joins the plan's list of maps (the plan is at index 2). */
      lua_getiuservalue(L, 2, 2);
      lua_getfield(L, -6, "map");
      luaL_checktype(L, -1, LUA_TTABLE);
      s->map = (int)lua_rawlen(L, -2) + 1;
      lua_rawseti(L, -2, s->map);
      lua_pop(L, 4);
    } else {
      luaL_error(L, "row_plan: a source is {col=}, {value=}, {email=} or {lookup=, map=}");
    }
    lua_pop(L, 2);
  }
  return first;
}

static int l_row_plan(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  plan *p = lua_newuserdatauv(L, sizeof *p, 2);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, PLAN_META);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1); /* the spec keeps the constants' strings */
  lua_newtable(L);
  lua_setiuservalue(L, -2, 2); /* the maps lookups read */
  lua_getfield(L, 1, "stmt");
  p->stmt = lsqlite_stmt_slot(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "csv") != LUA_TNIL) p->csv = luaL_checkudata(L, -1, LUA_FILEHANDLE);
  lua_pop(L, 1);
  p->nparams = sqlite3_bind_parameter_count(*p->stmt);
  if (p->nparams > MAX_PARAMS) return luaL_error(L, "row_plan: at most %d parameters", MAX_PARAMS);
  p->params = calloc((size_t)p->nparams + 1, sizeof *p->params);
  p->ext_group = -1;
  if (!p->params) return luaL_error(L, "row_plan: out of memory");
  /* Sources: count first, then read. */
  int total = 0;
  lua_getfield(L, 1, "params");
  luaL_checktype(L, -1, LUA_TTABLE);
  for (int i = 1; i <= p->nparams; i++) {
    if (lua_rawgeti(L, -1, i) == LUA_TTABLE) total += count_sources(L, -1);
    lua_pop(L, 1);
  }
  lua_getfield(L, 1, "external");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "value");
    if (lua_istable(L, -1)) total += count_sources(L, -1);
    lua_getfield(L, -2, "link");
    if (lua_istable(L, -1)) total += count_sources(L, -1);
    lua_pop(L, 2);
  }
  p->sources = calloc((size_t)total + 1, sizeof *p->sources);
  if (!p->sources) return luaL_error(L, "row_plan: out of memory");
  int next = 0;
  lua_getfield(L, 1, "row");
  int row_param = (int)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "extra_param");
  int extra_param = (int)luaL_optinteger(L, -1, 0);
  lua_pop(L, 2);
  /* stack: spec, plan, params, external */
  int ext_param = 0;
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "param");
    ext_param = (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
  }
  for (int i = 1; i <= p->nparams; i++) {
    param *pa = &p->params[i - 1];
    if (i == row_param) {
      pa->type = P_ROW;
    } else if (i == extra_param) {
      pa->type = P_EXTRA;
    } else if (i == ext_param) {
      pa->type = P_EXTERNAL;
    } else {
      pa->type = P_CHAIN;
      if (lua_rawgeti(L, -2, i) == LUA_TTABLE) {
        int n;
        pa->first = read_chain(L, p, -1, &next, &n);
        pa->n = n;
        lua_getfield(L, -1, "lower");
        pa->lower = lua_toboolean(L, -1);
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
  }
  if (lua_istable(L, -1)) {
    int n;
    lua_getfield(L, -1, "value");
    if (lua_istable(L, -1)) p->ext_first = read_chain(L, p, -1, &next, &n), p->ext_n = n;
    lua_getfield(L, -2, "link");
    if (lua_istable(L, -1)) p->link_first = read_chain(L, p, -1, &next, &n), p->link_n = n;
    lua_getfield(L, -3, "group");
    if (!lua_isnil(L, -1)) p->ext_group = lua_toboolean(L, -1);
    lua_getfield(L, -4, "principal");
    p->p_principal = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, -5, "email");
    p->p_email = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, -6, "type");
    p->p_type = (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 6);
  }
  lua_pop(L, 2);
  /* The other columns, for extra. */
  if (extra_param) {
    lua_getfield(L, 1, "extra");
    luaL_checktype(L, -1, LUA_TTABLE);
    p->nextra = (int)lua_rawlen(L, -1);
    int ncols = 0;
    for (int i = 1; i <= p->nextra; i++) {
      lua_rawgeti(L, -1, i);
      lua_getfield(L, -1, "cols");
      ncols += (int)lua_rawlen(L, -1);
      lua_pop(L, 2);
    }
    p->extra = calloc((size_t)p->nextra + 1, sizeof *p->extra);
    p->cols = calloc((size_t)ncols + 1, sizeof *p->cols);
    if (!p->extra || !p->cols) return luaL_error(L, "row_plan: out of memory");
    int at = 0;
    for (int i = 1; i <= p->nextra; i++) {
      extra_field *e = &p->extra[i - 1];
      lua_rawgeti(L, -1, i);
      lua_getfield(L, -1, "key");
      e->key = luaL_checklstring(L, -1, &e->key_len);
      lua_getfield(L, -2, "cols");
      e->first = at;
      e->n = (int)lua_rawlen(L, -1);
      for (int j = 1; j <= e->n; j++) {
        lua_rawgeti(L, -1, j);
        p->cols[at++] = note_col(L, p, luaL_checkinteger(L, -1));
        lua_pop(L, 1);
      }
      lua_pop(L, 3);
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* The chain's value for a row of cells (cells[0] is column 1). */
static int email_like(const char *s, size_t len);

static const char *text_of(const value *v, char *buf, size_t size, size_t *len);

/* The plan is at stack index pidx. */
static value eval_chain(lua_State *L, int pidx, plan *p, const cell *cells, int ncells, int first, int n) {
  value v = {0};
  for (int k = 0; k < n; k++) {
    const source *s = &p->sources[first + k];
    if (s->type == S_COL) {
      if (s->col <= ncells && cells[s->col - 1].present) {
        v.type = V_TEXT;
        v.s = cells[s->col - 1].s;
        v.len = cells[s->col - 1].len;
        return v;
      }
    } else if (s->type == S_VALUE) {
      return s->v;
    } else if (s->type == S_EMAIL) {
      value e = eval_chain(L, pidx, p, cells, ncells, s->sub, s->nsub);
      if (e.type == V_TEXT && email_like(e.s, e.len)) {
        e.lower = 1;
        return e;
      }
    } else {
      /* S_LOOKUP: the map's value for the chain's text in lower case. */
      value e = eval_chain(L, pidx, p, cells, ncells, s->sub, s->nsub);
      if (e.type == V_NIL) continue;
      char buf[64];
      size_t len;
      const char *t = text_of(&e, buf, sizeof buf, &len);
      lua_getiuservalue(L, pidx, 2);
      lua_rawgeti(L, -1, s->map);
      luaL_Buffer b;
      char *q = luaL_buffinitsize(L, &b, len);
      for (size_t k = 0; k < len; k++) q[k] = (t[k] >= 'A' && t[k] <= 'Z') ? (char)(t[k] + 32) : t[k];
      luaL_pushresultsize(&b, len);
      int found = lua_rawget(L, -2) == LUA_TSTRING;
      if (found) {
        v.type = V_TEXT;
        v.s = lua_tolstring(L, -1, &v.len); /* the map holds it */
      }
      lua_pop(L, 3);
      if (found) return v;
    }
  }
  return v;
}

/* An e-mail address (or a login such as one): name@domain.tld, with no
 * space, @, <, >, " or ' in the parts. */
static int email_char(unsigned char c) {
  return !(c == '@' || c == ' ' || (c >= '\t' && c <= '\r') || c == '<' || c == '>' || c == '"' || c == '\'');
}

static int email_like(const char *s, size_t len) {
  size_t i = 0;
  while (i < len && email_char((unsigned char)s[i])) i++;
  if (i == 0 || i >= len || s[i] != '@') return 0;
  size_t at = i++, dot = 0;
  for (; i < len; i++) {
    if (!email_char((unsigned char)s[i])) return 0;
    if (s[i] == '.' && i > at + 1 && i + 1 < len) dot = i;
  }
  return dot != 0;
}

/* Whether needle (lower case) is in s, ignoring ASCII case. */
static int contains_nocase(const char *s, size_t len, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= len; i++) {
    size_t j = 0;
    while (j < n) {
      unsigned char c = (unsigned char)s[i + j];
      if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
      if (c != (unsigned char)needle[j]) break;
      j++;
    }
    if (j == n) return 1;
  }
  return 0;
}

static int equals_nocase(const char *s, size_t len, const char *word) {
  return strlen(word) == len && contains_nocase(s, len, word);
}

/* A value as text, as Lua's tostring would give it (for the flag's tests). */
static const char *text_of(const value *v, char *buf, size_t size, size_t *len) {
  if (v->type == V_TEXT) {
    *len = v->len;
    return v->s;
  }
  if (v->type == V_INT) snprintf(buf, size, "%lld", (long long)v->i);
  else if (v->type == V_BOOL) snprintf(buf, size, "%s", v->i ? "true" : "false");
  else if (v->type == V_FLOAT) snprintf(buf, size, "%.14g", v->d);
  else buf[0] = '\0';
  *len = strlen(buf);
  return buf;
}

/* The external flag: the row's own (1, true, yes; 0, false, no), else the
 * group's, else whether the link type is anyone's; then true for a guest
 * login (#EXT#) as principal or e-mail, or a principal type that says
 * guest, external or anyone; else false. */
static int external_of(lua_State *L, int pidx, plan *p, const cell *cells, int ncells, const value *vals) {
  int ext = -1;
  char buf[64];
  size_t len;
  if (p->ext_n) {
    value v = eval_chain(L, pidx, p, cells, ncells, p->ext_first, p->ext_n);
    if (v.type != V_NIL) {
      const char *t = text_of(&v, buf, sizeof buf, &len);
      if (equals_nocase(t, len, "1") || equals_nocase(t, len, "true") || equals_nocase(t, len, "yes")) ext = 1;
      else if (equals_nocase(t, len, "0") || equals_nocase(t, len, "false") || equals_nocase(t, len, "no")) ext = 0;
    }
  }
  if (ext == -1 && p->ext_group != -1) ext = p->ext_group;
  if (ext == -1 && p->link_n) {
    value v = eval_chain(L, pidx, p, cells, ncells, p->link_first, p->link_n);
    if (v.type != V_NIL) {
      const char *t = text_of(&v, buf, sizeof buf, &len);
      ext = contains_nocase(t, len, "anyone");
    }
  }
  if (ext != 1) {
    const value *who = p->p_principal ? &vals[p->p_principal - 1] : NULL;
    const value *mail = p->p_email ? &vals[p->p_email - 1] : NULL;
    const value *type = p->p_type ? &vals[p->p_type - 1] : NULL;
    if ((who && who->type == V_TEXT && contains_nocase(who->s, who->len, "#ext#")) ||
        (mail && mail->type == V_TEXT && contains_nocase(mail->s, mail->len, "#ext#")))
      ext = 1;
    else if (type && type->type != V_NIL) {
      const char *t = text_of(type, buf, sizeof buf, &len);
      if (contains_nocase(t, len, "guest") || contains_nocase(t, len, "external") || equals_nocase(t, len, "anyone"))
        ext = 1;
    }
  }
  return ext == 1;
}

static int scratch_add(plan *p, const char *s, size_t n) {
  if (!grow((void **)&p->scratch, &p->scratch_cap, p->scratch_len + n, 1)) return 0;
  memcpy(p->scratch + p->scratch_len, s, n);
  p->scratch_len += n;
  return 1;
}

/* A JSON string needs lua-cjson (through spec.encode) when it holds a
 * control character, a quote, a backslash or DEL; else it is the text in
 * quotes. */
static int json_plain(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) return 0;
  }
  return 1;
}

/* The extra column's JSON for the row, into p->scratch from *at; 0 when
 * the row has none of the other columns, -1 when out of memory. */
static int extra_of(lua_State *L, plan *p, const cell *cells, int ncells, size_t *at, size_t *len) {
  int any = 0;
  *at = p->scratch_len;
  for (int i = 0; i < p->nextra; i++) {
    const extra_field *e = &p->extra[i];
    const cell *c = NULL;
    for (int j = 0; j < e->n; j++) {
      int col = p->cols[e->first + j];
      if (col <= ncells && cells[col - 1].present) c = &cells[col - 1];
    }
    if (!c) continue;
    if (!scratch_add(p, any ? "," : "{", 1) || !scratch_add(p, e->key, e->key_len)) return -1;
    any = 1;
    if (json_plain(c->s, c->len)) {
      if (!scratch_add(p, "\"", 1) || !scratch_add(p, c->s, c->len) || !scratch_add(p, "\"", 1)) return -1;
    } else {
      lua_getiuservalue(L, -1, 1);
      lua_getfield(L, -1, "encode");
      lua_pushlstring(L, c->s, c->len);
      lua_call(L, 1, 1);
      size_t n;
      const char *s = luaL_checklstring(L, -1, &n);
      int ok = scratch_add(p, s, n);
      lua_pop(L, 2);
      if (!ok) return -1;
    }
  }
  if (!any) return 0;
  if (!scratch_add(p, "}", 1)) return -1;
  *len = p->scratch_len - *at;
  return 1;
}

/* Runs one row (its cells) through the plan at the top of the stack into
 * the statement: 0, or pushes nil, err and returns 2. */
static int run_row(lua_State *L, plan *p, const cell *cells, int ncells, lua_Integer n) {
  sqlite3_stmt *st = *p->stmt;
  value vals[MAX_PARAMS];
  if (!st) return luaL_error(L, "row_plan: its statement is closed");
  int ext_at = 0, extra_at = 0, pidx = lua_gettop(L);
  p->scratch_len = 0;
  for (int i = 0; i < p->nparams; i++) {
    const param *pa = &p->params[i];
    memset(&vals[i], 0, sizeof vals[i]);
    if (pa->type == P_CHAIN) {
      vals[i] = eval_chain(L, pidx, p, cells, ncells, pa->first, pa->n);
      if (pa->lower) vals[i].lower = 1;
    } else if (pa->type == P_ROW) {
      vals[i].type = V_INT;
      vals[i].i = n;
    } else if (pa->type == P_EXTERNAL) {
      ext_at = i + 1;
    } else {
      extra_at = i + 1;
    }
  }
  if (ext_at) {
    vals[ext_at - 1].type = V_BOOL;
    vals[ext_at - 1].i = external_of(L, pidx, p, cells, ncells, vals);
  }
  size_t extra_start = 0, extra_len = 0;
  if (extra_at) {
    int rc = extra_of(L, p, cells, ncells, &extra_start, &extra_len);
    if (rc < 0) return luaL_error(L, "row_plan: out of memory");
    if (rc) vals[extra_at - 1].type = V_TEXT;
  }
  /* Lower-case copies, in the scratch after the JSON (which stays put). */
  size_t lower_at[MAX_PARAMS];
  for (int i = 0; i < p->nparams; i++) {
    lower_at[i] = (size_t)-1;
    if (vals[i].type == V_TEXT && vals[i].lower) {
      lower_at[i] = p->scratch_len;
      if (!scratch_add(p, vals[i].s, vals[i].len)) return luaL_error(L, "row_plan: out of memory");
      char *q = p->scratch + lower_at[i];
      for (size_t k = 0; k < vals[i].len; k++)
        if (q[k] >= 'A' && q[k] <= 'Z') q[k] = (char)(q[k] + 32);
    }
  }
  int rc = SQLITE_OK;
  for (int i = 0; i < p->nparams && rc == SQLITE_OK; i++) {
    const value *v = &vals[i];
    switch (v->type) {
      case V_NIL:
        rc = sqlite3_bind_null(st, i + 1);
        break;
      case V_TEXT: {
        const char *s = v->s;
        if (i + 1 == extra_at) s = p->scratch + extra_start;
        else if (lower_at[i] != (size_t)-1) s = p->scratch + lower_at[i];
        rc = sqlite3_bind_text64(st, i + 1, s, i + 1 == extra_at ? extra_len : v->len, SQLITE_STATIC, SQLITE_UTF8);
        break;
      }
      case V_INT:
        rc = sqlite3_bind_int64(st, i + 1, (sqlite3_int64)v->i);
        break;
      case V_FLOAT:
        rc = sqlite3_bind_double(st, i + 1, v->d);
        break;
      default:
        rc = sqlite3_bind_int(st, i + 1, (int)v->i);
        break;
    }
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) rc = SQLITE_OK;
  }
  sqlite3_reset(st); /* every parameter is bound again for the next row */
  if (rc != SQLITE_OK) {
    char msg[CORE_ERRLEN];
    snprintf(msg, sizeof msg, "insert: %s", sqlite3_errmsg(sqlite3_db_handle(st)));
    return core_fail(L, "sqlite", msg);
  }
  if (p->csv) {
    /* The row as the table holds it: texts as cells, numbers as SQLite
     * writes them in a text column, the external flag true or false. */
    size_t need = 2;
    for (int i = 0; i < p->nparams; i++) need += 2 * (i + 1 == extra_at ? extra_len : vals[i].len) + 40;
    if (!grow((void **)&p->line, &p->line_cap, need, 1)) return luaL_error(L, "row_plan: out of memory");
    size_t at = 0;
    for (int i = 0; i < p->nparams; i++) {
      const value *v = &vals[i];
      if (i) p->line[at++] = ',';
      if (i + 1 == ext_at) {
        memcpy(p->line + at, v->i ? "true" : "false", v->i ? 4 : 5);
        at += v->i ? 4 : 5;
      } else if (v->type == V_TEXT) {
        const char *t = v->s;
        size_t len = v->len;
        if (i + 1 == extra_at) t = p->scratch + extra_start, len = extra_len;
        else if (lower_at[i] != (size_t)-1) t = p->scratch + lower_at[i];
        int neutralised;
        at += csv_cell_put(p->line + at, t, len, 0, &neutralised);
      } else if (v->type == V_INT || v->type == V_BOOL) {
        at += (size_t)snprintf(p->line + at, 32, "%lld", (long long)v->i);
      } else if (v->type == V_FLOAT) {
        sqlite3_snprintf(32, p->line + at, "%!.15g", v->d);
        at += strlen(p->line + at);
      }
    }
    p->line[at++] = '\r';
    p->line[at++] = '\n';
    if (!p->csv->closef) return luaL_error(L, "row_plan: attempt to use a closed file");
    if (fwrite(p->line, 1, at, p->csv->f) != at) {
      char msg[CORE_ERRLEN];
      snprintf(msg, sizeof msg, "cannot write the CSV: %s", strerror(errno));
      return core_fail(L, "file", msg);
    }
  }
  return 0;
}

/* plan:add(row, n) -> true | nil, err */
static int plan_add(lua_State *L) {
  plan *p = checkplan(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_checkinteger(L, 3);
  int ncells = p->maxcol;
  cell *cells = lua_newuserdatauv(L, sizeof *cells * ((size_t)ncells + 1), 0);
  luaL_checkstack(L, 2 * ncells + 8, "row_plan");
  int base = lua_gettop(L);
  for (int i = 1; i <= ncells; i++) {
    int t = lua_rawgeti(L, 2, i);
    cells[i - 1].present = t != LUA_TNIL;
    cells[i - 1].s = t == LUA_TNIL ? NULL : luaL_tolstring(L, -1, &cells[i - 1].len);
    if (t == LUA_TNIL) cells[i - 1].len = 0;
  }
  lua_pushvalue(L, 1); /* the plan on top, for run_row */
  int rc = run_row(L, p, cells, ncells, n);
  if (rc) return rc;
  lua_settop(L, base);
  lua_pushboolean(L, 1);
  return 1;
}

/* rd:pipe(plan, n) */
static int reader_pipe(lua_State *L) {
  reader *r = checkreader(L);
  plan *p = checkplan(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  lua_settop(L, 2); /* the plan on top, for run_row */
  for (;;) {
    int rc = next_row(r);
    if (rc == 0 || rc == -1) {
      lua_pushinteger(L, n);
      if (rc == 0) lua_pushboolean(L, 0);
      else lua_pushnil(L);
      return 2;
    }
    if (rc == -2) {
      lua_pushnil(L);
      lua_pushstring(L, r->err);
      return 2;
    }
    int any = 0;
    for (int i = 0; i < r->nfields && !any; i++) any = r->cells[i].present;
    if (!any) continue;
    n++;
    if (run_row(L, p, r->cells, r->nfields, n)) {
      lua_pushinteger(L, n);
      return 3;
    }
  }
}

int lcsv_open(lua_State *L) {
  static const luaL_Reg reader_methods[] = {
      {"feed", reader_feed}, {"pipe", reader_pipe}, {"row", reader_row}, {NULL, NULL}};
  static const luaL_Reg plan_methods[] = {{"add", plan_add}, {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"csv_reader", l_csv_reader}, {"row_plan", l_row_plan}, {"csv_cell", l_csv_cell}, {NULL, NULL}};
  core_newmeta(L, READER_META, reader_methods, reader_gc);
  core_newmeta(L, PLAN_META, plan_methods, plan_gc);
  luaL_setfuncs(L, fns, 0);
  return 0;
}
