/* The decision as a pure function: real topologies with synthesized
 * candidate lists (what plugins would report), no plugin loaded. */
#include "harness.h"
#include "test_topology_expected.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEV 32
#define MAX_CAND 8

typedef struct scenario {
  int n;
  ferry_select_candidate c[MAX_CAND];
  ferry_device_info devs[MAX_CAND][MAX_DEV];
  ferry_select_input in;
} scenario;

static ferry_select_candidate *add(scenario *s, const char *name, int available,
                                   const char *reason) {
  cr_assert_lt(s->n, MAX_CAND);
  ferry_select_candidate c = FERRY_SELECT_CANDIDATE_INIT;
  c.backend = name;
  c.available = available;
  c.status = available ? FERRY_OK : FERRY_ERR_NO_BACKEND;
  c.reason = reason;
  c.devices = s->devs[s->n];
  s->c[s->n] = c;
  return &s->c[s->n++];
}

static ferry_device_info *add_dev(scenario *s, ferry_select_candidate *c,
                                  const char *name, const char *bus,
                                  uint32_t vendor) {
  int ci = (int)(c - s->c);
  cr_assert_lt(c->device_count, MAX_DEV);
  ferry_device_info d = FERRY_DEVICE_INFO_INIT;
  snprintf(d.name, sizeof d.name, "%s", name);
  snprintf(d.pci_bus_id, sizeof d.pci_bus_id, "%s", bus ? bus : "");
  d.pci_vendor_id = vendor;
  d.capability_major = 8;
  d.usable = 1;
  s->devs[ci][c->device_count] = d;
  return &s->devs[ci][c->device_count++];
}

static void add_cpu(scenario *s) {
  ferry_select_candidate *c = add(s, "cpu", 1, NULL);
  add_dev(s, c, "host cpu", NULL, 0);
}

/* The vendor's backend with the topology's GPUs, bus order or reversed. */
static ferry_select_candidate *add_vendor(scenario *s, const char *name,
                                          const expected_topology *e,
                                          int available, const char *reason,
                                          bool reversed) {
  ferry_select_candidate *c = add(s, name, available, reason);
  for (int k = 0; k < e->gpu_count; k++) {
    int i = reversed ? e->gpu_count - 1 - k : k;
    add_dev(s, c, "gpu", e->gpus[i].bus, e->vendor_id);
  }
  return c;
}

static ferry_selection *decide(const ferry_topology *t, scenario *s,
                               const char *request, int device_index) {
  ferry_select_input in = FERRY_SELECT_INPUT_INIT;
  in.request = request;
  in.device_index = device_index;
  in.candidate_count = s->n;
  in.candidates = s->c;
  ferry_selection *sel = NULL;
  FERRY_OK_(ferry_select(t, &in, &sel));
  cr_assert_not_null(sel);
  return sel;
}

static ferry_selection_info info_of(const ferry_selection *sel) {
  ferry_selection_info si;
  ferry_test_poison(&si, sizeof si);
  si.struct_size = sizeof si;
  FERRY_OK_(ferry_selection_get_info(sel, &si));
  return si;
}

/* The index of the rejection whose reason contains `needle`, or -1. */
static int find_rejection(const ferry_selection *sel, const char *needle) {
  int n = -1;
  FERRY_OK_(ferry_selection_rejected_count(sel, &n));
  for (int i = 0; i < n; i++) {
    ferry_rejection r = FERRY_REJECTION_INIT;
    FERRY_OK_(ferry_selection_get_rejected(sel, i, &r));
    if (strstr(r.reason, needle) != NULL)
      return i;
  }
  return -1;
}

static ferry_rejection rejection(const ferry_selection *sel, int i) {
  ferry_rejection r = FERRY_REJECTION_INIT;
  FERRY_OK_(ferry_selection_get_rejected(sel, i, &r));
  return r;
}

#define EXPECT_REJECTED(sel, needle)                                           \
  cr_expect_geq(find_rejection((sel), (needle)), 0, "no rejection '%s'",       \
                (needle))

static ferry_topology *load(const expected_topology *e) {
  char path[1024];
  ferry_topology *t = NULL;
  FERRY_OK_(
      ferry_topology_load(expected_topology_path(e, path, sizeof path), &t));
  return t;
}

static const expected_topology *find_expected(const char *prefix) {
  for (int f = 0; f < EXPECTED_TOPOLOGY_COUNT; f++)
    if (strncmp(expected_topologies[f].file, prefix, strlen(prefix)) == 0)
      return &expected_topologies[f];
  cr_assert_fail("no expected topology %s", prefix);
  return NULL;
}

static void expect_placed_on(const ferry_selection_info *si,
                             const expected_topology *e, int gpu) {
  char want[16];
  snprintf(want, sizeof want, "%u", e->gpus[gpu].numa);
  cr_expect_eq(si->locality_known, 1, "%s", e->file);
  cr_expect_eq(si->numa_node_count, 1, "%s", e->file);
  cr_expect_eq(si->numa_nodes[0], e->gpus[gpu].numa, "%s %s: NUMA %u", e->file,
               e->gpus[gpu].bus, si->numa_nodes[0]);
  cr_expect_str_eq(si->nodeset, want, "%s", e->file);
  cr_expect_neq(si->cpuset[0], '\0', "%s", e->file);
}

/* Every topology, plugins for every backend: the vendor's backend wins, with
 * the GPU of lowest bus id, placed on that GPU's NUMA node. */
Test(selection, auto_picks_the_vendor_backend_and_lowest_bus_id) {
  for (int f = 0; f < EXPECTED_TOPOLOGY_COUNT; f++) {
    const expected_topology *e = &expected_topologies[f];
    ferry_topology *t = load(e);
    for (int reversed = 0; reversed < 2; reversed++) {
      scenario s = {0};
      bool nvidia = e->vendor_id == 0x10de;
      add_cpu(&s);
      add_vendor(&s, "opencl", e, 1, NULL, false);
      add_vendor(&s, "cuda", e, nvidia, nvidia ? NULL : "no driver", reversed);
      add_vendor(&s, "hip", e, !nvidia, nvidia ? "no driver" : NULL, reversed);
      ferry_selection *sel = decide(t, &s, NULL, -1);
      ferry_selection_info si = info_of(sel);
      cr_expect_eq(si.status, FERRY_OK, "%s: %s", e->file, si.message);
      cr_expect_str_eq(si.backend, e->backend, "%s", e->file);
      cr_expect_str_eq(si.request, "auto");
      cr_expect_eq(si.device_index, reversed ? e->gpu_count - 1 : 0, "%s",
                   e->file);
      cr_expect_str_eq(si.pci_bus_id, e->gpus[0].bus, "%s", e->file);
      cr_expect_str_eq(s.c[si.candidate].backend, e->backend);
      expect_placed_on(&si, e, 0);
      EXPECT_REJECTED(sel, "cpu: a GPU backend was preferred");
      char want[128];
      snprintf(want, sizeof want, "opencl: %s was preferred", e->backend);
      EXPECT_REJECTED(sel, want);
      snprintf(want, sizeof want, "%s: plugin unavailable: no driver",
               nvidia ? "hip" : "cuda");
      EXPECT_REJECTED(sel, want);
      /* every other device of the chosen backend, with why */
      for (int i = 1; i < e->gpu_count; i++) {
        snprintf(want, sizeof want,
                 "(%s): device %d (%s) has a lower PCI bus id", e->gpus[i].bus,
                 si.device_index, e->gpus[0].bus);
        EXPECT_REJECTED(sel, want);
      }
      ferry_selection_destroy(sel);
    }
    ferry_topology_destroy(t);
  }
}

Test(selection, device_index_is_honoured) {
  for (int f = 0; f < EXPECTED_TOPOLOGY_COUNT; f++) {
    const expected_topology *e = &expected_topologies[f];
    ferry_topology *t = load(e);
    bool nvidia = e->vendor_id == 0x10de;
    for (int k = 0; k < e->gpu_count; k++) {
      scenario s = {0};
      add_vendor(&s, nvidia ? "cuda" : "hip", e, 1, NULL, false);
      add_cpu(&s);
      ferry_selection *sel = decide(t, &s, NULL, k);
      ferry_selection_info si = info_of(sel);
      cr_expect_str_eq(si.backend, e->backend);
      cr_expect_eq(si.device_index, k);
      cr_expect_str_eq(si.pci_bus_id, e->gpus[k].bus);
      expect_placed_on(&si, e, k);
      if (e->gpu_count > 1) {
        char want[64];
        snprintf(want, sizeof want, "device index %d was requested", k);
        EXPECT_REJECTED(sel, want);
      }
      ferry_selection_destroy(sel);
    }
    ferry_topology_destroy(t);
  }
}

/* NVIDIA without cuda, AMD without hip: OpenCL drives the GPU. */
Test(selection, vendor_backend_unavailable_falls_to_opencl) {
  for (int f = 0; f < EXPECTED_TOPOLOGY_COUNT; f++) {
    const expected_topology *e = &expected_topologies[f];
    ferry_topology *t = load(e);
    scenario s = {0};
    add_cpu(&s);
    ferry_select_candidate *cuda = add(&s, "cuda", 0,
                                       "libcuda.so.1: cannot "
                                       "open shared object");
    cuda->status = FERRY_ERR_NO_BACKEND;
    add(&s, "hip", 0, "libamdhip64.so.5: cannot open shared object");
    add_vendor(&s, "opencl", e, 1, NULL, true);
    ferry_selection *sel = decide(t, &s, "auto", -1);
    ferry_selection_info si = info_of(sel);
    cr_expect_str_eq(si.backend, "opencl", "%s: %s", e->file, si.message);
    cr_expect_eq(si.device_index, e->gpu_count - 1);
    cr_expect_str_eq(si.pci_bus_id, e->gpus[0].bus);
    expect_placed_on(&si, e, 0);
    EXPECT_REJECTED(
        sel, "cuda: plugin unavailable: libcuda.so.1: cannot open shared "
             "object");
    EXPECT_REJECTED(sel, "hip: plugin unavailable: libamdhip64.so.5");
    EXPECT_REJECTED(sel, "cpu: a GPU backend was preferred");
    ferry_selection_destroy(sel);
    ferry_topology_destroy(t);
  }
}

Test(selection, unusable_devices_keep_their_reason) {
  const expected_topology *e = find_expected("llnl-corona-4x");
  ferry_topology *t = load(e);
  scenario s = {0};
  add_cpu(&s);
  add(&s, "hip", 0, "no ROCm runtime");
  ferry_select_candidate *ocl = add(&s, "opencl", 1, NULL);
  /* device 1 is the lowest bus id but too old: the next lowest wins */
  add_dev(&s, ocl, "Vega 20", e->gpus[1].bus, 0x1002);
  ferry_device_info *old = add_dev(&s, ocl, "Vega 20", e->gpus[0].bus, 0x1002);
  old->usable = 0;
  snprintf(old->reason, sizeof old->reason, "below OpenCL 1.2");
  add_dev(&s, ocl, "Vega 20", e->gpus[3].bus, 0x1002);
  add_dev(&s, ocl, "Vega 20", e->gpus[2].bus, 0x1002);
  ferry_selection *sel = decide(t, &s, NULL, -1);
  ferry_selection_info si = info_of(sel);
  cr_expect_str_eq(si.backend, "opencl");
  cr_expect_eq(si.device_index, 0);
  cr_expect_str_eq(si.pci_bus_id, "0000:23:00.0");
  expect_placed_on(&si, e, 1);
  int i =
      find_rejection(sel, "opencl device 1 (0000:13:00.0): below OpenCL 1.2");
  cr_assert_geq(i, 0);
  ferry_rejection r = rejection(sel, i);
  cr_expect_str_eq(r.backend, "opencl");
  cr_expect_eq(r.device_index, 1);
  cr_expect_str_eq(r.pci_bus_id, "0000:13:00.0");

  /* asking for that device strictly fails, saying why */
  ferry_selection_destroy(sel);
  sel = decide(t, &s, "opencl", 1);
  si = info_of(sel);
  cr_expect_eq(si.status, FERRY_ERR_DEVICE_TOO_OLD, "%s",
               ferry_status_string(si.status));
  cr_expect_str_eq(si.backend, "");
  cr_expect_eq(si.device_index, -1);
  cr_expect(strstr(si.message, "device index 1 was requested but opencl "
                               "device 1 (0000:13:00.0) is unusable: below "
                               "OpenCL 1.2") != NULL,
            "%s", si.message);
  ferry_selection_destroy(sel);
  ferry_topology_destroy(t);
}

Test(selection, a_single_name_is_strict) {
  const expected_topology *e = find_expected("nvidia-dgx2");
  ferry_topology *t = load(e);
  scenario s = {0};
  add_cpu(&s);
  ferry_select_candidate *cuda = add(&s, "cuda", 0, "driver too old");
  cuda->status = FERRY_ERR_DEVICE_TOO_OLD;
  add_vendor(&s, "opencl", e, 1, NULL, false);
  const char *requests[] = {"cuda", "CUDA", " cuda "};
  for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
    ferry_selection *sel = decide(t, &s, requests[i], -1);
    ferry_selection_info si = info_of(sel);
    cr_expect_eq(si.status, FERRY_ERR_DEVICE_TOO_OLD, "'%s': %s", requests[i],
                 ferry_status_string(si.status));
    cr_expect_str_eq(si.backend, "");
    cr_expect_eq(si.candidate, -1);
    cr_expect_str_eq(si.nodeset, "");
    cr_expect(strstr(si.message, "cuda: plugin unavailable: driver too old"),
              "%s", si.message);
    EXPECT_REJECTED(sel, "opencl: not in the request 'cuda'");
    ferry_selection_destroy(sel);
  }
  /* a name no candidate has */
  ferry_selection *sel = decide(t, &s, "hip", -1);
  ferry_selection_info si = info_of(sel);
  cr_expect_eq(si.status, FERRY_ERR_NO_BACKEND);
  cr_expect(strstr(si.message, "hip: no such backend"), "%s", si.message);
  ferry_selection_destroy(sel);
  /* a device index the backend lacks */
  sel = decide(t, &s, "opencl", 16);
  si = info_of(sel);
  cr_expect_eq(si.status, FERRY_ERR_OUT_OF_RANGE);
  cr_expect(strstr(si.message, "device index 16"), "%s", si.message);
  ferry_selection_destroy(sel);
  /* and the strict name that is there */
  sel = decide(t, &s, "opencl", 5);
  si = info_of(sel);
  cr_expect_str_eq(si.backend, "opencl");
  cr_expect_eq(si.device_index, 5);
  expect_placed_on(&si, e, 5);
  ferry_selection_destroy(sel);
  ferry_topology_destroy(t);
}

Test(selection, a_list_falls_through_in_order) {
  const expected_topology *e = find_expected("llnl-lassen");
  ferry_topology *t = load(e);
  scenario s = {0};
  add_cpu(&s);
  add(&s, "hip", 0, "no ROCm");
  add_vendor(&s, "opencl", e, 1, NULL, false);
  add_vendor(&s, "cuda", e, 1, NULL, false);
  ferry_selection *sel = decide(t, &s, "hip, opencl,cpu", -1);
  ferry_selection_info si = info_of(sel);
  cr_expect_str_eq(si.request, "hip,opencl,cpu");
  cr_expect_str_eq(si.backend, "opencl");
  cr_expect_str_eq(si.pci_bus_id, "0004:04:00.0");
  EXPECT_REJECTED(sel, "hip: plugin unavailable: no ROCm");
  EXPECT_REJECTED(sel, "cpu: 'opencl' comes first in the request");
  EXPECT_REJECTED(sel, "cuda: not in the request 'hip,opencl,cpu'");
  ferry_selection_destroy(sel);

  /* cpu from a list: the whole machine, P#0 and P#8 */
  sel = decide(t, &s, "hip,cpu", -1);
  si = info_of(sel);
  cr_expect_str_eq(si.backend, "cpu");
  cr_expect_eq(si.device_index, 0);
  cr_expect_eq(si.locality_known, 1);
  cr_expect_str_eq(si.nodeset, "0,8");
  cr_expect_eq(si.numa_node_count, 2);
  cr_expect_eq(si.numa_nodes[0], 0u);
  cr_expect_eq(si.numa_nodes[1], 8u);
  cr_expect_str_eq(si.cpuset, "8-87,96-175");
  ferry_selection_destroy(sel);

  /* a name twice is asked for once */
  sel = decide(t, &s, "hip,HIP,cpu,hip", -1);
  si = info_of(sel);
  cr_expect_str_eq(si.request, "hip,cpu");
  cr_expect_str_eq(si.backend, "cpu");
  cr_expect_lt(find_rejection(sel, "hip: no such backend"), 0);
  ferry_selection_destroy(sel);

  /* nothing in the list qualifies */
  sel = decide(t, &s, "hip,rocm", -1);
  si = info_of(sel);
  cr_expect_eq(si.status, FERRY_ERR_NO_BACKEND);
  cr_expect(strstr(si.message, "no backend qualifies"), "%s", si.message);
  cr_expect(strstr(si.message, "hip: plugin unavailable: no ROCm"), "%s",
            si.message);
  cr_expect(strstr(si.message, "rocm: no such backend"), "%s", si.message);
  ferry_selection_destroy(sel);
  ferry_topology_destroy(t);
}

/* No GPU: PoCL's CPU device is no reason to leave the cpu backend, but it
 * can be asked for by name. */
Test(selection, without_a_gpu_auto_is_cpu) {
  ferry_topology *t = NULL;
  FERRY_OK_(ferry_topology_load(NULL, &t));
  ferry_topology_info ti = FERRY_TOPOLOGY_INFO_INIT;
  FERRY_OK_(ferry_topology_get_info(t, &ti));
  scenario s = {0};
  add(&s, "cuda", 0, "no plugin");
  ferry_select_candidate *ocl = add(&s, "opencl", 1, NULL);
  add_dev(&s, ocl, "cpu-haswell-Intel(R) Xeon(R)", NULL, 0x6c636f70);
  add_cpu(&s);
  ferry_selection *sel = decide(t, &s, NULL, -1);
  ferry_selection_info si = info_of(sel);
  cr_expect_str_eq(si.backend, "cpu");
  cr_expect_str_eq(si.nodeset, ti.nodeset);
  cr_expect_str_eq(si.cpuset, ti.cpuset);
  cr_expect_str_eq(si.pci_bus_id, "");
  EXPECT_REJECTED(sel, "opencl device 0 (cpu-haswell-Intel(R) Xeon(R)): not "
                       "on PCI");
  EXPECT_REJECTED(sel, "opencl: no GPU for auto among its 1 device (1 not "
                       "on PCI, 0 of another vendor, 0 unusable)");
  EXPECT_REJECTED(sel, "hip: no such backend among the candidates");
  ferry_selection_destroy(sel);

  sel = decide(t, &s, "opencl", -1);
  si = info_of(sel);
  cr_expect_str_eq(si.backend, "opencl");
  cr_expect_eq(si.locality_known, 0, "a device without a bus id");
  cr_expect_str_eq(si.nodeset, ti.nodeset);
  EXPECT_REJECTED(sel, "cpu: not in the request 'opencl'");
  ferry_selection_destroy(sel);
  ferry_topology_destroy(t);
}

/* The stub pretends to be every backend with the same devices: auto must
 * still give AMD GPUs to hip and NVIDIA GPUs to cuda. */
Test(selection, auto_matches_backend_and_vendor) {
  const expected_topology *amd = find_expected("llnl-tioga");
  ferry_topology *t = load(amd);
  for (int vendor_known = 0; vendor_known < 2; vendor_known++) {
    scenario s = {0};
    ferry_select_candidate *cuda = add(&s, "cuda", 1, NULL);
    ferry_select_candidate *hip = add(&s, "hip", 1, NULL);
    for (int i = 0; i < amd->gpu_count; i++) {
      /* vendor 0: ferry finds it in the topology by bus id */
      add_dev(&s, cuda, "gpu", amd->gpus[i].bus, vendor_known ? 0x1002 : 0);
      add_dev(&s, hip, "gpu", amd->gpus[i].bus, vendor_known ? 0x1002 : 0);
    }
    add_cpu(&s);
    ferry_selection *sel = decide(t, &s, NULL, -1);
    ferry_selection_info si = info_of(sel);
    cr_expect_str_eq(si.backend, "hip");
    cr_expect_str_eq(si.pci_bus_id, "0000:c1:00.0");
    expect_placed_on(&si, amd, 0);
    EXPECT_REJECTED(sel, "cuda device 0 (0000:c1:00.0): vendor amd, and auto "
                         "takes cuda for nvidia devices only");
    ferry_selection_destroy(sel);
    /* asked for by name, cuda takes them */
    sel = decide(t, &s, "cuda", -1);
    si = info_of(sel);
    cr_expect_str_eq(si.backend, "cuda");
    ferry_selection_destroy(sel);
  }
  ferry_topology_destroy(t);
}

Test(selection, locality_edges) {
  const expected_topology *e = find_expected("nvidia-dgx2");
  ferry_topology *t = load(e);
  scenario s = {0};
  ferry_select_candidate *cuda = add(&s, "cuda", 1, NULL);
  /* bus ids in other spellings, and one the topology lacks */
  add_dev(&s, cuda, "gpu", "0000:E7:00.0", 0x10de);
  add_dev(&s, cuda, "gpu", "b7:00.0", 0x10de);
  add_dev(&s, cuda, "gpu", "0000:01:00.0", 0x10de);
  add_cpu(&s);
  ferry_selection *sel = decide(t, &s, NULL, -1);
  ferry_selection_info si = info_of(sel);
  cr_expect_eq(si.device_index, 2);
  cr_expect_str_eq(si.pci_bus_id, "0000:01:00.0");
  cr_expect_eq(si.locality_known, 0, "not in the topology");
  cr_expect_str_eq(si.nodeset, "0-1", "then the whole machine");
  ferry_selection_destroy(sel);

  sel = decide(t, &s, NULL, 1);
  si = info_of(sel);
  cr_expect_str_eq(si.pci_bus_id, "0000:b7:00.0");
  cr_expect_eq(si.locality_known, 1);
  cr_expect_str_eq(si.nodeset, "1");
  ferry_selection_destroy(sel);

  sel = decide(t, &s, NULL, 0);
  si = info_of(sel);
  cr_expect_str_eq(si.pci_bus_id, "0000:e7:00.0");
  cr_expect_str_eq(si.nodeset, "1");
  ferry_selection_destroy(sel);

  /* no topology: a decision without placement */
  sel = decide(NULL, &s, NULL, 1);
  si = info_of(sel);
  cr_expect_str_eq(si.backend, "cuda");
  cr_expect_eq(si.locality_known, 0);
  cr_expect_eq(si.numa_node_count, 0);
  cr_expect_str_eq(si.nodeset, "");
  cr_expect_str_eq(si.cpuset, "");
  ferry_selection_destroy(sel);

  /* a backend auto does not know is used only by name */
  scenario u = {0};
  ferry_select_candidate *stub = add(&u, "stub", 1, NULL);
  add_dev(&u, stub, "stub", e->gpus[0].bus, 0x10de);
  add_cpu(&u);
  sel = decide(t, &u, NULL, -1);
  si = info_of(sel);
  cr_expect_str_eq(si.backend, "cpu");
  EXPECT_REJECTED(sel, "stub: not tried");
  ferry_selection_destroy(sel);
  sel = decide(t, &u, "stub", -1);
  si = info_of(sel);
  cr_expect_str_eq(si.backend, "stub");
  expect_placed_on(&si, e, 0);
  ferry_selection_destroy(sel);
  ferry_topology_destroy(t);
}

Test(selection, bad_input) {
  scenario s = {0};
  add_cpu(&s);
  ferry_select_input in = FERRY_SELECT_INPUT_INIT;
  in.candidate_count = s.n;
  in.candidates = s.c;
  ferry_selection *sentinel = (ferry_selection *)(uintptr_t)0x5a5a;
  ferry_selection *sel = sentinel;

  FERRY_EXPECT(ferry_select(NULL, NULL, &sel), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_select(NULL, &in, NULL), FERRY_ERR_NULL_POINTER);

  const char *bad_requests[] = {"cuda,,cpu", "auto,cpu", "cpu,auto", "cu#da",
                                ",",         "cuda cpu", "cuda,"};
  for (size_t i = 0; i < sizeof bad_requests / sizeof bad_requests[0]; i++) {
    in.request = bad_requests[i];
    FERRY_EXPECT(ferry_select(NULL, &in, &sel), FERRY_ERR_INVALID_ARGUMENT);
    FERRY_EXPECT_MESSAGE(bad_requests[i]);
  }
  char longreq[300];
  memset(longreq, 'a', sizeof longreq - 1);
  longreq[sizeof longreq - 1] = '\0';
  in.request = longreq;
  FERRY_EXPECT(ferry_select(NULL, &in, &sel), FERRY_ERR_INVALID_ARGUMENT);
  in.request = NULL;

  in.device_index = -2;
  FERRY_EXPECT(ferry_select(NULL, &in, &sel), FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT_MESSAGE("device_index");
  in.device_index = -1;

  in.struct_size = 8;
  FERRY_EXPECT(ferry_select(NULL, &in, &sel), FERRY_ERR_STRUCT_SIZE);
  in.struct_size = sizeof in;

  in.candidate_count = -1;
  FERRY_EXPECT(ferry_select(NULL, &in, &sel), FERRY_ERR_OUT_OF_RANGE);
  in.candidate_count = 1;
  in.candidates = NULL;
  FERRY_EXPECT(ferry_select(NULL, &in, &sel), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("candidates");
  in.candidates = s.c;

  s.c[0].backend = NULL;
  FERRY_EXPECT(ferry_select(NULL, &in, &sel), FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("candidates[0].backend");
  s.c[0].backend = "";
  FERRY_EXPECT(ferry_select(NULL, &in, &sel), FERRY_ERR_INVALID_ARGUMENT);
  s.c[0].backend = "cpu";

  s.c[0].devices = NULL;
  FERRY_EXPECT(ferry_select(NULL, &in, &sel), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("devices");
  s.c[0].devices = s.devs[0];
  s.devs[0][0].struct_size = 0;
  FERRY_EXPECT(ferry_select(NULL, &in, &sel), FERRY_ERR_STRUCT_SIZE);
  s.devs[0][0].struct_size = sizeof(ferry_device_info);
  s.c[0].struct_size = 4;
  FERRY_EXPECT(ferry_select(NULL, &in, &sel), FERRY_ERR_STRUCT_SIZE);
  s.c[0].struct_size = sizeof s.c[0];
  cr_expect_eq(sel, sentinel, "output written on failure");

  /* no candidates at all is a valid question with a clear answer */
  in.candidate_count = 0;
  FERRY_OK_(ferry_select(NULL, &in, &sel));
  ferry_selection_info si = info_of(sel);
  cr_expect_eq(si.status, FERRY_ERR_NO_BACKEND);
  cr_expect(strstr(si.message, "cpu: no such backend"), "%s", si.message);

  ferry_rejection r = FERRY_REJECTION_INIT;
  int n = 0;
  FERRY_OK_(ferry_selection_rejected_count(sel, &n));
  FERRY_EXPECT(ferry_selection_get_rejected(sel, n, &r),
               FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT(ferry_selection_get_rejected(sel, -1, &r),
               FERRY_ERR_OUT_OF_RANGE);
  r.struct_size = 3;
  FERRY_EXPECT(ferry_selection_get_rejected(sel, 0, &r), FERRY_ERR_STRUCT_SIZE);
  FERRY_EXPECT(ferry_selection_get_info(sel, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_selection_rejected_count(NULL, &n),
               FERRY_ERR_NULL_POINTER);
  ferry_selection_destroy(sel);
  ferry_selection_destroy(NULL);
}
