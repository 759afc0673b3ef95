/* fill: set bytes to a value in stream order. Device memory is set by the
 * device; host memory (pageable, or registered) by the CPU in a host
 * function in stream order, which needs no assumption about what the
 * runtime's memset does with mapped host memory. */
#include "gpu_internal.h"

#include <string.h>

static ferry_status run_fill(ferry_gpu_closure *c, char *msg, size_t n) {
  (void)msg;
  (void)n;
  memset(c->u.fill.dst, c->u.fill.value, (size_t)c->u.fill.size);
  return FERRY_OK;
}

ferry_status ferry_gpu_op_fill(ferry_be_stream *s, const ferry_be_launch *l,
                               const ferry_be_memref *dst, int value,
                               uint64_t size) {
  void *d = ferry_gpu_memref_addr(dst);
  if (d == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_INVALID_ARGUMENT, FERRY_GPU_NAME
                                     " fill: the destination has no address");
  if (value < 0 || value > 255)
    return ferry_gpu_host->set_error(
        FERRY_ERR_OUT_OF_RANGE,
        FERRY_GPU_NAME " fill: value %d is not a byte (0..255)", value);
  if (size == 0)
    return FERRY_OK;
  if (size > SIZE_MAX)
    return ferry_gpu_host->set_error(FERRY_ERR_OUT_OF_RANGE,
                                     FERRY_GPU_NAME
                                     " fill: %llu bytes do not fit a size_t",
                                     (unsigned long long)size);
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "fill", &scope);
  if (st != FERRY_OK)
    return st;
  gpuMemoryKind kind = GPU_MEMORY_PAGEABLE;
  st = ferry_gpu_memref_kind(s->ctx, dst, &kind);
  if (st != FERRY_OK) {
    ferry_gpu_leave(&scope);
    return st;
  }
  if (kind != GPU_MEMORY_DEVICE) {
    ferry_gpu_closure c;
    memset(&c, 0, sizeof c);
    st = ferry_gpu_memref_host(s->ctx, dst, &c.u.fill.dst);
    if (st == FERRY_OK) {
      c.run = run_fill;
      c.op = "fill";
      c.u.fill.value = value;
      c.u.fill.size = size;
      st = ferry_gpu_enqueue_host(s, l, &c);
    }
    ferry_gpu_leave(&scope);
    return st;
  }
  gpuError_t e = gpuMemsetAsync(d, value, (size_t)size, s->stream);
  ferry_gpu_leave(&scope);
  if (e != gpuSuccess)
    return ferry_gpu_fail(s->ctx, e, "fill #%llu: %llu bytes at %p",
                          (unsigned long long)l->seq, (unsigned long long)size,
                          d);
  return FERRY_OK;
}
