/* Host memory services through host and pinned-host buffers: aligned to
 * max(page, 128 B, the device's base-address alignment), bound to the
 * context's NUMA nodes, and the bound flag telling the truth (checked here
 * independently with hwloc), for awkward sizes including 0. */
#include "harness.h"

#include <hwloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static hwloc_topology_t check_topology(void) {
  hwloc_topology_t t;
  cr_assert_eq(hwloc_topology_init(&t), 0);
  /* as ferry does: no OpenCL/GL discovery in this process either */
  const char *off[] = {"opencl", "gl", "cuda", "nvml", "rsmi", "levelzero"};
  for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
    (void)hwloc_topology_set_components(
        t, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, off[i]);
  cr_assert_eq(hwloc_topology_load(t), 0);
  return t;
}

static uint64_t expected_alignment(const ferry_context_info *ci) {
  uint64_t a = (uint64_t)sysconf(_SC_PAGESIZE);
  if (a < 128)
    a = 128;
  while (a < ci->device.base_address_align)
    a <<= 1;
  return a;
}

/* Where the pages of [p, p+len) are, or an empty set if hwloc cannot say. */
static void where(hwloc_topology_t t, const void *p, size_t len,
                  hwloc_bitmap_t out) {
  hwloc_bitmap_zero(out);
  if (hwloc_get_area_memlocation(t, p, len, out, HWLOC_MEMBIND_BYNODESET) != 0)
    hwloc_bitmap_zero(out);
}

Test(host_memory, aligned_bound_and_sized) {
  hwloc_topology_t t = check_topology();
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = "cpu";
  ferry_context *ctx = NULL;
  FERRY_OK_(ferry_context_create(&o, &ctx));
  ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &ci));
  cr_assert_neq(ci.numa_nodes[0], '\0', "a cpu context spans the machine");
  hwloc_bitmap_t wanted = hwloc_bitmap_alloc();
  hwloc_bitmap_t loc = hwloc_bitmap_alloc();
  cr_assert_eq(hwloc_bitmap_list_sscanf(wanted, ci.numa_nodes), 0);
  const uint64_t align = expected_alignment(&ci);
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);

  const uint64_t sizes[] = {0,    1,     7,        127,           4096,
                            4097, 65521, 1u << 20, (3u << 20) + 5};
  const ferry_memory_space spaces[] = {FERRY_MEMORY_HOST,
                                       FERRY_MEMORY_PINNED_HOST};
  int bound_seen = 0;
  for (size_t s = 0; s < sizeof spaces / sizeof spaces[0]; s++) {
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      uint64_t size = sizes[k];
      ferry_buffer *b = NULL;
      FERRY_OK_(ferry_buffer_create(ctx, spaces[s], size, &b));
      ferry_buffer_info bi = FERRY_BUFFER_INFO_INIT;
      FERRY_OK_(ferry_buffer_get_info(b, &bi));
      unsigned char *p = bi.host_pointer;
      cr_assert_not_null(p, "size %llu: no host pointer",
                         (unsigned long long)size);
      cr_expect_eq(
          (uintptr_t)p % align, 0u, "size %llu at %p: not aligned to %llu",
          (unsigned long long)size, (void *)p, (unsigned long long)align);
      if (size > 0) {
        ferry_test_poison(p, (size_t)size);
        p[size - 1] = 0x3c;
        cr_expect_eq(p[0], size > 1 ? 0xA5 : 0x3c);
        cr_expect_eq(p[size - 1], 0x3c);
      }
      /* The library touched its pages; ask the kernel where they are. */
      size_t span = size ? (size_t)size : 1;
      span = (span + page - 1) / page * page;
      where(t, p, span, loc);
      bool on_wanted =
          !hwloc_bitmap_iszero(loc) && hwloc_bitmap_isincluded(loc, wanted);
      cr_expect_eq(bi.numa_bound != 0, on_wanted,
                   "size %llu: numa_bound %d, but the pages are %s on the "
                   "wanted nodes '%s'",
                   (unsigned long long)size, bi.numa_bound,
                   on_wanted ? "" : "not", ci.numa_nodes);
      if (bi.numa_bound) {
        cr_expect_str_eq(bi.numa_nodes, ci.numa_nodes);
        bound_seen++;
      }
      ferry_buffer_destroy(b);
    }
  }
  /* Where hwloc can bind and locate memory, placement must be confirmed. */
  const struct hwloc_topology_support *sup = hwloc_topology_get_support(t);
  if (sup->membind->alloc_membind && sup->membind->get_area_memlocation) {
    void *probe = hwloc_alloc(t, page);
    memset(probe, 1, page);
    where(t, probe, page, loc);
    if (!hwloc_bitmap_iszero(loc))
      cr_expect_eq(bound_seen, 18, "only %d of 18 buffers confirmed bound",
                   bound_seen);
    hwloc_free(t, probe, page);
  }

  /* Empty buffers are still distinct, valid allocations. */
  ferry_buffer *e1 = NULL, *e2 = NULL;
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_HOST, 0, &e1));
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_PINNED_HOST, 0, &e2));
  ferry_buffer_info i1 = FERRY_BUFFER_INFO_INIT, i2 = FERRY_BUFFER_INFO_INIT;
  FERRY_OK_(ferry_buffer_get_info(e1, &i1));
  FERRY_OK_(ferry_buffer_get_info(e2, &i2));
  cr_expect_neq(i1.host_pointer, NULL);
  cr_expect_neq(i1.host_pointer, i2.host_pointer);
  cr_expect_eq(i1.size, 0u);
  ferry_buffer_destroy(e1);
  ferry_buffer_destroy(e2);

  hwloc_bitmap_free(wanted);
  hwloc_bitmap_free(loc);
  ferry_context_destroy(ctx);
  hwloc_topology_destroy(t);
}
