/* copy: bytes between any two of device memory, registered (pinned) host
 * memory and pageable host memory, in stream order.
 *
 * Copies that touch device (or managed) memory go to the runtime's async
 * copy, which is ordered on the stream for device and registered memory,
 * but not for a pageable source: that is read (staged) while the call runs,
 * before the stream's earlier work, so a source that earlier work writes (a
 * host function, a host-side fill) would be read stale. Such a copy first
 * waits for the stream. Copies between two host operands are done by the
 * CPU in stream order (a host function): the runtime does not promise to
 * order host-to-host copies after the stream's earlier work. */
#include "gpu_internal.h"

#include <string.h>

static ferry_status run_copy(ferry_gpu_closure *c, char *msg, size_t n) {
  (void)msg;
  (void)n;
  memmove(c->u.copy.dst, c->u.copy.src, (size_t)c->u.copy.size);
  return FERRY_OK;
}

static ferry_status host_copy(ferry_be_stream *s, const ferry_be_launch *l,
                              const ferry_be_memref *dst,
                              const ferry_be_memref *src, uint64_t size) {
  ferry_gpu_closure c;
  memset(&c, 0, sizeof c);
  void *d = NULL, *from = NULL;
  ferry_status st = ferry_gpu_memref_host(s->ctx, dst, &d);
  if (st == FERRY_OK)
    st = ferry_gpu_memref_host(s->ctx, src, &from);
  if (st != FERRY_OK)
    return st;
  c.run = run_copy;
  c.op = "copy";
  c.u.copy.dst = d;
  c.u.copy.src = from;
  c.u.copy.size = size;
  return ferry_gpu_enqueue_host(s, l, &c);
}

ferry_status ferry_gpu_op_copy(ferry_be_stream *s, const ferry_be_launch *l,
                               const ferry_be_memref *dst,
                               const ferry_be_memref *src, uint64_t size) {
  void *d = ferry_gpu_memref_addr(dst);
  const void *from = ferry_gpu_memref_addr(src);
  if (d == NULL || from == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_INVALID_ARGUMENT, FERRY_GPU_NAME
                                     " copy: an operand has no address");
  if (size == 0)
    return FERRY_OK;
  if (size > SIZE_MAX)
    return ferry_gpu_host->set_error(FERRY_ERR_OUT_OF_RANGE,
                                     FERRY_GPU_NAME
                                     " copy: %llu bytes do not fit a size_t",
                                     (unsigned long long)size);
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "copy", &scope);
  if (st != FERRY_OK)
    return st;
  gpuMemoryKind dk = GPU_MEMORY_PAGEABLE, sk = GPU_MEMORY_PAGEABLE;
  st = ferry_gpu_memref_kind(s->ctx, dst, &dk);
  if (st == FERRY_OK)
    st = ferry_gpu_memref_kind(s->ctx, src, &sk);
  if (st != FERRY_OK) {
    ferry_gpu_leave(&scope);
    return st;
  }
  if (dk != GPU_MEMORY_DEVICE && sk != GPU_MEMORY_DEVICE) {
    st = host_copy(s, l, dst, src, size);
    ferry_gpu_leave(&scope);
    return st;
  }
  gpuError_t e = gpuSuccess;
  if (sk == GPU_MEMORY_PAGEABLE)
    e = gpuStreamSynchronize(s->stream);
  if (e == gpuSuccess)
    e = gpuMemcpyAsync(d, from, (size_t)size, gpuMemcpyDefault, s->stream);
  ferry_gpu_leave(&scope);
  if (e != gpuSuccess)
    return ferry_gpu_fail(s->ctx, e, "copy #%llu: %llu bytes from %p to %p",
                          (unsigned long long)l->seq, (unsigned long long)size,
                          from, d);
  return FERRY_OK;
}
