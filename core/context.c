/* Contexts: a backend, one of its devices, and the worker pool's placement. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ferry_status ferry__context_check(const ferry_context *ctx) {
  if (atomic_load(&ctx->lost))
    return ferry__error(ctx->lost_status,
                        "the context was lost after a device fault: %s "
                        "(destroy it)",
                        ctx->lost_message);
  return FERRY_OK;
}

ferry_status ferry_context_create(const ferry_context_options *opts,
                                  ferry_context **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(out);
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  if (opts != NULL) {
    /* Read only what the caller's struct_size covers. */
    if (opts->struct_size <
            offsetof(ferry_context_options, backend) + sizeof(const char *) ||
        opts->struct_size > sizeof(ferry_context_options) * 4)
      return ferry__error(FERRY_ERR_STRUCT_SIZE,
                          "ferry_context_create: opts->struct_size is %zu; "
                          "initialise the options with "
                          "FERRY_CONTEXT_OPTIONS_INIT (size %zu)",
                          opts->struct_size, sizeof(ferry_context_options));
    size_t n = opts->struct_size < sizeof o ? opts->struct_size : sizeof o;
    memcpy(&o, opts, n);
    o.struct_size = sizeof o;
  }
  if (o.device_index < -1)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_context_create: opts->device_index is %d; use "
                        "-1 to let ferry choose, or a device index >= 0",
                        o.device_index);
  if (o.num_threads < 0 || o.num_threads > 4096)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_context_create: opts->num_threads is %d; use 0 "
                        "for the default or 1..4096",
                        o.num_threads);

  ferry_context *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_context_create: out of host memory");
  ferry_status st = ferry__choose(o.backend, o.device_index, &ctx->choice);
  if (st != FERRY_OK) {
    free(ctx);
    return st;
  }
  ctx->plugin = ctx->choice.plugin;
  ctx->be = ctx->plugin->be;
  ctx->device = ctx->choice.device;
  st = ferry__plugin_device_info(ctx->plugin, ctx->device, &ctx->device_info);
  if (st != FERRY_OK) {
    free(ctx);
    return st;
  }
  pthread_mutex_init(&ctx->lock, NULL);
  atomic_init(&ctx->lost, 0);

  ferry_be_context_params params;
  memset(&params, 0, sizeof params);
  params.struct_size = sizeof params;
  params.device_index = ctx->device;
  params.num_threads = o.num_threads;
  params.cpuset = ctx->choice.cpuset;
  params.context_cookie = ctx;
  ferry__clear_error();
  st = ctx->be->context_create(&params, &ctx->impl);
  if (st != FERRY_OK) {
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
    return st;
  }
  ctx->num_threads = ctx->be->context_num_threads
                         ? ctx->be->context_num_threads(ctx->impl)
                         : 0;
  ferry__trace("context", "created on backend %s, device %d (%s)",
               ctx->plugin->name, ctx->device, ctx->device_info.name);
  *out = ctx;
  return FERRY_OK;
}

#define LIST_ADD(head, node)                                                   \
  do {                                                                         \
    (node)->prev = NULL;                                                       \
    (node)->next = (head);                                                     \
    if (head)                                                                  \
      (head)->prev = (node);                                                   \
    (head) = (node);                                                           \
  } while (0)
#define LIST_REMOVE(head, node)                                                \
  do {                                                                         \
    if ((node)->prev)                                                          \
      (node)->prev->next = (node)->next;                                       \
    else                                                                       \
      (head) = (node)->next;                                                   \
    if ((node)->next)                                                          \
      (node)->next->prev = (node)->prev;                                       \
  } while (0)

void ferry__context_add_stream(ferry_context *ctx, ferry_stream *s) {
  pthread_mutex_lock(&ctx->lock);
  LIST_ADD(ctx->streams, s);
  pthread_mutex_unlock(&ctx->lock);
}

void ferry__context_remove_stream(ferry_context *ctx, ferry_stream *s) {
  /* A forked child has one thread, and the lock may have been held by
   * another thread of the parent at fork time: never take it there. */
  bool forked = ferry__forked();
  if (!forked)
    pthread_mutex_lock(&ctx->lock);
  LIST_REMOVE(ctx->streams, s);
  if (!forked)
    pthread_mutex_unlock(&ctx->lock);
}

void ferry__context_add_event(ferry_context *ctx, ferry_event *e) {
  pthread_mutex_lock(&ctx->lock);
  LIST_ADD(ctx->events, e);
  pthread_mutex_unlock(&ctx->lock);
}

void ferry__context_remove_event(ferry_context *ctx, ferry_event *e) {
  /* A forked child has one thread, and the lock may have been held by
   * another thread of the parent at fork time: never take it there. */
  bool forked = ferry__forked();
  if (!forked)
    pthread_mutex_lock(&ctx->lock);
  LIST_REMOVE(ctx->events, e);
  if (!forked)
    pthread_mutex_unlock(&ctx->lock);
}

void ferry_context_destroy(ferry_context *ctx) {
  if (ctx == NULL)
    return;
  ferry__clear_error();
  bool forked = ferry__forked();
  uint32_t flags = forked ? FERRY_BE_DESTROY_FORKED : 0;
  /* Streams and events the caller left alive go first, through their
   * backend, as if destroyed in order; then the backend waits for all work
   * and frees itself. */
  while (ctx->events) {
    ferry_event *e = ctx->events;
    ctx->events = e->next;
    ctx->be->event_destroy(e->impl, flags);
    ferry__event_free(e, forked);
  }
  while (ctx->streams) {
    ferry_stream *s = ctx->streams;
    ctx->streams = s->next;
    ctx->be->stream_destroy(s->impl, flags);
    ferry__stream_free(s, forked);
  }
  ctx->be->context_destroy(ctx->impl, flags);
  if (!forked)
    pthread_mutex_destroy(&ctx->lock);
  free(ctx);
}

ferry_status ferry_context_get_info(const ferry_context *ctx,
                                    ferry_context_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(out);
  if (out->struct_size < offsetof(ferry_context_info, lost) + sizeof(int))
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "ferry_context_get_info: out->struct_size is %zu; use "
                        "FERRY_CONTEXT_INFO_INIT",
                        out->struct_size);
  ferry_context_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  snprintf(info.backend, sizeof info.backend, "%s", ctx->plugin->name);
  info.device_index = ctx->device;
  info.device = ctx->device_info;
  info.num_threads = ctx->num_threads;
  info.lost = atomic_load(&ctx->lost);
  snprintf(info.cpuset, sizeof info.cpuset, "%s", ctx->choice.cpuset);
  snprintf(info.numa_nodes, sizeof info.numa_nodes, "%s", ctx->choice.nodeset);
  size_t n = out->struct_size < sizeof info ? out->struct_size : sizeof info;
  memcpy(out, &info, n);
  out->struct_size = n;
  return FERRY_OK;
}

ferry_status ferry_context_synchronize(ferry_context *ctx) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  ferry_status st = ferry__context_check(ctx);
  if (st != FERRY_OK)
    return st;
  if (ctx->be->context_synchronize) {
    st = ctx->be->context_synchronize(ctx->impl);
    if (st != FERRY_OK)
      return st;
  }
  pthread_mutex_lock(&ctx->lock);
  bool has = ctx->orphan_has_error;
  ctx->orphan_has_error = false;
  pthread_mutex_unlock(&ctx->lock);
  if (has)
    return ferry__error_deferred(ctx->orphan_status, ctx->orphan_op,
                                 ctx->orphan_seq, ctx->orphan_message);
  return ferry__context_check(ctx);
}
