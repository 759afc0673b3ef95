/* Device memory. Host and pinned host memory is the core's (NUMA-bound,
 * then registered through gpu_register.c). */
#include "gpu_internal.h"

ferry_status ferry_gpu_buffer_alloc(ferry_be_context *ctx,
                                    ferry_memory_space space, uint64_t size,
                                    ferry_be_buffer **out, void **host_ptr,
                                    void **device_ptr, void **native) {
  if (out == NULL || host_ptr == NULL || device_ptr == NULL || native == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER, FERRY_GPU_NAME
                                     " buffer_alloc: an output is NULL");
  if (space != FERRY_MEMORY_DEVICE)
    return ferry_gpu_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        FERRY_GPU_NAME " buffer_alloc: space %d is not device memory (host "
                       "memory is the core's)",
        (int)space);
  if (size == 0) {
    /* An empty buffer owns nothing: no allocation, no handle. */
    *out = NULL;
    *host_ptr = NULL;
    *device_ptr = NULL;
    *native = NULL;
    return FERRY_OK;
  }
  if (size > SIZE_MAX)
    return ferry_gpu_host->set_error(
        FERRY_ERR_OUT_OF_RANGE,
        FERRY_GPU_NAME " buffer_alloc: %llu bytes do not fit a size_t",
        (unsigned long long)size);
  ferry_be_buffer *b = ferry_gpu_host->alloc(sizeof *b, 0);
  if (b == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_OUT_OF_MEMORY, FERRY_GPU_NAME
                                     " buffer_alloc: out of host memory");
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(ctx, "buffer_alloc", &scope);
  if (st != FERRY_OK) {
    ferry_gpu_host->free(b);
    return st;
  }
  void *p = NULL;
  gpuError_t e = gpuMalloc(&p, (size_t)size);
  if (e != gpuSuccess) {
    size_t free_bytes = 0, total = 0;
    if (e == gpuErrorMemoryAllocation &&
        gpuMemGetInfo(&free_bytes, &total) == gpuSuccess)
      st = ferry_gpu_fail(ctx, e,
                          "buffer_alloc: %llu bytes of device memory on "
                          "device %d (%llu of %llu bytes free)",
                          (unsigned long long)size, ctx->device,
                          (unsigned long long)free_bytes,
                          (unsigned long long)total);
    else
      st = ferry_gpu_fail(ctx, e,
                          "buffer_alloc: %llu bytes of device memory on "
                          "device %d",
                          (unsigned long long)size, ctx->device);
    ferry_gpu_leave(&scope);
    ferry_gpu_host->free(b);
    return st;
  }
  ferry_gpu_leave(&scope);
  b->ptr = p;
  b->device = p;
  b->size = size;
  b->chunk = 0;
  b->chunks = 0;
  *out = b;
  *host_ptr = NULL;
  *device_ptr = p;
  *native = NULL;
  return FERRY_OK;
}

void ferry_gpu_buffer_free(ferry_be_context *ctx, ferry_be_buffer *buf,
                           uint32_t flags) {
  if (buf == NULL)
    return;
  if (flags & FERRY_BE_DESTROY_FORKED) {
    /* The device memory belongs to the parent's context: nothing to do
     * here but free our record of it. */
    ferry_gpu_host->free(buf);
    return;
  }
  ferry_gpu_scope scope;
  if (ferry_gpu_enter(ctx, "buffer_free", &scope) == FERRY_OK) {
    /* Queued work may still use the memory: wait for the device first, as
     * the contract asks, rather than rely on cudaFree's implicit wait. A
     * failure here (a lost context) leaves nothing better to do than free
     * anyway. */
    gpuError_t e = gpuDeviceSynchronize();
    if (e != gpuSuccess)
      (void)ferry_gpu_fail(ctx, e, "buffer_free: waiting for the device");
    e = gpuFree(buf->ptr);
    if (e != gpuSuccess)
      (void)ferry_gpu_fail(ctx, e, "buffer_free: %sFree", FERRY_GPU_NAME);
    ferry_gpu_leave(&scope);
  }
  ferry_gpu_host->free(buf);
}
