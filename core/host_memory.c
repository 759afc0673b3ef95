/* NUMA-bound, aligned host memory on this machine, and its registration
 * with a backend.
 *
 * Binding needs a live hwloc topology of this machine. It is loaded on the
 * first allocation (not at context creation: while an hwloc topology exists,
 * hwloc keeps its plugin files mapped, see topology.c) with the same vendor
 * components blacklisted and without I/O discovery, and kept for the
 * process. hwloc's binding calls only read it, so threads share it. */
#include "host_memory.h"
#include "topology_internal.h"

#include <errno.h>
#include <hwloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { HOW_NONE = 0, HOW_HWLOC = 1, HOW_MALLOC = 2 };

/* Placement is confirmed on at most this many pages, spread evenly: the
 * policy applies to every page alike, and querying each page of a 100 GB
 * table would cost seconds. */
#define SAMPLE_PAGES 64

static pthread_once_t mem_once = PTHREAD_ONCE_INIT;
static hwloc_topology_t mem_topo; /* NULL: bind nothing */

static void load_mem_topology(void) {
  hwloc_topology_t t;
  if (hwloc_topology_init(&t) != 0)
    return;
  ferry__hwloc_configure(t, false);
  if (hwloc_topology_load(t) != 0) {
    ferry__trace("memory", "no topology for memory binding: %s",
                 strerror(errno));
    hwloc_topology_destroy(t);
    return;
  }
  if (!hwloc_topology_is_thissystem(t)) {
    /* HWLOC_XMLFILE or HWLOC_SYNTHETIC is set: binding would be a no-op. */
    ferry__trace("memory", "hwloc's topology is not this system (an "
                           "HWLOC_XMLFILE?): host memory is not bound");
    hwloc_topology_destroy(t);
    return;
  }
  mem_topo = t;
}

static uint64_t page_size(void) {
  long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? (uint64_t)p : 4096u;
}

static uint64_t pow2_at_least(uint64_t x) {
  uint64_t p = 1;
  while (p < x && p < (UINT64_C(1) << 40))
    p <<= 1;
  return p;
}

static void *raw_alloc(hwloc_const_bitmap_t bind, uint64_t len, int *how,
                       int *bind_errno) {
  *bind_errno = 0;
  if (mem_topo != NULL) {
    *how = HOW_HWLOC;
    if (bind == NULL)
      return hwloc_alloc(mem_topo, (size_t)len);
    errno = 0;
    /* Without HWLOC_MEMBIND_STRICT an unsatisfiable binding still returns
     * memory, unbound, with errno set: the placement check catches it. */
    void *p = hwloc_alloc_membind(mem_topo, (size_t)len, bind,
                                  HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_BYNODESET);
    *bind_errno = errno;
    return p;
  }
  *how = HOW_MALLOC;
  void *p = NULL;
  if (posix_memalign(&p, (size_t)page_size(), (size_t)len) != 0)
    return NULL;
  return p;
}

static void raw_free(void *base, uint64_t len, int how) {
  if (how == HOW_HWLOC)
    hwloc_free(mem_topo, base, (size_t)len);
  else if (how == HOW_MALLOC)
    free(base);
}

/* Touch a spread of pages (so that the policy places them) and report where
 * they are. Writing back the byte read keeps the contents. */
static bool locate(void *ptr, uint64_t mapped, uint64_t page,
                   hwloc_bitmap_t where) {
  hwloc_bitmap_zero(where);
  hwloc_bitmap_t one = hwloc_bitmap_alloc();
  if (one == NULL)
    return false;
  uint64_t pages = mapped / page;
  uint64_t samples = pages < SAMPLE_PAGES ? pages : SAMPLE_PAGES;
  bool ok = true;
  for (uint64_t k = 0; k < samples && ok; k++) {
    uint64_t idx = samples > 1 ? k * (pages - 1) / (samples - 1) : 0;
    volatile unsigned char *b = (unsigned char *)ptr + idx * page;
    *b = *b;
    hwloc_bitmap_zero(one);
    ok = hwloc_get_area_memlocation(mem_topo, (const void *)b, (size_t)page,
                                    one, HWLOC_MEMBIND_BYNODESET) == 0;
    hwloc_bitmap_or(where, where, one);
  }
  hwloc_bitmap_free(one);
  return ok && !hwloc_bitmap_iszero(where);
}

static void set_list(hwloc_const_bitmap_t set, char *out, size_t n) {
  int len = hwloc_bitmap_list_snprintf(out, n, set);
  if (len < 0 || (size_t)len >= n)
    out[0] = '\0';
}

/* The nodes to bind to: `nodeset` as this machine knows them, or NULL. */
static hwloc_bitmap_t wanted_nodes(const char *nodeset) {
  if (mem_topo == NULL || nodeset == NULL || nodeset[0] == '\0')
    return NULL;
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (set == NULL)
    return NULL;
  if (hwloc_bitmap_list_sscanf(set, nodeset) != 0) {
    hwloc_bitmap_free(set);
    return NULL;
  }
  hwloc_bitmap_and(set, set, hwloc_topology_get_topology_nodeset(mem_topo));
  if (hwloc_bitmap_iszero(set)) {
    ferry__trace("memory",
                 "NUMA nodes '%s' are not this machine's: not "
                 "binding",
                 nodeset);
    hwloc_bitmap_free(set);
    return NULL;
  }
  return set;
}

ferry_status ferry__host_alloc_on(const char *nodeset, uint64_t align,
                                  uint64_t size, ferry__host_mem *out) {
  pthread_once(&mem_once, load_mem_topology);
  const uint64_t page = page_size();
  uint64_t a = pow2_at_least(align);
  if (a < 128)
    a = 128;
  if (a < page)
    a = page;
  if (size > (UINT64_C(1) << 62) || align > (UINT64_C(1) << 40))
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "host allocation: size %llu with alignment %llu is "
                        "beyond any machine",
                        (unsigned long long)size, (unsigned long long)align);
  uint64_t mapped = ((size ? size : 1) + page - 1) / page * page;

  hwloc_bitmap_t bind = wanted_nodes(nodeset);
  /* hwloc's allocations are page aligned; a stricter alignment needs room
   * to move the start. */
  uint64_t extra = a > page ? a : 0;
  int how = HOW_NONE, bind_errno = 0;
  uint64_t len = mapped + extra;
  void *base = raw_alloc(bind, len, &how, &bind_errno);
  if (base != NULL && extra == 0 && (uintptr_t)base % a != 0) {
    raw_free(base, len, how);
    extra = a;
    len = mapped + extra;
    base = raw_alloc(bind, len, &how, &bind_errno);
  }
  if (base == NULL) {
    int e = errno;
    if (bind)
      hwloc_bitmap_free(bind);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "host allocation: cannot allocate %llu bytes of host "
                        "memory%s%s%s: %s",
                        (unsigned long long)size,
                        nodeset && nodeset[0] ? " on NUMA nodes '" : "",
                        nodeset && nodeset[0] ? nodeset : "",
                        nodeset && nodeset[0] ? "'" : "", strerror(e));
  }
  uintptr_t p = ((uintptr_t)base + (uintptr_t)(a - 1)) & ~(uintptr_t)(a - 1);

  ferry__host_mem m;
  memset(&m, 0, sizeof m);
  m.ptr = (void *)p;
  m.size = size;
  m.mapped = mapped;
  m.how = how;
  m.base = base;
  m.base_len = len;
  if (bind != NULL) {
    hwloc_bitmap_t where = hwloc_bitmap_alloc();
    if (where != NULL && locate(m.ptr, mapped, page, where)) {
      m.bound = hwloc_bitmap_isincluded(where, bind);
      set_list(m.bound ? bind : where, m.nodeset, sizeof m.nodeset);
    }
    if (!m.bound)
      ferry__trace("memory",
                   "%llu bytes wanted on NUMA nodes '%s' are not confirmed "
                   "there (bind errno %d: %s)",
                   (unsigned long long)size, nodeset, bind_errno,
                   bind_errno ? strerror(bind_errno) : "none");
    hwloc_bitmap_free(where);
    hwloc_bitmap_free(bind);
  }
  *out = m;
  return FERRY_OK;
}

ferry_status ferry__host_alloc(ferry_context *ctx, uint64_t size,
                               ferry__host_mem *out) {
  if (ctx == NULL || out == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER,
                        "host allocation: argument '%s' is NULL",
                        ctx == NULL ? "ctx" : "out");
  ferry_status st = ferry__host_alloc_on(
      ctx->choice.nodeset, ctx->device_info.base_address_align, size, out);
  return st;
}

void ferry__host_free(ferry__host_mem *mem) {
  if (mem == NULL)
    return;
  if (mem->base != NULL)
    raw_free(mem->base, mem->base_len, mem->how);
  memset(mem, 0, sizeof *mem);
}
