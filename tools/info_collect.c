/* Gathering what ferry-info reports, through the public API only. */
#include "info_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_backends[] = {"cpu", "cuda", "hip", "opencl"};
#define KNOWN_COUNT 4

const char *info_numa_list(const uint32_t *nodes, int count, char *buf,
                           size_t size) {
  size_t len = 0;
  buf[0] = '\0';
  int shown = count < FERRY_TOPOLOGY_MAX_NUMA ? count : FERRY_TOPOLOGY_MAX_NUMA;
  for (int i = 0; i < shown && len < size; i++) {
    int n = snprintf(buf + len, size - len, "%s%u", i ? "," : "", nodes[i]);
    if (n < 0)
      break;
    len += (size_t)n;
  }
  return buf;
}

/* Returns the loaded topology (the caller destroys it), or NULL. */
static ferry_topology *collect_topology(const char *path, info_report *r) {
  ferry_topology *t = NULL;
  if (ferry_topology_load(path, &t) != FERRY_OK) {
    snprintf(r->topology_error, sizeof r->topology_error, "%s",
             ferry_last_error());
    return NULL;
  }
  ferry_topology_info ti = FERRY_TOPOLOGY_INFO_INIT;
  int n = 0;
  if (ferry_topology_get_info(t, &ti) != FERRY_OK ||
      ferry_topology_gpu_count(t, &n) != FERRY_OK) {
    snprintf(r->topology_error, sizeof r->topology_error, "%s",
             ferry_last_error());
    ferry_topology_destroy(t);
    return NULL;
  }
  r->topology = ti;
  r->gpus = n > 0 ? calloc((size_t)n, sizeof *r->gpus) : NULL;
  for (int i = 0; i < n && r->gpus; i++) {
    ferry_gpu_info g = FERRY_GPU_INFO_INIT;
    if (ferry_topology_get_gpu(t, i, &g) == FERRY_OK)
      r->gpus[r->gpu_count++] = g;
  }
  r->have_topology = true;
  return t;
}

static void collect_selection(info_report *r, ferry_selection *sel) {
  ferry_selection_info si = FERRY_SELECTION_INFO_INIT;
  int n = 0;
  if (ferry_selection_get_info(sel, &si) != FERRY_OK ||
      ferry_selection_rejected_count(sel, &n) != FERRY_OK) {
    snprintf(r->selection_error, sizeof r->selection_error, "%s",
             ferry_last_error());
    return;
  }
  r->selection = si;
  r->have_selection = true;
  r->rejected = n > 0 ? calloc((size_t)n, sizeof *r->rejected) : NULL;
  for (int i = 0; i < n && r->rejected; i++) {
    ferry_rejection rj = FERRY_REJECTION_INIT;
    if (ferry_selection_get_rejected(sel, i, &rj) == FERRY_OK)
      r->rejected[r->rejected_count++] = rj;
  }
}

static info_backend *add_backend(info_report *r) {
  info_backend *b =
      realloc(r->backends, (size_t)(r->backend_count + 1) * sizeof *b);
  if (b == NULL)
    return NULL;
  r->backends = b;
  info_backend *e = &b[r->backend_count++];
  memset(e, 0, sizeof *e);
  e->info.struct_size = sizeof e->info;
  return e;
}

static void collect_backends(info_report *r) {
  int n = 0;
  if (ferry_backend_count(&n) != FERRY_OK)
    n = 0;
  for (int i = 0; i < n; i++) {
    ferry_backend_info bi = FERRY_BACKEND_INFO_INIT;
    if (ferry_backend_get_info(i, &bi) != FERRY_OK)
      continue;
    info_backend *e = add_backend(r);
    if (e == NULL)
      return;
    e->info = bi;
    e->found = true;
    if (!bi.available || bi.device_count <= 0)
      continue;
    e->devices = calloc((size_t)bi.device_count, sizeof *e->devices);
    for (int d = 0; d < bi.device_count && e->devices; d++) {
      ferry_device_info di = FERRY_DEVICE_INFO_INIT;
      if (ferry_backend_get_device_info(bi.name, d, &di) == FERRY_OK)
        e->devices[e->device_count++] = di;
    }
  }
  /* Backends ferry knows of but whose plugin is not here. */
  for (int k = 0; k < KNOWN_COUNT; k++) {
    bool seen = false;
    for (int i = 0; i < r->backend_count && !seen; i++)
      seen = strcmp(r->backends[i].info.name, known_backends[k]) == 0;
    if (seen)
      continue;
    info_backend *e = add_backend(r);
    if (e == NULL)
      return;
    snprintf(e->info.name, sizeof e->info.name, "%s", known_backends[k]);
    snprintf(e->info.reason, sizeof e->info.reason,
             "no plugin libferry-%s.so was found (it is built only where its "
             "toolkit is installed; FERRY_PLUGIN_PATH replaces the plugin "
             "directory)",
             known_backends[k]);
  }
}

void info_collect_machine(const char *request, int device_index,
                          info_report *out) {
  memset(out, 0, sizeof *out);
  ferry_topology_destroy(collect_topology(NULL, out));
  collect_backends(out);
  ferry_selection *sel = NULL;
  if (ferry_select_machine(request, device_index, &sel) != FERRY_OK) {
    snprintf(out->selection_error, sizeof out->selection_error, "%s",
             ferry_last_error());
    return;
  }
  collect_selection(out, sel);
  ferry_selection_destroy(sel);
}

/* A backend as if its plugin reported the topology's GPUs of `vendor`
 * (cpu: the host); `missing` is the reason when it has none. */
static void synth_backend(info_report *r, const char *name, uint32_t vendor,
                          bool simulated, const char *missing) {
  info_backend *e = add_backend(r);
  if (e == NULL)
    return;
  snprintf(e->info.name, sizeof e->info.name, "%s", name);
  snprintf(e->info.path, sizeof e->info.path, "(simulated from the topology)");
  e->found = true;
  int n = 0;
  for (int i = 0; i < r->gpu_count; i++)
    n += r->gpus[i].vendor_id == vendor;
  if (strcmp(name, "cpu") == 0)
    n = 1;
  if (n == 0 || !simulated) {
    snprintf(e->info.reason, sizeof e->info.reason, "%s", missing);
    return;
  }
  e->devices = calloc((size_t)n, sizeof *e->devices);
  if (e->devices == NULL)
    return;
  if (strcmp(name, "cpu") == 0) {
    ferry_device_info d = FERRY_DEVICE_INFO_INIT;
    snprintf(d.name, sizeof d.name, "host CPU");
    d.host_unified_memory = 1;
    d.usable = 1;
    e->devices[e->device_count++] = d;
  } else {
    /* In PCI bus id order, as CUDA_DEVICE_ORDER=PCI_BUS_ID numbers them. */
    for (int i = 0; i < r->gpu_count; i++) {
      if (r->gpus[i].vendor_id != vendor)
        continue;
      ferry_device_info d = FERRY_DEVICE_INFO_INIT;
      snprintf(d.name, sizeof d.name, "%s",
               r->gpus[i].model[0] ? r->gpus[i].model : "GPU");
      snprintf(d.pci_bus_id, sizeof d.pci_bus_id, "%s", r->gpus[i].pci_bus_id);
      d.pci_vendor_id = vendor;
      d.usable = 1;
      e->devices[e->device_count++] = d;
    }
  }
  e->info.available = 1;
  e->info.device_count = e->device_count;
}

bool info_collect_file(const char *path, const char *request, int device_index,
                       info_report *out, char *error, size_t error_size) {
  memset(out, 0, sizeof *out);
  out->from_file = true;
  ferry_topology *t = collect_topology(path, out);
  if (t == NULL) {
    snprintf(error, error_size, "%s", out->topology_error);
    return false;
  }
  synth_backend(out, "cuda", 0x10de, true, "the topology shows no NVIDIA GPU");
  synth_backend(out, "hip", 0x1002, true, "the topology shows no AMD GPU");
  synth_backend(out, "opencl", 0, false,
                "not simulated: from a topology, each GPU goes to its "
                "vendor's backend");
  synth_backend(out, "cpu", 0, true, "");

  ferry_select_candidate cands[8];
  int nc = 0;
  for (int i = 0; i < out->backend_count && nc < 8; i++) {
    const info_backend *b = &out->backends[i];
    ferry_select_candidate c = FERRY_SELECT_CANDIDATE_INIT;
    c.backend = b->info.name;
    c.available = b->info.available;
    c.status = b->info.available ? FERRY_OK : FERRY_ERR_NO_BACKEND;
    c.reason = b->info.reason;
    c.device_count = b->device_count;
    c.devices = b->devices;
    cands[nc++] = c;
  }
  ferry_selection *sel = NULL;
  ferry_select_input in = FERRY_SELECT_INPUT_INIT;
  in.request = request;
  in.device_index = device_index;
  in.candidate_count = nc;
  in.candidates = cands;
  if (ferry_select(t, &in, &sel) != FERRY_OK) {
    snprintf(out->selection_error, sizeof out->selection_error, "%s",
             ferry_last_error());
  } else {
    collect_selection(out, sel);
  }
  ferry_selection_destroy(sel);
  ferry_topology_destroy(t);
  return true;
}

void info_report_free(info_report *r) {
  for (int i = 0; i < r->backend_count; i++)
    free(r->backends[i].devices);
  free(r->backends);
  free(r->gpus);
  free(r->rejected);
  memset(r, 0, sizeof *r);
}
