/* Device memory of the cpu backend: host memory, 128-byte aligned so that it
 * meets the same base alignment every backend reports. */
#include "cpu_internal.h"

#define CPU_BUFFER_ALIGN 128

struct ferry_be_buffer {
  void *ptr;
  uint64_t size;
};

ferry_status ferry_cpu_buffer_alloc(ferry_be_context *ctx,
                                    ferry_memory_space space, uint64_t size,
                                    ferry_be_buffer **out, void **host_ptr,
                                    void **device_ptr, void **native) {
  (void)ctx;
  if (out == NULL || host_ptr == NULL || device_ptr == NULL || native == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_NULL_POINTER,
                                     "cpu buffer_alloc: an output is NULL");
  if (space != FERRY_MEMORY_DEVICE)
    return ferry_cpu_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        "cpu buffer_alloc: space %d is not FERRY_MEMORY_DEVICE (host memory "
        "is the core's to allocate)",
        (int)space);
  ferry_be_buffer *buf = ferry_cpu_host->alloc(sizeof *buf, 0);
  /* An empty buffer still gets a distinct, valid address, as malloc(0) may:
   * callers can pass it on without special cases. */
  void *ptr = ferry_cpu_host->alloc(size > 0 ? size : 1, CPU_BUFFER_ALIGN);
  if (buf == NULL || ptr == NULL) {
    ferry_cpu_host->free(buf);
    ferry_cpu_host->free(ptr);
    return ferry_cpu_host->set_error(
        FERRY_ERR_OUT_OF_DEVICE_MEMORY,
        "cpu buffer_alloc: cannot allocate %llu bytes of cpu device memory "
        "(host RAM)",
        (unsigned long long)size);
  }
  buf->ptr = ptr;
  buf->size = size;
  *out = buf;
  *host_ptr = ptr;
  *device_ptr = ptr;
  *native = NULL;
  return FERRY_OK;
}

void ferry_cpu_buffer_free(ferry_be_context *ctx, ferry_be_buffer *buf,
                           uint32_t flags) {
  if (buf == NULL)
    return;
  /* Like cudaFree: work already queued may still read or write it, so this
   * blocks until the context's streams have run what they hold now. Called
   * from a host function, it skips that function's own stream (whose later
   * work it cannot wait for), but it deadlocks if another stream waits on
   * work queued after the host function: as with cudaFree, do not free from
   * host functions. In a fork()ed child no queued work can run any more. */
  if (!(flags & FERRY_BE_DESTROY_FORKED) && ctx != NULL)
    ferry_cpu_context_drain(ctx);
  ferry_cpu_host->free(buf->ptr);
  ferry_cpu_host->free(buf);
}
