/* GPU backends (cuda, hip) through the public API: stream order, host
 * functions, events, waits across streams, wrapped native streams, the
 * lifetime of destroyed streams, and fork. Run once per GPU backend;
 * skipped (exit 77 with the runtime's reason) where it has no device.
 *
 * Ordering is proved with gates: host functions that block their stream
 * until the test opens them, so that work queued behind a gate visibly has
 * not run while the gate is shut. Sleeps only bound how long wrongly
 * started work would have had to show itself. */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

typedef struct gate {
  atomic_int open;
  atomic_int entered;
} gate;

/* Blocks the stream until the test opens the gate (bounded: a test that
 * forgets to open it fails rather than hangs). */
static ferry_status gate_fn(void *user) {
  gate *g = user;
  atomic_store(&g->entered, 1);
  for (int i = 0; i < 20000 && !atomic_load(&g->open); i++)
    sleep_ms(1);
  return FERRY_OK;
}

static void wait_entered(gate *g) {
  for (int i = 0; i < 10000 && !atomic_load(&g->entered); i++)
    sleep_ms(1);
  cr_assert(atomic_load(&g->entered), "the gate's host function never ran");
}

static ferry_status set_flag_fn(void *user) {
  atomic_store((atomic_int *)user, 1);
  return FERRY_OK;
}

static ferry_status fail_fn(void *user) {
  (void)user;
  return FERRY_ERR_IO;
}

static ferry_buffer *buffer(ferry_context *ctx, ferry_memory_space space,
                            uint64_t size) {
  ferry_buffer *b = NULL;
  FERRY_OK_(ferry_buffer_create(ctx, space, size, &b));
  return b;
}

static void *host_of(const ferry_buffer *b) {
  ferry_buffer_info info = FERRY_BUFFER_INFO_INIT;
  FERRY_OK_(ferry_buffer_get_info(b, &info));
  return info.host_pointer;
}

static void expect_value(const unsigned char *got, int value, uint64_t n,
                         const char *what) {
  for (uint64_t i = 0; i < n; i++)
    if (got[i] != (unsigned char)value)
      cr_assert_fail("%s: byte %llu of %llu is 0x%02x, expected 0x%02x", what,
                     (unsigned long long)i, (unsigned long long)n, got[i],
                     value);
}

/* Work queued behind a shut gate has not run; once opened, all of it runs
 * in order, and the host function sees the device's earlier writes. */
typedef struct check_arg {
  const unsigned char *p;
  uint64_t n;
  int value;
  atomic_int ok;
} check_arg;

static ferry_status check_fn(void *user) {
  check_arg *a = user;
  for (uint64_t i = 0; i < a->n; i++)
    if (a->p[i] != (unsigned char)a->value)
      return FERRY_ERR_INTERNAL;
  atomic_store(&a->ok, 1);
  return FERRY_OK;
}

Test(gpu_streams, order_behind_a_gate) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  const uint64_t n = 3 * 1048576 + 7;
  ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  ferry_buffer *p = buffer(ctx, FERRY_MEMORY_PINNED_HOST, n);
  unsigned char *ph = host_of(p);
  ferry_test_poison(ph, n);
  gate g = {0};
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, gate_fn, &g));
  FERRY_OK_(ferry_buffer_fill_async(s, d, 0, 0x3C, n));
  FERRY_OK_(ferry_buffer_copy_async(s, p, 0, d, 0, n));
  check_arg a = {ph, n, 0x3C, 0};
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, check_fn, &a));
  wait_entered(&g);
  sleep_ms(50);
  FERRY_EXPECT(ferry_stream_query(s), FERRY_ERR_NOT_READY);
  expect_value(ph, 0xA5, n, "pinned memory while the gate is shut");
  atomic_store(&g.open, 1);
  FERRY_OK_(ferry_stream_synchronize(s));
  cr_assert(atomic_load(&a.ok), "the host function did not see the copy");
  FERRY_OK_(ferry_stream_query(s));
  ferry_buffer_destroy(d);
  ferry_buffer_destroy(p);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

static void *open_later(void *arg) {
  sleep_ms(100);
  atomic_store(&((gate *)arg)->open, 1);
  return NULL;
}

/* A pageable source written by earlier work of the stream (a host-side
 * fill, held back by a gate that opens 100 ms later) is read after that
 * work, not when the copy is enqueued. */
Test(gpu_streams, pageable_source_in_order) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  const uint64_t n = 1048583;
  ferry_buffer *h = buffer(ctx, FERRY_MEMORY_HOST, n);
  ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  unsigned char *got = malloc(n);
  cr_assert_not_null(got);
  ferry_test_poison(got, n);
  gate g = {0};
  FERRY_OK_(ferry_buffer_fill_async(s, h, 0, 0x01, n));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, gate_fn, &g));
  FERRY_OK_(ferry_buffer_fill_async(s, h, 0, 0x02, n));
  pthread_t opener;
  cr_assert_eq(pthread_create(&opener, NULL, open_later, &g), 0);
  FERRY_OK_(ferry_buffer_copy_async(s, d, 0, h, 0, n));
  FERRY_OK_(ferry_buffer_read_async(s, d, 0, got, n));
  FERRY_OK_(ferry_stream_synchronize(s));
  pthread_join(opener, NULL);
  expect_value(got, 0x02, n, "device copy of the host buffer");
  free(got);
  ferry_buffer_destroy(h);
  ferry_buffer_destroy(d);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* A failing host function is the stream's deferred error, naming the op
 * and its sequence; later work still runs. */
Test(gpu_streams, host_fn_error_is_deferred) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  uint64_t seq = 0;
  FERRY_OK_(ferry_stream_next_sequence(s, &seq));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_fn, NULL));
  atomic_int after = 0;
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, set_flag_fn, &after));
  FERRY_EXPECT(ferry_stream_synchronize(s), FERRY_ERR_IO);
  ferry_error_info ei = FERRY_ERROR_INFO_INIT;
  FERRY_OK_(ferry_last_error_info(&ei));
  cr_assert_str_eq(ei.op, "host_fn");
  cr_assert_eq(ei.sequence, seq);
  cr_assert(atomic_load(&after), "work after the failing host function ran");
  FERRY_OK_(ferry_stream_synchronize(s)); /* collected once */
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* Host functions run on the runtime's thread, where GPU calls are refused
 * (not deadlocked). */
typedef struct reenter_arg {
  ferry_stream *other;
  ferry_status got;
} reenter_arg;

static ferry_status reenter_fn(void *user) {
  reenter_arg *a = user;
  a->got = ferry_stream_query(a->other);
  return FERRY_OK;
}

Test(gpu_streams, host_fn_cannot_call_the_runtime) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL, *other = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  FERRY_OK_(ferry_stream_create(ctx, &other));
  reenter_arg a = {other, FERRY_OK};
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, reenter_fn, &a));
  FERRY_OK_(ferry_stream_synchronize(s));
  cr_assert_eq(a.got, FERRY_ERR_UNSUPPORTED, "got %s",
               ferry_status_string(a.got));
  ferry_stream_destroy(other);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* Events: record/synchronize/query/elapsed; an event never recorded is
 * complete; timing needs both ends recorded. */
Test(gpu_streams, events) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  ferry_event *fresh = NULL, *start = NULL, *end = NULL;
  FERRY_OK_(ferry_event_create(ctx, &fresh));
  FERRY_OK_(ferry_event_create(ctx, &start));
  FERRY_OK_(ferry_event_create(ctx, &end));
  FERRY_OK_(ferry_event_synchronize(fresh));
  FERRY_OK_(ferry_event_query(fresh));
  void *native = NULL;
  FERRY_OK_(ferry_event_native_handle(start, &native));
  cr_assert_not_null(native);

  const uint64_t n = 64ull << 20;
  ferry_buffer *a = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  ferry_buffer *b = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  gate g = {0};
  FERRY_OK_(ferry_event_record(start, s));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, gate_fn, &g));
  for (int i = 0; i < 8; i++)
    FERRY_OK_(ferry_buffer_copy_async(s, b, 0, a, 0, n));
  FERRY_OK_(ferry_event_record(end, s));
  wait_entered(&g);
  FERRY_EXPECT(ferry_event_query(end), FERRY_ERR_NOT_READY);
  double ms = -1;
  FERRY_EXPECT(ferry_event_elapsed_ms(start, end, &ms), FERRY_ERR_NOT_READY);
  sleep_ms(20);
  atomic_store(&g.open, 1);
  FERRY_OK_(ferry_event_synchronize(end));
  FERRY_OK_(ferry_event_query(end));
  FERRY_OK_(ferry_event_elapsed_ms(start, end, &ms));
  /* The gate held the stream for at least the 20 ms slept. */
  cr_assert_geq(ms, 15.0, "elapsed %.3f ms", ms);
  cr_assert_lt(ms, 20000.0, "elapsed %.3f ms", ms);
  ferry_status st = ferry_event_elapsed_ms(fresh, end, &ms);
  cr_assert_neq(st, FERRY_OK, "timed from an event never recorded");
  ferry_buffer_destroy(a);
  ferry_buffer_destroy(b);
  ferry_event_destroy(fresh);
  ferry_event_destroy(start);
  ferry_event_destroy(end);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* A stream waiting on another's event runs nothing until that work is done:
 * the producer is held by a gate, and the consumer must read the producer's
 * value, not the one before. */
Test(gpu_streams, cross_stream_wait) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *producer = NULL, *consumer = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &producer));
  FERRY_OK_(ferry_stream_create(ctx, &consumer));
  ferry_event *done = NULL;
  FERRY_OK_(ferry_event_create(ctx, &done));
  const uint64_t n = 1048583;
  ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  ferry_buffer *p = buffer(ctx, FERRY_MEMORY_PINNED_HOST, n);
  unsigned char *ph = host_of(p);
  ferry_test_poison(ph, n);
  FERRY_OK_(ferry_buffer_fill_async(producer, d, 0, 0x10, n));
  FERRY_OK_(ferry_stream_synchronize(producer));
  gate g = {0};
  FERRY_OK_(ferry_stream_enqueue_host_fn(producer, gate_fn, &g));
  FERRY_OK_(ferry_buffer_fill_async(producer, d, 0, 0x20, n));
  FERRY_OK_(ferry_event_record(done, producer));
  FERRY_OK_(ferry_stream_wait_event(consumer, done));
  FERRY_OK_(ferry_buffer_copy_async(consumer, p, 0, d, 0, n));
  wait_entered(&g);
  sleep_ms(50);
  FERRY_EXPECT(ferry_stream_query(consumer), FERRY_ERR_NOT_READY);
  expect_value(ph, 0xA5, n, "consumer output before the producer ran");
  atomic_store(&g.open, 1);
  FERRY_OK_(ferry_stream_synchronize(consumer));
  expect_value(ph, 0x20, n, "consumer output");
  ferry_buffer_destroy(d);
  ferry_buffer_destroy(p);
  ferry_event_destroy(done);
  ferry_stream_destroy(producer);
  ferry_stream_destroy(consumer);
  ferry_context_destroy(ctx);
}

/* A native stream wrapped in place shares the order of its owner, and
 * outlives its wrapper. (The native stream here is another ferry stream's;
 * test_gpu_native.c wraps one the runtime made.) */
Test(gpu_streams, wrap_native_stream) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *owner = NULL, *wrapped = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &owner));
  void *native = NULL;
  FERRY_OK_(ferry_stream_native_handle(owner, &native));
  cr_assert_not_null(native);
  FERRY_OK_(ferry_stream_wrap_native(ctx, native, &wrapped));
  void *again = NULL;
  FERRY_OK_(ferry_stream_native_handle(wrapped, &again));
  cr_assert_eq(again, native);

  const uint64_t n = 65537;
  ferry_buffer *p = buffer(ctx, FERRY_MEMORY_PINNED_HOST, n);
  ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  unsigned char *ph = host_of(p);
  ferry_test_poison(ph, n);
  gate g = {0};
  FERRY_OK_(ferry_stream_enqueue_host_fn(owner, gate_fn, &g));
  FERRY_OK_(ferry_buffer_fill_async(wrapped, d, 0, 0x66, n));
  FERRY_OK_(ferry_buffer_copy_async(wrapped, p, 0, d, 0, n));
  wait_entered(&g);
  sleep_ms(30);
  FERRY_EXPECT(ferry_stream_query(wrapped), FERRY_ERR_NOT_READY);
  expect_value(ph, 0xA5, n, "work on the wrapper behind the owner's gate");
  atomic_store(&g.open, 1);
  FERRY_OK_(ferry_stream_synchronize(wrapped));
  expect_value(ph, 0x66, n, "work on the wrapper");
  ferry_stream_destroy(wrapped);
  /* The owner's stream was not destroyed with the wrapper. */
  FERRY_OK_(ferry_buffer_fill_async(owner, d, 0, 0x67, n));
  FERRY_OK_(ferry_buffer_copy_async(owner, p, 0, d, 0, n));
  FERRY_OK_(ferry_stream_synchronize(owner));
  expect_value(ph, 0x67, n, "the owner after the wrapper is gone");
  ferry_buffer_destroy(p);
  ferry_buffer_destroy(d);
  ferry_stream_destroy(owner);
  ferry_context_destroy(ctx);
}

/* Destroying a stream returns at once; its queued host functions still run
 * afterwards, and an error they report reaches the context (so the stream's
 * cookie lived until after them). */
Test(gpu_streams, destroy_with_work_queued) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  gate g = {0};
  atomic_int ran = 0;
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, gate_fn, &g));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_fn, NULL));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, set_flag_fn, &ran));
  wait_entered(&g);
  ferry_stream_destroy(s); /* returns while the gate holds the stream */
  cr_assert_eq(atomic_load(&ran), 0, "destroy waited for the stream");
  atomic_store(&g.open, 1);
  FERRY_EXPECT(ferry_context_synchronize(ctx), FERRY_ERR_IO);
  ferry_error_info ei = FERRY_ERROR_INFO_INIT;
  FERRY_OK_(ferry_last_error_info(&ei));
  cr_assert_str_eq(ei.op, "host_fn");
  cr_assert(atomic_load(&ran), "work queued before destroy did not run");
  FERRY_OK_(ferry_context_synchronize(ctx));
  ferry_context_destroy(ctx);
}

/* Streams left alive are released by the context's destruction, after
 * their work. */
Test(gpu_streams, context_destroy_releases_streams) {
  ferry_context *ctx = ferry_test_context();
  atomic_int ran[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    ferry_stream *s = NULL;
    FERRY_OK_(ferry_stream_create(ctx, &s));
    FERRY_OK_(ferry_stream_enqueue_host_fn(s, set_flag_fn, &ran[i]));
    if (i == 0)
      ferry_stream_destroy(s);
    /* the others are left for the context */
  }
  ferry_context_destroy(ctx);
  for (int i = 0; i < 3; i++)
    cr_assert(atomic_load(&ran[i]), "stream %d's host function did not run", i);
}

/* Several threads, each with its own stream, at once. */
typedef struct worker {
  ferry_context *ctx;
  int id;
  int ok;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  ferry_stream *s = NULL;
  if (ferry_stream_create(w->ctx, &s) != FERRY_OK)
    return NULL;
  const uint64_t n = 262147;
  ferry_buffer *d = NULL, *p = NULL;
  if (ferry_buffer_create(w->ctx, FERRY_MEMORY_DEVICE, n, &d) == FERRY_OK &&
      ferry_buffer_create(w->ctx, FERRY_MEMORY_PINNED_HOST, n, &p) ==
          FERRY_OK) {
    ferry_buffer_info pi = FERRY_BUFFER_INFO_INIT;
    ferry_buffer_get_info(p, &pi);
    unsigned char *ph = pi.host_pointer;
    w->ok = 1;
    for (int round = 0; round < 20 && w->ok; round++) {
      int v = (w->id * 31 + round) & 0xff;
      ferry_test_poison(ph, n);
      if (ferry_buffer_fill_async(s, d, 0, v, n) != FERRY_OK ||
          ferry_buffer_copy_async(s, p, 0, d, 0, n) != FERRY_OK ||
          ferry_stream_synchronize(s) != FERRY_OK) {
        w->ok = 0;
        break;
      }
      for (uint64_t i = 0; i < n; i++)
        if (ph[i] != (unsigned char)v) {
          w->ok = 0;
          break;
        }
    }
  }
  ferry_buffer_destroy(d);
  ferry_buffer_destroy(p);
  ferry_stream_destroy(s);
  return NULL;
}

Test(gpu_streams, threads_with_own_streams) {
  ferry_context *ctx = ferry_test_context();
  enum { N = 4 };
  pthread_t t[N];
  worker w[N];
  for (int i = 0; i < N; i++) {
    w[i] = (worker){ctx, i, 0};
    cr_assert_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    cr_assert(w[i].ok, "worker %d saw wrong data or a failed call", i);
  }
  FERRY_OK_(ferry_context_synchronize(ctx));
  ferry_context_destroy(ctx);
}

/* A fork()ed child may destroy what it inherited without touching the
 * device (its copy of the runtime is unusable) and without crashing; the
 * parent carries on. */
Test(gpu_streams, fork_child_destroys_safely) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  ferry_event *e = NULL;
  FERRY_OK_(ferry_event_create(ctx, &e));
  const uint64_t n = 4099;
  ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  ferry_buffer *p = buffer(ctx, FERRY_MEMORY_PINNED_HOST, n);
  FERRY_OK_(ferry_buffer_fill_async(s, d, 0, 1, n));
  FERRY_OK_(ferry_event_record(e, s));
  FERRY_OK_(ferry_stream_synchronize(s));
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0) {
    ferry_stream *s2 = NULL;
    int bad = ferry_stream_create(ctx, &s2) != FERRY_ERR_FORKED;
    ferry_event_destroy(e);
    ferry_buffer_destroy(d);
    ferry_buffer_destroy(p);
    ferry_stream_destroy(s);
    ferry_context_destroy(ctx);
    _exit(bad ? 3 : 0);
  }
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "the child crashed or misbehaved (status 0x%x)", status);
  unsigned char *ph = host_of(p);
  ferry_test_poison(ph, n);
  FERRY_OK_(ferry_buffer_fill_async(s, d, 0, 9, n));
  FERRY_OK_(ferry_buffer_copy_async(s, p, 0, d, 0, n));
  FERRY_OK_(ferry_stream_synchronize(s));
  expect_value(ph, 9, n, "the parent after the child's exit");
  ferry_event_destroy(e);
  ferry_buffer_destroy(d);
  ferry_buffer_destroy(p);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}
