/* Selection end to end: the loader finds stub plugins posing as cuda, hip
 * and opencl, each reporting devices at the bus ids of a real topology
 * (FERRY_STUB_DEVICES), and hwloc reads that topology as "this machine"
 * (HWLOC_XMLFILE). ferry_context_create must then choose as on the real
 * machine and place the context on the GPU's NUMA node.
 *
 * The loader and the machine topology are read once per process, so each
 * topology is its own (parameterized) test, set up before any ferry call. */
#include "harness.h"
#include <criterion/parameterized.h>
#include "test_topology_expected.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Point ferry at a stub directory and hwloc at the topology; the stubs
 * report the GPUs in descending bus id order, so that "lowest bus id" and
 * "device 0" differ. */
static void setup(const expected_topology *e, const char *stub_set) {
  const char *dir = getenv("FERRY_STUB_DIR");
  cr_assert_not_null(dir, "FERRY_STUB_DIR is not set (see tests/loader.cmake)");
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, stub_set);
  cr_assert_eq(setenv("FERRY_PLUGIN_PATH", path, 1), 0);
  expected_topology_path(e, path, sizeof path);
  cr_assert_eq(setenv("HWLOC_XMLFILE", path, 1), 0);
  char devices[2048] = "";
  size_t len = 0;
  for (int i = e->gpu_count - 1; i >= 0; i--)
    len += (size_t)snprintf(devices + len, sizeof devices - len, "%s%x:%s:9.0",
                            len ? "," : "", e->vendor_id, e->gpus[i].bus);
  cr_assert_lt(len, sizeof devices);
  cr_assert_eq(setenv("FERRY_STUB_DEVICES", devices, 1), 0);
  unsetenv("FERRY_BACKEND");
}

static ferry_context_info create(const char *backend, int device_index) {
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = backend;
  o.device_index = device_index;
  ferry_context *ctx = NULL;
  FERRY_OK_(ferry_context_create(&o, &ctx));
  ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &ci));
  ferry_context_destroy(ctx);
  return ci;
}

static void expect_on_gpu(const ferry_context_info *ci,
                          const expected_topology *e, int gpu,
                          const char *backend) {
  char numa[16];
  snprintf(numa, sizeof numa, "%u", e->gpus[gpu].numa);
  cr_expect_str_eq(ci->backend, backend, "%s", e->file);
  /* stub device k is GPU gpu_count-1-k */
  cr_expect_eq(ci->device_index, e->gpu_count - 1 - gpu, "%s", e->file);
  cr_expect_str_eq(ci->device.pci_bus_id, e->gpus[gpu].bus, "%s", e->file);
  cr_expect_str_eq(ci->numa_nodes, numa, "%s %s: NUMA '%s'", e->file,
                   e->gpus[gpu].bus, ci->numa_nodes);
  cr_expect_neq(ci->cpuset[0], '\0');
}

static int topology_index[] = {0, 1, 2, 3, 4, 5};

ParameterizedTestParameters(selection_stub, every_backend_present) {
  cr_assert_eq(sizeof topology_index / sizeof topology_index[0],
               (size_t)EXPECTED_TOPOLOGY_COUNT);
  return cr_make_param_array(int, topology_index,
                             sizeof topology_index / sizeof topology_index[0]);
}

ParameterizedTest(int *index, selection_stub, every_backend_present) {
  const expected_topology *e = &expected_topologies[*index];
  setup(e, "as-vendors");
  ferry_context_info ci = create(NULL, -1);
  expect_on_gpu(&ci, e, 0, e->backend);

  ferry_selection *sel = NULL;
  FERRY_OK_(ferry_select_machine(NULL, -1, &sel));
  int n = 0;
  FERRY_OK_(ferry_selection_rejected_count(sel, &n));
  bool cpu_rejected = false, other_vendor_rejected = false;
  const char *other = strcmp(e->backend, "cuda") == 0 ? "hip" : "cuda";
  for (int i = 0; i < n; i++) {
    ferry_rejection r = FERRY_REJECTION_INIT;
    FERRY_OK_(ferry_selection_get_rejected(sel, i, &r));
    cpu_rejected |=
        strstr(r.reason, "cpu: a GPU backend was preferred") != NULL;
    other_vendor_rejected |= strcmp(r.backend, other) == 0 &&
                             r.device_index >= 0 &&
                             strstr(r.reason, "vendor") != NULL;
  }
  cr_expect(cpu_rejected, "%s: no cpu rejection", e->file);
  cr_expect(other_vendor_rejected, "%s: %s should refuse %s's GPUs", e->file,
            other, e->vendor);
  ferry_selection_destroy(sel);

  /* the device index is the backend's: device 0 is the highest bus id */
  ci = create(NULL, 0);
  expect_on_gpu(&ci, e, e->gpu_count - 1, e->backend);
  /* strictly OpenCL, on the same GPU auto would take */
  ci = create("opencl", -1);
  expect_on_gpu(&ci, e, 0, "opencl");

  /* Decisions come from the XML, memory never: hwloc does not bind on a
   * topology that is not this machine, and ferry must not claim it did. */
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  ferry_context *ctx = NULL;
  FERRY_OK_(ferry_context_create(&o, &ctx));
  ferry_buffer *b = NULL;
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_HOST, 4097, &b));
  ferry_buffer_info bi = FERRY_BUFFER_INFO_INIT;
  FERRY_OK_(ferry_buffer_get_info(b, &bi));
  cr_expect_not_null(bi.host_pointer);
  cr_expect_eq((uintptr_t)bi.host_pointer % 4096u, 0u);
  cr_expect_eq(bi.numa_bound, 0, "%s: bound on an XML topology?", e->file);
  cr_expect_str_eq(bi.numa_nodes, "");
  ferry_buffer_destroy(b);
  ferry_context_destroy(ctx);
}

ParameterizedTestParameters(selection_stub, without_cuda) {
  return cr_make_param_array(int, topology_index,
                             sizeof topology_index / sizeof topology_index[0]);
}

ParameterizedTest(int *index, selection_stub, without_cuda) {
  const expected_topology *e = &expected_topologies[*index];
  setup(e, "no-cuda");
  bool nvidia = e->vendor_id == 0x10de;
  ferry_context_info ci = create(NULL, -1);
  expect_on_gpu(&ci, e, 0, nvidia ? "opencl" : "hip");

  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = "cuda";
  ferry_context *ctx = (ferry_context *)(uintptr_t)0x5a5a;
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_NO_BACKEND);
  FERRY_EXPECT_MESSAGE("cuda");
  FERRY_EXPECT_MESSAGE("no plugin");
  cr_expect_eq(ctx, (ferry_context *)(uintptr_t)0x5a5a);

  /* the environment variable is a request like the option */
  cr_assert_eq(setenv("FERRY_BACKEND", "cuda,opencl", 1), 0);
  ci = create(NULL, -1);
  expect_on_gpu(&ci, e, 0, "opencl");
}
