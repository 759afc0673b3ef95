/* Host memory services (implementation: core/host_memory.c).
 *
 * Host and pinned-host buffers, and later feature tables and graphs, live in
 * memory bound to the NUMA nodes next to the context's device, allocated on
 * the machine's own topology (never an XML one used for decisions) and
 * aligned to max(page, 128 B, the device's base-address alignment).
 *
 * Registration with the backend (page-locked and mapped for the device) is
 * the buffer's business (core/buffer.c), since it also registers memory ferry
 * did not allocate; free only after unregistering. */
#ifndef FERRY_CORE_HOST_MEMORY_H
#define FERRY_CORE_HOST_MEMORY_H

#include "internal.h"

typedef struct ferry__host_mem {
  void *ptr;
  uint64_t size;     /* bytes asked for (may be 0: ptr is still valid) */
  uint64_t mapped;   /* bytes usable at ptr (size rounded up to pages) */
  bool bound;        /* confirmed on the wanted nodes (area memlocation) */
  char nodeset[256]; /* where it was bound, hwloc list of NUMA OS indices;
                        when not bound, where sampled pages are, or "" */
  int how;           /* private to host_memory.c: how to free it */
  /* Private to host_memory.c: the allocation itself. */
  void *base;
  uint64_t base_len;
} ferry__host_mem;

/* Allocate `size` bytes for `ctx` (its nodeset and alignment). size 0 gives
 * a valid, unique pointer. Sets the error on failure. */
ferry_status ferry__host_alloc(ferry_context *ctx, uint64_t size,
                               ferry__host_mem *out);
/* The same without a context: bound to `nodeset` (hwloc list of NUMA OS
 * indices; "" or NULL: not bound) and aligned to at least `align` bytes (a
 * power of two is not required; 0: the default). */
ferry_status ferry__host_alloc_on(const char *nodeset, uint64_t align,
                                  uint64_t size, ferry__host_mem *out);
/* Frees; accepts a zeroed struct. Safe in a fork()ed child. */
void ferry__host_free(ferry__host_mem *mem);

#endif /* FERRY_CORE_HOST_MEMORY_H */
