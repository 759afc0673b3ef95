/* Where operands live, as far as the device and the host are concerned. */
#include "gpu_internal.h"

/* The core marks caller pointers and plain host buffers FERRY_MEMORY_HOST,
 * but a caller's pointer may be pinned already (a framework's pinned
 * tensor) or even device memory: the runtime is asked. */
ferry_status ferry_gpu_memref_kind(ferry_be_context *ctx,
                                   const ferry_be_memref *m,
                                   gpuMemoryKind *kind) {
  if (m->space == FERRY_MEMORY_DEVICE) {
    *kind = GPU_MEMORY_DEVICE;
    return FERRY_OK;
  }
  if (m->space == FERRY_MEMORY_PINNED_HOST) {
    *kind = GPU_MEMORY_REGISTERED;
    return FERRY_OK;
  }
  void *device_ptr = NULL, *host_ptr = NULL;
  gpuError_t e =
      gpuPointerInfo(ferry_gpu_memref_addr(m), kind, &device_ptr, &host_ptr);
  if (e != gpuSuccess)
    return ferry_gpu_fail(ctx, e, "describing host pointer %p",
                          ferry_gpu_memref_addr(m));
  return FERRY_OK;
}

/* A registered operand's memref holds the device address, which HIP need
 * not map at the host address: translate through ferry's own registration
 * where the buffer is one, else ask the runtime. */
ferry_status ferry_gpu_memref_host(ferry_be_context *ctx,
                                   const ferry_be_memref *m, void **out) {
  char *addr = ferry_gpu_memref_addr(m);
  if (m->space == FERRY_MEMORY_HOST) {
    *out = addr;
    return FERRY_OK;
  }
  const ferry_be_buffer *b = m->buffer;
  if (b != NULL && b->device != NULL) {
    *out = (char *)b->ptr + (addr - (char *)b->device);
    return FERRY_OK;
  }
  gpuMemoryKind kind = GPU_MEMORY_PAGEABLE;
  void *device_ptr = NULL, *host_ptr = NULL;
  gpuError_t e = gpuPointerInfo(addr, &kind, &device_ptr, &host_ptr);
  if (e != gpuSuccess)
    return ferry_gpu_fail(ctx, e, "describing pinned pointer %p", addr);
  if (host_ptr == NULL)
    return ferry_gpu_host->set_error(
        FERRY_ERR_INTERNAL,
        FERRY_GPU_NAME " pinned memory at device address %p has no host "
                       "address the runtime knows",
        addr);
  *out = host_ptr;
  return FERRY_OK;
}
