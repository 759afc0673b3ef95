/* cpu events.
 *
 * Each record creates a fence: a marker task appended to the stream
 * completes it, with the CLOCK_MONOTONIC time at which the marker ran (when
 * all work before it had finished). The event points at its latest fence, so
 * re-recording works as in CUDA: query/synchronize see the latest record,
 * while a stream_wait_event issued earlier keeps waiting for the fence it
 * captured, even if a later record of the same event (on another stream)
 * completes first. A fence is a generation of the event with its own
 * completion flag; counting generations in the event alone could not tell
 * an older record's completion from a newer one's when they complete out of
 * order on different streams. Fences are reference counted (event, marker,
 * waiters) and complete under the context's fence lock. */
#include "cpu_internal.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

typedef struct cpu_fence {
  atomic_int refs;
  bool done;        /* under ctx->fence_lock */
  uint64_t time_ns; /* CLOCK_MONOTONIC when the marker ran */
} cpu_fence;

struct ferry_be_event {
  ferry_be_context *ctx;
  cpu_fence *fence; /* latest record, NULL if never recorded (fence_lock) */
};

typedef struct fence_args {
  cpu_fence *fence;
} fence_args;

static void fence_release(cpu_fence *f) {
  if (f != NULL && atomic_fetch_sub(&f->refs, 1) == 1)
    ferry_cpu_host->free(f);
}

static void fence_args_release(void *args) {
  fence_release(((fence_args *)args)->fence);
}

/* The event's fence with a reference taken, or NULL. */
static cpu_fence *current_fence(ferry_be_event *e) {
  pthread_mutex_lock(&e->ctx->fence_lock);
  cpu_fence *f = e->fence;
  if (f != NULL)
    atomic_fetch_add(&f->refs, 1);
  pthread_mutex_unlock(&e->ctx->fence_lock);
  return f;
}

static void fence_wait(ferry_be_context *ctx, cpu_fence *f) {
  pthread_mutex_lock(&ctx->fence_lock);
  while (!f->done)
    pthread_cond_wait(&ctx->fence_done, &ctx->fence_lock);
  pthread_mutex_unlock(&ctx->fence_lock);
}

static void run_marker(const ferry_cpu_task *task, void *args) {
  ferry_be_context *ctx = ferry_cpu_task_context(task);
  cpu_fence *f = ((fence_args *)args)->fence;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  pthread_mutex_lock(&ctx->fence_lock);
  f->time_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
  f->done = true;
  pthread_cond_broadcast(&ctx->fence_done);
  pthread_mutex_unlock(&ctx->fence_lock);
}

static void run_wait(const ferry_cpu_task *task, void *args) {
  fence_wait(ferry_cpu_task_context(task), ((fence_args *)args)->fence);
}

ferry_status ferry_cpu_event_create(ferry_be_context *ctx,
                                    ferry_be_event **out) {
  if (ctx == NULL || out == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_NULL_POINTER,
                                     "cpu event_create: '%s' is NULL",
                                     ctx == NULL ? "ctx" : "out");
  ferry_be_event *e = ferry_cpu_host->alloc(sizeof *e, 0);
  if (e == NULL)
    return ferry_cpu_host->set_error(
        FERRY_ERR_OUT_OF_MEMORY, "cpu event_create: no memory for an event");
  e->ctx = ctx;
  e->fence = NULL;
  *out = e;
  return FERRY_OK;
}

void ferry_cpu_event_destroy(ferry_be_event *e, uint32_t flags) {
  (void)flags; /* dropping a fence is a plain free, fine in a forked child */
  if (e == NULL)
    return;
  /* Markers and waits still queued hold their own references. */
  fence_release(e->fence);
  ferry_cpu_host->free(e);
}

ferry_status ferry_cpu_event_record(ferry_be_event *e, ferry_be_stream *s) {
  if (e->ctx != s->ctx)
    return ferry_cpu_host->set_error(
        FERRY_ERR_MISMATCH,
        "cpu event_record: the event and the stream belong to different "
        "contexts");
  cpu_fence *f = ferry_cpu_host->alloc(sizeof *f, 0);
  if (f == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                                     "cpu event_record: no memory for a fence");
  atomic_init(&f->refs, 2); /* the event's and the marker's */
  f->done = false;
  f->time_ns = 0;
  fence_args args = {f};
  ferry_status st = ferry_cpu_enqueue_marker(s, run_marker, &args, sizeof args,
                                             fence_args_release);
  if (st != FERRY_OK) {
    ferry_cpu_host->free(f);
    return st;
  }
  pthread_mutex_lock(&e->ctx->fence_lock);
  cpu_fence *old = e->fence;
  e->fence = f;
  pthread_mutex_unlock(&e->ctx->fence_lock);
  fence_release(old);
  return FERRY_OK;
}

ferry_status ferry_cpu_event_synchronize(ferry_be_event *e) {
  cpu_fence *f = current_fence(e);
  if (f == NULL)
    return FERRY_OK; /* never recorded: complete */
  fence_wait(e->ctx, f);
  fence_release(f);
  return FERRY_OK;
}

ferry_status ferry_cpu_event_query(ferry_be_event *e) {
  pthread_mutex_lock(&e->ctx->fence_lock);
  bool done = e->fence == NULL || e->fence->done;
  pthread_mutex_unlock(&e->ctx->fence_lock);
  return done ? FERRY_OK : FERRY_ERR_NOT_READY;
}

ferry_status ferry_cpu_event_elapsed_ms(ferry_be_event *start,
                                        ferry_be_event *end, double *out) {
  if (start->ctx != end->ctx)
    return ferry_cpu_host->set_error(
        FERRY_ERR_MISMATCH,
        "cpu event_elapsed_ms: 'start' and 'end' belong to different contexts");
  pthread_mutex_lock(&start->ctx->fence_lock);
  const cpu_fence *a = start->fence, *b = end->fence;
  bool recorded = a != NULL && b != NULL;
  bool done = recorded && a->done && b->done;
  int64_t ns = done ? (int64_t)(b->time_ns - a->time_ns) : 0;
  const char *which = a == NULL || (recorded && !a->done) ? "start" : "end";
  pthread_mutex_unlock(&start->ctx->fence_lock);
  if (!recorded)
    return ferry_cpu_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        "cpu event_elapsed_ms: event '%s' was never recorded", which);
  if (!done)
    return ferry_cpu_host->set_error(
        FERRY_ERR_NOT_READY,
        "cpu event_elapsed_ms: the work recorded by '%s' has not completed",
        which);
  *out = (double)ns / 1e6;
  return FERRY_OK;
}

ferry_status ferry_cpu_stream_wait_event(ferry_be_stream *s,
                                         ferry_be_event *e) {
  if (e->ctx != s->ctx)
    return ferry_cpu_host->set_error(
        FERRY_ERR_MISMATCH,
        "cpu stream_wait_event: the stream and the event belong to different "
        "contexts");
  cpu_fence *f = current_fence(e);
  if (f == NULL)
    return FERRY_OK; /* never recorded: nothing to wait for */
  pthread_mutex_lock(&e->ctx->fence_lock);
  bool done = f->done;
  pthread_mutex_unlock(&e->ctx->fence_lock);
  if (done) {
    fence_release(f);
    return FERRY_OK;
  }
  fence_args args = {f}; /* the reference taken above goes to the task */
  ferry_status st = ferry_cpu_enqueue(s, NULL, run_wait, &args, sizeof args,
                                      fence_args_release);
  if (st != FERRY_OK)
    fence_release(f);
  return st;
}
