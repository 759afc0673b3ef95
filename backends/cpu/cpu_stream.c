/* cpu streams: in-order task queues run asynchronously.
 *
 * Each stream has its own dispatcher thread rather than borrowing the pool:
 * a task may block for long (a slow host function, a wait on another
 * stream's event), and a blocked dispatcher then stalls only its own stream,
 * never the pool that other streams' tasks split work across; cross-stream
 * waits need no rescheduling machinery; and order is simply the order one
 * thread pops the FIFO. Streams are long-lived, so a thread each is cheap.
 *
 * Lifetime: stream_destroy marks the stream closing and returns. The
 * dispatcher drains the queue, calls host->stream_released, and marks itself
 * exited; the thread is joined and the memory freed by the next thread that
 * reaps the context's streams (stream_create/destroy, context teardown).
 *
 * Under FERRY_CPU_SYNC no dispatcher exists: enqueue runs the task in the
 * caller's thread, through the same code path otherwise. */
#include "cpu_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct ferry_cpu_task {
  ferry_cpu_task *next;
  ferry_be_stream *stream;
  ferry_cpu_task_fn fn;
  ferry_cpu_task_cleanup_fn cleanup;
  void *args;
  uint64_t seq;
  /* An event's marker: it counts as finished in the same critical section
   * as its body runs (see dispatcher_main). */
  bool marker;
  char op[32];
};

/* The stream whose task this thread is running, if any. */
static _Thread_local ferry_be_stream *running_stream;

/* Where a task's copy of its arguments starts, aligned for any type. */
#define TASK_ARGS_OFFSET                                                       \
  ((sizeof(ferry_cpu_task) + _Alignof(max_align_t) - 1) /                      \
   _Alignof(max_align_t) * _Alignof(max_align_t))

static void run_task(ferry_cpu_task *t) {
  ferry_be_stream *outer = running_stream;
  running_stream = t->stream;
  t->fn(t, t->args);
  if (t->cleanup)
    t->cleanup(t->args);
  running_stream = outer;
  ferry_cpu_host->free(t);
}

static ferry_status enqueue(ferry_be_stream *s, const ferry_be_launch *launch,
                            ferry_cpu_task_fn fn, const void *args,
                            size_t args_size, ferry_cpu_task_cleanup_fn cleanup,
                            bool marker) {
  const char *op = launch != NULL && launch->op != NULL ? launch->op : "";
  if (args_size > SIZE_MAX - TASK_ARGS_OFFSET)
    return ferry_cpu_host->set_error(
        FERRY_ERR_OUT_OF_MEMORY, "cpu %s: %zu bytes of arguments is too many",
        op, args_size);
  ferry_cpu_task *t = ferry_cpu_host->alloc(TASK_ARGS_OFFSET + args_size, 0);
  if (t == NULL)
    return ferry_cpu_host->set_error(
        FERRY_ERR_OUT_OF_MEMORY,
        "cpu %s: no memory to enqueue the op (%zu bytes of arguments)", op,
        args_size);
  t->next = NULL;
  t->stream = s;
  t->fn = fn;
  t->cleanup = cleanup;
  t->args = (char *)t + TASK_ARGS_OFFSET;
  t->seq = launch != NULL ? launch->seq : 0;
  t->marker = marker;
  snprintf(t->op, sizeof t->op, "%s", op);
  if (args_size > 0)
    memcpy(t->args, args, args_size);

  if (s->ctx->sync) {
    run_task(t);
    return FERRY_OK;
  }
  pthread_mutex_lock(&s->lock);
  if (s->tail)
    s->tail->next = t;
  else
    s->head = t;
  s->tail = t;
  s->submitted++;
  pthread_cond_signal(&s->wake);
  pthread_mutex_unlock(&s->lock);
  return FERRY_OK;
}

ferry_status ferry_cpu_enqueue(ferry_be_stream *s,
                               const ferry_be_launch *launch,
                               ferry_cpu_task_fn fn, const void *args,
                               size_t args_size,
                               ferry_cpu_task_cleanup_fn cleanup) {
  return enqueue(s, launch, fn, args, args_size, cleanup, false);
}

ferry_status ferry_cpu_enqueue_marker(ferry_be_stream *s, ferry_cpu_task_fn fn,
                                      const void *args, size_t args_size,
                                      ferry_cpu_task_cleanup_fn cleanup) {
  return enqueue(s, NULL, fn, args, args_size, cleanup, true);
}

void ferry_cpu_task_fail(const ferry_cpu_task *task, ferry_status status,
                         const char *fmt, ...) {
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  ferry_cpu_host->defer_error(task->stream->cookie, task->seq, task->op, status,
                              "%s", message);
}

ferry_be_context *ferry_cpu_task_context(const ferry_cpu_task *task) {
  return task->stream->ctx;
}

uint64_t ferry_cpu_task_sequence(const ferry_cpu_task *task) {
  return task->seq;
}

static void *dispatcher_main(void *arg) {
  ferry_be_stream *s = arg;
  ferry_be_context *ctx = s->ctx;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    while (s->head == NULL && !s->closing)
      pthread_cond_wait(&s->wake, &s->lock);
    ferry_cpu_task *t = s->head;
    if (t == NULL)
      break; /* closing and drained */
    s->head = t->next;
    if (s->head == NULL)
      s->tail = NULL;
    if (t->marker) {
      /* An event completes and the stream counts its marker finished at
       * once: whoever sees the event complete then finds the stream idle
       * (if nothing followed), and whoever sees the stream idle finds the
       * event complete, as in CUDA. The body only takes the fence lock. */
      s->finished++;
      run_task(t);
      pthread_cond_broadcast(&s->idle);
      continue;
    }
    pthread_mutex_unlock(&s->lock);
    run_task(t);
    pthread_mutex_lock(&s->lock);
    s->finished++;
    pthread_cond_broadcast(&s->idle);
  }
  pthread_mutex_unlock(&s->lock);
  ferry_cpu_host->stream_released(s->cookie);
  pthread_mutex_lock(&ctx->lock);
  s->exited = true;
  pthread_cond_broadcast(&ctx->stream_exited);
  pthread_mutex_unlock(&ctx->lock);
  return NULL;
}

static void free_stream(ferry_be_stream *s, bool forked) {
  if (!forked) {
    pthread_cond_destroy(&s->idle);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
  }
  ferry_cpu_host->free(s);
}

/* Join and free the streams that are finished and that nobody waits on. */
static void reap(ferry_be_context *ctx) {
  ferry_be_stream *dead = NULL;
  pthread_mutex_lock(&ctx->lock);
  for (ferry_be_stream **p = &ctx->streams; *p;) {
    ferry_be_stream *s = *p;
    if (s->exited && s->holds == 0) {
      *p = s->next;
      s->next = dead;
      dead = s;
    } else {
      p = &s->next;
    }
  }
  pthread_mutex_unlock(&ctx->lock);
  while (dead) {
    ferry_be_stream *s = dead;
    dead = s->next;
    if (s->has_thread)
      pthread_join(s->thread, NULL);
    free_stream(s, false);
  }
}

ferry_status ferry_cpu_stream_create(ferry_be_context *ctx, void *cookie,
                                     ferry_be_stream **out) {
  if (ctx == NULL || out == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_NULL_POINTER,
                                     "cpu stream_create: '%s' is NULL",
                                     ctx == NULL ? "ctx" : "out");
  ferry_be_stream *s = ferry_cpu_host->alloc(sizeof *s, 0);
  if (s == NULL)
    return ferry_cpu_host->set_error(
        FERRY_ERR_OUT_OF_MEMORY, "cpu stream_create: no memory for a stream");
  memset(s, 0, sizeof *s);
  s->ctx = ctx;
  s->cookie = cookie;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->wake, NULL);
  pthread_cond_init(&s->idle, NULL);
  if (!ctx->sync) {
    int err = ferry_cpu_thread_start(&s->thread, dispatcher_main, s, ctx->cpus,
                                     ctx->cpus_size);
    if (err != 0) {
      free_stream(s, false);
      char why[128];
      return ferry_cpu_host->set_error(
          FERRY_ERR_OUT_OF_MEMORY,
          "cpu stream_create: cannot start the stream's thread: %s",
          strerror_r(err, why, sizeof why));
    }
    s->has_thread = true;
  }
  pthread_mutex_lock(&ctx->lock);
  s->next = ctx->streams;
  ctx->streams = s;
  pthread_mutex_unlock(&ctx->lock);
  reap(ctx);
  *out = s;
  return FERRY_OK;
}

/* Fork()ed child: the dispatcher is gone and its locks may be held. Queued
 * tasks are dropped (their cleanups only free memory). stream_released is
 * not called: it would enter the core, whose locks are in the same state;
 * the core frees its side of the stream itself there. */
static void forget_stream(ferry_be_stream *s) {
  for (ferry_be_stream **p = &s->ctx->streams; *p; p = &(*p)->next) {
    if (*p == s) {
      *p = s->next;
      break;
    }
  }
  while (s->head) {
    ferry_cpu_task *t = s->head;
    s->head = t->next;
    if (t->cleanup)
      t->cleanup(t->args);
    ferry_cpu_host->free(t);
  }
  free_stream(s, true);
}

void ferry_cpu_stream_destroy(ferry_be_stream *s, uint32_t flags) {
  if (s == NULL)
    return;
  if (flags & FERRY_BE_DESTROY_FORKED) {
    forget_stream(s);
    return;
  }
  ferry_be_context *ctx = s->ctx;
  if (!s->has_thread) {
    /* Synchronous stream: its work is done already. */
    ferry_cpu_host->stream_released(s->cookie);
    pthread_mutex_lock(&ctx->lock);
    s->destroyed = true;
    s->exited = true;
    pthread_cond_broadcast(&ctx->stream_exited);
    pthread_mutex_unlock(&ctx->lock);
  } else {
    pthread_mutex_lock(&ctx->lock);
    s->destroyed = true;
    pthread_mutex_unlock(&ctx->lock);
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    /* From here on `s` belongs to its dispatcher and the reaper. */
  }
  reap(ctx);
}

/* Wait until the tasks enqueued on `s` before this call have run. */
static void wait_queued(ferry_be_stream *s) {
  pthread_mutex_lock(&s->lock);
  uint64_t target = s->submitted;
  while (s->finished < target)
    pthread_cond_wait(&s->idle, &s->lock);
  pthread_mutex_unlock(&s->lock);
}

ferry_status ferry_cpu_stream_synchronize(ferry_be_stream *s) {
  if (s == running_stream)
    return ferry_cpu_host->set_error(
        FERRY_ERR_BUSY,
        "cpu stream_synchronize: called from a host function running on this "
        "stream, which would wait for itself");
  wait_queued(s);
  return FERRY_OK;
}

ferry_status ferry_cpu_stream_query(ferry_be_stream *s) {
  pthread_mutex_lock(&s->lock);
  bool idle = s->finished == s->submitted;
  pthread_mutex_unlock(&s->lock);
  return idle ? FERRY_OK : FERRY_ERR_NOT_READY;
}

void ferry_cpu_context_drain(ferry_be_context *ctx) {
  pthread_mutex_lock(&ctx->lock);
  ferry_be_stream *s = ctx->streams;
  while (s) {
    if (s->exited || s == running_stream) {
      s = s->next;
      continue;
    }
    /* Held, the stream stays listed and allocated while the context lock
     * is dropped, so s->next is valid again once it is retaken. */
    s->holds++;
    if (s->destroyed) {
      /* Wait for its release, not only its last task: the core moves the
       * stream's uncollected error to the context on release, and a
       * context_synchronize returning between the two would miss it. */
      while (!s->exited)
        pthread_cond_wait(&ctx->stream_exited, &ctx->lock);
    } else {
      pthread_mutex_unlock(&ctx->lock);
      wait_queued(s);
      pthread_mutex_lock(&ctx->lock);
    }
    if (--s->holds == 0 && s->exited)
      pthread_cond_broadcast(&ctx->stream_exited);
    s = s->next;
  }
  pthread_mutex_unlock(&ctx->lock);
}

ferry_status ferry_cpu_context_synchronize(ferry_be_context *ctx) {
  if (running_stream != NULL && running_stream->ctx == ctx)
    return ferry_cpu_host->set_error(
        FERRY_ERR_BUSY,
        "cpu context_synchronize: called from a host function running on a "
        "stream of this context, which would wait for itself");
  ferry_cpu_context_drain(ctx);
  return FERRY_OK;
}

void ferry_cpu_streams_teardown(ferry_be_context *ctx, bool forked) {
  if (forked) {
    while (ctx->streams)
      forget_stream(ctx->streams);
    return;
  }
  /* Streams the core did not destroy are destroyed like the others, so each
   * cookie is still released exactly once. */
  for (;;) {
    pthread_mutex_lock(&ctx->lock);
    ferry_be_stream *s = ctx->streams;
    while (s && s->destroyed)
      s = s->next;
    pthread_mutex_unlock(&ctx->lock);
    if (s == NULL)
      break;
    ferry_cpu_stream_destroy(s, 0);
  }
  pthread_mutex_lock(&ctx->lock);
  for (;;) {
    bool busy = false;
    for (ferry_be_stream *s = ctx->streams; s; s = s->next)
      busy = busy || !s->exited || s->holds > 0;
    if (!busy)
      break;
    pthread_cond_wait(&ctx->stream_exited, &ctx->lock);
  }
  pthread_mutex_unlock(&ctx->lock);
  reap(ctx);
}
