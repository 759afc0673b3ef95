/* Host functions in stream order, and the release of destroyed streams.
 *
 * A host function (the user's host_fn, or a fill/copy of pageable host
 * memory that must wait for the stream's earlier work) is a heap closure
 * queued with LaunchHostFunc; it runs on the runtime's callback thread,
 * may report a deferred error through the stream's cookie, and frees
 * itself. The runtime never calls such a function once the device context
 * has failed, so every queued closure is also on its stream's pending list.
 *
 * stream_destroy returns at once; the cookie must stay valid for the
 * closures still queued (they may report errors with it). So the release
 * (host->stream_released, then freeing the stream) happens when the stream
 * is destroyed and nothing queued refers to it any more: a release callback
 * is queued behind the stream's work with StreamAddCallback, which the
 * runtime calls exactly once even after a device fault, with the fault as
 * its status. It then gives up the closures that will never run. */
#include "gpu_internal.h"

#include <stdio.h>
#include <string.h>

_Thread_local bool ferry_gpu_in_callback = false;

static void unlink_closure(ferry_be_stream *s, ferry_gpu_closure *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    s->pending = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

/* Under s->lock: true when the caller must release the stream. */
static bool ready_locked(ferry_be_stream *s) {
  if (!s->destroyed || s->outstanding > 0 || s->released)
    return false;
  s->released = true;
  return true;
}

bool ferry_gpu_stream_sweep_locked(ferry_be_stream *s, bool never_run) {
  if (never_run) {
    ferry_gpu_closure *c = s->pending;
    while (c) {
      ferry_gpu_closure *next = c->next;
      if (!c->running) {
        unlink_closure(s, c);
        s->outstanding--;
        ferry_gpu_host->free(c);
      }
      c = next;
    }
  }
  return ready_locked(s);
}

void ferry_gpu_stream_release(ferry_be_stream *s) {
  ferry_be_context *ctx = s->ctx;
  /* The core's last use of the cookie comes first; the context may be
   * freed as soon as the stream leaves its list. */
  ferry_gpu_host->stream_released(s->cookie);
  pthread_mutex_lock(&ctx->lock);
  if (s->prev)
    s->prev->next = s->next;
  else
    ctx->streams = s->next;
  if (s->next)
    s->next->prev = s->prev;
  pthread_cond_broadcast(&ctx->released);
  pthread_mutex_unlock(&ctx->lock);
  pthread_mutex_destroy(&s->lock);
  ferry_gpu_host->free(s);
}

static void run_closure(ferry_gpu_closure *c) {
  ferry_be_stream *s = c->stream;
  pthread_mutex_lock(&s->lock);
  c->running = true;
  pthread_mutex_unlock(&s->lock);

  char msg[384] = "";
  ferry_gpu_in_callback = true;
  ferry_status st = c->run(c, msg, sizeof msg);
  ferry_gpu_in_callback = false;
  if (st != FERRY_OK)
    ferry_gpu_host->defer_error(s->cookie, c->seq, c->op, st, "%s", msg);

  pthread_mutex_lock(&s->lock);
  unlink_closure(s, c);
  s->outstanding--;
  bool release = ready_locked(s);
  pthread_mutex_unlock(&s->lock);
  ferry_gpu_host->free(c);
  if (release)
    ferry_gpu_stream_release(s);
}

/* How a closure is queued. LaunchHostFunc does not call the function after
 * a device error; where only stream callbacks exist (ROCm 5), the callback
 * skips it then, so that both behave alike: never-run closures are given up
 * by the stream's release (ferry_gpu_stream_sweep_locked). */
#if GPU_HAVE_LAUNCH_HOST_FUNC
static void GPU_CALLBACK closure_entry(void *arg) {
  run_closure(arg);
}
static gpuError_t queue_closure(gpuStream_t s, ferry_gpu_closure *c) {
  return gpuLaunchHostFunc(s, closure_entry, c);
}
#else
static void GPU_CALLBACK closure_entry(gpuStream_t s, gpuError_t status,
                                       void *arg) {
  (void)s;
  if (status == gpuSuccess)
    run_closure(arg);
}
static gpuError_t queue_closure(gpuStream_t s, ferry_gpu_closure *c) {
  return gpuStreamAddCallback(s, closure_entry, c, 0);
}
#endif

ferry_status ferry_gpu_enqueue_host(ferry_be_stream *s,
                                    const ferry_be_launch *launch,
                                    const ferry_gpu_closure *proto) {
  const char *op = launch && launch->op ? launch->op : "host function";
  /* A closure runs once and frees itself: captured into a graph it would
   * run again from freed memory. */
  gpuStreamCaptureStatus cs = gpuStreamCaptureStatusNone;
  gpuError_t e = gpuStreamIsCapturing(s->stream, &cs);
  if (e != gpuSuccess)
    return ferry_gpu_fail(s->ctx, e, "%s: %sStreamIsCapturing", op,
                          FERRY_GPU_NAME);
  if (cs != gpuStreamCaptureStatusNone)
    return ferry_gpu_host->set_error(
        FERRY_ERR_UNSUPPORTED,
        FERRY_GPU_NAME " %s: the stream is being captured into a graph; "
                       "ferry's host functions run once and cannot be "
                       "captured",
        op);
  ferry_gpu_closure *c = ferry_gpu_host->alloc(sizeof *c, 0);
  if (c == NULL)
    return ferry_gpu_host->set_error(
        FERRY_ERR_OUT_OF_MEMORY, FERRY_GPU_NAME " %s: out of host memory", op);
  *c = *proto;
  c->stream = s;
  c->seq = launch ? launch->seq : 0;
  /* The core names ops with static strings; keep a static one whatever. */
  c->op = proto->op ? proto->op : "host function";
  c->running = false;
  c->prev = NULL;
  pthread_mutex_lock(&s->lock);
  c->next = s->pending;
  if (s->pending)
    s->pending->prev = c;
  s->pending = c;
  s->outstanding++;
  pthread_mutex_unlock(&s->lock);

  e = queue_closure(s->stream, c);
  if (e != gpuSuccess) {
    pthread_mutex_lock(&s->lock);
    unlink_closure(s, c);
    s->outstanding--;
    pthread_mutex_unlock(&s->lock);
    ferry_gpu_host->free(c);
    return ferry_gpu_fail(s->ctx, e, "%s: queueing a host function", op);
  }
  return FERRY_OK;
}

static void GPU_CALLBACK release_callback(gpuStream_t stream, gpuError_t status,
                                          void *arg) {
  (void)stream;
  ferry_be_stream *s = arg;
  bool failed = status != gpuSuccess;
  if (failed && ferry_gpu_error_is_sticky(status)) {
    char desc[256];
    ferry_gpu_describe(status, desc, sizeof desc);
    ferry_gpu_host->context_lost(s->ctx->cookie, FERRY_ERR_CONTEXT_LOST,
                                 FERRY_GPU_NAME " device %d: %s",
                                 s->ctx->device, desc);
  }
  pthread_mutex_lock(&s->lock);
  s->outstanding--; /* this callback */
  bool release = ferry_gpu_stream_sweep_locked(s, failed);
  pthread_mutex_unlock(&s->lock);
  if (release)
    ferry_gpu_stream_release(s);
}

void ferry_gpu_stream_release_later(ferry_be_stream *s) {
  pthread_mutex_lock(&s->lock);
  s->destroyed = true;
  s->outstanding++; /* the release callback, before it can run */
  pthread_mutex_unlock(&s->lock);

  /* AddCallback cannot be captured into a graph (and would invalidate the
   * capture): a capturing stream is released when its closures finish. */
  gpuStreamCaptureStatus cs = gpuStreamCaptureStatusNone;
  gpuError_t e = gpuStreamIsCapturing(s->stream, &cs);
  if (e == gpuSuccess && cs == gpuStreamCaptureStatusNone)
    e = gpuStreamAddCallback(s->stream, release_callback, s, 0);
  else if (e == gpuSuccess)
    e = gpuErrorNotReady; /* capturing: no callback queued */
  if (e == gpuSuccess)
    return;
  /* No callback was queued. After a device fault the queued closures never
   * run: give them up. Otherwise they run and the last one releases. */
  bool never_run = ferry_gpu_error_is_sticky(e);
  if (!never_run)
    (void)gpuGetLastError();
  pthread_mutex_lock(&s->lock);
  s->outstanding--;
  bool release = ferry_gpu_stream_sweep_locked(s, never_run);
  pthread_mutex_unlock(&s->lock);
  if (release)
    ferry_gpu_stream_release(s);
}
