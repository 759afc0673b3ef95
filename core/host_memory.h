/* Host memory services (implementation: core/host_memory.c).
 *
 * Host and pinned-host buffers, and later feature tables and graphs, live in
 * memory bound to the NUMA nodes next to the context's device, allocated on
 * the machine's own topology (never an XML one used for decisions) and
 * aligned to max(page, 128 B, the device's base-address alignment). */
#ifndef FERRY_CORE_HOST_MEMORY_H
#define FERRY_CORE_HOST_MEMORY_H

#include "internal.h"

typedef struct ferry__host_mem {
  void *ptr;
  uint64_t size;     /* bytes asked for (may be 0: ptr is still valid) */
  uint64_t mapped;   /* bytes actually allocated (rounded up) */
  bool bound;        /* confirmed on the wanted nodes (area memlocation) */
  char nodeset[256]; /* where it was bound, hwloc list of NUMA OS indices */
  int how;           /* private to host_memory.c: how to free it */
} ferry__host_mem;

/* Allocate `size` bytes for `ctx` (its nodeset and alignment). size 0 gives
 * a valid, unique pointer. Sets the error on failure. */
ferry_status ferry__host_alloc(ferry_context *ctx, uint64_t size,
                               ferry__host_mem *out);
void ferry__host_free(ferry__host_mem *mem);

#endif /* FERRY_CORE_HOST_MEMORY_H */
