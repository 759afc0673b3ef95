/* ferry-info's human-readable report. */
#include "info_report.h"

#include <stdio.h>
#include <string.h>

static void print_topology(const info_report *r, const char *title) {
  printf("Topology: %s\n", title);
  if (!r->have_topology) {
    printf("  unavailable: %s\n", r->topology_error);
    return;
  }
  const ferry_topology_info *t = &r->topology;
  printf("  %d NUMA node%s (%s), %d cores, %d PUs (%s)%s\n", t->numa_node_count,
         t->numa_node_count == 1 ? "" : "s", t->nodeset, t->core_count,
         t->pu_count, t->cpuset, t->this_system ? "" : "  [not this machine]");
  printf("GPUs (hwloc PCI devices of NVIDIA/AMD, display or accelerator "
         "class):\n");
  if (r->gpu_count == 0)
    printf("  none\n");
  for (int i = 0; i < r->gpu_count; i++) {
    const ferry_gpu_info *g = &r->gpus[i];
    char numa[256];
    printf("  %s  %-6s %04x:%04x class %04x  %s\n", g->pci_bus_id, g->vendor,
           g->vendor_id, g->device_id, g->pci_class,
           g->model[0] ? g->model : "(model unknown)");
    printf("                NUMA %s  PUs %s  (locality of its %s%s%s)\n",
           info_numa_list(g->numa_nodes, g->numa_node_count, numa, sizeof numa),
           g->cpuset[0] ? g->cpuset : "?", g->locality,
           g->os_devices[0] ? "; hwloc OS devices " : "", g->os_devices);
  }
}

static void print_backends(const info_report *r) {
  printf("Backends%s:\n",
         r->from_file ? " (as if each GPU's plugin reported it)" : "");
  for (int i = 0; i < r->backend_count; i++) {
    const info_backend *b = &r->backends[i];
    if (!b->info.available) {
      printf("  %-7s unavailable: %s\n", b->info.name, b->info.reason);
      continue;
    }
    if (r->from_file)
      printf("  %-7s available   %d device%s\n", b->info.name, b->device_count,
             b->device_count == 1 ? "" : "s");
    else
      printf("  %-7s available   %s, plugin ABI %u.%u\n", b->info.name,
             b->info.path, b->info.abi_major, b->info.abi_minor);
    for (int d = 0; d < b->device_count; d++) {
      const ferry_device_info *di = &b->devices[d];
      printf("          device %d: %s (%s)", d, di->name,
             di->pci_bus_id[0] ? di->pci_bus_id : "no PCI bus id");
      if (!r->from_file) {
        printf(", capability %u.%u", di->capability_major,
               di->capability_minor);
        if (di->total_memory)
          printf(", %.1f GiB", (double)di->total_memory / (1u << 30));
        if (di->host_unified_memory)
          printf(", host-unified memory");
      }
      if (!di->usable)
        printf(", UNUSABLE: %s", di->reason);
      printf("\n");
    }
  }
}

static void print_selection(const info_report *r) {
  if (!r->have_selection) {
    printf("Decision: could not be made: %s\n", r->selection_error);
    return;
  }
  const ferry_selection_info *s = &r->selection;
  if (s->status != FERRY_OK) {
    printf("Decision (request '%s'): none: %s: %s\n", s->request,
           ferry_status_string(s->status), s->message);
  } else {
    char numa[256];
    printf("Decision (request '%s'): %s device %d%s%s%s\n", s->request,
           s->backend, s->device_index, s->pci_bus_id[0] ? " (" : "",
           s->pci_bus_id, s->pci_bus_id[0] ? ")" : "");
    printf("  host memory on NUMA nodes %s, worker pool on PUs %s%s\n",
           s->numa_node_count
               ? info_numa_list(s->numa_nodes, s->numa_node_count, numa,
                                sizeof numa)
               : "(any)",
           s->cpuset[0] ? s->cpuset : "(any)",
           s->locality_known ? "" : "  [device not in the topology]");
  }
  if (r->rejected_count > 0)
    printf("  not chosen:\n");
  for (int i = 0; i < r->rejected_count; i++)
    printf("    %s\n", r->rejected[i].reason);
}

void info_print_text(const info_report *r, const char *title) {
  print_topology(r, title);
  print_backends(r);
  print_selection(r);
}
