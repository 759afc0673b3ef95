/* Streams: ferry's own (non-blocking, so they never serialise with the
 * legacy default stream) or a framework's wrapped in place. The lifetime
 * rules for destroyed streams are in gpu_callback.c. */
#include "gpu_internal.h"

#include <string.h>

static ferry_status stream_new(ferry_be_context *ctx, gpuStream_t native,
                               bool owned, void *cookie,
                               ferry_be_stream **out) {
  ferry_be_stream *s = ferry_gpu_host->alloc(sizeof *s, 0);
  if (s == NULL) {
    if (owned && gpuStreamDestroy(native) != gpuSuccess)
      (void)gpuGetLastError();
    return ferry_gpu_host->set_error(FERRY_ERR_OUT_OF_MEMORY, FERRY_GPU_NAME
                                     " stream: out of host memory");
  }
  memset(s, 0, sizeof *s);
  s->ctx = ctx;
  s->stream = native;
  s->cookie = cookie;
  s->owned = owned;
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_lock(&ctx->lock);
  s->next = ctx->streams;
  if (ctx->streams)
    ctx->streams->prev = s;
  ctx->streams = s;
  pthread_mutex_unlock(&ctx->lock);
  *out = s;
  return FERRY_OK;
}

ferry_status ferry_gpu_stream_create(ferry_be_context *ctx, void *cookie,
                                     ferry_be_stream **out) {
  if (ctx == NULL || out == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER, FERRY_GPU_NAME
                                     " stream_create: 'ctx' or 'out' is NULL");
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(ctx, "stream_create", &scope);
  if (st != FERRY_OK)
    return st;
  gpuStream_t native = NULL;
  gpuError_t e = gpuStreamCreateWithFlags(&native, gpuStreamNonBlocking);
  ferry_gpu_leave(&scope);
  if (e != gpuSuccess)
    return ferry_gpu_fail(ctx, e, "stream_create: %sStreamCreateWithFlags",
                          FERRY_GPU_NAME);
  return stream_new(ctx, native, true, cookie, out);
}

ferry_status ferry_gpu_stream_wrap(ferry_be_context *ctx, void *native,
                                   void *cookie, ferry_be_stream **out) {
  if (ctx == NULL || out == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER, FERRY_GPU_NAME
                                     " stream_wrap: 'ctx' or 'out' is NULL");
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(ctx, "stream_wrap", &scope);
  if (st != FERRY_OK)
    return st;
  gpuStream_t stream = (gpuStream_t)native;
  /* A handle the runtime does not know fails here rather than in a later
   * op. (The legacy and per-thread default streams, handles 0x1 and 0x2,
   * are valid: they mean the current device's.) Asking whether it is being
   * captured is the one question that is legal, and leaves the capture
   * intact, while a framework captures it into a graph. */
  gpuStreamCaptureStatus cs = gpuStreamCaptureStatusNone;
  gpuError_t e = gpuStreamIsCapturing(stream, &cs);
  if (e != gpuSuccess) {
    ferry_gpu_leave(&scope);
    return ferry_gpu_fail(ctx, e,
                          "stream_wrap: %p is not a usable %s stream "
                          "(%sStreamIsCapturing)",
                          native, FERRY_GPU_RUNTIME, FERRY_GPU_NAME);
  }
#if GPU_HAVE_STREAM_GET_DEVICE
  int device = -1;
  e = gpuStreamGetDevice(stream, &device);
  if (e == gpuSuccess && device != ctx->device) {
    ferry_gpu_leave(&scope);
    return ferry_gpu_host->set_error(
        FERRY_ERR_MISMATCH,
        FERRY_GPU_NAME " stream_wrap: stream %p belongs to device %d, the "
                       "context to device %d",
        native, device, ctx->device);
  }
  if (e != gpuSuccess)
    (void)gpuGetLastError();
#endif
  ferry_gpu_leave(&scope);
  return stream_new(ctx, stream, false, cookie, out);
}

void ferry_gpu_stream_destroy(ferry_be_stream *s, uint32_t flags) {
  if (s == NULL)
    return;
  ferry_be_context *ctx = s->ctx;
  if (flags & FERRY_BE_DESTROY_FORKED) {
    /* No runtime, no locks (another thread may have held one at fork):
     * unlink and free memory only. The core keeps the cookie. */
    if (s->prev)
      s->prev->next = s->next;
    else
      ctx->streams = s->next;
    if (s->next)
      s->next->prev = s->prev;
    for (ferry_gpu_closure *c = s->pending, *next; c; c = next) {
      next = c->next;
      ferry_gpu_host->free(c);
    }
    ferry_gpu_host->free(s);
    return;
  }
  /* The release may free `s` at any moment once queued: keep what is still
   * needed. */
  gpuStream_t native = s->stream;
  bool owned = s->owned;
  ferry_gpu_scope scope;
  if (ferry_gpu_enter(ctx, "stream_destroy", &scope) != FERRY_OK) {
    /* No runtime call is possible here (a host function's thread): the
     * closures still queued release the stream when they finish. The
     * runtime stream is left to the process. */
    pthread_mutex_lock(&s->lock);
    s->destroyed = true;
    bool release = ferry_gpu_stream_sweep_locked(s, false);
    pthread_mutex_unlock(&s->lock);
    if (release)
      ferry_gpu_stream_release(s);
    return;
  }
  ferry_gpu_stream_release_later(s);
  /* Destroying a stream with work queued is allowed: the runtime returns at
   * once and frees it when the work (the release callback too) is done. */
  if (owned && gpuStreamDestroy(native) != gpuSuccess)
    (void)gpuGetLastError();
  ferry_gpu_leave(&scope);
}

ferry_status ferry_gpu_stream_synchronize(ferry_be_stream *s) {
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "stream_synchronize", &scope);
  if (st != FERRY_OK)
    return st;
  gpuError_t e = gpuStreamSynchronize(s->stream);
  ferry_gpu_leave(&scope);
  if (e != gpuSuccess)
    return ferry_gpu_fail(s->ctx, e, "stream_synchronize: %sStreamSynchronize",
                          FERRY_GPU_NAME);
  return FERRY_OK;
}

ferry_status ferry_gpu_stream_query(ferry_be_stream *s) {
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "stream_query", &scope);
  if (st != FERRY_OK)
    return st;
  gpuError_t e = gpuStreamQuery(s->stream);
  ferry_gpu_leave(&scope);
  if (e == gpuErrorNotReady) {
    (void)gpuGetLastError();
    return ferry_gpu_host->set_error(FERRY_ERR_NOT_READY, FERRY_GPU_NAME
                                     " stream_query: work is still queued");
  }
  if (e != gpuSuccess)
    return ferry_gpu_fail(s->ctx, e, "stream_query: %sStreamQuery",
                          FERRY_GPU_NAME);
  return FERRY_OK;
}

ferry_status ferry_gpu_stream_wait_event(ferry_be_stream *s,
                                         ferry_be_event *e) {
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "stream_wait_event", &scope);
  if (st != FERRY_OK)
    return st;
  gpuError_t err = gpuStreamWaitEvent(s->stream, e->event, 0);
  ferry_gpu_leave(&scope);
  if (err != gpuSuccess)
    return ferry_gpu_fail(s->ctx, err, "stream_wait_event: %sStreamWaitEvent",
                          FERRY_GPU_NAME);
  return FERRY_OK;
}

ferry_status ferry_gpu_stream_native(ferry_be_stream *s, void **out) {
  if (out == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER, FERRY_GPU_NAME
                                     " stream_native: 'out' is NULL");
  *out = (void *)s->stream;
  return FERRY_OK;
}

void ferry_gpu_streams_forget(ferry_be_context *ctx) {
  for (ferry_be_stream *s = ctx->streams, *next; s; s = next) {
    next = s->next;
    for (ferry_gpu_closure *c = s->pending, *cn; c; c = cn) {
      cn = c->next;
      ferry_gpu_host->free(c);
    }
    ferry_gpu_host->free(s);
  }
  ctx->streams = NULL;
}

void ferry_gpu_streams_teardown(ferry_be_context *ctx, bool wait) {
  /* Streams the caller never destroyed: destroy them now (one at a time,
   * since destroying may unlink). Only the caller sets `destroyed`, and the
   * caller is destroying the context, so reading it here races with no
   * one. */
  for (;;) {
    pthread_mutex_lock(&ctx->lock);
    ferry_be_stream *s = ctx->streams;
    while (s && s->destroyed)
      s = s->next;
    pthread_mutex_unlock(&ctx->lock);
    if (s == NULL)
      break;
    ferry_gpu_stream_destroy(s, 0);
  }
  if (!wait)
    return;
  pthread_mutex_lock(&ctx->lock);
  while (ctx->streams != NULL)
    pthread_cond_wait(&ctx->released, &ctx->lock);
  pthread_mutex_unlock(&ctx->lock);
}
