/* ferry-info --json. Field names are a contract with scripts (and the
 * tests): gpus[].pci_bus_id/vendor/numa_nodes, backends[].name/available/
 * reason, selected.backend/device/numa_nodes. */
#include "info_report.h"
#include "json_out.h"

#include <stdio.h>

static void numa_array(json_out *j, const char *key, const uint32_t *nodes,
                       int count) {
  json_begin_array(j, key);
  int shown = count < FERRY_TOPOLOGY_MAX_NUMA ? count : FERRY_TOPOLOGY_MAX_NUMA;
  for (int i = 0; i < shown; i++)
    json_int(j, NULL, nodes[i]);
  json_end_array(j);
}

static void hex(json_out *j, const char *key, unsigned v) {
  char buf[16];
  snprintf(buf, sizeof buf, "0x%04x", v);
  json_string(j, key, buf);
}

static void topology(json_out *j, const info_report *r) {
  json_begin_object(j, "topology");
  json_bool(j, "available", r->have_topology);
  if (!r->have_topology) {
    json_string(j, "error", r->topology_error);
  } else {
    const ferry_topology_info *t = &r->topology;
    json_string(j, "source", t->source[0] ? t->source : NULL);
    json_bool(j, "this_system", t->this_system != 0);
    json_int(j, "numa_node_count", t->numa_node_count);
    json_string(j, "nodeset", t->nodeset);
    json_string(j, "cpuset", t->cpuset);
    json_int(j, "cores", t->core_count);
    json_int(j, "pus", t->pu_count);
  }
  json_end_object(j);
}

static void gpus(json_out *j, const info_report *r) {
  json_begin_array(j, "gpus");
  for (int i = 0; i < r->gpu_count; i++) {
    const ferry_gpu_info *g = &r->gpus[i];
    json_begin_object(j, NULL);
    json_string(j, "pci_bus_id", g->pci_bus_id);
    json_string(j, "vendor", g->vendor);
    hex(j, "vendor_id", g->vendor_id);
    hex(j, "device_id", g->device_id);
    hex(j, "class", g->pci_class);
    json_string(j, "model", g->model[0] ? g->model : NULL);
    numa_array(j, "numa_nodes", g->numa_nodes, g->numa_node_count);
    json_string(j, "nodeset", g->nodeset);
    json_string(j, "cpuset", g->cpuset);
    json_string(j, "locality", g->locality);
    json_string(j, "os_devices", g->os_devices);
    json_end_object(j);
  }
  json_end_array(j);
}

static void device(json_out *j, const ferry_device_info *d) {
  json_begin_object(j, NULL);
  json_string(j, "name", d->name);
  json_string(j, "pci_bus_id", d->pci_bus_id[0] ? d->pci_bus_id : NULL);
  hex(j, "vendor_id", d->pci_vendor_id);
  json_int(j, "total_memory", (long long)d->total_memory);
  char cap[32];
  snprintf(cap, sizeof cap, "%u.%u", d->capability_major, d->capability_minor);
  json_string(j, "capability", cap);
  json_int(j, "base_address_align", d->base_address_align);
  json_bool(j, "host_unified_memory", d->host_unified_memory != 0);
  json_bool(j, "usable", d->usable != 0);
  json_string(j, "reason", d->reason);
  json_end_object(j);
}

static void backends(json_out *j, const info_report *r) {
  json_begin_array(j, "backends");
  for (int i = 0; i < r->backend_count; i++) {
    const info_backend *b = &r->backends[i];
    json_begin_object(j, NULL);
    json_string(j, "name", b->info.name);
    json_bool(j, "available", b->info.available != 0);
    json_string(j, "reason", b->info.reason);
    json_bool(j, "found", b->found);
    json_string(j, "path", b->info.path[0] ? b->info.path : NULL);
    if (b->found && !r->from_file) {
      char abi[32];
      snprintf(abi, sizeof abi, "%u.%u", b->info.abi_major, b->info.abi_minor);
      json_string(j, "abi", abi);
    }
    json_begin_array(j, "devices");
    for (int d = 0; d < b->device_count; d++)
      device(j, &b->devices[d]);
    json_end_array(j);
    json_end_object(j);
  }
  json_end_array(j);
}

static void selection(json_out *j, const info_report *r) {
  json_begin_object(j, "selected");
  if (!r->have_selection) {
    json_null(j, "backend");
    json_string(j, "status", "error");
    json_string(j, "message", r->selection_error);
    json_end_object(j);
    return;
  }
  const ferry_selection_info *s = &r->selection;
  bool ok = s->status == FERRY_OK;
  json_string(j, "request", s->request);
  json_string(j, "status", ferry_status_string(s->status));
  json_string(j, "backend", ok ? s->backend : NULL);
  if (ok)
    json_int(j, "device", s->device_index);
  else
    json_null(j, "device");
  json_string(j, "pci_bus_id", s->pci_bus_id[0] ? s->pci_bus_id : NULL);
  numa_array(j, "numa_nodes", s->numa_nodes, s->numa_node_count);
  json_string(j, "nodeset", s->nodeset);
  json_string(j, "cpuset", s->cpuset);
  json_bool(j, "locality_known", s->locality_known != 0);
  json_string(j, "message", s->message);
  json_end_object(j);

  json_begin_array(j, "rejected");
  for (int i = 0; i < r->rejected_count; i++) {
    const ferry_rejection *x = &r->rejected[i];
    json_begin_object(j, NULL);
    json_string(j, "backend", x->backend);
    if (x->device_index >= 0)
      json_int(j, "device", x->device_index);
    else
      json_null(j, "device");
    json_string(j, "pci_bus_id", x->pci_bus_id[0] ? x->pci_bus_id : NULL);
    json_string(j, "status", ferry_status_string(x->status));
    json_string(j, "reason", x->reason);
    json_end_object(j);
  }
  json_end_array(j);
}

static void report(json_out *j, const info_report *r) {
  json_string(j, "decided_from", r->from_file ? "topology" : "machine");
  topology(j, r);
  gpus(j, r);
  backends(j, r);
  selection(j, r);
}

int info_print_json(const info_report *r, const info_report *machine) {
  json_out j;
  json_out_init(&j, stdout);
  json_begin_object(&j, NULL);
  unsigned v = ferry_get_api_version();
  char ver[32];
  snprintf(ver, sizeof ver, "%u.%u.%u", v >> 16, (v >> 8) & 0xffu, v & 0xffu);
  json_string(&j, "ferry_api_version", ver);
  report(&j, r);
  if (machine != NULL) {
    json_begin_object(&j, "machine");
    report(&j, machine);
    json_end_object(&j);
  }
  json_end_object(&j);
  return json_out_finish(&j);
}
