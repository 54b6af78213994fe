/* ltime.c: the common form of an ISO 8601 time read in C, for
 * auditrun.time, which reads every row's time of the records workflows.
 * Only the plain form is read here; auditrun.time reads the rest.
 *
 * core.iso_time(s) -> seconds since the epoch | nil. s: yyyy-MM-dd, or
 * that with [T ]HH:mm[:ss[.fff]] and nothing, Z or z after it. The value
 * is the one auditrun.time.parse gives, to the bit and in its type (an
 * integer unless there is a fraction); nil for any other text, and for a
 * field out of range (auditrun.time then says what it makes of it). */
#include <stdlib.h>
#include <string.h>

#include "lcore.h"

static int digits(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* auditrun.time's days_from_civil (H. Hinnant's), for years 0..9999. */
static lua_Integer days_from_civil(lua_Integer y, lua_Integer m, lua_Integer d) {
  y = m <= 2 ? y - 1 : y;
  lua_Integer era = (y >= 0 ? y : y - 399) / 400;
  lua_Integer yoe = y - era * 400;
  lua_Integer doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  lua_Integer doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int l_iso_time(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  if (!s || lua_type(L, 1) != LUA_TSTRING || len < 10 || s[4] != '-' || s[7] != '-') goto other;
  int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31) goto other;
  lua_Integer secs = 0;
  double frac = 0;
  int has_frac = 0;
  size_t i = 10;
  if (i < len) {
    if ((s[i] != 'T' && s[i] != ' ') || len < i + 6 || s[i + 3] != ':') goto other;
    int h = digits(s + i + 1, 2), mi = digits(s + i + 4, 2), sec = 0;
    if (h < 0 || mi < 0) goto other;
    i += 6;
    if (i < len && s[i] == ':') {
      if (len < i + 3 || (sec = digits(s + i + 1, 2)) < 0) goto other;
      i += 3;
    }
    if (i < len && s[i] == '.') {
      size_t j = i + 1;
      while (j < len && s[j] >= '0' && s[j] <= '9') j++;
      char buf[64];
      if (j == i + 1 || j - i + 1 >= sizeof buf) goto other;
      /* As Lua's tonumber("0." .. digits) reads it. */
      buf[0] = '0';
      memcpy(buf + 1, s + i, j - i);
      buf[j - i + 1] = '\0';
      frac = strtod(buf, NULL);
      has_frac = 1;
      i = j;
    }
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) i++;
    if (i != len || h > 23 || mi > 59 || sec > 60) goto other;
    secs = (lua_Integer)h * 3600 + mi * 60 + sec;
  }
  lua_Integer day = days_from_civil(y, mo, d) * 86400;
  if (has_frac) {
    lua_pushnumber(L, (lua_Number)day + ((lua_Number)secs + frac));
  } else {
    lua_pushinteger(L, day + secs);
  }
  return 1;
other:
  lua_pushnil(L);
  return 1;
}

int ltime_open(lua_State *L) {
  lua_pushcfunction(L, l_iso_time);
  lua_setfield(L, 1, "iso_time");
  return 0;
}
