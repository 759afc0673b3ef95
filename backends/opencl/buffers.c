/* Buffers: cl_mem objects, for device memory and for registered host memory.
 *
 * Device buffers report no host pointer, even on host-unified devices:
 * OpenCL 1.2 has no mapping that stays valid while commands use the buffer
 * (a mapped region must be unmapped before commands touch it), so the host
 * reaches device memory only through copies. Zero-copy host access is what
 * pinned host memory is for: host_register wraps it with CL_MEM_USE_HOST_PTR.
 *
 * A buffer of 0 bytes is valid in ferry but not in OpenCL: it gets a 1-byte
 * cl_mem, and ferry's size stays 0, so no op ever reaches that byte.
 *
 * Releasing a cl_mem is deferred by OpenCL itself until the commands queued
 * on it have completed, so freeing a device buffer does not wait. */
#include "internal.h"

#include <stdlib.h>

/* More than one allocation may hold: device memory for buffer_alloc (as
 * every backend reports it), a size out of range for host_register. */
static ferry_status too_large(ferry_be_context *ctx, ferry_status status,
                              const char *what, uint64_t size) {
  return ocl_host->set_error(
      status,
      "opencl %s: argument 'size' is %llu bytes, more than the largest single "
      "allocation of device '%s' (CL_DEVICE_MAX_MEM_ALLOC_SIZE %llu bytes, "
      "of %llu in all); split it into several buffers",
      what, (unsigned long long)size, ctx->dev->info.name,
      (unsigned long long)ctx->dev->max_alloc,
      (unsigned long long)ctx->dev->info.total_memory);
}

static ferry_status wrap(ferry_be_context *ctx, cl_mem mem,
                         ferry_be_buffer **out) {
  ferry_be_buffer *b = calloc(1, sizeof *b);
  if (b == NULL) {
    clReleaseMemObject(mem);
    return ocl_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                               "opencl buffer: out of host memory");
  }
  b->mem = mem;
  ocl_context_adopt(ctx, &ctx->buffers, &b->link);
  *out = b;
  return FERRY_OK;
}

ferry_status ocl_buffer_alloc(ferry_be_context *ctx, ferry_memory_space space,
                              uint64_t size, ferry_be_buffer **out,
                              void **host_ptr, void **device_ptr,
                              void **native) {
  if (space != FERRY_MEMORY_DEVICE)
    return ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                               "opencl buffer_alloc: space %d is not device "
                               "memory (host memory is the core's)",
                               (int)space);
  if (size > ctx->dev->max_alloc)
    return too_large(ctx, FERRY_ERR_OUT_OF_DEVICE_MEMORY, "buffer_alloc", size);
  cl_int err = CL_SUCCESS;
  cl_mem mem = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE,
                              size ? (size_t)size : 1u, NULL, &err);
  if (err != CL_SUCCESS)
    return ocl_host->set_error(ocl_status(err),
                               "opencl: %llu bytes of device memory: "
                               "clCreateBuffer: %s (%d)",
                               (unsigned long long)size, ocl_error_name(err),
                               (int)err);
  ferry_status st = wrap(ctx, mem, out);
  if (st != FERRY_OK)
    return st;
  *host_ptr = NULL;
  *device_ptr = NULL;
  *native = mem;
  return FERRY_OK;
}

void ocl_buffer_free(ferry_be_context *ctx, ferry_be_buffer *buf,
                     uint32_t flags) {
  if (buf == NULL)
    return;
  ocl_context_drop(ctx, &buf->link, flags);
  if (!(flags & FERRY_BE_DESTROY_FORKED))
    clReleaseMemObject(buf->mem);
  free(buf);
}

ferry_status ocl_host_register(ferry_be_context *ctx, void *ptr, uint64_t size,
                               ferry_be_buffer **out, void **device_ptr,
                               int *owned) {
  uint32_t align = ctx->dev->info.base_address_align;
  if (align > 1 && (uintptr_t)ptr % align != 0)
    return ocl_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        "opencl host_register: argument 'ptr' (%p) is not aligned to the "
        "%u-byte base address alignment of device '%s' "
        "(CL_DEVICE_MEM_BASE_ADDR_ALIGN), which CL_MEM_USE_HOST_PTR needs",
        ptr, align, ctx->dev->info.name);
  if (size > ctx->dev->max_alloc)
    return too_large(ctx, FERRY_ERR_OUT_OF_RANGE, "host_register", size);
  cl_int err = CL_SUCCESS;
  cl_mem mem = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR,
                              (size_t)size, ptr, &err);
  if (err != CL_SUCCESS)
    return ocl_host->set_error(ocl_status(err),
                               "opencl: registering %llu bytes of host memory "
                               "at %p: clCreateBuffer(CL_MEM_USE_HOST_PTR): %s "
                               "(%d)",
                               (unsigned long long)size, ptr,
                               ocl_error_name(err), (int)err);
  ferry_status st = wrap(ctx, mem, out);
  if (st != FERRY_OK)
    return st;
  *device_ptr = NULL; /* kernels take the cl_mem */
  *owned = 1;         /* OpenCL has no registration shared with others */
  return FERRY_OK;
}

void ocl_host_unregister(ferry_be_context *ctx, ferry_be_buffer *buf, void *ptr,
                         int owned, uint32_t flags) {
  (void)ptr;
  (void)owned;
  if (buf == NULL)
    return;
  /* The caller frees the host memory next: no queued command may still use
   * it, and releasing the cl_mem alone would not wait for them. */
  if (!(flags & FERRY_BE_DESTROY_FORKED))
    ocl_context_synchronize(ctx);
  ocl_buffer_free(ctx, buf, flags);
}
