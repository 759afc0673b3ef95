/* Byte ops on streams: copy, fill and host functions.
 *
 * Device memory is a cl_mem; everything else (plain and pinned host memory,
 * a caller's pointer) is addressed through its host pointer. Copies to and
 * from pinned memory therefore read or write the host memory itself rather
 * than its registered cl_mem, which stays right on drivers that keep a
 * device shadow copy of CL_MEM_USE_HOST_PTR buffers. Work between two host
 * addresses runs as a host task, in stream order. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Where one operand lives: a cl_mem and offset, or a host address. */
typedef struct operand {
  cl_mem mem;
  size_t offset;
  void *host;
} operand;

static ferry_status resolve(const ferry_be_memref *m, const char *arg,
                            const char *op, operand *out) {
  out->mem = NULL;
  out->offset = (size_t)m->offset;
  out->host = NULL;
  if (m->space == FERRY_MEMORY_DEVICE) {
    if (m->buffer == NULL)
      return ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                                 "opencl %s: argument '%s' is device memory "
                                 "without a cl_mem",
                                 op, arg);
    out->mem = m->buffer->mem;
    return FERRY_OK;
  }
  if (m->ptr == NULL)
    return ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                               "opencl %s: argument '%s' is host memory "
                               "without an address",
                               op, arg);
  out->host = (char *)m->ptr + m->offset;
  return FERRY_OK;
}

static ferry_status enqueue_fail(ferry_be_stream *s, const char *what,
                                 cl_int err) {
  if (err == CL_MEM_COPY_OVERLAP)
    return ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                               "opencl copy: the source and destination "
                               "ranges overlap in one buffer (%s)",
                               ocl_error_name(err));
  if (ocl_error_is_fatal(err))
    ocl_host->context_lost(s->ctx->cookie, FERRY_ERR_CONTEXT_LOST,
                           "%s: %s (%d)", what, ocl_error_name(err), (int)err);
  return ocl_fail(what, err);
}

static ferry_status host_task(ferry_be_stream *s, const ferry_be_launch *l,
                              ocl_task *proto) {
  ocl_task *t = malloc(sizeof *t);
  if (t == NULL)
    return ocl_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                               "opencl %s: out of host memory", l->op);
  *t = *proto;
  t->next = NULL;
  t->seq = l->seq;
  memset(t->op, 0, sizeof t->op);
  strncpy(t->op, l->op ? l->op : "?", sizeof t->op - 1);
  ferry_status st = ocl_stream_host_task(s, t);
  if (st != FERRY_OK)
    free(t);
  return st;
}

ferry_status ocl_op_copy(ferry_be_stream *s, const ferry_be_launch *l,
                         const ferry_be_memref *dst, const ferry_be_memref *src,
                         uint64_t size) {
  operand d, f;
  ferry_status st = resolve(dst, "dst", l->op, &d);
  if (st == FERRY_OK)
    st = resolve(src, "src", l->op, &f);
  if (st != FERRY_OK)
    return st;
  if (d.host && f.host) {
    ocl_task proto;
    memset(&proto, 0, sizeof proto);
    proto.kind = OCL_TASK_COPY;
    proto.dst = d.host;
    proto.src = f.host;
    proto.size = size;
    return host_task(s, l, &proto);
  }
  ocl_watch *w = NULL;
  st = ocl_watch_new(s, l, &w);
  if (st != FERRY_OK)
    return st;
  cl_event ev = NULL;
  cl_int err;
  const char *what;
  if (d.mem && f.mem) {
    what = "clEnqueueCopyBuffer";
    err = clEnqueueCopyBuffer(s->queue, f.mem, d.mem, f.offset, d.offset,
                              (size_t)size, 0, NULL, &ev);
  } else if (d.mem) {
    what = "clEnqueueWriteBuffer";
    err = clEnqueueWriteBuffer(s->queue, d.mem, CL_FALSE, d.offset,
                               (size_t)size, f.host, 0, NULL, &ev);
  } else {
    what = "clEnqueueReadBuffer";
    err = clEnqueueReadBuffer(s->queue, f.mem, CL_FALSE, f.offset, (size_t)size,
                              d.host, 0, NULL, &ev);
  }
  if (err != CL_SUCCESS) {
    ocl_watch_cancel(w);
    return enqueue_fail(s, what, err);
  }
  ocl_watch_start(w, ev);
  return FERRY_OK;
}

ferry_status ocl_op_fill(ferry_be_stream *s, const ferry_be_launch *l,
                         const ferry_be_memref *dst, int value, uint64_t size) {
  operand d;
  ferry_status st = resolve(dst, "dst", l->op, &d);
  if (st != FERRY_OK)
    return st;
  if (d.host) {
    ocl_task proto;
    memset(&proto, 0, sizeof proto);
    proto.kind = OCL_TASK_FILL;
    proto.dst = d.host;
    proto.value = value;
    proto.size = size;
    return host_task(s, l, &proto);
  }
  ocl_watch *w = NULL;
  st = ocl_watch_new(s, l, &w);
  if (st != FERRY_OK)
    return st;
  cl_uchar pattern = (cl_uchar)value;
  cl_event ev = NULL;
  cl_int err = clEnqueueFillBuffer(s->queue, d.mem, &pattern, 1, d.offset,
                                   (size_t)size, 0, NULL, &ev);
  if (err != CL_SUCCESS) {
    ocl_watch_cancel(w);
    return enqueue_fail(s, "clEnqueueFillBuffer", err);
  }
  ocl_watch_start(w, ev);
  return FERRY_OK;
}

ferry_status ocl_op_host_fn(ferry_be_stream *s, const ferry_be_launch *l,
                            ferry_host_fn fn, void *user) {
  ocl_task proto;
  memset(&proto, 0, sizeof proto);
  proto.kind = OCL_TASK_HOST_FN;
  proto.fn = fn;
  proto.user = user;
  return host_task(s, l, &proto);
}
