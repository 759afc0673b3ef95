/* The GPU plugins' host functions and the release of destroyed streams
 * (backends/gpu_common/gpu_callback.c), run against a stand-in for the
 * runtime's few stream calls, so that the lifetime rules are checked on
 * machines without a GPU:
 *   - a destroyed stream is released (host->stream_released) exactly once,
 *     after every host function queued before the destroy, and after the
 *     deferred errors they report;
 *   - after a device fault, host functions that never ran are given up, the
 *     stream is still released, and the context is marked lost;
 *   - a stream being captured into a graph refuses host functions.
 *
 * The stand-in follows the documented behaviour: one in-order queue per
 * stream run by its own thread; cudaLaunchHostFunc functions are not called
 * once the context has failed; cudaStreamAddCallback callbacks are called
 * exactly once, with the failure as status. */
#include "gpu_internal.h"
#include "harness.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- the runtime stand-in ------------------------------------------------ */

typedef struct item {
  struct item *next;
  cudaHostFn_t fn;         /* a host function, or */
  cudaStreamCallback_t cb; /* a stream callback */
  void *arg;
} item;

struct CUstream_st {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  item *head, *tail;
  bool stop;
  pthread_t thread;
};

static _Atomic int device_error = cudaSuccess; /* sticky once set */
static atomic_int capturing = 0;

static void *stream_thread(void *arg) {
  cudaStream_t s = arg;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    while (s->head == NULL && !s->stop)
      pthread_cond_wait(&s->wake, &s->lock);
    if (s->head == NULL)
      break;
    item *it = s->head;
    s->head = it->next;
    if (s->head == NULL)
      s->tail = NULL;
    pthread_mutex_unlock(&s->lock);
    cudaError_t e = (cudaError_t)atomic_load(&device_error);
    if (it->fn) {
      if (e == cudaSuccess)
        it->fn(it->arg);
    } else {
      it->cb(s, e, it->arg);
    }
    free(it);
    pthread_mutex_lock(&s->lock);
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

static cudaStream_t fake_stream(void) {
  cudaStream_t s = calloc(1, sizeof *s);
  cr_assert_not_null(s);
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->wake, NULL);
  cr_assert_eq(pthread_create(&s->thread, NULL, stream_thread, s), 0);
  return s;
}

static void fake_stream_join(cudaStream_t s) {
  pthread_mutex_lock(&s->lock);
  s->stop = true;
  pthread_cond_signal(&s->wake);
  pthread_mutex_unlock(&s->lock);
  pthread_join(s->thread, NULL);
  free(s);
}

static cudaError_t push(cudaStream_t s, cudaHostFn_t fn,
                        cudaStreamCallback_t cb, void *arg) {
  cudaError_t e = (cudaError_t)atomic_load(&device_error);
  if (e != cudaSuccess)
    return e;
  item *it = calloc(1, sizeof *it);
  it->fn = fn;
  it->cb = cb;
  it->arg = arg;
  pthread_mutex_lock(&s->lock);
  if (s->tail)
    s->tail->next = it;
  else
    s->head = it;
  s->tail = it;
  pthread_cond_signal(&s->wake);
  pthread_mutex_unlock(&s->lock);
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn,
                                         void *arg) {
  return push(s, fn, NULL, arg);
}

cudaError_t CUDARTAPI cudaStreamAddCallback(cudaStream_t s,
                                            cudaStreamCallback_t cb, void *arg,
                                            unsigned int flags) {
  (void)flags;
  return push(s, NULL, cb, arg);
}

cudaError_t CUDARTAPI
cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *status) {
  (void)s;
  *status = atomic_load(&capturing) ? cudaStreamCaptureStatusActive
                                    : cudaStreamCaptureStatusNone;
  return (cudaError_t)atomic_load(&device_error);
}

cudaError_t CUDARTAPI cudaGetLastError(void) {
  return cudaSuccess;
}

const char *CUDARTAPI cudaGetErrorName(cudaError_t e) {
  return e == cudaErrorIllegalAddress ? "cudaErrorIllegalAddress"
                                      : "cudaErrorOther";
}

const char *CUDARTAPI cudaGetErrorString(cudaError_t e) {
  return e == cudaErrorIllegalAddress ? "an illegal memory access"
                                      : "another error";
}

/* ---- the host services stand-in ------------------------------------------ */

/* Defined by gpu_backend.c in the plugins. */
const ferry_host_api *ferry_gpu_host;

typedef struct record {
  pthread_mutex_t lock;
  int released;    /* stream_released calls */
  int events;      /* sequence of everything recorded */
  int released_at; /* events value when released */
  int deferred;    /* defer_error calls */
  int deferred_at;
  uint64_t deferred_seq;
  int lost;
  char message[512];
} record;

static record rec = {.lock = PTHREAD_MUTEX_INITIALIZER};

static ferry_status h_set_error(ferry_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&rec.lock);
  vsnprintf(rec.message, sizeof rec.message, fmt, ap);
  pthread_mutex_unlock(&rec.lock);
  va_end(ap);
  return st;
}

static void h_trace(const char *b, const char *fmt, ...) {
  (void)b;
  (void)fmt;
}

static void *h_alloc(uint64_t size, uint64_t align) {
  (void)align;
  return malloc(size);
}

static void h_free(void *p) {
  free(p);
}

static void h_defer(void *cookie, uint64_t seq, const char *op, ferry_status st,
                    const char *fmt, ...) {
  (void)cookie;
  (void)op;
  (void)st;
  (void)fmt;
  pthread_mutex_lock(&rec.lock);
  rec.deferred++;
  rec.deferred_at = ++rec.events;
  rec.deferred_seq = seq;
  pthread_mutex_unlock(&rec.lock);
}

static void h_lost(void *cookie, ferry_status st, const char *fmt, ...) {
  (void)cookie;
  (void)st;
  (void)fmt;
  pthread_mutex_lock(&rec.lock);
  rec.lost++;
  pthread_mutex_unlock(&rec.lock);
}

static void h_released(void *cookie) {
  (void)cookie;
  pthread_mutex_lock(&rec.lock);
  rec.released++;
  rec.released_at = ++rec.events;
  pthread_mutex_unlock(&rec.lock);
}

static const ferry_host_api host = {
    .struct_size = sizeof(ferry_host_api),
    .abi_major = FERRY_BACKEND_ABI_MAJOR,
    .set_error = h_set_error,
    .trace = h_trace,
    .alloc = h_alloc,
    .free = h_free,
    .defer_error = h_defer,
    .context_lost = h_lost,
    .stream_released = h_released,
};

/* ---- helpers ------------------------------------------------------------- */

static void sleep_ms(int ms) {
  struct timespec ts = {0, (long)ms * 1000000L};
  nanosleep(&ts, NULL);
}

static ferry_be_context ctx;

static ferry_be_stream *make_stream(void) {
  ferry_gpu_host = &host;
  memset(&ctx, 0, sizeof ctx);
  pthread_mutex_init(&ctx.lock, NULL);
  pthread_cond_init(&ctx.released, NULL);
  ferry_be_stream *s = calloc(1, sizeof *s);
  s->ctx = &ctx;
  s->stream = fake_stream();
  s->cookie = &rec;
  pthread_mutex_init(&s->lock, NULL);
  ctx.streams = s;
  return s;
}

static void wait_released(void) {
  for (int i = 0; i < 5000; i++) {
    pthread_mutex_lock(&ctx.lock);
    bool gone = ctx.streams == NULL;
    pthread_mutex_unlock(&ctx.lock);
    if (gone)
      return;
    sleep_ms(1);
  }
  cr_assert_fail("the stream was never released");
}

static int released(void) {
  pthread_mutex_lock(&rec.lock);
  int n = rec.released;
  pthread_mutex_unlock(&rec.lock);
  return n;
}

/* A closure that blocks until opened, then records that it ran. */
static atomic_int gate_open, gate_entered, ran[8];

static ferry_status run_gate(ferry_gpu_closure *c, char *msg, size_t n) {
  (void)c;
  (void)msg;
  (void)n;
  atomic_store(&gate_entered, 1);
  while (!atomic_load(&gate_open))
    sleep_ms(1);
  atomic_fetch_add(&ran[0], 1);
  return FERRY_OK;
}

static ferry_status run_mark(ferry_gpu_closure *c, char *msg, size_t n) {
  (void)msg;
  (void)n;
  atomic_fetch_add(&ran[c->u.fill.value], 1);
  return FERRY_OK;
}

static ferry_status run_fail(ferry_gpu_closure *c, char *msg, size_t n) {
  atomic_fetch_add(&ran[c->u.fill.value], 1);
  snprintf(msg, n, "planted failure");
  return FERRY_ERR_IO;
}

static void enqueue(ferry_be_stream *s, ferry_gpu_closure_fn run, int index,
                    uint64_t seq) {
  ferry_gpu_closure c;
  memset(&c, 0, sizeof c);
  c.run = run;
  c.op = "test";
  c.u.fill.value = index;
  ferry_be_launch l = {seq, "test"};
  ferry_status st = ferry_gpu_enqueue_host(s, &l, &c);
  cr_assert_eq(st, FERRY_OK, "enqueue: %s", rec.message);
}

static void wait_gate_entered(void) {
  for (int i = 0; i < 5000 && !atomic_load(&gate_entered); i++)
    sleep_ms(1);
  cr_assert(atomic_load(&gate_entered));
}

/* ---- tests --------------------------------------------------------------- */

Test(gpu_callback, release_after_queued_work) {
  ferry_be_stream *s = make_stream();
  cudaStream_t native = s->stream;
  enqueue(s, run_gate, 0, 1);
  enqueue(s, run_fail, 1, 2);
  enqueue(s, run_mark, 2, 3);
  wait_gate_entered();
  ferry_gpu_stream_release_later(s); /* returns while the gate holds */
  sleep_ms(20);
  cr_assert_eq(released(), 0, "released before the queued work ran");
  atomic_store(&gate_open, 1);
  wait_released();
  cr_assert_eq(released(), 1);
  cr_assert_eq(atomic_load(&ran[0]), 1);
  cr_assert_eq(atomic_load(&ran[1]), 1);
  cr_assert_eq(atomic_load(&ran[2]), 1);
  cr_assert_eq(rec.deferred, 1);
  cr_assert_eq(rec.deferred_seq, 2);
  cr_assert_lt(rec.deferred_at, rec.released_at,
               "the error was reported after the cookie was released");
  fake_stream_join(native);
}

Test(gpu_callback, release_without_work) {
  ferry_be_stream *s = make_stream();
  cudaStream_t native = s->stream;
  ferry_gpu_stream_release_later(s);
  wait_released();
  cr_assert_eq(released(), 1);
  fake_stream_join(native);
}

/* A fault while the gate holds: later host functions never run, and the
 * release still comes, with the context marked lost. */
Test(gpu_callback, device_fault_gives_up_closures) {
  ferry_be_stream *s = make_stream();
  cudaStream_t native = s->stream;
  enqueue(s, run_gate, 0, 1);
  enqueue(s, run_mark, 1, 2);
  enqueue(s, run_mark, 2, 3);
  wait_gate_entered();
  ferry_gpu_stream_release_later(s);
  atomic_store(&device_error, cudaErrorIllegalAddress);
  atomic_store(&gate_open, 1);
  wait_released();
  cr_assert_eq(released(), 1);
  cr_assert_eq(atomic_load(&ran[0]), 1);
  cr_assert_eq(atomic_load(&ran[1]), 0, "a host function ran after a fault");
  cr_assert_eq(atomic_load(&ran[2]), 0, "a host function ran after a fault");
  cr_assert_geq(rec.lost, 1, "the context was not marked lost");
  fake_stream_join(native);
}

/* The fault came before the destroy: no release callback can be queued,
 * and the queued closures will never run: released at once. */
Test(gpu_callback, device_fault_before_destroy) {
  ferry_be_stream *s = make_stream();
  cudaStream_t native = s->stream;
  enqueue(s, run_gate, 0, 1);
  enqueue(s, run_mark, 1, 2);
  wait_gate_entered();
  atomic_store(&device_error, cudaErrorIllegalAddress);
  ferry_gpu_stream_release_later(s);
  /* The gate's closure is running: the release waits for it. */
  sleep_ms(20);
  cr_assert_eq(released(), 0, "released under a running host function");
  atomic_store(&gate_open, 1);
  wait_released();
  cr_assert_eq(released(), 1);
  cr_assert_eq(atomic_load(&ran[1]), 0);
  fake_stream_join(native);
}

/* A capturing stream refuses host functions (they run once), and is
 * released without a callback (which capture forbids). */
Test(gpu_callback, capture_refuses_host_functions) {
  ferry_be_stream *s = make_stream();
  cudaStream_t native = s->stream;
  atomic_store(&capturing, 1);
  ferry_gpu_closure c;
  memset(&c, 0, sizeof c);
  c.run = run_mark;
  c.op = "test";
  ferry_be_launch l = {1, "test"};
  cr_assert_eq(ferry_gpu_enqueue_host(s, &l, &c), FERRY_ERR_UNSUPPORTED);
  cr_assert(strstr(rec.message, "captured"), "message '%s'", rec.message);
  ferry_gpu_stream_release_later(s);
  cr_assert_eq(released(), 1,
               "a capturing stream without work is released "
               "at once");
  fake_stream_join(native);
}
