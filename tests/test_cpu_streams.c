/* The cpu backend's streams, events and basic ops, through the public API.
 *
 * Ordering and waits are proved with gates (host functions that block until
 * the test opens them) rather than with sleeps wherever the test can control
 * the order; sleeps only bound how long a wrongly started task would have had
 * to show itself. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------- */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A host function that blocks until the test opens the gate. */
typedef struct gate {
  atomic_int open;
  atomic_int entered;
} gate;

static ferry_status gate_fn(void *user) {
  gate *g = user;
  atomic_store(&g->entered, 1);
  while (!atomic_load(&g->open))
    sleep_ms(1);
  return FERRY_OK;
}

static ferry_status sleep_fn(void *user) {
  sleep_ms(*(const int *)user);
  return FERRY_OK;
}

static ferry_status set_flag_fn(void *user) {
  atomic_store((atomic_int *)user, 1);
  return FERRY_OK;
}

static ferry_status count_fn(void *user) {
  atomic_fetch_add((atomic_int *)user, 1);
  return FERRY_OK;
}

static ferry_buffer *device_buffer(ferry_context *ctx, uint64_t size,
                                   unsigned char **host) {
  ferry_buffer *b = NULL;
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, size, &b));
  ferry_buffer_info info = FERRY_BUFFER_INFO_INIT;
  FERRY_OK_(ferry_buffer_get_info(b, &info));
  cr_assert_not_null(info.host_pointer, "cpu device memory is host memory");
  if (host)
    *host = info.host_pointer;
  return b;
}

static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  cr_assert_not_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* ---- ordering on one stream ---------------------------------------------- */

/* Step i fills a 64-byte region with i, copies it next door, reads one byte
 * back to the host and then checks, in a host function, that both regions
 * hold i: any reordering of the four ops shows as a wrong byte or a wrong
 * position in the log. */
typedef struct order_check {
  int step;
  const unsigned char *mem;
  int *log;
  atomic_int *next;
  atomic_int *bad;
} order_check;

static ferry_status order_check_fn(void *user) {
  order_check *c = user;
  unsigned char want = (unsigned char)c->step;
  for (int i = 0; i < 128; i++)
    if (c->mem[i] != want)
      atomic_fetch_add(c->bad, 1);
  c->log[atomic_fetch_add(c->next, 1)] = c->step;
  return FERRY_OK;
}

Test(cpu_streams, order_on_one_stream) {
  enum { STEPS = 300 };
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  unsigned char *mem = NULL;
  ferry_buffer *b = device_buffer(ctx, 128, &mem);
  static order_check checks[STEPS];
  static int log[STEPS];
  static unsigned char readback[STEPS];
  ferry_test_poison(readback, sizeof readback);
  for (int i = 0; i < STEPS; i++)
    log[i] = -1;
  atomic_int next = 0, bad = 0;
  /* Hold the stream so that everything below is queued before any of it
   * runs: the order must come from the queue, not from timing. */
  gate g = {0, 0};
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, gate_fn, &g));
  for (int i = 0; i < STEPS; i++) {
    checks[i] = (order_check){i, mem, log, &next, &bad};
    FERRY_OK_(ferry_buffer_fill_async(s, b, 0, i & 0xff, 64));
    FERRY_OK_(ferry_buffer_copy_async(s, b, 64, b, 0, 64));
    FERRY_OK_(ferry_buffer_read_async(s, b, 64 + (uint64_t)(i % 64),
                                      &readback[i], 1));
    FERRY_OK_(ferry_stream_enqueue_host_fn(s, order_check_fn, &checks[i]));
  }
  cr_assert_eq(atomic_load(&next), 0, "work ran before the gate opened");
  FERRY_EXPECT(ferry_stream_query(s), FERRY_ERR_NOT_READY);
  atomic_store(&g.open, 1);
  FERRY_OK_(ferry_stream_synchronize(s));
  FERRY_OK_(ferry_stream_query(s));
  cr_assert_eq(atomic_load(&next), STEPS);
  cr_assert_eq(atomic_load(&bad), 0, "%d bytes were out of order",
               atomic_load(&bad));
  for (int i = 0; i < STEPS; i++) {
    cr_assert_eq(log[i], i, "host function %d ran at position %d", log[i], i);
    cr_assert_eq(readback[i], (unsigned char)i, "read %d saw %d", i,
                 readback[i]);
  }
  ferry_buffer_destroy(b);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* ---- cross-stream waits ---------------------------------------------------
 */

typedef struct observe {
  const unsigned char *mem; /* what A wrote */
  atomic_int *a_done;       /* A's host function finished */
  atomic_int ran;
  atomic_int saw_a_done;
  int saw_byte;
} observe;

static ferry_status observe_fn(void *user) {
  observe *o = user;
  atomic_store(&o->saw_a_done, atomic_load(o->a_done));
  o->saw_byte = o->mem[0];
  atomic_store(&o->ran, 1);
  return FERRY_OK;
}

Test(cpu_streams, wait_event_across_streams) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *a = NULL, *b = NULL, *c = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &a));
  FERRY_OK_(ferry_stream_create(ctx, &b));
  FERRY_OK_(ferry_stream_create(ctx, &c));
  unsigned char *mem = NULL, *out = NULL;
  ferry_buffer *buf = device_buffer(ctx, 4099, &mem);
  ferry_buffer *dst = device_buffer(ctx, 4099, &out);
  ferry_event *e = NULL;
  FERRY_OK_(ferry_event_create(ctx, &e));
  /* The same event is recorded again each round: each wait must follow the
   * record it was issued after. */
  for (int round = 0; round < 4; round++) {
    memset(mem, 0, 4099);
    ferry_test_poison(out, 4099);
    atomic_int a_done = 0;
    gate g = {0, 0};
    FERRY_OK_(ferry_stream_enqueue_host_fn(a, gate_fn, &g));
    FERRY_OK_(ferry_buffer_fill_async(a, buf, 0, 40 + round, 4099));
    FERRY_OK_(ferry_stream_enqueue_host_fn(a, set_flag_fn, &a_done));
    FERRY_OK_(ferry_event_record(e, a));
    FERRY_EXPECT(ferry_event_query(e), FERRY_ERR_NOT_READY);
    observe o = {mem, &a_done, 0, 0, -1};
    FERRY_OK_(ferry_stream_wait_event(b, e));
    FERRY_OK_(ferry_stream_enqueue_host_fn(b, observe_fn, &o));
    FERRY_OK_(ferry_buffer_copy_async(b, dst, 0, buf, 0, 4099));
    if (round % 2 == 1) {
      /* Re-recorded on an idle stream, the event completes at once; b's
       * wait was issued before and still waits for a's work. */
      FERRY_OK_(ferry_event_record(e, c));
      FERRY_OK_(ferry_event_synchronize(e));
    }
    sleep_ms(30);
    cr_assert_eq(atomic_load(&o.ran), 0,
                 "round %d: b ran past its wait while a was held", round);
    FERRY_EXPECT(ferry_stream_query(b), FERRY_ERR_NOT_READY);
    atomic_store(&g.open, 1);
    FERRY_OK_(ferry_stream_synchronize(b));
    cr_assert_eq(atomic_load(&o.ran), 1);
    cr_assert_eq(atomic_load(&o.saw_a_done), 1,
                 "round %d: b's work did not observe a's", round);
    cr_assert_eq(o.saw_byte, 40 + round);
    for (int i = 0; i < 4099; i++)
      cr_assert_eq(out[i], 40 + round, "round %d: byte %d is %d", round, i,
                   out[i]);
    FERRY_OK_(ferry_stream_synchronize(a));
    FERRY_OK_(ferry_event_query(e));
  }
  /* Waiting for an event never recorded waits for nothing. */
  ferry_event *fresh = NULL;
  FERRY_OK_(ferry_event_create(ctx, &fresh));
  FERRY_OK_(ferry_event_query(fresh));
  FERRY_OK_(ferry_event_synchronize(fresh));
  atomic_int ran = 0;
  FERRY_OK_(ferry_stream_wait_event(b, fresh));
  FERRY_OK_(ferry_stream_enqueue_host_fn(b, set_flag_fn, &ran));
  FERRY_OK_(ferry_stream_synchronize(b));
  cr_assert_eq(atomic_load(&ran), 1);
  ferry_event_destroy(fresh);
  ferry_event_destroy(e);
  ferry_buffer_destroy(dst);
  ferry_buffer_destroy(buf);
  ferry_stream_destroy(c);
  ferry_stream_destroy(b);
  ferry_stream_destroy(a);
  ferry_context_destroy(ctx);
}

/* ---- deferred errors ------------------------------------------------------
 */

static ferry_status fail_io_fn(void *user) {
  (void)user;
  return FERRY_ERR_IO;
}

static ferry_status fail_backend_fn(void *user) {
  (void)user;
  return FERRY_ERR_BACKEND;
}

Test(cpu_streams, deferred_error_from_host_fn) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  atomic_int before = 0, after = 0;
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, count_fn, &before));
  uint64_t seq = 0;
  FERRY_OK_(ferry_stream_next_sequence(s, &seq));
  cr_assert_geq(seq, 2, "one op was enqueued before");
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_io_fn, NULL));
  /* A second failure before the sync is not the one reported. */
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_backend_fn, NULL));
  /* Later work still runs after a failure. */
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, count_fn, &after));
  FERRY_EXPECT(ferry_stream_synchronize(s), FERRY_ERR_IO);
  ferry_error_info info = FERRY_ERROR_INFO_INIT;
  FERRY_OK_(ferry_last_error_info(&info));
  cr_assert_eq(info.status, FERRY_ERR_IO);
  cr_assert_str_eq(info.op, "host_fn");
  cr_assert_eq(info.sequence, seq, "sequence %llu, expected %llu",
               (unsigned long long)info.sequence, (unsigned long long)seq);
  cr_assert(strstr(info.message, "host function returned") != NULL,
            "message: %s", info.message);
  cr_assert(strstr(info.message, "FERRY_ERR_IO") != NULL, "message: %s",
            info.message);
  cr_assert_eq(atomic_load(&before), 1);
  cr_assert_eq(atomic_load(&after), 1);
  /* Reported once: the next sync is clean. */
  FERRY_OK_(ferry_stream_synchronize(s));

  /* The same through query: poll until the stream is idle. */
  gate g = {0, 0};
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, gate_fn, &g));
  FERRY_OK_(ferry_stream_next_sequence(s, &seq));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_backend_fn, NULL));
  FERRY_EXPECT(ferry_stream_query(s), FERRY_ERR_NOT_READY);
  atomic_store(&g.open, 1);
  ferry_status st;
  double deadline = now_ms() + 5000;
  while ((st = ferry_stream_query(s)) == FERRY_ERR_NOT_READY &&
         now_ms() < deadline)
    sleep_ms(1);
  cr_assert_eq(st, FERRY_ERR_BACKEND, "query gave %s", ferry_status_string(st));
  FERRY_OK_(ferry_last_error_info(&info));
  cr_assert_eq(info.sequence, seq);
  cr_assert_str_eq(info.op, "host_fn");
  FERRY_OK_(ferry_stream_query(s));
  FERRY_OK_(ferry_stream_synchronize(s));
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* ---- destroying a stream with work queued ----------------------------------
 */

Test(cpu_streams, destroy_while_queued) {
  ferry_context *ctx = ferry_test_context();
  unsigned char *mem = NULL;
  ferry_buffer *buf = device_buffer(ctx, 1 << 16, &mem);
  memset(mem, 0, 1 << 16);
  for (int round = 0; round < 3; round++) {
    ferry_stream *s = NULL;
    FERRY_OK_(ferry_stream_create(ctx, &s));
    atomic_int count = 0;
    int ms = 50;
    FERRY_OK_(ferry_stream_enqueue_host_fn(s, sleep_fn, &ms));
    FERRY_OK_(ferry_buffer_fill_async(s, buf, 0, 1 + round, 1 << 16));
    for (int i = 0; i < 10; i++)
      FERRY_OK_(ferry_stream_enqueue_host_fn(s, count_fn, &count));
    if (round == 2)
      FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_io_fn, NULL));
    ferry_stream_destroy(s);
    cr_assert_lt(atomic_load(&count), 10,
                 "stream_destroy waited for the queued work");
    /* The queued work still completes; an error it raised after the stream
     * was destroyed is reported by the context. */
    FERRY_EXPECT(ferry_context_synchronize(ctx),
                 round == 2 ? FERRY_ERR_IO : FERRY_OK);
    cr_assert_eq(atomic_load(&count), 10);
    for (int i = 0; i < 1 << 16; i++)
      cr_assert_eq(mem[i], 1 + round);
  }
  FERRY_OK_(ferry_context_synchronize(ctx));
  ferry_buffer_destroy(buf);
  /* A stream destroyed with work queued, then the context at once: the
   * context waits for it (a leak or a use after free shows under ASan). */
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  atomic_int count = 0;
  int ms = 30;
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, sleep_fn, &ms));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, count_fn, &count));
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
  cr_assert_eq(atomic_load(&count), 1);
}

/* The error of a stream destroyed just before is already the context's when
 * ferry_context_synchronize returns: no window between the stream's last
 * task and its release. */
Test(cpu_streams, destroyed_stream_error_reaches_context) {
  ferry_context *ctx = ferry_test_context();
  for (int i = 0; i < 300; i++) {
    ferry_stream *s = NULL;
    FERRY_OK_(ferry_stream_create(ctx, &s));
    FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_io_fn, NULL));
    ferry_stream_destroy(s);
    FERRY_EXPECT(ferry_context_synchronize(ctx), FERRY_ERR_IO);
    FERRY_OK_(ferry_context_synchronize(ctx));
  }
  ferry_context_destroy(ctx);
}

/* ---- buffers are freed after the work that uses them -----------------------
 */

Test(cpu_streams, buffer_destroy_waits_for_queued_work) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL, *other = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  FERRY_OK_(ferry_stream_create(ctx, &other));
  ferry_buffer *buf = device_buffer(ctx, (1 << 20) + 3, NULL);
  int ms = 50;
  atomic_int done = 0;
  FERRY_OK_(ferry_stream_enqueue_host_fn(other, sleep_fn, &ms));
  FERRY_OK_(ferry_buffer_fill_async(other, buf, 0, 7, (1 << 20) + 3));
  FERRY_OK_(ferry_stream_enqueue_host_fn(other, set_flag_fn, &done));
  ferry_buffer_destroy(buf);
  cr_assert_eq(atomic_load(&done), 1,
               "the buffer was freed before work queued on it had run");
  ferry_stream_destroy(other);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* ---- FERRY_CPU_SYNC --------------------------------------------------------
 */

typedef struct where {
  pthread_t thread;
  atomic_int ran;
} where;

static ferry_status where_fn(void *user) {
  where *w = user;
  w->thread = pthread_self();
  atomic_store(&w->ran, 1);
  return FERRY_OK;
}

Test(cpu_streams, async_by_default) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  gate g = {0, 0};
  where w = {pthread_self(), 0};
  double t0 = now_ms();
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, gate_fn, &g));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, where_fn, &w));
  cr_assert_lt(now_ms() - t0, 1000.0, "enqueue did not return at once");
  cr_assert_eq(atomic_load(&w.ran), 0);
  atomic_store(&g.open, 1);
  FERRY_OK_(ferry_stream_synchronize(s));
  cr_assert_eq(atomic_load(&w.ran), 1);
  cr_assert(!pthread_equal(w.thread, pthread_self()),
            "stream work ran on the caller's thread");
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

Test(cpu_streams, sync_mode_runs_in_caller) {
  cr_assert_eq(setenv("FERRY_CPU_SYNC", "1", 1), 0);
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL, *t = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  FERRY_OK_(ferry_stream_create(ctx, &t));
  where w = {0};
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, where_fn, &w));
  cr_assert_eq(atomic_load(&w.ran), 1, "enqueue returned before the work ran");
  cr_assert(pthread_equal(w.thread, pthread_self()));
  int ms = 40;
  double t0 = now_ms();
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, sleep_fn, &ms));
  cr_assert_geq(now_ms() - t0, 35.0);
  FERRY_OK_(ferry_stream_query(s));
  /* Ops and errors behave as in async mode, errors still deferred. */
  unsigned char *mem = NULL;
  ferry_buffer *b = device_buffer(ctx, 4099, &mem);
  ferry_test_poison(mem, 4099);
  FERRY_OK_(ferry_buffer_fill_async(s, b, 1, 3, 4097));
  cr_assert_eq(mem[0], 0xA5);
  cr_assert_eq(mem[1], 3);
  cr_assert_eq(mem[4097], 3);
  cr_assert_eq(mem[4098], 0xA5);
  uint64_t seq = 0;
  FERRY_OK_(ferry_stream_next_sequence(s, &seq));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_io_fn, NULL));
  FERRY_EXPECT(ferry_stream_synchronize(s), FERRY_ERR_IO);
  ferry_error_info info = FERRY_ERROR_INFO_INIT;
  FERRY_OK_(ferry_last_error_info(&info));
  cr_assert_eq(info.sequence, seq);
  cr_assert_str_eq(info.op, "host_fn");
  FERRY_OK_(ferry_stream_synchronize(s));
  /* Events and waits complete at once. */
  ferry_event *e0 = NULL, *e1 = NULL;
  FERRY_OK_(ferry_event_create(ctx, &e0));
  FERRY_OK_(ferry_event_create(ctx, &e1));
  FERRY_OK_(ferry_event_record(e0, s));
  FERRY_OK_(ferry_event_query(e0));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, sleep_fn, &ms));
  FERRY_OK_(ferry_event_record(e1, s));
  FERRY_OK_(ferry_stream_wait_event(t, e1));
  double elapsed = 0;
  FERRY_OK_(ferry_event_elapsed_ms(e0, e1, &elapsed));
  cr_assert_geq(elapsed, 35.0, "elapsed %.3f ms", elapsed);
  ferry_event_destroy(e1);
  ferry_event_destroy(e0);
  ferry_buffer_destroy(b);
  ferry_stream_destroy(t);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* ---- events ----------------------------------------------------------------
 */

Test(cpu_streams, event_elapsed_time) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  ferry_event *start = NULL, *end = NULL;
  FERRY_OK_(ferry_event_create(ctx, &start));
  FERRY_OK_(ferry_event_create(ctx, &end));
  double ms = -1;
  FERRY_EXPECT(ferry_event_elapsed_ms(start, end, &ms),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("never recorded");
  cr_assert_eq(ms, -1.0, "output written on failure");
  for (int round = 0; round < 3; round++) {
    int nap = 30 + 20 * round;
    gate g = {0, 0};
    FERRY_OK_(ferry_stream_enqueue_host_fn(s, gate_fn, &g));
    FERRY_OK_(ferry_event_record(start, s));
    FERRY_OK_(ferry_stream_enqueue_host_fn(s, sleep_fn, &nap));
    FERRY_OK_(ferry_event_record(end, s));
    FERRY_EXPECT(ferry_event_query(end), FERRY_ERR_NOT_READY);
    FERRY_EXPECT(ferry_event_elapsed_ms(start, end, &ms), FERRY_ERR_NOT_READY);
    /* The marker is timed when it runs, not when it was recorded: the 200
     * ms the gate stays closed must not count. */
    sleep_ms(200);
    atomic_store(&g.open, 1);
    FERRY_OK_(ferry_event_synchronize(end));
    FERRY_OK_(ferry_event_query(start));
    FERRY_OK_(ferry_event_elapsed_ms(start, end, &ms));
    cr_assert_geq(ms, nap - 1.0, "round %d: %.3f ms for a %d ms sleep", round,
                  ms, nap);
    cr_assert_lt(ms, nap + 150.0, "round %d: %.3f ms for a %d ms sleep", round,
                 ms, nap);
    double back = 0;
    FERRY_OK_(ferry_event_elapsed_ms(end, start, &back));
    cr_assert_float_eq(back, -ms, 1e-9);
  }
  FERRY_OK_(ferry_stream_synchronize(s));
  ferry_event_destroy(end);
  ferry_event_destroy(start);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* An event recorded last completes together with its stream: once the event
 * is seen complete the stream is idle, and once the stream is seen idle the
 * event is complete (CUDA's semantics; a loader polls either). */
Test(cpu_streams, event_and_stream_complete_together) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  ferry_event *e = NULL;
  FERRY_OK_(ferry_event_create(ctx, &e));
  int nap = 0;
  for (int i = 0; i < 2000; i++) {
    FERRY_OK_(ferry_stream_enqueue_host_fn(s, sleep_fn, &nap));
    FERRY_OK_(ferry_event_record(e, s));
    if (i % 2 == 0) {
      FERRY_OK_(ferry_event_synchronize(e));
      cr_assert_eq(ferry_stream_query(s), FERRY_OK,
                   "try %d: event complete but stream busy", i);
    } else {
      while (ferry_stream_query(s) == FERRY_ERR_NOT_READY)
        sched_yield();
      cr_assert_eq(ferry_event_query(e), FERRY_OK,
                   "try %d: stream idle but event not complete", i);
    }
  }
  ferry_event_destroy(e);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* An event destroyed while its record is still queued: the marker keeps
 * what it needs (ASan checks). */
Test(cpu_streams, event_destroyed_while_recorded) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL, *t = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  FERRY_OK_(ferry_stream_create(ctx, &t));
  gate g = {0, 0};
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, gate_fn, &g));
  ferry_event *e = NULL;
  FERRY_OK_(ferry_event_create(ctx, &e));
  FERRY_OK_(ferry_event_record(e, s));
  FERRY_OK_(ferry_stream_wait_event(t, e));
  atomic_int ran = 0;
  FERRY_OK_(ferry_stream_enqueue_host_fn(t, set_flag_fn, &ran));
  ferry_event_destroy(e);
  sleep_ms(20);
  cr_assert_eq(atomic_load(&ran), 0, "the wait ended with the event");
  atomic_store(&g.open, 1);
  FERRY_OK_(ferry_stream_synchronize(t));
  cr_assert_eq(atomic_load(&ran), 1);
  ferry_stream_destroy(t);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* ---- copies of awkward sizes ------------------------------------------------
 */

Test(cpu_streams, copies_of_awkward_sizes) {
  const uint64_t sizes[] = {0, 1, 7, 4099, (1u << 20) + 3, (3u << 20) + 5};
  const uint64_t guard = 13, src_off = 3, dst_off = 5;
  ferry_context *ctx = ferry_test_context();
  enum { NSTREAMS = 3 };
  ferry_stream *streams[NSTREAMS];
  for (int i = 0; i < NSTREAMS; i++)
    FERRY_OK_(ferry_stream_create(ctx, &streams[i]));
  uint64_t rng = 0x5eed;
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    uint64_t n = sizes[k];
    uint64_t total = dst_off + n + guard;
    unsigned char *pattern = malloc(n + 1);
    unsigned char *back[NSTREAMS];
    ferry_buffer *src[NSTREAMS], *dst[NSTREAMS];
    cr_assert_not_null(pattern);
    for (uint64_t i = 0; i < n; i++)
      pattern[i] = (unsigned char)ferry_test_rand(&rng);
    /* Several streams copy at once, so large copies share the pool. */
    for (int j = 0; j < NSTREAMS; j++) {
      ferry_stream *s = streams[j];
      src[j] = device_buffer(ctx, src_off + n, NULL);
      dst[j] = device_buffer(ctx, total, NULL);
      back[j] = malloc(total + 2 * guard);
      cr_assert_not_null(back[j]);
      ferry_test_poison(back[j], total + 2 * guard);
      FERRY_OK_(ferry_buffer_fill_async(s, dst[j], 0, 0xA5, total));
      FERRY_OK_(ferry_buffer_write_async(s, src[j], src_off, pattern, n));
      FERRY_OK_(
          ferry_buffer_copy_async(s, dst[j], dst_off, src[j], src_off, n));
      FERRY_OK_(ferry_buffer_read_async(s, dst[j], 0, back[j] + guard, total));
    }
    for (int j = 0; j < NSTREAMS; j++) {
      FERRY_OK_(ferry_stream_synchronize(streams[j]));
      const unsigned char *b = back[j] + guard;
      for (uint64_t i = 0; i < guard; i++)
        cr_assert_eq(back[j][i], 0xA5,
                     "size %llu: read wrote before its host "
                     "destination",
                     (unsigned long long)n);
      for (uint64_t i = 0; i < dst_off; i++)
        cr_assert_eq(b[i], 0xA5, "size %llu: copy wrote before dst_offset",
                     (unsigned long long)n);
      cr_assert(memcmp(b + dst_off, pattern, n) == 0,
                "size %llu: copied bytes differ", (unsigned long long)n);
      for (uint64_t i = dst_off + n; i < total + guard; i++)
        cr_assert_eq(b[i], 0xA5, "size %llu: byte %llu past the copy changed",
                     (unsigned long long)n, (unsigned long long)i);
      ferry_buffer_destroy(dst[j]);
      ferry_buffer_destroy(src[j]);
      free(back[j]);
    }
    free(pattern);
  }
  for (int i = 0; i < NSTREAMS; i++)
    ferry_stream_destroy(streams[i]);
  ferry_context_destroy(ctx);
}

/* ---- threads
 * ----------------------------------------------------------------- */

/* The pool has num_threads - 1 helpers (the thread running a task is the
 * last one) and each stream one dispatcher; counting the process's threads
 * shows the backend started what the context reports. */
Test(cpu_streams, thread_count_honoured) {
  const int requested[] = {1, 2, 3, 0};
  for (size_t k = 0; k < sizeof requested / sizeof requested[0]; k++) {
    int base = count_threads();
    ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
    o.backend = "cpu";
    o.num_threads = requested[k];
    ferry_context *ctx = NULL;
    FERRY_OK_(ferry_context_create(&o, &ctx));
    ferry_context_info info = FERRY_CONTEXT_INFO_INIT;
    FERRY_OK_(ferry_context_get_info(ctx, &info));
    if (requested[k] > 0) {
      cr_assert_eq(info.num_threads, requested[k], "asked %d, info says %d",
                   requested[k], info.num_threads);
    } else {
      cpu_set_t mine;
      cr_assert_eq(sched_getaffinity(0, sizeof mine, &mine), 0);
      cr_assert_geq(info.num_threads, 1);
      cr_assert_leq(info.num_threads, CPU_COUNT(&mine),
                    "default %d threads on %d CPUs", info.num_threads,
                    CPU_COUNT(&mine));
    }
    cr_assert_eq(count_threads() - base, info.num_threads - 1,
                 "%d threads started for num_threads %d",
                 count_threads() - base, info.num_threads);
    ferry_stream *s = NULL;
    FERRY_OK_(ferry_stream_create(ctx, &s));
    cr_assert_eq(count_threads() - base, info.num_threads);
    ferry_stream_destroy(s);
    ferry_context_destroy(ctx);
    cr_assert_eq(count_threads(), base, "threads left after destroy");
  }
}

typedef struct affinity_probe {
  cpu_set_t seen;
  int rc;
} affinity_probe;

static ferry_status affinity_fn(void *user) {
  affinity_probe *p = user;
  p->rc = sched_getaffinity(0, sizeof p->seen, &p->seen);
  return FERRY_OK;
}

static ferry_status parallel_copy_probe(ferry_context *ctx, ferry_stream *s) {
  /* A copy large enough to use the pool: its helpers must run too. */
  uint64_t n = 4u << 20;
  ferry_buffer *a = device_buffer(ctx, n, NULL),
               *b = device_buffer(ctx, n, NULL);
  FERRY_OK_(ferry_buffer_fill_async(s, a, 0, 9, n));
  FERRY_OK_(ferry_buffer_copy_async(s, b, 0, a, 0, n));
  ferry_status st = ferry_stream_synchronize(s);
  ferry_buffer_info info = FERRY_BUFFER_INFO_INIT;
  FERRY_OK_(ferry_buffer_get_info(b, &info));
  const unsigned char *p = info.host_pointer;
  for (uint64_t i = 0; i < n; i += 4093)
    cr_assert_eq(p[i], 9);
  ferry_buffer_destroy(b);
  ferry_buffer_destroy(a);
  return st;
}

/* Threads run only where the creating thread may run: restrict the test's
 * thread to one CPU and the stream's work lands there. */
Test(cpu_streams, threads_follow_the_callers_affinity) {
  cpu_set_t all, one;
  cr_assert_eq(sched_getaffinity(0, sizeof all, &all), 0);
  int last = -1;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &all))
      last = c;
  cr_assert_geq(last, 0);
  CPU_ZERO(&one);
  CPU_SET(last, &one);
  cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = "cpu";
  o.num_threads = 2; /* helpers too, even on a single allowed CPU */
  ferry_context *ctx = NULL;
  FERRY_OK_(ferry_context_create(&o, &ctx));
  cr_assert_eq(sched_setaffinity(0, sizeof all, &all), 0);
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  affinity_probe p = {.rc = -1};
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, affinity_fn, &p));
  FERRY_OK_(ferry_stream_synchronize(s));
  cr_assert_eq(p.rc, 0);
  cr_assert_eq(CPU_COUNT(&p.seen), 1, "stream thread may run on %d CPUs",
               CPU_COUNT(&p.seen));
  cr_assert(CPU_ISSET(last, &p.seen), "stream thread not on CPU %d", last);
  FERRY_OK_(parallel_copy_probe(ctx, s));
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* ---- fork ------------------------------------------------------------------
 */

/* A fork()ed child inherits the objects but none of the backend's threads
 * (here one is inside a host function, another waits for work): destroying
 * them there frees memory only and returns at once, whether the child
 * destroys each object or only the context, and the parent's work is
 * unaffected. */
Test(cpu_streams, destroy_in_forked_child) {
  for (int each = 0; each < 2; each++) {
    ferry_context *ctx = ferry_test_context();
    ferry_stream *s = NULL, *idle = NULL;
    FERRY_OK_(ferry_stream_create(ctx, &s));
    FERRY_OK_(ferry_stream_create(ctx, &idle));
    unsigned char *mem = NULL;
    ferry_buffer *b = device_buffer(ctx, 4099, &mem);
    ferry_event *e = NULL;
    FERRY_OK_(ferry_event_create(ctx, &e));
    gate g = {0, 0};
    FERRY_OK_(ferry_stream_enqueue_host_fn(s, gate_fn, &g));
    FERRY_OK_(ferry_buffer_fill_async(s, b, 0, 11, 4099));
    FERRY_OK_(ferry_event_record(e, s));
    while (!atomic_load(&g.entered))
      sleep_ms(1);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
      alarm(5); /* a hang ends the child by signal, failing the parent */
      if (each) {
        ferry_event_destroy(e);
        ferry_stream_destroy(idle);
        ferry_stream_destroy(s);
      }
      ferry_buffer_destroy(b);
      ferry_context_destroy(ctx);
      _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child destroying %s: exit status %d, signal %d",
              each ? "each object" : "the context only",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    atomic_store(&g.open, 1);
    FERRY_OK_(ferry_event_synchronize(e));
    cr_assert_eq(mem[0], 11);
    cr_assert_eq(mem[4098], 11);
    ferry_event_destroy(e);
    ferry_buffer_destroy(b);
    ferry_stream_destroy(idle);
    ferry_stream_destroy(s);
    ferry_context_destroy(ctx);
  }
}
