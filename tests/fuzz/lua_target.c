/* lua_target.c: a libFuzzer target for a parser written in Lua. It runs
 * harness.lua's function FUZZ_TARGET on each input inside a Lua state with
 * the auditrun modules and the core linked in. Lua code is not compiled
 * with coverage, so a line hook feeds libFuzzer's extra counters with the
 * (previous line, line) edges the Lua code takes, as AFL does for branches.
 * Any Lua error is a crash: the parsers return nil and a reason for bad
 * input, and the harness asserts what their answers must satisfy. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int luaopen_auditrun_core(lua_State *L);

#define COUNTERS (1 << 16)
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t lua_edges[COUNTERS];

static lua_State *L;
static uintptr_t previous;

static void line_hook(lua_State *l, lua_Debug *ar) {
  uintptr_t here;
  if (!lua_getinfo(l, "S", ar)) return;
  here = ((uintptr_t)ar->source * 2654435761u) ^ ((uintptr_t)ar->currentline * 40503u);
  lua_edges[(here ^ previous) & (COUNTERS - 1)]++;
  previous = here >> 1;
}

static int traceback(lua_State *l) {
  luaL_traceback(l, l, luaL_tolstring(l, 1, NULL), 1);
  return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_auditrun_core);
  lua_setfield(L, -2, "auditrun.core");
  lua_pop(L, 1);
  if (luaL_dostring(L, "package.path = '" FUZZ_ROOT "/lua/?.lua;" FUZZ_ROOT "/lua/?/init.lua;" FUZZ_ROOT
                       "/tests/fuzz/?.lua;' .. package.path") != LUA_OK ||
      luaL_dostring(L, "return require('harness')." FUZZ_TARGET) != LUA_OK || !lua_isfunction(L, -1)) {
    fprintf(stderr, "fuzz harness: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "no function " FUZZ_TARGET);
    exit(1);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.target");
  lua_sethook(L, line_hook, LUA_MASKLINE, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_settop(L, 0);
  lua_pushcfunction(L, traceback);
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.target");
  lua_pushlstring(L, (const char *)data, size);
  previous = 0;
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
    fprintf(stderr, "%s raised: %s\n", FUZZ_TARGET, lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  return 0;
}
