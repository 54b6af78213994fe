/* lloop.c: waiting, for Lua. core.wait parks the calling coroutine with
 * lua_yieldk, handing the scheduler (auditrun.task) the object waited on;
 * core.poll runs the loop once and returns what finished.
 *
 * Code that cannot yield waits through the scheduler, which runs the loop
 * itself (C never calls back into Lua to wait). Timers are userdata like
 * transfers.
 *
 * Ctrl-C (or SIGTERM) while Lua code runs: as lua.c does, the signal
 * handler sets a hook on the running thread. The scheduler normally takes
 * the interrupt within moments (core.interrupted) and cancels its tasks
 * cleanly; code that never comes back to it (a CPU-bound loop) is stopped
 * by the hook raising {kind="interrupted"} after a short grace. */
#include <math.h>
#include <signal.h>
#include <string.h>

#include "lcore.h"

#define TIMER_META "auditrun.timer"
#define totimer(L) ((loop_timer *)luaL_checkudata(L, 1, TIMER_META))

/* The address is the marker: a yield carrying it comes from core.wait. */
static const char wait_marker = 'w';

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return lua_gettop(L) - 1;  /* what the scheduler resumed us with */
}

static int loop_wait(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  if (!lua_isyieldable(L)) return luaL_error(L, "core.wait outside a coroutine: wait with auditrun.task.wait");
  lua_pushlightuserdata(L, (void *)&wait_marker);
  lua_pushvalue(L, 1);
  return lua_yieldk(L, 2, 0, wait_k);
}

static int loop_poll_lua(lua_State *L) {
  char err[CORE_ERRLEN];
  double max_wait = luaL_optnumber(L, 1, -1);
  loop *lp = core_loop(L);
  loop_item *it;
  int n = 0;
  if (loop_poll(lp, max_wait, err, sizeof err) != 0) return luaL_error(L, "%s", err);
  lua_newtable(L);
  while ((it = loop_take_done(lp)) != NULL) {
    if (it->ref == LUA_NOREF) continue;
    lua_rawgeti(L, LUA_REGISTRYINDEX, it->ref);
    core_untrack(L, it);
    lua_rawseti(L, -2, ++n);
  }
  lua_pushinteger(L, loop_interrupted());
  return 2;
}

static int loop_now_lua(lua_State *L) {
  lua_pushnumber(L, loop_now());
  return 1;
}

static int loop_pending_lua(lua_State *L) {
  lua_pushinteger(L, loop_pending(core_loop(L)));
  return 1;
}

#define INTERRUPT_GRACE 0.25  /* seconds the scheduler has to take Ctrl-C itself */

static lua_State *main_thread, *running_thread;
static volatile sig_atomic_t interrupts_taken;
static volatile double interrupted_at;

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (interrupts_taken >= loop_interrupted()) {
    lua_sethook(L, NULL, 0, 0);
    return;
  }
  if (loop_now() - interrupted_at < INTERRUPT_GRACE) return;
  /* The hook stays (code that catches the error and spins on is raised at
   * again), and the grace starts over: the scheduler this returns to gets
   * its chance to take the interrupt. */
  interrupted_at = loop_now();
  core_fail(L, "interrupted", "interrupted");
  lua_error(L);
}

/* In the signal handler: clock_gettime and lua_sethook are safe there. */
static void on_interrupt(void) {
  int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT;
  interrupted_at = loop_now();
  if (running_thread) lua_sethook(running_thread, interrupt_hook, mask, 1000);
  if (main_thread) lua_sethook(main_thread, interrupt_hook, mask, 1000);
}

/* handle_signals(): SIGINT and SIGTERM go to the loop's handler from now
 * on, and a hook stops Lua code that never returns to the loop. The host
 * calls it once, before the script runs (auditrun.task). */
static int loop_handle_signals(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main_thread = lua_tothread(L, -1);
  lua_pop(L, 1);
  loop_set_interrupt_fn(on_interrupt);
  loop_install_signals();
  return 0;
}

/* interrupted() -> how many Ctrl-C so far; the caller takes them. */
static int loop_interrupted_lua(lua_State *L) {
  int n = loop_interrupted();
  interrupts_taken = n;
  lua_pushinteger(L, n);
  return 1;
}

/* set_running(thread|nil): the task the scheduler resumes, for the hook.
 * A scheduler switching tasks is not stuck: with an interrupt pending, the
 * grace starts over, and the task about to run gets the hook too. */
static int loop_set_running(lua_State *L) {
  running_thread = lua_isnoneornil(L, 1) ? NULL : lua_tothread(L, 1);
  if (loop_interrupted() > interrupts_taken) {
    interrupted_at = loop_now();
    if (running_thread)
      lua_sethook(running_thread, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1000);
  }
  return 0;
}

static int loop_timer_new(lua_State *L) {
  char err[CORE_ERRLEN];
  double seconds = luaL_checknumber(L, 1);
  loop *lp = core_loop(L);
  loop_timer *t;
  luaL_argcheck(L, !isnan(seconds), 1, "not a number");
  t = lua_newuserdatauv(L, sizeof *t, 0);
  memset(t, 0, sizeof *t);
  t->item.ref = LUA_NOREF;
  t->heap_index = (size_t)-1;
  luaL_setmetatable(L, TIMER_META);
  if (loop_add_timer(lp, t, seconds, err, sizeof err) != 0) return luaL_error(L, "%s", err);
  core_track(L, -1, &t->item);
  return 1;
}

static int timer_done(lua_State *L) {
  lua_pushboolean(L, totimer(L)->item.done);
  return 1;
}

/* close, cancel, __gc and __close: safe twice. */
static int timer_close(lua_State *L) {
  loop_timer *t = totimer(L);
  loop *lp = loop_current();
  if (lp) loop_remove_timer(lp, t);
  core_untrack(L, &t->item);
  return 0;
}

int lloop_open(lua_State *L) {
  static const luaL_Reg timer_methods[] = {
      {"abort", timer_close}, {"close", timer_close}, {"done", timer_done}, {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"handle_signals", loop_handle_signals},
      {"interrupted", loop_interrupted_lua},
      {"now", loop_now_lua},
      {"pending", loop_pending_lua},
      {"poll", loop_poll_lua},
      {"set_running", loop_set_running},
      {"timer", loop_timer_new},
      {"wait", loop_wait},
      {NULL, NULL}};
  core_newmeta(L, TIMER_META, timer_methods, timer_close);
  luaL_setfuncs(L, fns, 0);
  lua_pushlightuserdata(L, (void *)&wait_marker);
  lua_setfield(L, -2, "WAIT");
  return 0;
}
