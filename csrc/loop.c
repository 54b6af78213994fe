/* loop.c: one libcurl multi handle, a binary heap of timers and a self-pipe
 * for signals, polled together by loop_poll. Finished transfers and fired
 * timers go on a completed list that the Lua side drains. */
#include "loop.h"

#include "fsio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct loop {
  CURLM *multi;
  CURLSH *share;
  loop_timer **heap;
  size_t nheap, capheap;
  unsigned long seq;
  int transfers;
  loop_item *done_head, *done_tail;
  loop_transfer_done_fn transfer_done;
};

#define LOOP_MAX_POLL 3600.0

static loop *the_loop;
static int signal_pipe[2] = {-1, -1};
static volatile sig_atomic_t interrupts;
static volatile sig_atomic_t polling;   /* inside curl_multi_poll */
static loop_interrupt_fn on_interrupt;

double loop_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_signal(int sig) {
  int saved = errno;
  (void)sig;
  interrupts++;
  if (interrupts > 1) {  /* second signal: the user means it */
    fsio_unlink_tracked();  /* no Lua cleanup runs after this */
    _exit(130);
  }
  /* Lua code running (not parked in the loop) may never come back to it:
   * like lua.c, ask for a hook that stops it. */
  if (!polling && on_interrupt) on_interrupt();
  if (signal_pipe[1] >= 0) {
    ssize_t n = write(signal_pipe[1], "!", 1);
    (void)n;
  }
  errno = saved;
}

void loop_install_signals(void) {
  struct sigaction sa;
  if (signal_pipe[0] < 0) {
    if (pipe(signal_pipe) != 0) return;
    for (int i = 0; i < 2; i++) {
      fcntl(signal_pipe[i], F_SETFL, fcntl(signal_pipe[i], F_GETFL) | O_NONBLOCK);
      fcntl(signal_pipe[i], F_SETFD, FD_CLOEXEC);
    }
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

int loop_interrupted(void) { return (int)interrupts; }

void loop_set_interrupt_fn(loop_interrupt_fn fn) { on_interrupt = fn; }

loop *loop_get(char *err, size_t errlen) {
  loop *lp;
  if (the_loop) return the_loop;
  lp = calloc(1, sizeof *lp);
  if (!lp) goto nomem;
  lp->multi = curl_multi_init();
  lp->share = curl_share_init();
  if (!lp->multi || !lp->share) goto nomem;
  /* TLS sessions and DNS answers are shared by every transfer; the multi
   * handle already pools connections. One thread, so no locks. */
  curl_share_setopt(lp->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(lp->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_multi_setopt(lp->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 16L);
  the_loop = lp;
  return lp;
nomem:
  if (lp) {
    if (lp->multi) curl_multi_cleanup(lp->multi);
    if (lp->share) curl_share_cleanup(lp->share);
    free(lp);
  }
  snprintf(err, errlen, "cannot create the event loop: out of memory");
  return NULL;
}

loop *loop_current(void) { return the_loop; }

void loop_shutdown(void) {
  loop *lp = the_loop;
  if (!lp) return;
  the_loop = NULL;
  curl_multi_cleanup(lp->multi);
  curl_share_cleanup(lp->share);
  free(lp->heap);
  free(lp);
  if (signal_pipe[0] >= 0) {
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    signal_pipe[0] = signal_pipe[1] = -1;
  }
}

CURLM *loop_multi(loop *lp) { return lp->multi; }
CURLSH *loop_share(loop *lp) { return lp->share; }
int loop_pending(loop *lp) { return lp->transfers + (int)lp->nheap; }

void loop_set_transfer_done(loop *lp, loop_transfer_done_fn fn) {
  lp->transfer_done = fn;
}

static void push_done(loop *lp, loop_item *it) {
  it->done = 1;
  if (it->queued) return;
  it->queued = 1;
  it->next_done = NULL;
  if (lp->done_tail) lp->done_tail->next_done = it;
  else lp->done_head = it;
  lp->done_tail = it;
}

loop_item *loop_take_done(loop *lp) {
  loop_item *it = lp->done_head;
  if (!it) return NULL;
  lp->done_head = it->next_done;
  if (!lp->done_head) lp->done_tail = NULL;
  it->queued = 0;
  it->next_done = NULL;
  return it;
}

/* Removing an item that finished but was not taken yet must also unlink it,
 * or the Lua side would later see a freed object. */
static void unqueue(loop *lp, loop_item *it) {
  loop_item **p = &lp->done_head, *prev = NULL;
  if (!it->queued) return;
  while (*p && *p != it) {
    prev = *p;
    p = &(*p)->next_done;
  }
  if (*p) {
    *p = it->next_done;
    if (lp->done_tail == it) lp->done_tail = prev;
  }
  it->queued = 0;
  it->next_done = NULL;
}

int loop_add_transfer(loop *lp, CURL *easy, char *err, size_t errlen) {
  CURLMcode mc = curl_multi_add_handle(lp->multi, easy);
  if (mc != CURLM_OK) {
    snprintf(err, errlen, "cannot start transfer: %s", curl_multi_strerror(mc));
    return -1;
  }
  lp->transfers++;
  return 0;
}

void loop_remove_transfer(loop *lp, CURL *easy) {
  loop_item *it = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&it);
  if (it && !it->done) lp->transfers--;
  if (it) unqueue(lp, it);
  curl_multi_remove_handle(lp->multi, easy);
}

/* ---- timer heap, ordered by (deadline, seq) ---- */

static int timer_before(const loop_timer *a, const loop_timer *b) {
  if (a->deadline != b->deadline) return a->deadline < b->deadline;
  return a->seq < b->seq;
}

static void heap_set(loop *lp, size_t i, loop_timer *t) {
  lp->heap[i] = t;
  t->heap_index = i;
}

static void heap_up(loop *lp, size_t i) {
  loop_timer *t = lp->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!timer_before(t, lp->heap[parent])) break;
    heap_set(lp, i, lp->heap[parent]);
    i = parent;
  }
  heap_set(lp, i, t);
}

static void heap_down(loop *lp, size_t i) {
  loop_timer *t = lp->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    loop_timer *best = t;
    if (l < lp->nheap && timer_before(lp->heap[l], best)) { m = l; best = lp->heap[l]; }
    if (r < lp->nheap && timer_before(lp->heap[r], best)) { m = r; best = lp->heap[r]; }
    if (m == i) break;
    heap_set(lp, i, best);
    i = m;
  }
  heap_set(lp, i, t);
}

int loop_add_timer(loop *lp, loop_timer *t, double seconds, char *err, size_t errlen) {
  if (lp->nheap == lp->capheap) {
    size_t cap = lp->capheap ? lp->capheap * 2 : 64;
    loop_timer **h = realloc(lp->heap, cap * sizeof *h);
    if (!h) {
      snprintf(err, errlen, "cannot add timer: out of memory");
      return -1;
    }
    lp->heap = h;
    lp->capheap = cap;
  }
  t->deadline = loop_now() + (seconds > 0 ? seconds : 0);
  t->seq = lp->seq++;
  t->item.done = 0;
  lp->heap[lp->nheap] = t;
  t->heap_index = lp->nheap++;
  heap_up(lp, t->heap_index);
  return 0;
}

void loop_remove_timer(loop *lp, loop_timer *t) {
  size_t i = t->heap_index;
  unqueue(lp, &t->item);
  if (i == (size_t)-1 || i >= lp->nheap || lp->heap[i] != t) return;
  t->heap_index = (size_t)-1;
  lp->nheap--;
  if (i == lp->nheap) return;
  heap_set(lp, i, lp->heap[lp->nheap]);
  heap_up(lp, i);
  heap_down(lp, lp->heap[i]->heap_index);
}

static void fire_timers(loop *lp, double now) {
  while (lp->nheap > 0 && lp->heap[0]->deadline <= now) {
    loop_timer *t = lp->heap[0];
    loop_remove_timer(lp, t);
    push_done(lp, &t->item);
  }
}

static void drain_signal_pipe(void) {
  char buf[64];
  while (signal_pipe[0] >= 0 && read(signal_pipe[0], buf, sizeof buf) > 0) {
  }
}

int loop_poll(loop *lp, double max_wait, char *err, size_t errlen) {
  struct curl_waitfd extra[1];
  unsigned nextra = 0;
  int running = 0, msgs = 0, timeout_ms;
  double wait = max_wait, now = loop_now();
  CURLMcode mc;
  CURLMsg *msg;

  fire_timers(lp, now);
  if (lp->done_head || interrupts) wait = 0;
  if (lp->nheap > 0) {
    double until = lp->heap[0]->deadline - now;
    if (wait < 0 || until < wait) wait = until;
  }
  /* Nothing scheduled, or a wait longer than int milliseconds hold (24.8
   * days, and Retry-After can ask for more): poll an hour at most; the
   * caller polls again. */
  if (wait < 0 || wait > LOOP_MAX_POLL) wait = LOOP_MAX_POLL;
  timeout_ms = (int)(wait * 1000.0 + 0.999);
  if (signal_pipe[0] >= 0) {
    extra[0].fd = signal_pipe[0];
    extra[0].events = CURL_WAIT_POLLIN;
    extra[0].revents = 0;
    nextra = 1;
  }
  polling = 1;
  mc = curl_multi_poll(lp->multi, extra, nextra, timeout_ms, NULL);
  polling = 0;
  if (mc == CURLM_OK) mc = curl_multi_perform(lp->multi, &running);
  if (mc != CURLM_OK) {
    snprintf(err, errlen, "event loop failed: %s", curl_multi_strerror(mc));
    return -1;
  }
  drain_signal_pipe();
  while ((msg = curl_multi_info_read(lp->multi, &msgs)) != NULL) {
    loop_item *it = NULL;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&it);
    if (lp->transfer_done) lp->transfer_done(msg->easy_handle, msg->data.result);
    /* Done transfers leave the multi handle at once so their connection goes
     * back to the pool; the object keeps its easy handle for the results. */
    curl_multi_remove_handle(lp->multi, msg->easy_handle);
    lp->transfers--;
    if (it) push_done(lp, it);
  }
  fire_timers(lp, loop_now());
  return 0;
}
