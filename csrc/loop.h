/* loop.h: the event loop under every waiting call: libcurl's multi handle,
 * a timer heap and the signal pipe. Knows nothing of Lua. */
#ifndef AUDITRUN_LOOP_H
#define AUDITRUN_LOOP_H

#include <curl/curl.h>
#include <stddef.h>

/* Something the loop can finish: a transfer or a timer. The owner embeds it
 * and sets `ref` to whatever lets it find its object again. */
typedef struct loop_item {
  int ref;            /* owner's handle (a Lua registry reference) */
  int done;           /* set by the loop when finished */
  int queued;         /* in the loop's completed list, not yet taken */
  struct loop_item *next_done;
} loop_item;

typedef struct loop_timer {
  loop_item item;
  double deadline;    /* loop_now() seconds */
  size_t heap_index;  /* position in the heap, or (size_t)-1 */
  unsigned long seq;  /* tie-break so equal deadlines fire in order */
} loop_timer;

typedef struct loop loop;

loop *loop_get(char *err, size_t errlen);  /* the process-wide loop, created once */
loop *loop_current(void);                   /* the loop if it exists, else NULL */
void loop_shutdown(void);                   /* frees it; used by the host at exit */
CURLM *loop_multi(loop *lp);
CURLSH *loop_share(loop *lp);
double loop_now(void);                      /* monotonic seconds */

/* Transfers: the easy handle's CURLOPT_PRIVATE must point at the loop_item. */
int loop_add_transfer(loop *lp, CURL *easy, char *err, size_t errlen);
void loop_remove_transfer(loop *lp, CURL *easy);
/* CURLcode of a finished transfer is stored through this hook, set by http.c */
typedef void (*loop_transfer_done_fn)(CURL *easy, CURLcode result);
void loop_set_transfer_done(loop *lp, loop_transfer_done_fn fn);

int loop_add_timer(loop *lp, loop_timer *t, double seconds, char *err, size_t errlen);
void loop_remove_timer(loop *lp, loop_timer *t);

/* Wait at most `max_wait` seconds (negative: until something happens) for
 * transfers, timers or a signal, and move what finished to the completed
 * list. Returns 0, or -1 with err filled. */
int loop_poll(loop *lp, double max_wait, char *err, size_t errlen);
loop_item *loop_take_done(loop *lp);        /* next completed item or NULL */
int loop_pending(loop *lp);                 /* transfers + timers in flight */

/* Signals: the first SIGINT/SIGTERM sets the interrupt count and wakes the
 * poll; the second ends the process with status 130 at once. */
void loop_install_signals(void);
int loop_interrupted(void);
/* Called from the signal handler on the first SIGINT/SIGTERM when the loop
 * is not polling (Lua code is running): async-signal-safe work only. */
typedef void (*loop_interrupt_fn)(void);
void loop_set_interrupt_fn(loop_interrupt_fn fn);

#endif
