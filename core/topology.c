/* Topology snapshots: load an hwloc topology (this machine or XML), keep what
 * selection and placement need, and let hwloc go.
 *
 * Why a snapshot rather than a live hwloc topology: Debian's hwloc dlopens
 * all of its plugins (hwloc_opencl.so links libOpenCL, hwloc_gl.so libX11)
 * while any topology exists, and unloads them when the last one is
 * destroyed. Keeping plain data means creating a context or loading the
 * machine topology leaves nothing of hwloc's plugins mapped. */
#include "topology_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if HWLOC_API_VERSION < 0x00020000 || HWLOC_API_VERSION >= 0x00030000
#error "ferry needs hwloc 2.x"
#endif

/* ---- small shared helpers ------------------------------------------------ */

/* 1..max hex digits at *p; advances *p. */
static bool hex_field(const char **p, int max, uint32_t *out) {
  uint32_t v = 0;
  int n = 0;
  for (;; n++) {
    char c = (*p)[n];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0)
      break;
    if (n == max)
      return false;
    v = v * 16 + (uint32_t)d;
  }
  if (n == 0)
    return false;
  *p += n;
  *out = v;
  return true;
}

bool ferry__busid_parse(const char *s, ferry__busid *out) {
  if (s == NULL)
    return false;
  /* "dddd:bb:dd.f" or "bb:dd.f": count the colons to tell them apart. */
  int colons = 0;
  for (const char *c = s; *c; c++)
    colons += *c == ':';
  ferry__busid id = {0, 0, 0, 0};
  const char *p = s;
  if (colons == 2) {
    if (!hex_field(&p, 4, &id.domain) || *p++ != ':')
      return false;
  } else if (colons != 1) {
    return false;
  }
  if (!hex_field(&p, 2, &id.bus) || *p++ != ':' || !hex_field(&p, 2, &id.dev) ||
      *p++ != '.' || !hex_field(&p, 1, &id.func) || *p != '\0' ||
      id.dev > 0x1f || id.func > 7)
    return false;
  *out = id;
  return true;
}

void ferry__busid_format(const ferry__busid *id, char *out) {
  snprintf(out, FERRY_BUS_ID_MAX, "%04x:%02x:%02x.%x", id->domain & 0xffffu,
           id->bus & 0xffu, id->dev & 0x1fu, id->func & 7u);
}

int ferry__busid_cmp(const ferry__busid *a, const ferry__busid *b) {
  const uint32_t x[4] = {a->domain, a->bus, a->dev, a->func};
  const uint32_t y[4] = {b->domain, b->bus, b->dev, b->func};
  for (int i = 0; i < 4; i++)
    if (x[i] != y[i])
      return x[i] < y[i] ? -1 : 1;
  return 0;
}

void ferry__vendor_name(uint32_t vendor_id, char *out) {
  const char *name = NULL;
  switch (vendor_id) {
  case 0x10de:
    name = "nvidia";
    break;
  case 0x1002:
  case 0x1022:
    name = "amd";
    break;
  case 0x8086:
    name = "intel";
    break;
  default:
    break;
  }
  if (name)
    snprintf(out, 32, "%s", name);
  else
    snprintf(out, 32, "0x%04x", vendor_id);
}

ferry_status ferry__copy_out(const char *func, void *out, const void *src,
                             size_t src_size, size_t min_size) {
  size_t have;
  memcpy(&have, out, sizeof have);
  if (have < min_size)
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "%s: out->struct_size is %zu, expected at least %zu "
                        "(initialise it with its _INIT macro)",
                        func, have, min_size);
  size_t n = have < src_size ? have : src_size;
  memcpy(out, src, n);
  memcpy(out, &n, sizeof n);
  return FERRY_OK;
}

/* ---- building a snapshot ------------------------------------------------- */

/* hwloc list string into a fixed field; "" (unrestricted) rather than a
 * truncated, wrong list when it does not fit. */
static void list_string(hwloc_const_bitmap_t set, char *out, size_t n) {
  out[0] = '\0';
  if (set == NULL)
    return;
  int len = hwloc_bitmap_list_snprintf(out, n, set);
  if (len < 0 || (size_t)len >= n) {
    out[0] = '\0';
    ferry__trace("topology",
                 "a set's list string needs %d bytes (> %zu): "
                 "treated as unrestricted",
                 len, n - 1);
  }
}

static int numa_list(hwloc_const_bitmap_t nodeset, uint32_t *out) {
  int count = 0;
  if (nodeset == NULL || hwloc_bitmap_iszero(nodeset))
    return 0;
  for (int i = hwloc_bitmap_first(nodeset); i >= 0;
       i = hwloc_bitmap_next(nodeset, i)) {
    if (count < FERRY_TOPOLOGY_MAX_NUMA)
      out[count] = (uint32_t)i;
    count++;
  }
  return count;
}

/* GPUs: NVIDIA or AMD, class display (0x03xx) or processing accelerator
 * (0x12xx). NVSwitches are NVIDIA's but class 0x0680; BMC display chips
 * (ASPEED, Matrox) are other vendors. */
static bool is_gpu(const struct hwloc_pcidev_attr_s *pci) {
  unsigned base = pci->class_id >> 8;
  return (pci->vendor_id == 0x10de || pci->vendor_id == 0x1002) &&
         (base == 0x03 || base == 0x12);
}

static void append_word(char *buf, size_t n, const char *word) {
  size_t len = strlen(buf);
  if (len + (len ? 1 : 0) + strlen(word) >= n)
    return;
  snprintf(buf + len, n - len, "%s%s", len ? " " : "", word);
}

static void fill_pci(hwloc_topology_t t, hwloc_obj_t obj, ferry__pci *p) {
  const struct hwloc_pcidev_attr_s *a = &obj->attr->pcidev;
  ferry_gpu_info *g = &p->info;
  memset(p, 0, sizeof *p);
  g->struct_size = sizeof *g;
  p->id.domain = a->domain;
  p->id.bus = a->bus;
  p->id.dev = a->dev;
  p->id.func = a->func;
  ferry__busid_format(&p->id, g->pci_bus_id);
  g->vendor_id = a->vendor_id;
  g->device_id = a->device_id;
  g->pci_class = a->class_id;
  g->is_gpu = is_gpu(a);
  ferry__vendor_name(a->vendor_id, g->vendor);

  const char *model = NULL;
  for (hwloc_obj_t c = obj->io_first_child; c; c = c->next_sibling) {
    if (c->type != HWLOC_OBJ_OS_DEVICE)
      continue;
    if (c->name)
      append_word(g->os_devices, sizeof g->os_devices, c->name);
    if (model == NULL)
      model = hwloc_obj_get_info_by_name(c, "GPUModel");
  }
  if (model == NULL)
    model = hwloc_obj_get_info_by_name(obj, "PCIDevice");
  if (model == NULL)
    model = obj->name;
  snprintf(g->model, sizeof g->model, "%s", model ? model : "");

  /* The nearest non-I/O ancestor may be a NUMA node, a package, or an L3
   * cache (MI250X blades): its nodeset is the locality in every case. */
  hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t, obj);
  if (anc == NULL)
    anc = hwloc_get_root_obj(t);
  snprintf(g->locality, sizeof g->locality, "%s",
           hwloc_obj_type_string(anc->type));
  g->numa_node_count = numa_list(anc->nodeset, g->numa_nodes);
  list_string(anc->nodeset, g->nodeset, sizeof g->nodeset);
  list_string(anc->cpuset, g->cpuset, sizeof g->cpuset);
}

static int cmp_pci(const void *a, const void *b) {
  return ferry__busid_cmp(&((const ferry__pci *)a)->id,
                          &((const ferry__pci *)b)->id);
}

static ferry_status snapshot(hwloc_topology_t t, const char *source,
                             ferry_topology **out) {
  ferry_topology *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_topology_load: out of host memory");
  s->this_system = hwloc_topology_is_thissystem(t);
  snprintf(s->source, sizeof s->source, "%s", source ? source : "");
  hwloc_obj_t root = hwloc_get_root_obj(t);
  s->numa_count = numa_list(root->nodeset, s->numa_nodes);
  int n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
  s->core_count = n > 0 ? n : 0;
  n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
  s->pu_count = n > 0 ? n : 0;
  list_string(root->nodeset, s->nodeset, sizeof s->nodeset);
  list_string(root->cpuset, s->cpuset, sizeof s->cpuset);

  int count = 0;
  for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(t, o)) != NULL;)
    count++;
  if (count > 0) {
    s->pci = calloc((size_t)count, sizeof *s->pci);
    s->gpus = calloc((size_t)count, sizeof *s->gpus);
    if (s->pci == NULL || s->gpus == NULL) {
      free(s->pci);
      free(s->gpus);
      free(s);
      return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                          "ferry_topology_load: out of host memory");
    }
  }
  int i = 0;
  for (hwloc_obj_t o = NULL;
       i < count && (o = hwloc_get_next_pcidev(t, o)) != NULL; i++)
    fill_pci(t, o, &s->pci[i]);
  s->pci_count = i;
  qsort(s->pci, (size_t)s->pci_count, sizeof *s->pci, cmp_pci);
  for (i = 0; i < s->pci_count; i++)
    if (s->pci[i].info.is_gpu)
      s->gpus[s->gpu_count++] = i;
  *out = s;
  return FERRY_OK;
}

void ferry__hwloc_configure(hwloc_topology_t t, bool keep_io) {
  /* Discovery components that would load vendor runtimes (OpenCL maps PoCL
   * and LLVM; GL probes X displays) or that Debian's hwloc lacks (-1 then,
   * which is fine). GPUs are found by PCI vendor and class instead. */
  static const char *const blacklist[] = {"opencl", "gl",   "cuda",
                                          "nvml",   "rsmi", "levelzero"};
  for (size_t i = 0; i < sizeof blacklist / sizeof blacklist[0]; i++)
    (void)hwloc_topology_set_components(
        t, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, blacklist[i]);
  /* I/O objects are dropped by default, even from XML. */
  if (keep_io)
    hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
}

/* hwloc's pci plugin names devices through libpciaccess, which caches the
 * PCI name database (~600 KB) in a static that nothing frees. When the last
 * topology goes, hwloc unloads the plugin and libpciaccess with it, orphaning
 * the cache; the next load builds another. Holding one reference to the
 * library (never a vendor runtime) keeps a single cache for the process. */
static pthread_once_t pin_once = PTHREAD_ONCE_INIT;

static void pin_pciaccess(void) {
  void *h = dlopen("libpciaccess.so.0", RTLD_LAZY | RTLD_NOLOAD);
  ferry__trace("topology", "libpciaccess %s", h ? "kept loaded" : "not used");
}

static ferry_status check_file(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return ferry__error(FERRY_ERR_IO,
                        "ferry_topology_load: cannot open topology file '%s': "
                        "%s",
                        path, strerror(errno));
  if (S_ISDIR(st.st_mode))
    return ferry__error(FERRY_ERR_IO,
                        "ferry_topology_load: topology file '%s' is a "
                        "directory, not an hwloc XML file",
                        path);
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return ferry__error(FERRY_ERR_IO,
                        "ferry_topology_load: cannot open topology file '%s': "
                        "%s",
                        path, strerror(errno));
  fclose(f);
  return FERRY_OK;
}

static ferry_status bad_xml(const char *path) {
  return ferry__error(FERRY_ERR_BAD_FORMAT,
                      "ferry_topology_load: '%s' is not an hwloc XML topology "
                      "that hwloc %u.%u can read (corrupt, truncated, or "
                      "exported by hwloc 3.x, whose format 2.x refuses)",
                      path, hwloc_get_api_version() >> 16,
                      (hwloc_get_api_version() >> 8) & 0xffu);
}

ferry_status ferry__topology_load(const char *xml_path, ferry_topology **out) {
  if (xml_path != NULL) {
    if (xml_path[0] == '\0')
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "ferry_topology_load: argument 'xml_path' is an "
                          "empty string; pass NULL for this machine");
    ferry_status st = check_file(xml_path);
    if (st != FERRY_OK)
      return st;
  }
  hwloc_topology_t t;
  if (hwloc_topology_init(&t) != 0)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_topology_load: hwloc_topology_init failed: %s",
                        strerror(errno));
  ferry__hwloc_configure(t, true);
  if (xml_path != NULL) {
    errno = 0;
    if (hwloc_topology_set_xml(t, xml_path) != 0) {
      /* Without this check hwloc would quietly load this machine instead. */
      int e = errno;
      hwloc_topology_destroy(t);
      if (e == ENOENT || e == EACCES || e == EISDIR || e == EIO)
        return ferry__error(FERRY_ERR_IO,
                            "ferry_topology_load: cannot read topology file "
                            "'%s': %s",
                            xml_path, strerror(e));
      return bad_xml(xml_path);
    }
  }
  if (hwloc_topology_load(t) != 0) {
    int e = errno;
    hwloc_topology_destroy(t);
    if (xml_path != NULL)
      return bad_xml(xml_path);
    return ferry__error(FERRY_ERR_IO,
                        "ferry_topology_load: hwloc could not load this "
                        "machine's topology: %s",
                        strerror(e));
  }
  if (xml_path == NULL)
    pthread_once(&pin_once, pin_pciaccess); /* while hwloc holds it */
  ferry_status st = snapshot(t, xml_path, out);
  hwloc_topology_destroy(t);
  return st;
}

/* ---- this machine, once -------------------------------------------------- */

static pthread_once_t machine_once = PTHREAD_ONCE_INIT;
static ferry_topology *machine;

static void load_machine(void) {
  ferry_topology *t = NULL;
  if (ferry__topology_load(NULL, &t) == FERRY_OK)
    machine = t;
  else
    ferry__trace("topology",
                 "no machine topology (selection runs without locality): %s",
                 ferry_last_error());
  ferry__clear_error();
}

const ferry_topology *ferry__machine_topology(void) {
  pthread_once(&machine_once, load_machine);
  return machine;
}

const ferry__pci *ferry__topology_find(const ferry_topology *topo,
                                       const ferry__busid *id) {
  if (topo == NULL)
    return NULL;
  int lo = 0, hi = topo->pci_count - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = ferry__busid_cmp(&topo->pci[mid].id, id);
    if (c == 0)
      return &topo->pci[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return NULL;
}

/* ---- public API ---------------------------------------------------------- */

ferry_status ferry_topology_load(const char *xml_path, ferry_topology **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(out);
  return ferry__topology_load(xml_path, out);
}

void ferry_topology_destroy(ferry_topology *topo) {
  if (topo == NULL)
    return;
  free(topo->pci);
  free(topo->gpus);
  free(topo);
}

ferry_status ferry_topology_get_info(const ferry_topology *topo,
                                     ferry_topology_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(topo);
  FERRY_CHECK_NULL(out);
  ferry_topology_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.this_system = topo->this_system;
  snprintf(info.source, sizeof info.source, "%s", topo->source);
  info.numa_node_count = topo->numa_count;
  info.core_count = topo->core_count;
  info.pu_count = topo->pu_count;
  info.gpu_count = topo->gpu_count;
  snprintf(info.nodeset, sizeof info.nodeset, "%s", topo->nodeset);
  snprintf(info.cpuset, sizeof info.cpuset, "%s", topo->cpuset);
  return ferry__copy_out(__func__, out, &info, sizeof info, sizeof info);
}

ferry_status ferry_topology_gpu_count(const ferry_topology *topo, int *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(topo);
  FERRY_CHECK_NULL(out);
  *out = topo->gpu_count;
  return FERRY_OK;
}

ferry_status ferry_topology_get_gpu(const ferry_topology *topo, int index,
                                    ferry_gpu_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(topo);
  FERRY_CHECK_NULL(out);
  if (index < 0 || index >= topo->gpu_count)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_topology_get_gpu: argument 'index' is %d, "
                        "outside [0, %d)",
                        index, topo->gpu_count);
  const ferry_gpu_info *g = &topo->pci[topo->gpus[index]].info;
  return ferry__copy_out(__func__, out, g, sizeof *g, sizeof *g);
}

ferry_status ferry_topology_find_pci(const ferry_topology *topo,
                                     const char *pci_bus_id,
                                     ferry_gpu_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(topo);
  FERRY_CHECK_NULL(pci_bus_id);
  FERRY_CHECK_NULL(out);
  ferry__busid id;
  if (!ferry__busid_parse(pci_bus_id, &id))
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "ferry_topology_find_pci: argument 'pci_bus_id' is "
                        "'%.64s', not a PCI bus id like 0000:3b:00.0",
                        pci_bus_id);
  const ferry__pci *p = ferry__topology_find(topo, &id);
  if (p == NULL) {
    char canon[FERRY_BUS_ID_MAX];
    ferry__busid_format(&id, canon);
    return ferry__error(FERRY_ERR_NO_DEVICE,
                        "ferry_topology_find_pci: the topology has no PCI "
                        "device %s",
                        canon);
  }
  return ferry__copy_out(__func__, out, &p->info, sizeof p->info,
                         sizeof p->info);
}
