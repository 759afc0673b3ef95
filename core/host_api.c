/* The services table handed to every plugin (see ferry_host_api). Plugins call
 * these from any thread, including their own workers. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ferry_status host_set_error(ferry_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ferry__verror(status, fmt, ap);
  va_end(ap);
  return status;
}

static void host_trace(const char *backend, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  ferry__trace(backend, "%s", line);
}

static void *host_alloc(uint64_t size, uint64_t alignment) {
  if (size == 0)
    size = 1;
  if (alignment <= sizeof(void *))
    return malloc((size_t)size);
  void *p = NULL;
  if (posix_memalign(&p, (size_t)alignment, (size_t)size) != 0)
    return NULL;
  return p;
}

static void host_free(void *ptr) {
  free(ptr);
}

static void host_defer_error(void *cookie, uint64_t seq, const char *op,
                             ferry_status status, const char *fmt, ...) {
  ferry__sink *s = cookie;
  if (s == NULL)
    return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&s->lock);
  if (!s->has_error) { /* the first error since the last collection wins */
    s->has_error = true;
    s->status = status;
    s->seq = seq;
    snprintf(s->op, sizeof s->op, "%s", op ? op : "?");
    snprintf(s->message, sizeof s->message, "%s", msg);
  }
  pthread_mutex_unlock(&s->lock);
}

static void host_context_lost(void *cookie, ferry_status status,
                              const char *fmt, ...) {
  ferry_context *ctx = cookie;
  if (ctx == NULL)
    return;
  pthread_mutex_lock(&ctx->lock);
  if (!atomic_load(&ctx->lost)) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->lost_message, sizeof ctx->lost_message, fmt, ap);
    va_end(ap);
    ctx->lost_status = status;
    atomic_store(&ctx->lost, 1);
  }
  pthread_mutex_unlock(&ctx->lock);
}

static void host_stream_released(void *cookie) {
  ferry__sink *s = cookie;
  if (s == NULL)
    return;
  ferry__sink_release(s);
}

static const ferry_host_api host_api = {
    .struct_size = sizeof(ferry_host_api),
    .abi_major = FERRY_BACKEND_ABI_MAJOR,
    .abi_minor = FERRY_BACKEND_ABI_MINOR,
    .set_error = host_set_error,
    .trace = host_trace,
    .alloc = host_alloc,
    .free = host_free,
    .defer_error = host_defer_error,
    .context_lost = host_context_lost,
    .stream_released = host_stream_released,
};

const ferry_host_api *ferry__host_api(void) {
  return &host_api;
}
