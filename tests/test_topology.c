/* Topology snapshots: the GPUs and NUMA nodes of every real topology in
 * ../shared/data/topologies exactly as its README lists them, this machine's
 * topology, and clear failures for missing or corrupt files. */
#include "harness.h"
#include "test_topology_expected.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ferry_topology *load_expected(const expected_topology *e) {
  char path[1024];
  ferry_topology *t = NULL;
  FERRY_OK_(
      ferry_topology_load(expected_topology_path(e, path, sizeof path), &t));
  cr_assert_not_null(t);
  return t;
}

/* "0,8" for the GPU's numa_nodes array. */
static void numa_string(const ferry_gpu_info *g, char *buf, size_t n) {
  size_t len = 0;
  buf[0] = '\0';
  for (int i = 0; i < g->numa_node_count && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%u", i ? "," : "",
                            g->numa_nodes[i]);
}

Test(topology, every_real_topology_matches_its_readme) {
  for (int f = 0; f < EXPECTED_TOPOLOGY_COUNT; f++) {
    const expected_topology *e = &expected_topologies[f];
    ferry_topology *t = load_expected(e);
    ferry_topology_info ti = FERRY_TOPOLOGY_INFO_INIT;
    FERRY_OK_(ferry_topology_get_info(t, &ti));
    cr_expect_eq(ti.this_system, 0, "%s: an XML file is not this machine",
                 e->file);
    cr_expect_eq(ti.numa_node_count, e->numa_node_count, "%s: NUMA nodes",
                 e->file);
    cr_expect_str_eq(ti.nodeset, e->nodeset, "%s: nodeset", e->file);
    cr_expect(strstr(ti.source, e->file) != NULL, "%s: source '%s'", e->file,
              ti.source);
    int n = -1;
    FERRY_OK_(ferry_topology_gpu_count(t, &n));
    cr_assert_eq(n, e->gpu_count, "%s: %d GPUs, expected %d", e->file, n,
                 e->gpu_count);
    cr_expect_eq(ti.gpu_count, n);
    for (int i = 0; i < n; i++) {
      ferry_gpu_info g;
      ferry_test_poison(&g, sizeof g);
      g.struct_size = sizeof g;
      FERRY_OK_(ferry_topology_get_gpu(t, i, &g));
      const expected_gpu *x = &e->gpus[i];
      cr_expect_str_eq(g.pci_bus_id, x->bus, "%s GPU %d", e->file, i);
      cr_expect_str_eq(g.vendor, e->vendor, "%s %s vendor", e->file, x->bus);
      cr_expect_eq(g.vendor_id, e->vendor_id, "%s %s vendor id", e->file,
                   x->bus);
      cr_expect(g.is_gpu);
      unsigned base = g.pci_class >> 8;
      cr_expect(base == 0x03 || base == 0x12, "%s %s class %04x", e->file,
                x->bus, g.pci_class);
      cr_expect_eq(g.numa_node_count, 1, "%s %s: %d NUMA nodes", e->file,
                   x->bus, g.numa_node_count);
      cr_expect_eq(g.numa_nodes[0], x->numa, "%s %s: NUMA %u, expected %u",
                   e->file, x->bus, g.numa_nodes[0], x->numa);
      char numa[64];
      numa_string(&g, numa, sizeof numa);
      cr_expect_str_eq(g.nodeset, numa, "%s %s", e->file, x->bus);
      cr_expect_neq(g.cpuset[0], '\0', "%s %s: no cpuset", e->file, x->bus);
      cr_expect_neq(g.locality[0], '\0');
    }
    ferry_topology_destroy(t);
  }
}

static const expected_topology *find_expected(const char *prefix) {
  for (int f = 0; f < EXPECTED_TOPOLOGY_COUNT; f++)
    if (strncmp(expected_topologies[f].file, prefix, strlen(prefix)) == 0)
      return &expected_topologies[f];
  cr_assert_fail("no expected topology %s", prefix);
  return NULL;
}

Test(topology, nvswitches_and_bmc_chips_are_not_gpus) {
  /* DGX-2: NVIDIA's NVSwitches are class 0680; Corona: an ASPEED VGA. */
  struct {
    const char *file, *bus;
    uint32_t vendor, class_id;
  } cases[] = {{"nvidia-dgx2", "0000:61:00.0", 0x10de, 0x0680},
               {"nvidia-dgx2", "0000:62:00.0", 0x10de, 0x0680},
               {"llnl-corona-8x", "0000:65:00.0", 0x1a03, 0x0300}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ferry_topology *t = load_expected(find_expected(cases[i].file));
    ferry_gpu_info g = FERRY_GPU_INFO_INIT;
    FERRY_OK_(ferry_topology_find_pci(t, cases[i].bus, &g));
    cr_expect_eq(g.vendor_id, cases[i].vendor);
    cr_expect_eq(g.pci_class, cases[i].class_id);
    cr_expect_eq(g.is_gpu, 0, "%s %s is not a GPU", cases[i].file,
                 cases[i].bus);
    ferry_topology_destroy(t);
  }
}

Test(topology, locality_from_an_l3_cache_and_models) {
  ferry_topology *t = load_expected(find_expected("llnl-tioga"));
  ferry_gpu_info g = FERRY_GPU_INFO_INIT;
  FERRY_OK_(ferry_topology_get_gpu(t, 0, &g));
  /* MI250X blades: the GPU hangs below an L3, not a NUMA node. */
  cr_expect_str_eq(g.locality, "L3Cache");
  cr_expect_str_eq(g.os_devices, "rsmi0");
  ferry_topology_destroy(t);

  t = load_expected(find_expected("llnl-lassen"));
  FERRY_OK_(ferry_topology_get_gpu(t, 3, &g));
  cr_expect_str_eq(g.model, "Tesla V100-SXM2-16GB");
  cr_expect_str_eq(g.nodeset, "8", "POWER9's second node is P#8");
  cr_expect_str_eq(g.cpuset, "96-175");
  ferry_topology_destroy(t);

  t = load_expected(find_expected("juwels"));
  FERRY_OK_(ferry_topology_get_gpu(t, 0, &g));
  cr_expect_str_eq(g.model, "", "no OS device and no PCI name: unknown");
  cr_expect_str_eq(g.os_devices, "");
  ferry_topology_destroy(t);
}

Test(topology, find_pci_accepts_every_bus_id_form) {
  ferry_topology *t = load_expected(find_expected("nvidia-dgx2"));
  const char *forms[] = {"0000:3b:00.0", "0000:3B:00.0", "3b:00.0", "3B:0.0"};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    ferry_gpu_info g = FERRY_GPU_INFO_INIT;
    FERRY_OK_(ferry_topology_find_pci(t, forms[i], &g));
    cr_expect_str_eq(g.pci_bus_id, "0000:3b:00.0", "form '%s'", forms[i]);
    cr_expect_eq(g.numa_nodes[0], 0u);
  }
  const char *bad[] = {
      "",        "3b",           "0000:3b:00",   "0000:3b:00.0x",
      "zz:00.0", "0000:3b:20.0", "0000:3b:00.8", "-1:00.0"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ferry_gpu_info g = FERRY_GPU_INFO_INIT;
    FERRY_EXPECT(ferry_topology_find_pci(t, bad[i], &g),
                 FERRY_ERR_INVALID_ARGUMENT);
    FERRY_EXPECT_MESSAGE("pci_bus_id");
  }
  ferry_gpu_info g = FERRY_GPU_INFO_INIT;
  FERRY_EXPECT(ferry_topology_find_pci(t, "0000:01:00.0", &g),
               FERRY_ERR_NO_DEVICE);
  FERRY_EXPECT_MESSAGE("0000:01:00.0");
  ferry_topology_destroy(t);
}

Test(topology, this_machine) {
  ferry_topology *t = NULL;
  FERRY_OK_(ferry_topology_load(NULL, &t));
  ferry_topology_info ti = FERRY_TOPOLOGY_INFO_INIT;
  FERRY_OK_(ferry_topology_get_info(t, &ti));
  cr_expect_eq(ti.this_system, 1);
  cr_expect_str_eq(ti.source, "");
  cr_expect_geq(ti.numa_node_count, 1);
  cr_expect_geq(ti.pu_count, 1);
  cr_expect_geq(ti.pu_count, ti.core_count);
  cr_expect_neq(ti.nodeset[0], '\0');
  cr_expect_neq(ti.cpuset[0], '\0');
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  cr_expect_leq(ti.pu_count, online > 0 ? online : 1 << 20,
                "hwloc shows %d PUs, the OS %ld online", ti.pu_count, online);
  for (int i = 0; i < ti.gpu_count; i++) {
    ferry_gpu_info g = FERRY_GPU_INFO_INIT;
    FERRY_OK_(ferry_topology_get_gpu(t, i, &g));
    cr_expect(g.is_gpu);
    cr_expect_geq(g.numa_node_count, 1);
  }
  ferry_topology_destroy(t);
}

/* A cpu context's host memory and pool span the whole machine. */
Test(topology, cpu_context_placement_is_the_whole_machine) {
  ferry_topology *t = NULL;
  FERRY_OK_(ferry_topology_load(NULL, &t));
  ferry_topology_info ti = FERRY_TOPOLOGY_INFO_INIT;
  FERRY_OK_(ferry_topology_get_info(t, &ti));
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = "cpu";
  ferry_context *ctx = NULL;
  FERRY_OK_(ferry_context_create(&o, &ctx));
  ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &ci));
  cr_expect_str_eq(ci.numa_nodes, ti.nodeset);
  cr_expect_str_eq(ci.cpuset, ti.cpuset);
  ferry_context_destroy(ctx);
  ferry_topology_destroy(t);
}

/* ---- failures ------------------------------------------------------------ */

static char tmpdir[256];

static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/ferry-topo-XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot write %s", path);
  cr_assert_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

/* Load must fail with `expected`, name the path, and leave *out alone. */
static void expect_load_fails(const char *path, ferry_status expected) {
  ferry_topology *sentinel = (ferry_topology *)(uintptr_t)0x5a5a;
  ferry_topology *t = sentinel;
  FERRY_EXPECT(ferry_topology_load(path, &t), expected);
  cr_expect_eq(t, sentinel, "output written on failure");
  if (path && path[0])
    FERRY_EXPECT_MESSAGE(path);
}

Test(topology, missing_and_corrupt_files_fail_clearly) {
  make_tmpdir();
  char path[512];

  snprintf(path, sizeof path, "%s/does-not-exist.xml", tmpdir);
  expect_load_fails(path, FERRY_ERR_IO);
  FERRY_EXPECT_MESSAGE("No such file");
  expect_load_fails(tmpdir, FERRY_ERR_IO); /* a directory */

  /* A real file cut short mid-element. */
  char real[1024];
  expected_topology_path(find_expected("juwels"), real, sizeof real);
  FILE *f = fopen(real, "rb");
  cr_assert_not_null(f);
  char head[3001];
  size_t got = fread(head, 1, 3000, f);
  fclose(f);
  cr_assert_eq(got, 3000u);
  snprintf(path, sizeof path, "%s/truncated.xml", tmpdir);
  write_file(path, head, got);
  expect_load_fails(path, FERRY_ERR_BAD_FORMAT);

  struct {
    const char *name, *text;
  } bad[] = {
      {"garbage.xml", "this is not XML <<<\n"},
      {"empty.xml", ""},
      {"not-topology.xml", "<?xml version=\"1.0\"?>\n<html></html>\n"},
      /* hwloc 3.x's format, which 2.x refuses */
      {"v3.xml", "<?xml version=\"1.0\"?>\n<topology version=\"3.0\">\n"
                 "<object type=\"Machine\" os_index=\"0\"/>\n</topology>\n"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, bad[i].name);
    write_file(path, bad[i].text, strlen(bad[i].text));
    expect_load_fails(path, FERRY_ERR_BAD_FORMAT);
    FERRY_EXPECT_MESSAGE("hwloc");
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/truncated.xml", tmpdir);
  unlink(path);
  rmdir(tmpdir);
}

Test(topology, bad_arguments) {
  ferry_topology *t = NULL;
  expect_load_fails("", FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("xml_path");
  FERRY_EXPECT(ferry_topology_load(NULL, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("out");

  t = load_expected(find_expected("llnl-corona-4x"));
  int n = 0;
  FERRY_EXPECT(ferry_topology_gpu_count(NULL, &n), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_topology_gpu_count(t, NULL), FERRY_ERR_NULL_POINTER);
  int bad_index[] = {-1, 4, 1 << 30};
  for (size_t i = 0; i < sizeof bad_index / sizeof bad_index[0]; i++) {
    ferry_gpu_info g = FERRY_GPU_INFO_INIT;
    FERRY_EXPECT(ferry_topology_get_gpu(t, bad_index[i], &g),
                 FERRY_ERR_OUT_OF_RANGE);
    FERRY_EXPECT_MESSAGE("index");
  }
  /* A struct_size from no _INIT macro, and output left untouched. */
  ferry_gpu_info g;
  ferry_test_poison(&g, sizeof g);
  g.struct_size = 8;
  FERRY_EXPECT(ferry_topology_get_gpu(t, 0, &g), FERRY_ERR_STRUCT_SIZE);
  FERRY_EXPECT_MESSAGE("struct_size");
  cr_expect_eq((unsigned char)g.pci_bus_id[0], 0xA5u);
  ferry_topology_info ti = {.struct_size = 0};
  FERRY_EXPECT(ferry_topology_get_info(t, &ti), FERRY_ERR_STRUCT_SIZE);
  FERRY_EXPECT(ferry_topology_find_pci(t, NULL, &g), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("pci_bus_id");
  ferry_topology_destroy(t);
  ferry_topology_destroy(NULL);
}

/* The machine topology is loaded once however many threads ask at once. */
static void *select_in_thread(void *arg) {
  ferry_selection_info *out = arg;
  ferry_selection *sel = NULL;
  if (ferry_select_machine("cpu", -1, &sel) != FERRY_OK)
    return (void *)1;
  ferry_status st = ferry_selection_get_info(sel, out);
  ferry_selection_destroy(sel);
  return st == FERRY_OK ? NULL : (void *)1;
}

Test(topology, concurrent_first_use) {
  enum { N = 8 };
  pthread_t th[N];
  ferry_selection_info info[N];
  for (int i = 0; i < N; i++) {
    ferry_selection_info init = FERRY_SELECTION_INFO_INIT;
    info[i] = init;
    cr_assert_eq(pthread_create(&th[i], NULL, select_in_thread, &info[i]), 0);
  }
  for (int i = 0; i < N; i++) {
    void *r = (void *)1;
    pthread_join(th[i], &r);
    cr_expect_null(r, "thread %d failed", i);
    cr_expect_str_eq(info[i].backend, "cpu");
    cr_expect_str_eq(info[i].nodeset, info[0].nodeset);
    cr_expect_str_eq(info[i].cpuset, info[0].cpuset);
    cr_expect_neq(info[i].cpuset[0], '\0');
  }
}
