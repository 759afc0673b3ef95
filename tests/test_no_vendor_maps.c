/* A cpu-only process stays free of vendor runtimes: creating a context on
 * "cpu" and loading the machine topology must map no PoCL, LLVM, OpenCL or
 * CUDA/ROCm library (hwloc's opencl component would map PoCL and LLVM; the
 * loader must not open plugins a strict "cpu" does not need). */
#include "harness.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool starts_with_ci(const char *s, const char *prefix) {
  for (; *prefix; s++, prefix++)
    if (tolower((unsigned char)*s) != tolower((unsigned char)*prefix))
      return false;
  return true;
}

/* Mapped files whose name (not directory) starts with one of `patterns`; the
 * first such path goes into `first`. */
static int mapped_matching(const char *const *patterns, int npat, char *first,
                           size_t n) {
  FILE *f = fopen("/proc/self/maps", "r");
  cr_assert_not_null(f, "cannot read /proc/self/maps");
  char line[4096];
  int count = 0;
  first[0] = '\0';
  while (fgets(line, sizeof line, f)) {
    char *path = strchr(line, '/');
    if (path == NULL)
      continue;
    path[strcspn(path, "\n")] = '\0';
    const char *base = strrchr(path, '/') + 1;
    for (int p = 0; p < npat; p++)
      if (starts_with_ci(base, patterns[p])) {
        if (count++ == 0)
          snprintf(first, n, "%s", path);
        break;
      }
  }
  fclose(f);
  return count;
}

/* Library name prefixes (libicudata is no CUDA library: match prefixes). */
static const char *const vendor_patterns[] = {
    "libpocl", "libllvm",   "libclang",      "libopencl",    "hwloc_opencl",
    "libcuda", "libnvidia", "libnvrtc",      "libamdhip",    "libhsa-runtime",
    "librocm", "libhiprtc", "libferry-cuda", "libferry-hip", "libferry-opencl"};

static void expect_no_vendor_maps(const char *when) {
  char first[4096];
  /* The scan itself works: libferry is mapped and found. */
  const char *self[] = {"libferry"};
  cr_assert_gt(mapped_matching(self, 1, first, sizeof first), 0,
               "the maps scan found no libferry: it cannot be trusted");
  int n =
      mapped_matching(vendor_patterns,
                      (int)(sizeof vendor_patterns / sizeof vendor_patterns[0]),
                      first, sizeof first);
  cr_expect_eq(n, 0, "%s: %d vendor mapping(s), e.g. %s", when, n, first);
}

Test(no_vendor_maps, strict_cpu_context) {
  expect_no_vendor_maps("at start");
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = "cpu";
  ferry_context *ctx = NULL;
  FERRY_OK_(ferry_context_create(&o, &ctx));
  ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &ci));
  cr_expect_str_eq(ci.backend, "cpu");
  cr_expect_neq(ci.numa_nodes[0], '\0', "the topology was loaded");
  expect_no_vendor_maps("after ferry_context_create(\"cpu\")");
  ferry_context_destroy(ctx);
  expect_no_vendor_maps("after ferry_context_destroy");
}

Test(no_vendor_maps, cpu_from_the_environment) {
  cr_assert_eq(setenv("FERRY_BACKEND", "cpu", 1), 0);
  ferry_context *ctx = NULL;
  FERRY_OK_(ferry_context_create(NULL, &ctx));
  ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &ci));
  cr_expect_str_eq(ci.backend, "cpu");
  expect_no_vendor_maps("after ferry_context_create with FERRY_BACKEND=cpu");
  ferry_context_destroy(ctx);
}

Test(no_vendor_maps, machine_topology) {
  ferry_topology *t = NULL;
  FERRY_OK_(ferry_topology_load(NULL, &t));
  expect_no_vendor_maps("with the machine topology loaded");
  ferry_selection *sel = NULL;
  FERRY_OK_(ferry_select_machine("cpu", -1, &sel));
  ferry_selection_info si = FERRY_SELECTION_INFO_INIT;
  FERRY_OK_(ferry_selection_get_info(sel, &si));
  cr_expect_str_eq(si.backend, "cpu");
  expect_no_vendor_maps("after ferry_select_machine(\"cpu\")");
  ferry_selection_destroy(sel);
  ferry_topology_destroy(t);
}
