/* Streams, events and the sinks where deferred errors collect.
 *
 * A sink is shared by the core stream, the backend (until it calls
 * stream_released) and events recorded on the stream, so a deferred error
 * raised after ferry_stream_destroy returned is still kept: when the last
 * reference goes with an uncollected error, it moves to the context, where
 * ferry_context_synchronize returns it. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ferry__sink *ferry__sink_create(ferry_context *ctx) {
  ferry__sink *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  atomic_init(&s->refs, 1);
  pthread_mutex_init(&s->lock, NULL);
  s->ctx = ctx;
  return s;
}

void ferry__sink_retain(ferry__sink *s) {
  atomic_fetch_add(&s->refs, 1);
}

void ferry__sink_release(ferry__sink *s) {
  if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
    return;
  if (s->has_error && !ferry__forked()) {
    ferry_context *ctx = s->ctx;
    pthread_mutex_lock(&ctx->lock);
    if (!ctx->orphan_has_error) {
      ctx->orphan_has_error = true;
      ctx->orphan_status = s->status;
      ctx->orphan_seq = s->seq;
      memcpy(ctx->orphan_op, s->op, sizeof ctx->orphan_op);
      memcpy(ctx->orphan_message, s->message, sizeof ctx->orphan_message);
    }
    pthread_mutex_unlock(&ctx->lock);
  }
  pthread_mutex_destroy(&s->lock);
  free(s);
}

ferry_status ferry__sink_take(ferry__sink *s) {
  pthread_mutex_lock(&s->lock);
  bool has = s->has_error;
  ferry_status st = s->status;
  uint64_t seq = s->seq;
  char op[sizeof s->op], msg[sizeof s->message];
  memcpy(op, s->op, sizeof op);
  memcpy(msg, s->message, sizeof msg);
  s->has_error = false;
  pthread_mutex_unlock(&s->lock);
  if (!has)
    return FERRY_OK;
  return ferry__error_deferred(st, op, seq, msg);
}

/* ---- streams ------------------------------------------------------------- */

static ferry_status stream_new(ferry_context *ctx, void *native,
                               ferry_stream **out) {
  ferry_status st = ferry__context_check(ctx);
  if (st != FERRY_OK)
    return st;
  ferry_stream *s = calloc(1, sizeof *s);
  ferry__sink *sink = s ? ferry__sink_create(ctx) : NULL;
  if (sink == NULL) {
    free(s);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "stream: out of host memory");
  }
  ferry__sink_retain(sink); /* the backend's reference */
  ferry__clear_error();
  st = native ? ctx->be->stream_wrap(ctx->impl, native, sink, &s->impl)
              : ctx->be->stream_create(ctx->impl, sink, &s->impl);
  if (st != FERRY_OK) {
    ferry__sink_release(sink);
    ferry__sink_release(sink);
    free(s);
    return st;
  }
  s->ctx = ctx;
  s->sink = sink;
  s->next_seq = 1;
  ferry__context_add_stream(ctx, s);
  *out = s;
  return FERRY_OK;
}

ferry_status ferry_stream_create(ferry_context *ctx, ferry_stream **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(out);
  if (ctx->be->stream_create == NULL)
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "ferry_stream_create: backend '%s' has no streams",
                        ctx->plugin->name);
  return stream_new(ctx, NULL, out);
}

ferry_status ferry_stream_wrap_native(ferry_context *ctx, void *native,
                                      ferry_stream **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(native);
  FERRY_CHECK_NULL(out);
  if (ctx->be->stream_wrap == NULL)
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "ferry_stream_wrap_native: backend '%s' has no native "
                        "streams to wrap",
                        ctx->plugin->name);
  return stream_new(ctx, native, out);
}

void ferry__stream_free(ferry_stream *stream, bool forked) {
  /* In a forked child the sink may be shared with a backend whose threads
   * are gone: leave it. */
  if (!forked)
    ferry__sink_release(stream->sink);
  free(stream);
}

void ferry_stream_destroy(ferry_stream *stream) {
  if (stream == NULL)
    return;
  ferry__clear_error();
  bool forked = ferry__forked();
  ferry__context_remove_stream(stream->ctx, stream);
  stream->ctx->be->stream_destroy(stream->impl,
                                  forked ? FERRY_BE_DESTROY_FORKED : 0);
  ferry__stream_free(stream, forked);
}

ferry_status ferry_stream_synchronize(ferry_stream *stream) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(stream);
  ferry_status st = ferry__context_check(stream->ctx);
  if (st != FERRY_OK)
    return st;
  st = stream->ctx->be->stream_synchronize(stream->impl);
  ferry_status deferred = ferry__sink_take(stream->sink);
  if (deferred != FERRY_OK)
    return deferred;
  if (st != FERRY_OK)
    return st;
  return ferry__context_check(stream->ctx);
}

ferry_status ferry_stream_query(ferry_stream *stream) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(stream);
  ferry_status st = ferry__context_check(stream->ctx);
  if (st != FERRY_OK)
    return st;
  /* Ask the backend first: an error raised by the work that just finished is
   * then already in the sink. */
  st = stream->ctx->be->stream_query(stream->impl);
  ferry_status deferred = ferry__sink_take(stream->sink);
  if (deferred != FERRY_OK)
    return deferred;
  if (st == FERRY_ERR_NOT_READY)
    return ferry__error(FERRY_ERR_NOT_READY,
                        "ferry_stream_query: work is still queued");
  return st;
}

static ferry_status same_context(const char *func, const char *arg,
                                 const ferry_context *want,
                                 const ferry_context *got) {
  if (want != got)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "%s: argument '%s' belongs to another context", func,
                        arg);
  return FERRY_OK;
}

ferry_status ferry_stream_wait_event(ferry_stream *stream, ferry_event *event) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(stream);
  FERRY_CHECK_NULL(event);
  ferry_status st = same_context(__func__, "event", stream->ctx, event->ctx);
  if (st == FERRY_OK)
    st = ferry__context_check(stream->ctx);
  if (st != FERRY_OK)
    return st;
  return stream->ctx->be->stream_wait_event(stream->impl, event->impl);
}

ferry_status ferry_stream_next_sequence(const ferry_stream *stream,
                                        uint64_t *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(stream);
  FERRY_CHECK_NULL(out);
  *out = stream->next_seq;
  return FERRY_OK;
}

ferry_status ferry_stream_native_handle(const ferry_stream *stream,
                                        void **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(stream);
  FERRY_CHECK_NULL(out);
  if (stream->ctx->be->stream_native == NULL)
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "ferry_stream_native_handle: backend '%s' has no "
                        "native streams",
                        stream->ctx->plugin->name);
  return stream->ctx->be->stream_native(stream->impl, out);
}

ferry_status ferry__stream_launch(ferry_stream *stream, const char *op,
                                  ferry_be_launch *out) {
  ferry_status st = ferry__context_check(stream->ctx);
  if (st != FERRY_OK)
    return st;
  out->seq = stream->next_seq++;
  out->op = op;
  return FERRY_OK;
}

ferry_status ferry_stream_enqueue_host_fn(ferry_stream *stream,
                                          ferry_host_fn fn, void *user) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(stream);
  FERRY_CHECK_NULL(fn);
  const ferry_backend *be = stream->ctx->be;
  if (be->op_host_fn == NULL)
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "ferry_stream_enqueue_host_fn: backend '%s' lacks "
                        "host functions",
                        stream->ctx->plugin->name);
  ferry_be_launch l;
  ferry_status st = ferry__stream_launch(stream, "host_fn", &l);
  if (st != FERRY_OK)
    return st;
  return be->op_host_fn(stream->impl, &l, fn, user);
}

/* ---- events -------------------------------------------------------------- */

ferry_status ferry_event_create(ferry_context *ctx, ferry_event **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(out);
  ferry_status st = ferry__context_check(ctx);
  if (st != FERRY_OK)
    return st;
  ferry_event *e = calloc(1, sizeof *e);
  if (e == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_event_create: out of host memory");
  st = ctx->be->event_create(ctx->impl, &e->impl);
  if (st != FERRY_OK) {
    free(e);
    return st;
  }
  e->ctx = ctx;
  pthread_mutex_init(&e->lock, NULL);
  ferry__context_add_event(ctx, e);
  *out = e;
  return FERRY_OK;
}

void ferry__event_free(ferry_event *event, bool forked) {
  if (!forked) {
    ferry__sink_release(event->recorded);
    pthread_mutex_destroy(&event->lock);
  }
  free(event);
}

void ferry_event_destroy(ferry_event *event) {
  if (event == NULL)
    return;
  ferry__clear_error();
  bool forked = ferry__forked();
  ferry__context_remove_event(event->ctx, event);
  event->ctx->be->event_destroy(event->impl,
                                forked ? FERRY_BE_DESTROY_FORKED : 0);
  ferry__event_free(event, forked);
}

ferry_status ferry_event_record(ferry_event *event, ferry_stream *stream) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(event);
  FERRY_CHECK_NULL(stream);
  ferry_status st = same_context(__func__, "stream", event->ctx, stream->ctx);
  if (st == FERRY_OK)
    st = ferry__context_check(stream->ctx);
  if (st != FERRY_OK)
    return st;
  st = event->ctx->be->event_record(event->impl, stream->impl);
  if (st != FERRY_OK)
    return st;
  ferry__sink_retain(stream->sink);
  pthread_mutex_lock(&event->lock);
  ferry__sink *old = event->recorded;
  event->recorded = stream->sink;
  pthread_mutex_unlock(&event->lock);
  ferry__sink_release(old);
  return FERRY_OK;
}

/* The first deferred error of the stream the event was recorded on. */
static ferry_status event_deferred(ferry_event *event) {
  pthread_mutex_lock(&event->lock);
  ferry__sink *s = event->recorded;
  if (s)
    ferry__sink_retain(s);
  pthread_mutex_unlock(&event->lock);
  if (s == NULL)
    return FERRY_OK;
  ferry_status st = ferry__sink_take(s);
  ferry__sink_release(s);
  return st;
}

ferry_status ferry_event_synchronize(ferry_event *event) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(event);
  ferry_status st = ferry__context_check(event->ctx);
  if (st != FERRY_OK)
    return st;
  st = event->ctx->be->event_synchronize(event->impl);
  ferry_status deferred = event_deferred(event);
  if (deferred != FERRY_OK)
    return deferred;
  if (st != FERRY_OK)
    return st;
  return ferry__context_check(event->ctx);
}

ferry_status ferry_event_query(ferry_event *event) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(event);
  ferry_status st = ferry__context_check(event->ctx);
  if (st != FERRY_OK)
    return st;
  st = event->ctx->be->event_query(event->impl);
  if (st == FERRY_ERR_NOT_READY)
    return ferry__error(FERRY_ERR_NOT_READY,
                        "ferry_event_query: the captured work is still "
                        "running");
  if (st != FERRY_OK)
    return st;
  return event_deferred(event);
}

ferry_status ferry_event_elapsed_ms(ferry_event *start, ferry_event *end,
                                    double *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(start);
  FERRY_CHECK_NULL(end);
  FERRY_CHECK_NULL(out);
  ferry_status st = same_context(__func__, "end", start->ctx, end->ctx);
  if (st != FERRY_OK)
    return st;
  if (start->ctx->be->event_elapsed_ms == NULL)
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "ferry_event_elapsed_ms: backend '%s' cannot time "
                        "events",
                        start->ctx->plugin->name);
  return start->ctx->be->event_elapsed_ms(start->impl, end->impl, out);
}

ferry_status ferry_event_native_handle(const ferry_event *event, void **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(event);
  FERRY_CHECK_NULL(out);
  if (event->ctx->be->event_native == NULL)
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "ferry_event_native_handle: backend '%s' has no "
                        "native events",
                        event->ctx->plugin->name);
  return event->ctx->be->event_native(event->impl, out);
}
