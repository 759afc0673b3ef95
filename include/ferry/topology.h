/*
 * ferry: machine topology (hwloc) and backend/device selection.
 *
 * Included by <ferry/ferry.h>; may also be included on its own. See
 * docs/topology.md for how the decision is made.
 *
 *   - A ferry_topology is an immutable snapshot of what ferry needs from an
 *     hwloc topology: the GPUs (PCI vendor NVIDIA/AMD, class display or
 *     processing accelerator), every PCI device's locality (the NUMA nodes
 *     and PUs of its nearest non-I/O ancestor), and the machine's NUMA nodes
 *     and PUs. Load it from this machine or from an hwloc XML file (format
 *     2.x). Snapshots are safe to use from several threads at once.
 *   - ferry_select() is the decision as a pure function of a topology and
 *     the devices backends report (with their PCI bus ids): no plugin is
 *     loaded and no environment variable is read, so it can be driven with
 *     synthesized candidates on XML topologies of other machines.
 *   - ferry_select_machine() makes the decision ferry_context_create() makes
 *     here (the same request resolution, plugins and machine topology), and
 *     keeps the reason each candidate was rejected.
 *
 * PCI bus ids are lowercase "dddd:bb:dd.f" everywhere. NUMA nodes are named
 * by their OS index (hwloc's P#), which need not be contiguous. Node sets and
 * CPU sets are hwloc list strings ("0-3,8").
 */
#ifndef FERRY_TOPOLOGY_H
#define FERRY_TOPOLOGY_H

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_topology ferry_topology;
typedef struct ferry_selection ferry_selection;

/* NUMA node OS indices an info struct lists; a GPU local to more nodes gives
 * the first ones here and all of them in its nodeset string. */
#define FERRY_TOPOLOGY_MAX_NUMA 64
/* Bytes of the list strings (node sets, CPU sets). */
#define FERRY_LIST_MAX 256

/* ------------------------------------------------------------------------ */
/* Topology                                                                  */
/* ------------------------------------------------------------------------ */

/* Load this machine's topology (xml_path NULL) or an hwloc XML file. A file
 * that cannot be opened gives FERRY_ERR_IO, one hwloc cannot read (corrupt,
 * not XML, or hwloc 3.x's format) FERRY_ERR_BAD_FORMAT; the message names
 * the path. hwloc's OpenCL, GL, CUDA, NVML, RSMI and Level Zero discovery is
 * never run, so loading maps no vendor runtime into the process. */
FERRY_API ferry_status ferry_topology_load(const char *xml_path,
                                           ferry_topology **out);
FERRY_API void ferry_topology_destroy(ferry_topology *topo);

typedef struct ferry_topology_info {
  size_t struct_size;
  int this_system;  /* nonzero: loaded from this machine */
  char source[512]; /* the XML path, or "" for this machine */
  int numa_node_count;
  int core_count;
  int pu_count;
  int gpu_count;
  char nodeset[FERRY_LIST_MAX]; /* every NUMA node (OS indices) */
  char cpuset[FERRY_LIST_MAX];  /* every PU (OS indices) */
} ferry_topology_info;
#define FERRY_TOPOLOGY_INFO_INIT                                               \
  { .struct_size = sizeof(ferry_topology_info) }
FERRY_API ferry_status ferry_topology_get_info(const ferry_topology *topo,
                                               ferry_topology_info *out);

/* A PCI device as the topology shows it; for GPUs, or any PCI device found
 * by bus id (ferry_topology_find_pci). */
typedef struct ferry_gpu_info {
  size_t struct_size;
  char pci_bus_id[FERRY_BUS_ID_MAX]; /* "dddd:bb:dd.f" */
  char vendor[32]; /* "nvidia", "amd", "intel", or the id as "0x1a03" */
  uint32_t vendor_id;
  uint32_t device_id;
  uint32_t pci_class; /* class and subclass, e.g. 0x0302 */
  int is_gpu;         /* passes ferry's GPU filter */
  /* The topology's name for the model (an OS device's GPUModel, else the
   * PCI database name), or "" when the topology has none. */
  char model[FERRY_NAME_MAX];
  /* hwloc OS devices below it, space-separated ("cuda0 nvml0"), or "". */
  char os_devices[FERRY_NAME_MAX];
  /* hwloc type of the nearest non-I/O ancestor ("NUMANode", "Package",
   * "L3Cache", "Machine"): where its locality comes from. */
  char locality[32];
  int numa_node_count;                          /* all of them */
  uint32_t numa_nodes[FERRY_TOPOLOGY_MAX_NUMA]; /* OS indices, ascending */
  char nodeset[FERRY_LIST_MAX];
  char cpuset[FERRY_LIST_MAX];
} ferry_gpu_info;
#define FERRY_GPU_INFO_INIT                                                    \
  { .struct_size = sizeof(ferry_gpu_info) }

/* GPUs in ascending PCI bus id order. */
FERRY_API ferry_status ferry_topology_gpu_count(const ferry_topology *topo,
                                                int *out);
FERRY_API ferry_status ferry_topology_get_gpu(const ferry_topology *topo,
                                              int index, ferry_gpu_info *out);
/* Any PCI device the topology keeps, by bus id ("dddd:bb:dd.f", or
 * "bb:dd.f" for domain 0; any case). FERRY_ERR_NO_DEVICE when absent. */
FERRY_API ferry_status ferry_topology_find_pci(const ferry_topology *topo,
                                               const char *pci_bus_id,
                                               ferry_gpu_info *out);

/* ------------------------------------------------------------------------ */
/* Selection                                                                 */
/* ------------------------------------------------------------------------ */

/* One backend as a candidate: what the loader knows of it. */
typedef struct ferry_select_candidate {
  size_t struct_size;
  const char *backend; /* "cuda", "hip", "opencl", "cpu", or another name */
  int available;       /* loaded and initialised */
  /* When unavailable: why (status FERRY_ERR_NO_BACKEND, _NO_DEVICE,
   * _DEVICE_TOO_OLD or _PLUGIN_REJECTED; FERRY_OK reads as NO_BACKEND), and
   * the reason in words (may be NULL). */
  ferry_status status;
  const char *reason;
  /* The devices it reports, with struct_size set in each (the array's
   * stride is devices[0].struct_size). */
  int device_count;
  const ferry_device_info *devices;
} ferry_select_candidate;
#define FERRY_SELECT_CANDIDATE_INIT                                            \
  { .struct_size = sizeof(ferry_select_candidate) }

typedef struct ferry_select_input {
  size_t struct_size;
  /* NULL or "auto", one name (strict), or a comma list tried in order; as
   * ferry_context_options.backend, but the environment is not read. */
  const char *request;
  int device_index; /* -1: choose (lowest PCI bus id) */
  int candidate_count;
  const ferry_select_candidate *candidates;
} ferry_select_input;
#define FERRY_SELECT_INPUT_INIT                                                \
  {                                                                            \
    .struct_size = sizeof(ferry_select_input), .request = NULL,                \
    .device_index = -1, .candidate_count = 0, .candidates = NULL               \
  }

/* Decide. topo may be NULL (no locality: empty node and CPU sets). Returns
 * FERRY_OK with a selection whenever the input is well formed, also when no
 * candidate qualifies: then the selection's status says why (as
 * ferry_context_create would fail) and its backend is "". */
FERRY_API ferry_status ferry_select(const ferry_topology *topo,
                                    const ferry_select_input *in,
                                    ferry_selection **out);
/* The decision ferry_context_create(request, device_index) makes on this
 * machine: request NULL reads FERRY_BACKEND, then "auto". Loads the plugins
 * the request needs. */
FERRY_API ferry_status ferry_select_machine(const char *request,
                                            int device_index,
                                            ferry_selection **out);
FERRY_API void ferry_selection_destroy(ferry_selection *sel);

typedef struct ferry_selection_info {
  size_t struct_size;
  ferry_status status; /* FERRY_OK: a backend was chosen */
  char message[1024];  /* when not chosen: the request and every reason */
  char request[FERRY_NAME_MAX]; /* the request as resolved ("auto", ...) */
  char backend[FERRY_NAME_MAX]; /* "" when none was chosen */
  int candidate;                /* index into the input's candidates, or -1 */
  int device_index;             /* the backend's device index, or -1 */
  char pci_bus_id[FERRY_BUS_ID_MAX]; /* of the device, or "" */
  /* Where host memory and the worker pool go: the device's locality, the
   * whole machine for cpu or a device the topology lacks; "" without a
   * topology. locality_known: the device was found in the topology (always
   * for cpu with a topology). */
  int locality_known;
  int numa_node_count;
  uint32_t numa_nodes[FERRY_TOPOLOGY_MAX_NUMA];
  char nodeset[FERRY_LIST_MAX];
  char cpuset[FERRY_LIST_MAX];
} ferry_selection_info;
#define FERRY_SELECTION_INFO_INIT                                              \
  { .struct_size = sizeof(ferry_selection_info) }
FERRY_API ferry_status ferry_selection_get_info(const ferry_selection *sel,
                                                ferry_selection_info *out);

/* A candidate not chosen and why: a whole backend (device_index -1), e.g.
 * "cuda: plugin unavailable: ...", "cpu: a GPU backend was preferred", or
 * one device, e.g. "opencl device 1 (0000:13:00.0): below OpenCL 1.2". */
typedef struct ferry_rejection {
  size_t struct_size;
  char backend[FERRY_NAME_MAX];
  int device_index;
  char pci_bus_id[FERRY_BUS_ID_MAX]; /* of the device, or "" */
  ferry_status status; /* the failure it stands for (NO_BACKEND, ...) */
  char reason[512];    /* begins with the backend's name */
} ferry_rejection;
#define FERRY_REJECTION_INIT                                                   \
  { .struct_size = sizeof(ferry_rejection) }
FERRY_API ferry_status
ferry_selection_rejected_count(const ferry_selection *sel, int *out);
FERRY_API ferry_status ferry_selection_get_rejected(const ferry_selection *sel,
                                                    int index,
                                                    ferry_rejection *out);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_TOPOLOGY_H */
