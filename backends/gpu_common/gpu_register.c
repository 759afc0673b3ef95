/* Registering host memory for device access: page-locked and mapped, so
 * that kernels read it in place (the zero-copy feature table) and copies
 * from it are asynchronous DMA.
 *
 * One call covers the whole range where the driver allows. Drivers refuse
 * very large single registrations (≥ 512 GiB on recent ones), so when the
 * whole range fails for lack of memory or as an invalid size, it is
 * registered in chunks instead, and the chunks are only accepted if their
 * device addresses form one contiguous range (kernels index the table by
 * one base address); otherwise registration fails and says so.
 * FERRY_GPU_REGISTER_CHUNK=<bytes> forces chunks of that size, so that the
 * chunked path can be tested on machines too small to need it.
 *
 * Memory someone else registered (a framework's pinned tensor) is used as
 * it is, and left registered when ferry is done with it. */
#include "gpu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Chunk size when a single registration fails: well below any driver's
 * limit, and large enough that a terabyte takes a few dozen calls. */
#define DEFAULT_CHUNK (UINT64_C(64) << 30)

static const unsigned register_flags =
    gpuHostRegisterMapped | gpuHostRegisterPortable;

static uint64_t page_size(void) {
  long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? (uint64_t)p : 4096u;
}

/* The forced chunk size, 0 when none (rounded up to whole pages). */
static uint64_t forced_chunk(void) {
  const char *s = secure_getenv("FERRY_GPU_REGISTER_CHUNK");
  if (s == NULL || *s == '\0')
    return 0;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || *end != '\0' || v == 0)
    return 0;
  uint64_t page = page_size();
  return (v + page - 1) / page * page;
}

/* Memory already registered by someone else: accept it when the runtime
 * maps all of [ptr, ptr+size) to one contiguous device range (checked at
 * both ends: the runtime reports no allocation extents for host memory). */
static ferry_status use_foreign(ferry_be_context *ctx, void *ptr, uint64_t size,
                                void **device_ptr) {
  gpuMemoryKind k_first = GPU_MEMORY_PAGEABLE, k_last = GPU_MEMORY_PAGEABLE;
  void *d_first = NULL, *d_last = NULL, *h = NULL;
  const char *last = (const char *)ptr + (size - 1);
  gpuError_t e = gpuPointerInfo(ptr, &k_first, &d_first, &h);
  if (e == gpuSuccess)
    e = gpuPointerInfo(last, &k_last, &d_last, &h);
  if (e != gpuSuccess)
    return ferry_gpu_fail(ctx, e,
                          "host_register: the runtime says [%p, +%llu) is "
                          "already registered, but cannot describe it",
                          ptr, (unsigned long long)size);
  if (k_first != GPU_MEMORY_REGISTERED || k_last != GPU_MEMORY_REGISTERED ||
      d_first == NULL || d_last == NULL ||
      (uint64_t)((const char *)d_last - (const char *)d_first) != size - 1)
    return ferry_gpu_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        FERRY_GPU_NAME " host_register: [%p, +%llu bytes) overlaps host "
                       "memory that is already registered with the %s "
                       "runtime but does not lie within one registration of "
                       "it; register the whole range in one piece, or none "
                       "of it",
        ptr, (unsigned long long)size, FERRY_GPU_RUNTIME);
  *device_ptr = d_first;
  return FERRY_OK;
}

static void unregister_chunks(void *ptr, uint64_t chunk, uint32_t n) {
  uint64_t page = page_size();
  uintptr_t base = (uintptr_t)ptr / page * page;
  for (uint32_t k = 0; k < n; k++) {
    void *start = k == 0 ? ptr : (void *)(base + (uintptr_t)(k * chunk));
    if (gpuHostUnregister(start) != gpuSuccess)
      (void)gpuGetLastError();
  }
}

/* Register in chunks whose boundaries fall on page boundaries (the driver
 * pins whole pages: a page shared by two chunks would be registered twice).
 * Chunk k covers [base + k*chunk, base + (k+1)*chunk) clipped to the range,
 * where base is the page holding ptr. */
static ferry_status register_chunks(ferry_be_context *ctx, void *ptr,
                                    uint64_t size, uint64_t chunk,
                                    ferry_be_buffer *b, void **device_ptr) {
  uint64_t page = page_size();
  uintptr_t start = (uintptr_t)ptr;
  uintptr_t base = start / page * page;
  uint64_t span = (uint64_t)(start - base) + size;
  uint64_t n = (span + chunk - 1) / chunk;
  if (n > UINT32_MAX)
    return ferry_gpu_host->set_error(
        FERRY_ERR_OUT_OF_RANGE,
        FERRY_GPU_NAME " host_register: %llu bytes in chunks of %llu is too "
                       "many chunks",
        (unsigned long long)size, (unsigned long long)chunk);
  void *d0 = NULL;
  for (uint64_t k = 0; k < n; k++) {
    uintptr_t lo = k == 0 ? start : base + (uintptr_t)(k * chunk);
    uintptr_t hi = base + (uintptr_t)((k + 1) * chunk);
    if (hi > start + size)
      hi = start + size;
    gpuError_t e =
        gpuHostRegister((void *)lo, (size_t)(hi - lo), register_flags);
    bool registered = e == gpuSuccess;
    void *d = NULL;
    if (registered)
      e = gpuHostGetDevicePointer(&d, (void *)lo, 0);
    if (e != gpuSuccess) {
      ferry_status st = ferry_gpu_fail_as(
          ctx,
          e == gpuErrorMemoryAllocation ? FERRY_ERR_OUT_OF_MEMORY
                                        : ferry_gpu_status_of(e),
          e,
          "host_register: chunk %llu of %llu ([%p, +%llu bytes)) of a "
          "%llu-byte range",
          (unsigned long long)k, (unsigned long long)n, (void *)lo,
          (unsigned long long)(hi - lo), (unsigned long long)size);
      unregister_chunks(ptr, chunk, (uint32_t)k + (registered ? 1u : 0u));
      return st;
    }
    if (k == 0)
      d0 = d;
    else if ((uintptr_t)d != (uintptr_t)d0 + (lo - start)) {
      unregister_chunks(ptr, chunk, (uint32_t)k + 1);
      return ferry_gpu_host->set_error(
          FERRY_ERR_UNSUPPORTED,
          FERRY_GPU_NAME " host_register: %llu bytes had to be registered in "
                         "%llu chunks of %llu bytes, and the %s runtime mapped "
                         "chunk %llu to device address %p, not %p where the "
                         "range would continue; kernels need one contiguous "
                         "range, so register less host memory per table",
          (unsigned long long)size, (unsigned long long)n,
          (unsigned long long)chunk, FERRY_GPU_RUNTIME, (unsigned long long)k,
          d, (void *)((uintptr_t)d0 + (lo - start)));
    }
  }
  b->chunk = chunk;
  b->chunks = (uint32_t)n;
  b->device = d0;
  *device_ptr = d0;
  return FERRY_OK;
}

ferry_status ferry_gpu_host_register(ferry_be_context *ctx, void *ptr,
                                     uint64_t size, ferry_be_buffer **out,
                                     void **device_ptr, int *owned) {
  if (ptr == NULL || out == NULL || device_ptr == NULL || owned == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER, FERRY_GPU_NAME
                                     " host_register: 'ptr' or an output is "
                                     "NULL");
  if (size == 0 || size > SIZE_MAX)
    return ferry_gpu_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        FERRY_GPU_NAME " host_register: size %llu (the runtime registers 1 "
                       "to SIZE_MAX bytes)",
        (unsigned long long)size);
  ferry_be_buffer *b = ferry_gpu_host->alloc(sizeof *b, 0);
  if (b == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_OUT_OF_MEMORY, FERRY_GPU_NAME
                                     " host_register: out of host memory");
  memset(b, 0, sizeof *b);
  b->ptr = ptr;
  b->size = size;

  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(ctx, "host_register", &scope);
  if (st != FERRY_OK) {
    ferry_gpu_host->free(b);
    return st;
  }
  void *d = NULL;
  uint64_t chunk = forced_chunk();
  gpuError_t e = gpuSuccess;
  if (chunk == 0) {
    e = gpuHostRegister(ptr, (size_t)size, register_flags);
    if (e == gpuSuccess) {
      e = gpuHostGetDevicePointer(&d, ptr, 0);
      if (e != gpuSuccess) {
        st = ferry_gpu_fail(ctx, e,
                            "host_register: device address of [%p, +%llu "
                            "bytes)",
                            ptr, (unsigned long long)size);
        (void)gpuHostUnregister(ptr);
        goto fail;
      }
      b->chunks = 1;
      b->device = d;
    } else if (e != gpuErrorHostMemoryAlreadyRegistered &&
               size > DEFAULT_CHUNK &&
               (e == gpuErrorMemoryAllocation || e == gpuErrorInvalidValue)) {
      (void)gpuGetLastError();
      ferry_gpu_host->trace(FERRY_GPU_NAME,
                            "registering %llu bytes in one piece failed; "
                            "trying chunks of %llu",
                            (unsigned long long)size,
                            (unsigned long long)DEFAULT_CHUNK);
      chunk = DEFAULT_CHUNK;
    } else if (e != gpuErrorHostMemoryAlreadyRegistered) {
      st = ferry_gpu_fail_as(ctx,
                             e == gpuErrorMemoryAllocation
                                 ? FERRY_ERR_OUT_OF_MEMORY
                                 : ferry_gpu_status_of(e),
                             e,
                             "host_register: pinning [%p, +%llu bytes) "
                             "(is the locked-memory limit, ulimit -l, too "
                             "low?)",
                             ptr, (unsigned long long)size);
      goto fail;
    }
  }
  if (chunk != 0) {
    /* Chunks of memory someone registered would fail one by one: look
     * first. */
    gpuMemoryKind kind = GPU_MEMORY_PAGEABLE;
    void *theirs = NULL, *host = NULL;
    if (gpuPointerInfo(ptr, &kind, &theirs, &host) == gpuSuccess &&
        kind == GPU_MEMORY_REGISTERED)
      e = gpuErrorHostMemoryAlreadyRegistered;
    else {
      (void)gpuGetLastError();
      st = register_chunks(ctx, ptr, size, chunk, b, &d);
      if (st != FERRY_OK)
        goto fail;
    }
  }
  if (e == gpuErrorHostMemoryAlreadyRegistered) {
    /* Not an error to keep: the runtime records it as the last error. */
    (void)gpuGetLastError();
    st = use_foreign(ctx, ptr, size, &d);
    if (st != FERRY_OK)
      goto fail;
    ferry_gpu_leave(&scope);
    ferry_gpu_host->free(b);
    *out = NULL;
    *device_ptr = d;
    *owned = 0;
    return FERRY_OK;
  }
  ferry_gpu_leave(&scope);
  *out = b;
  *device_ptr = d;
  *owned = 1;
  return FERRY_OK;

fail:
  ferry_gpu_leave(&scope);
  ferry_gpu_host->free(b);
  return st;
}

void ferry_gpu_host_unregister(ferry_be_context *ctx, ferry_be_buffer *buf,
                               void *ptr, int owned, uint32_t flags) {
  (void)ptr;
  if (buf == NULL)
    return; /* memory someone else registered: theirs to unregister */
  if (owned && !(flags & FERRY_BE_DESTROY_FORKED)) {
    /* A fork()ed child inherits no registration to undo. */
    ferry_gpu_scope scope;
    if (ferry_gpu_enter(ctx, "host_unregister", &scope) == FERRY_OK) {
      if (buf->chunk == 0) {
        if (gpuHostUnregister(buf->ptr) != gpuSuccess)
          (void)gpuGetLastError();
      } else {
        unregister_chunks(buf->ptr, buf->chunk, buf->chunks);
      }
      ferry_gpu_leave(&scope);
    }
  }
  ferry_gpu_host->free(buf);
}
