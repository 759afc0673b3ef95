/* Buffers: device memory from the backend, host and pinned host memory from
 * the core (NUMA-bound, then registered with the backend), and byte copies
 * between them on streams. */
#include "host_memory.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *space_name(ferry_memory_space s) {
  switch (s) {
  case FERRY_MEMORY_HOST:
    return "host";
  case FERRY_MEMORY_PINNED_HOST:
    return "pinned host";
  case FERRY_MEMORY_DEVICE:
    return "device";
  }
  return "unknown";
}

static ferry_buffer *buffer_new(ferry_context *ctx, ferry_memory_space space,
                                uint64_t size) {
  ferry_buffer *b = calloc(1, sizeof *b);
  if (b == NULL)
    return NULL;
  b->ctx = ctx;
  b->space = space;
  b->size = size;
  atomic_init(&b->refs, 1);
  return b;
}

/* Register [ptr, ptr+size) with the backend when it has the slot. */
static ferry_status buffer_register(ferry_buffer *b, void *ptr, uint64_t size) {
  const ferry_backend *be = b->ctx->be;
  if (be->host_register == NULL || size == 0) {
    /* The device reads host memory as it is (cpu), or there is nothing to
     * register: registering 0 bytes fails on every driver. */
    b->device_ptr = be->host_register == NULL ? ptr : NULL;
    return FERRY_OK;
  }
  ferry__clear_error();
  ferry_status st = be->host_register(b->ctx->impl, ptr, size, &b->impl,
                                      &b->device_ptr, &b->reg_owned);
  if (st == FERRY_OK)
    b->registered = true;
  else if (ferry_last_error()[0] == '\0')
    ferry__error(st,
                 "host registration: backend %s could not register %llu bytes "
                 "at %p",
                 b->ctx->plugin->name, (unsigned long long)size, ptr);
  return st;
}

static ferry_status buffer_create_host(ferry_context *ctx,
                                       ferry_memory_space space, uint64_t size,
                                       ferry_buffer **out) {
  ferry_buffer *b = buffer_new(ctx, space, size);
  ferry__host_mem *m = b ? calloc(1, sizeof *m) : NULL;
  if (m == NULL) {
    free(b);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_buffer_create: out of host memory");
  }
  ferry_status st = ferry__host_alloc(ctx, size, m);
  if (st != FERRY_OK) {
    free(m);
    free(b);
    return st;
  }
  b->host_mem = m;
  b->host_ptr = m->ptr;
  if (space == FERRY_MEMORY_PINNED_HOST) {
    st = buffer_register(b, m->ptr, size);
    if (st != FERRY_OK) {
      ferry__host_free(m);
      free(m);
      free(b);
      return st;
    }
  } else {
    /* Plain host memory: kernels of host-unified backends may read it. */
    b->device_ptr =
        (ctx->be->flags & FERRY_BACKEND_FLAG_HOST_UNIFIED) ? m->ptr : NULL;
  }
  *out = b;
  return FERRY_OK;
}

ferry_status ferry_buffer_create(ferry_context *ctx, ferry_memory_space space,
                                 uint64_t size, ferry_buffer **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(out);
  if (space != FERRY_MEMORY_HOST && space != FERRY_MEMORY_PINNED_HOST &&
      space != FERRY_MEMORY_DEVICE)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "ferry_buffer_create: argument 'space' is %d, not a "
                        "ferry_memory_space",
                        (int)space);
  /* Sizes past 2^62 are never satisfiable and overflow alignment math. */
  if (size > (UINT64_C(1) << 62))
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_buffer_create: argument 'size' is %llu bytes, "
                        "more than any machine has",
                        (unsigned long long)size);
  ferry_status st = ferry__context_check(ctx);
  if (st != FERRY_OK)
    return st;
  if (space != FERRY_MEMORY_DEVICE)
    return buffer_create_host(ctx, space, size, out);

  ferry_buffer *b = buffer_new(ctx, space, size);
  if (b == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_buffer_create: out of host memory");
  ferry__clear_error();
  st = ctx->be->buffer_alloc(ctx->impl, space, size, &b->impl, &b->host_ptr,
                             &b->device_ptr, &b->native);
  if (st != FERRY_OK) {
    free(b);
    if (ferry_last_error()[0] == '\0')
      ferry__error(st, "ferry_buffer_create: %llu bytes of device memory",
                   (unsigned long long)size);
    return st;
  }
  *out = b;
  return FERRY_OK;
}

ferry_status ferry__buffer_foreign(ferry_context *ctx, ferry_memory_space space,
                                   void *host_ptr, void *device_ptr,
                                   uint64_t size, void (*release)(void *),
                                   void *release_arg, ferry_buffer **out) {
  ferry_buffer *b = buffer_new(ctx, space, size);
  if (b == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "buffer: out of host memory");
  b->host_ptr = host_ptr;
  b->device_ptr = device_ptr;
  if (space != FERRY_MEMORY_DEVICE && host_ptr != NULL) {
    ferry_status st = space == FERRY_MEMORY_PINNED_HOST
                          ? buffer_register(b, host_ptr, size)
                          : FERRY_OK;
    if (st != FERRY_OK) {
      free(b);
      return st;
    }
    if (space == FERRY_MEMORY_HOST &&
        (ctx->be->flags & FERRY_BACKEND_FLAG_HOST_UNIFIED))
      b->device_ptr = host_ptr;
  }
  b->release = release;
  b->release_arg = release_arg;
  *out = b;
  return FERRY_OK;
}

ferry_status ferry_buffer_wrap_host(ferry_context *ctx, void *ptr,
                                    uint64_t size, ferry_buffer **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(ptr);
  FERRY_CHECK_NULL(out);
  ferry_status st = ferry__context_check(ctx);
  if (st != FERRY_OK)
    return st;
  return ferry__buffer_foreign(ctx, FERRY_MEMORY_PINNED_HOST, ptr, NULL, size,
                               NULL, NULL, out);
}

void ferry__buffer_retain(ferry_buffer *b) {
  atomic_fetch_add(&b->refs, 1);
}

void ferry_buffer_destroy(ferry_buffer *buf) {
  if (buf == NULL || atomic_fetch_sub(&buf->refs, 1) != 1)
    return;
  ferry__clear_error();
  ferry_context *ctx = buf->ctx;
  const ferry_backend *be = ctx->be;
  bool forked = ferry__forked();
  uint32_t flags = forked ? FERRY_BE_DESTROY_FORKED : 0;
  if (buf->space == FERRY_MEMORY_DEVICE && buf->impl) {
    be->buffer_free(ctx->impl, buf->impl, flags);
  } else {
    /* Queued work may still read or write this memory: like cudaFree, wait
     * for the context first (a device in a forked child is unreachable). */
    if (!forked && be->context_synchronize)
      be->context_synchronize(ctx->impl);
    if (buf->registered && be->host_unregister)
      be->host_unregister(ctx->impl, buf->impl, buf->host_ptr, buf->reg_owned,
                          flags);
  }
  if (buf->host_mem) {
    ferry__host_free(buf->host_mem);
    free(buf->host_mem);
  }
  if (buf->release && !forked)
    buf->release(buf->release_arg);
  free(buf);
  ferry__clear_error();
}

ferry_status ferry_buffer_get_info(const ferry_buffer *buf,
                                   ferry_buffer_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(buf);
  FERRY_CHECK_NULL(out);
  if (out->struct_size < sizeof(ferry_buffer_info))
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "ferry_buffer_get_info: out->struct_size is %zu; use "
                        "FERRY_BUFFER_INFO_INIT",
                        out->struct_size);
  ferry_buffer_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.space = buf->space;
  info.size = buf->size;
  snprintf(info.backend, sizeof info.backend, "%s", buf->ctx->plugin->name);
  info.device_index = buf->ctx->device;
  info.host_pointer = buf->host_ptr;
  info.device_pointer = buf->device_ptr;
  info.native_handle = buf->native;
  if (buf->host_mem) {
    const ferry__host_mem *m = buf->host_mem;
    info.numa_bound = m->bound;
    snprintf(info.numa_nodes, sizeof info.numa_nodes, "%s", m->nodeset);
  }
  *out = info;
  return FERRY_OK;
}

ferry_status ferry__buffer_memref(ferry_context *ctx, const char *arg,
                                  const ferry_buffer *buf, uint64_t offset,
                                  uint64_t size, ferry_be_memref *out) {
  if (buf == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER, "argument '%s' is NULL", arg);
  if (buf->ctx != ctx)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "argument '%s' is a buffer of another context", arg);
  if (offset > buf->size || size > buf->size - offset)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "argument '%s': bytes [%llu, %llu + %llu) lie outside "
                        "the %s buffer of %llu bytes",
                        arg, (unsigned long long)offset,
                        (unsigned long long)offset, (unsigned long long)size,
                        space_name(buf->space), (unsigned long long)buf->size);
  out->buffer = buf->impl;
  out->ptr = buf->device_ptr ? buf->device_ptr : buf->host_ptr;
  out->offset = offset;
  out->space = buf->space;
  return FERRY_OK;
}

static ferry_status stream_arg(ferry_stream *stream, const char *func) {
  if (stream == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER, "%s: argument 'stream' is NULL",
                        func);
  return FERRY_OK;
}

static ferry_status run_copy(ferry_stream *stream, const char *func,
                             const ferry_be_memref *dst,
                             const ferry_be_memref *src, uint64_t size) {
  const ferry_backend *be = stream->ctx->be;
  if (be->op_copy == NULL)
    return ferry__error(FERRY_ERR_UNSUPPORTED, "%s: backend '%s' lacks copy",
                        func, stream->ctx->plugin->name);
  if (size == 0)
    return FERRY_OK;
  ferry_be_launch l;
  ferry_status st = ferry__stream_launch(stream, "copy", &l);
  if (st != FERRY_OK)
    return st;
  ferry__clear_error();
  return be->op_copy(stream->impl, &l, dst, src, size);
}

#define PREFIX_ERROR(func)                                                     \
  do {                                                                         \
    char m_[1024];                                                             \
    snprintf(m_, sizeof m_, "%s", ferry_last_error());                         \
    return ferry__error(st, "%s: %s", func, m_);                               \
  } while (0)

ferry_status ferry_buffer_copy_async(ferry_stream *stream, ferry_buffer *dst,
                                     uint64_t dst_offset,
                                     const ferry_buffer *src,
                                     uint64_t src_offset, uint64_t size) {
  FERRY_ENTER();
  ferry_status st = stream_arg(stream, __func__);
  if (st != FERRY_OK)
    return st;
  ferry_be_memref d, s;
  st = ferry__buffer_memref(stream->ctx, "dst", dst, dst_offset, size, &d);
  if (st == FERRY_OK)
    st = ferry__buffer_memref(stream->ctx, "src", src, src_offset, size, &s);
  if (st != FERRY_OK)
    PREFIX_ERROR(__func__);
  return run_copy(stream, __func__, &d, &s, size);
}

ferry_status ferry_buffer_write_async(ferry_stream *stream, ferry_buffer *dst,
                                      uint64_t dst_offset, const void *src,
                                      uint64_t size) {
  FERRY_ENTER();
  ferry_status st = stream_arg(stream, __func__);
  if (st != FERRY_OK)
    return st;
  if (src == NULL && size > 0)
    return ferry__error(FERRY_ERR_NULL_POINTER, "%s: argument 'src' is NULL",
                        __func__);
  ferry_be_memref d;
  st = ferry__buffer_memref(stream->ctx, "dst", dst, dst_offset, size, &d);
  if (st != FERRY_OK)
    PREFIX_ERROR(__func__);
  ferry_be_memref s = {NULL, (void *)src, 0, FERRY_MEMORY_HOST};
  return run_copy(stream, __func__, &d, &s, size);
}

ferry_status ferry_buffer_read_async(ferry_stream *stream,
                                     const ferry_buffer *src,
                                     uint64_t src_offset, void *dst,
                                     uint64_t size) {
  FERRY_ENTER();
  ferry_status st = stream_arg(stream, __func__);
  if (st != FERRY_OK)
    return st;
  if (dst == NULL && size > 0)
    return ferry__error(FERRY_ERR_NULL_POINTER, "%s: argument 'dst' is NULL",
                        __func__);
  ferry_be_memref s;
  st = ferry__buffer_memref(stream->ctx, "src", src, src_offset, size, &s);
  if (st != FERRY_OK)
    PREFIX_ERROR(__func__);
  ferry_be_memref d = {NULL, dst, 0, FERRY_MEMORY_HOST};
  return run_copy(stream, __func__, &d, &s, size);
}

ferry_status ferry_buffer_fill_async(ferry_stream *stream, ferry_buffer *dst,
                                     uint64_t dst_offset, int value,
                                     uint64_t size) {
  FERRY_ENTER();
  ferry_status st = stream_arg(stream, __func__);
  if (st != FERRY_OK)
    return st;
  if (value < 0 || value > 255)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "%s: argument 'value' is %d, not a byte (0..255)",
                        __func__, value);
  ferry_be_memref d;
  st = ferry__buffer_memref(stream->ctx, "dst", dst, dst_offset, size, &d);
  if (st != FERRY_OK)
    PREFIX_ERROR(__func__);
  const ferry_backend *be = stream->ctx->be;
  if (be->op_fill == NULL)
    return ferry__error(FERRY_ERR_UNSUPPORTED, "%s: backend '%s' lacks fill",
                        __func__, stream->ctx->plugin->name);
  if (size == 0)
    return FERRY_OK;
  ferry_be_launch l;
  st = ferry__stream_launch(stream, "fill", &l);
  if (st != FERRY_OK)
    return st;
  ferry__clear_error();
  return be->op_fill(stream->impl, &l, &d, value, size);
}
