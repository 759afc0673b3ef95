/* Topology snapshots and selection, shared by topology.c, select.c,
 * select_machine.c and host_memory.c. Nothing here is API. */
#ifndef FERRY_CORE_TOPOLOGY_INTERNAL_H
#define FERRY_CORE_TOPOLOGY_INTERNAL_H

#include "internal.h"

#include <ferry/topology.h>

/* A PCI bus id as numbers, ordered domain, bus, device, function. */
typedef struct ferry__busid {
  uint32_t domain, bus, dev, func;
} ferry__busid;

/* Parse "dddd:bb:dd.f" or "bb:dd.f" (hex, any case). */
bool ferry__busid_parse(const char *s, ferry__busid *out);
/* Lowercase "dddd:bb:dd.f" into `out` (FERRY_BUS_ID_MAX bytes). */
void ferry__busid_format(const ferry__busid *id, char *out);
int ferry__busid_cmp(const ferry__busid *a, const ferry__busid *b);

/* "nvidia", "amd", "intel", or "0x%04x" into `out` (32 bytes). */
void ferry__vendor_name(uint32_t vendor_id, char *out);

typedef struct ferry__pci {
  ferry__busid id;
  ferry_gpu_info info;
} ferry__pci;

/* Immutable once built, so shared between threads without locks. */
struct ferry_topology {
  int this_system;
  char source[512];
  int numa_count;
  int core_count;
  int pu_count;
  uint32_t numa_nodes[FERRY_TOPOLOGY_MAX_NUMA]; /* first OS indices */
  char nodeset[FERRY_LIST_MAX];
  char cpuset[FERRY_LIST_MAX];
  int pci_count;
  ferry__pci *pci; /* ascending bus id */
  int gpu_count;
  int *gpus; /* indices into pci, ascending bus id */
};

/* The PCI device with this bus id, or NULL. */
const ferry__pci *ferry__topology_find(const ferry_topology *topo,
                                       const ferry__busid *id);

/* Set before every hwloc_topology_load: blacklist the discovery components
 * that load vendor runtimes, and keep important I/O objects if asked. */
struct hwloc_topology;
void ferry__hwloc_configure(struct hwloc_topology *t, bool keep_io);

/* Load without FERRY_ENTER (xml_path NULL: this machine). */
ferry_status ferry__topology_load(const char *xml_path, ferry_topology **out);

/* This machine's snapshot, loaded once for the process; NULL when hwloc
 * could not load it (selection then runs without locality). */
const ferry_topology *ferry__machine_topology(void);

/* The pure decision, without FERRY_ENTER. */
ferry_status ferry__select(const ferry_topology *topo,
                           const ferry_select_input *in, ferry_selection **out);

/* What the decision chose, for select_machine.c: candidate index (-1 when
 * none), device, and the status/message when none. */
int ferry__selection_candidate(const ferry_selection *sel);
int ferry__selection_device(const ferry_selection *sel);
ferry_status ferry__selection_status(const ferry_selection *sel,
                                     const char **message);
const char *ferry__selection_cpuset(const ferry_selection *sel);
const char *ferry__selection_nodeset(const ferry_selection *sel);

/* Copy `src` (its size `src_size`) to a caller's output struct whose first
 * member is struct_size: at most out->struct_size bytes, then struct_size is
 * set to what was written. Fails with FERRY_ERR_STRUCT_SIZE naming `func` when
 * the caller's struct is shorter than `min_size`. */
ferry_status ferry__copy_out(const char *func, void *out, const void *src,
                             size_t src_size, size_t min_size);

#endif /* FERRY_CORE_TOPOLOGY_INTERNAL_H */
