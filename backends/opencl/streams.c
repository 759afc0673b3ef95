/* Streams: one in-order cl_command_queue each, plus a host worker thread for
 * work that runs on the host in stream order.
 *
 * Host work (a host function, a copy or fill between host addresses) is a
 * task: a marker on the queue completes once the work before it is done, and
 * its callback hands the task to the stream's worker; a barrier waiting on a
 * user event holds back the work after it until the worker has run the task
 * and completed that event. The worker is a thread of the stream's own, so a
 * host function may block or call ferry on other streams (OpenCL forbids
 * blocking calls inside event callbacks themselves).
 *
 * Every enqueued command is watched by a callback on its event: a negative
 * execution status becomes the op's deferred error. `inflight` counts the
 * watches and tasks not yet finished; synchronize waits for it to reach zero
 * after clFinish, so an error is reported by the synchronize that follows
 * the failing op.
 *
 * stream_destroy returns at once: a last task (RELEASE) runs on the worker
 * once the queue's work is done, releases the queue and hands the cookie
 * back; the context later joins the worker and frees the stream. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct ocl_watch {
  ferry_be_stream *stream;
  uint64_t seq;
  char op[32];
};

void ocl_report_command_error(ferry_be_stream *s, uint64_t seq, const char *op,
                              cl_int status) {
  ferry_status st = ocl_status(status);
  if (ocl_error_is_fatal(status)) {
    st = FERRY_ERR_CONTEXT_LOST;
    ocl_host->context_lost(s->ctx->cookie, st,
                           "op '%s' (sequence %llu) failed on the device: %s "
                           "(%d)",
                           op, (unsigned long long)seq, ocl_error_name(status),
                           (int)status);
  }
  ocl_host->defer_error(s->cookie, seq, op, st,
                        "the '%s' command failed on the device: %s (%d)", op,
                        ocl_error_name(status), (int)status);
}

static void inflight_add(ferry_be_stream *s, int delta) {
  pthread_mutex_lock(&s->lock);
  s->inflight += delta;
  pthread_cond_broadcast(&s->changed);
  pthread_mutex_unlock(&s->lock);
}

void ocl_stream_wait_idle(ferry_be_stream *s) {
  pthread_mutex_lock(&s->lock);
  while (s->inflight > 0)
    pthread_cond_wait(&s->changed, &s->lock);
  pthread_mutex_unlock(&s->lock);
}

/* A non-fatal failure to submit is the caller's error; a fatal one (the
 * device is gone) also loses the context. */
static ferry_status queue_fail(ferry_be_stream *s, const char *what,
                               cl_int err) {
  if (ocl_error_is_fatal(err))
    ocl_host->context_lost(s->ctx->cookie, FERRY_ERR_CONTEXT_LOST,
                           "%s: %s (%d)", what, ocl_error_name(err), (int)err);
  return ocl_fail(what, err);
}

/* ---- command watches ----------------------------------------------------- */

ferry_status ocl_watch_new(ferry_be_stream *s, const ferry_be_launch *l,
                           ocl_watch **out) {
  ocl_watch *w = malloc(sizeof *w);
  if (w == NULL)
    return ocl_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                               "opencl %s: out of host memory", l->op);
  w->stream = s;
  w->seq = l->seq;
  memset(w->op, 0, sizeof w->op);
  strncpy(w->op, l->op ? l->op : "?", sizeof w->op - 1);
  *out = w;
  return FERRY_OK;
}

void ocl_watch_cancel(ocl_watch *w) {
  free(w);
}

static void CL_CALLBACK watch_done(cl_event ev, cl_int status, void *arg) {
  ocl_watch *w = arg;
  ferry_be_stream *s = w->stream;
  if (status < 0)
    ocl_report_command_error(s, w->seq, w->op, status);
  clReleaseEvent(ev);
  free(w);
  /* Last touch of the stream: it may be freed once inflight is zero. */
  inflight_add(s, -1);
}

void ocl_watch_start(ocl_watch *w, cl_event ev) {
  ferry_be_stream *s = w->stream;
  ocl_stream_note(s, ev);
  clFlush(s->queue);
  /* Counted (and `w` published through the stream's lock) before the
   * callback can run. */
  inflight_add(s, 1);
  if (clSetEventCallback(ev, CL_COMPLETE, watch_done, w) == CL_SUCCESS)
    return;
  /* No callback: wait for the command here, which keeps the order. */
  clWaitForEvents(1, &ev);
  cl_int status = CL_COMPLETE;
  if (clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status,
                     &status, NULL) != CL_SUCCESS)
    status = CL_COMPLETE;
  watch_done(ev, status, w);
}

void ocl_stream_note(ferry_be_stream *s, cl_event ev) {
  if (ev == NULL || clRetainEvent(ev) != CL_SUCCESS)
    return;
  if (s->last)
    clReleaseEvent(s->last);
  s->last = ev;
}

static void forget_last(ferry_be_stream *s) {
  if (s->last)
    clReleaseEvent(s->last);
  s->last = NULL;
}

/* ---- host tasks ---------------------------------------------------------- */

/* Run a task's work, report its failure, and let the work after it go. */
static void run_task(ferry_be_stream *s, ocl_task *t) {
  switch (t->kind) {
  case OCL_TASK_HOST_FN: {
    ferry_status st = t->fn(t->user);
    if (st != FERRY_OK)
      ocl_host->defer_error(s->cookie, t->seq, t->op, st,
                            "the host function (sequence %llu) returned "
                            "status %d",
                            (unsigned long long)t->seq, (int)st);
    break;
  }
  case OCL_TASK_COPY:
    memmove(t->dst, t->src, (size_t)t->size);
    break;
  case OCL_TASK_FILL:
    memset(t->dst, t->value, (size_t)t->size);
    break;
  case OCL_TASK_RELEASE:
    break;
  }
  if (t->gate) {
    clSetUserEventStatus(t->gate, CL_COMPLETE);
    clReleaseEvent(t->gate);
  }
  if (t->marker)
    clReleaseEvent(t->marker);
  free(t);
}

/* The stream was destroyed and everything before the RELEASE task is done:
 * hand the cookie back and mark the stream reapable. */
static void release_stream(ferry_be_stream *s) {
  ocl_stream_wait_idle(s);
  forget_last(s);
  clReleaseCommandQueue(s->queue);
  s->queue = NULL;
  ocl_host->stream_released(s->cookie);
  ferry_be_context *ctx = s->ctx;
  pthread_mutex_lock(&ctx->lock);
  s->state = OCL_STREAM_RELEASED;
  pthread_cond_broadcast(&ctx->stream_released);
  pthread_mutex_unlock(&ctx->lock);
}

static void *worker_main(void *arg) {
  ferry_be_stream *s = arg;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    while (s->head == NULL && !s->worker_exit)
      pthread_cond_wait(&s->changed, &s->lock);
    ocl_task *t = s->head;
    if (t == NULL)
      break; /* asked to exit and nothing left */
    s->head = t->next;
    if (s->head == NULL)
      s->tail = NULL;
    pthread_mutex_unlock(&s->lock);
    if (t->kind == OCL_TASK_RELEASE) {
      clReleaseEvent(t->marker);
      free(t);
      /* The context frees the stream after this: touch it no more. */
      release_stream(s);
      return NULL;
    }
    run_task(s, t);
    pthread_mutex_lock(&s->lock);
    s->inflight--;
    pthread_cond_broadcast(&s->changed);
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

static ferry_status ensure_worker(ferry_be_stream *s) {
  pthread_mutex_lock(&s->lock);
  int rc = 0;
  if (!s->has_worker) {
    rc = pthread_create(&s->worker, NULL, worker_main, s);
    s->has_worker = rc == 0;
  }
  pthread_mutex_unlock(&s->lock);
  if (rc != 0)
    return ocl_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                               "opencl stream: cannot start its host worker "
                               "thread (pthread_create returned %d)",
                               rc);
  return FERRY_OK;
}

static void CL_CALLBACK task_ready(cl_event ev, cl_int status, void *arg) {
  (void)ev;
  (void)status; /* a failed command before the task reported itself */
  ocl_task *t = arg;
  ferry_be_stream *s = t->stream;
  pthread_mutex_lock(&s->lock);
  t->next = NULL;
  if (s->tail)
    s->tail->next = t;
  else
    s->head = t;
  s->tail = t;
  pthread_cond_broadcast(&s->changed);
  pthread_mutex_unlock(&s->lock);
}

ferry_status ocl_stream_host_task(ferry_be_stream *s, ocl_task *t) {
  t->stream = s;
  t->marker = NULL;
  t->gate = NULL;
  ferry_status st = ensure_worker(s);
  if (st != FERRY_OK)
    return st;
  cl_int err = CL_SUCCESS;
  t->gate = clCreateUserEvent(s->ctx->cl, &err);
  if (err != CL_SUCCESS) {
    t->gate = NULL;
    return queue_fail(s, "clCreateUserEvent", err);
  }
  err = clEnqueueMarkerWithWaitList(s->queue, 0, NULL, &t->marker);
  if (err != CL_SUCCESS) {
    clReleaseEvent(t->gate);
    t->gate = NULL;
    t->marker = NULL;
    return queue_fail(s, "clEnqueueMarkerWithWaitList", err);
  }
  cl_event barrier = NULL;
  err = clEnqueueBarrierWithWaitList(s->queue, 1, &t->gate, &barrier);
  if (err != CL_SUCCESS) {
    /* Nothing after the task could be held back: run it here, once the
     * work before it is done; nothing has been queued after it yet. */
    ocl_stream_note(s, t->marker);
    clFlush(s->queue);
    clWaitForEvents(1, &t->marker);
    run_task(s, t);
    return FERRY_OK;
  }
  ocl_stream_note(s, barrier);
  clReleaseEvent(barrier);
  clFlush(s->queue);
  /* The worker may free `t` as soon as the callback is set: keep what we
   * need, and publish `t` through the stream's lock (inflight_add). */
  cl_event marker = t->marker;
  inflight_add(s, 1);
  if (clSetEventCallback(marker, CL_COMPLETE, task_ready, t) != CL_SUCCESS) {
    /* The barrier holds back later work until the task runs: run it here. */
    inflight_add(s, -1);
    clWaitForEvents(1, &marker);
    run_task(s, t);
  }
  return FERRY_OK;
}

/* ---- streams ------------------------------------------------------------- */

static ferry_status stream_new(ferry_be_context *ctx, cl_command_queue q,
                               void *cookie, ferry_be_stream **out) {
  ferry_be_stream *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ocl_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                               "opencl stream: out of host memory");
  s->ctx = ctx;
  s->queue = q;
  s->cookie = cookie;
  s->state = OCL_STREAM_LIVE;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->changed, NULL);
  ocl_context_adopt(ctx, &ctx->streams, &s->link);
  *out = s;
  return FERRY_OK;
}

ferry_status ocl_stream_create(ferry_be_context *ctx, void *cookie,
                               ferry_be_stream **out) {
  ocl_context_reap(ctx);
  cl_int err = CL_SUCCESS;
  /* In order (ferry streams are), with profiling for event timings. */
  cl_command_queue q = clCreateCommandQueue(ctx->cl, ctx->dev->id,
                                            CL_QUEUE_PROFILING_ENABLE, &err);
  if (err != CL_SUCCESS)
    return ocl_fail("clCreateCommandQueue", err);
  ferry_status st = stream_new(ctx, q, cookie, out);
  if (st != FERRY_OK)
    clReleaseCommandQueue(q);
  return st;
}

ferry_status ocl_stream_wrap(ferry_be_context *ctx, void *native, void *cookie,
                             ferry_be_stream **out) {
  ocl_context_reap(ctx);
  cl_command_queue q = native;
  cl_context qctx = NULL;
  cl_device_id qdev = NULL;
  cl_command_queue_properties props = 0;
  cl_int err =
      clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof qctx, &qctx, NULL);
  if (err == CL_SUCCESS)
    err = clGetCommandQueueInfo(q, CL_QUEUE_DEVICE, sizeof qdev, &qdev, NULL);
  if (err == CL_SUCCESS)
    err = clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES, sizeof props, &props,
                                NULL);
  if (err != CL_SUCCESS)
    return ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                               "opencl stream_wrap: argument 'native' is not a "
                               "usable cl_command_queue: "
                               "clGetCommandQueueInfo: %s (%d)",
                               ocl_error_name(err), (int)err);
  if (qctx != ctx->cl)
    return ocl_host->set_error(
        FERRY_ERR_MISMATCH,
        "opencl stream_wrap: argument 'native' is a queue of another "
        "cl_context; create it on this ferry context's cl_context (e.g. "
        "CL_QUEUE_CONTEXT of ferry_stream_native_handle's queue)");
  if (qdev != ctx->dev->id)
    return ocl_host->set_error(FERRY_ERR_MISMATCH,
                               "opencl stream_wrap: argument 'native' is a "
                               "queue of another device than the context's "
                               "(%s)",
                               ctx->dev->info.name);
  if (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)
    return ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                               "opencl stream_wrap: argument 'native' is an "
                               "out-of-order queue; ferry streams are in "
                               "order, so wrap an in-order queue");
  err = clRetainCommandQueue(q);
  if (err != CL_SUCCESS)
    return ocl_fail("clRetainCommandQueue", err);
  ferry_status st = stream_new(ctx, q, cookie, out);
  if (st != FERRY_OK)
    clReleaseCommandQueue(q);
  return st;
}

/* Stop the worker once its queue of tasks is empty, and join it. */
static void stop_worker(ferry_be_stream *s) {
  pthread_mutex_lock(&s->lock);
  bool has = s->has_worker;
  s->worker_exit = true;
  pthread_cond_broadcast(&s->changed);
  pthread_mutex_unlock(&s->lock);
  if (has)
    pthread_join(s->worker, NULL);
  s->has_worker = false;
}

/* Release a stream here and now, after its work: the fallback of destroy and
 * the path of streams the caller never destroyed. */
static void release_now(ferry_be_stream *s) {
  clFinish(s->queue);
  ocl_stream_wait_idle(s);
  stop_worker(s);
  forget_last(s);
  clReleaseCommandQueue(s->queue);
  s->queue = NULL;
  ocl_host->stream_released(s->cookie);
}

void ocl_stream_teardown(ferry_be_stream *s) {
  release_now(s);
  ocl_stream_free(s, 0);
}

void ocl_stream_destroy(ferry_be_stream *s, uint32_t flags) {
  if (s == NULL)
    return;
  ferry_be_context *ctx = s->ctx;
  if (flags & FERRY_BE_DESTROY_FORKED) {
    ocl_context_drop(ctx, &s->link, flags);
    ocl_stream_free(s, flags);
    return;
  }
  pthread_mutex_lock(&ctx->lock);
  s->state = OCL_STREAM_RELEASING;
  pthread_mutex_unlock(&ctx->lock);

  ocl_task *t = calloc(1, sizeof *t);
  cl_event marker = NULL;
  if (t != NULL && ensure_worker(s) == FERRY_OK &&
      clEnqueueMarkerWithWaitList(s->queue, 0, NULL, &marker) == CL_SUCCESS) {
    t->stream = s;
    t->kind = OCL_TASK_RELEASE;
    t->marker = marker;
    clFlush(s->queue);
    /* Once the callback is set the worker may release and the context free
     * the stream at any moment: publish everything through the stream's
     * lock first, and touch nothing after. */
    pthread_mutex_lock(&s->lock);
    pthread_mutex_unlock(&s->lock);
    if (clSetEventCallback(marker, CL_COMPLETE, task_ready, t) == CL_SUCCESS)
      return;
    clReleaseEvent(marker);
  }
  /* No way to release it later: do it now (this waits for its work). */
  free(t);
  release_now(s);
  pthread_mutex_lock(&ctx->lock);
  s->state = OCL_STREAM_RELEASED;
  pthread_cond_broadcast(&ctx->stream_released);
  pthread_mutex_unlock(&ctx->lock);
}

void ocl_stream_free(ferry_be_stream *s, uint32_t flags) {
  bool forked = (flags & FERRY_BE_DESTROY_FORKED) != 0;
  if (!forked && s->has_worker)
    pthread_join(s->worker, NULL);
  /* Tasks still queued exist only in a forked child (their driver objects
   * belong to the parent). */
  while (s->head) {
    ocl_task *next = s->head->next;
    free(s->head);
    s->head = next;
  }
  if (!forked) {
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
  }
  free(s);
}

ferry_status ocl_stream_finish(ferry_be_stream *s) {
  cl_int err = clFinish(s->queue);
  if (err != CL_SUCCESS)
    return queue_fail(s, "clFinish", err);
  ocl_stream_wait_idle(s);
  return FERRY_OK;
}

ferry_status ocl_stream_synchronize(ferry_be_stream *s) {
  return ocl_stream_finish(s);
}

ferry_status ocl_stream_query(ferry_be_stream *s) {
  /* The last command ferry queued: on an in-order queue it completes after
   * everything before it. (Work a wrapped queue's owner queued after it is
   * not ferry's to report; synchronize waits for it all the same.) */
  bool busy = false;
  if (s->last) {
    cl_int status = CL_QUEUED;
    cl_int err = clGetEventInfo(s->last, CL_EVENT_COMMAND_EXECUTION_STATUS,
                                sizeof status, &status, NULL);
    if (err != CL_SUCCESS)
      return ocl_fail("clGetEventInfo", err);
    /* A negative status means a command failed; its watch reports that,
     * and the queue is idle all the same. */
    busy = status > CL_COMPLETE;
    if (!busy)
      forget_last(s);
  }
  if (!busy) {
    pthread_mutex_lock(&s->lock);
    busy = s->inflight > 0;
    pthread_mutex_unlock(&s->lock);
  }
  if (busy)
    return ocl_host->set_error(FERRY_ERR_NOT_READY,
                               "opencl stream: work is still queued");
  return FERRY_OK;
}

ferry_status ocl_stream_wait_event(ferry_be_stream *s, ferry_be_event *e) {
  cl_event ev = ocl_event_acquire(e);
  if (ev == NULL)
    return FERRY_OK; /* never recorded: complete */
  cl_event barrier = NULL;
  cl_int err = clEnqueueBarrierWithWaitList(s->queue, 1, &ev, &barrier);
  clReleaseEvent(ev);
  if (err != CL_SUCCESS)
    return queue_fail(s, "clEnqueueBarrierWithWaitList", err);
  ocl_stream_note(s, barrier);
  clReleaseEvent(barrier);
  clFlush(s->queue);
  return FERRY_OK;
}

ferry_status ocl_stream_native(ferry_be_stream *s, void **out) {
  *out = s->queue;
  return FERRY_OK;
}
