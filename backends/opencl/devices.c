/* Platforms and devices: found once in init, then read-only.
 *
 * Devices are numbered across all platforms in the order the ICD loader
 * lists them. The capability ferry reports is the device's OpenCL C version
 * (the kernels are OpenCL C 1.2); the PCI bus id comes from
 * cl_khr_pci_bus_info, or from NVIDIA's or AMD's attribute-query extensions
 * on drivers that predate it, so that selection can match the device with
 * hwloc's PCI objects. */
#include "internal.h"

#include <CL/cl_ext.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cl_nv_device_attribute_query (not in every cl_ext.h). */
#define OCL_DEVICE_PCI_BUS_ID_NV 0x4008
#define OCL_DEVICE_PCI_SLOT_ID_NV 0x4009
#define OCL_DEVICE_PCI_DOMAIN_ID_NV 0x400A

static ocl_device *devices;
static int device_total;

const ocl_device *ocl_device_get(int index) {
  if (index < 0 || index >= device_total)
    return NULL;
  return &devices[index];
}

/* A string query into `buf`, "" on failure; trailing blanks trimmed. */
static void info_string(cl_device_id d, cl_device_info what, char *buf,
                        size_t size) {
  buf[0] = '\0';
  if (clGetDeviceInfo(d, what, size, buf, NULL) != CL_SUCCESS) {
    /* The value may be longer than buf: ask for its size, then read it. */
    size_t n = 0;
    char *tmp = NULL;
    if (clGetDeviceInfo(d, what, 0, NULL, &n) == CL_SUCCESS && n > 0 &&
        (tmp = malloc(n)) != NULL &&
        clGetDeviceInfo(d, what, n, tmp, NULL) == CL_SUCCESS)
      snprintf(buf, size, "%s", tmp);
    free(tmp);
  }
  buf[size - 1] = '\0';
  size_t len = strlen(buf);
  while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\n'))
    buf[--len] = '\0';
}

/* The device's extension list, or NULL. */
static char *extensions(cl_device_id d) {
  size_t n = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS)
    return NULL;
  char *s = malloc(n + 1);
  if (s == NULL)
    return NULL;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, n, s, NULL) != CL_SUCCESS) {
    free(s);
    return NULL;
  }
  s[n] = '\0';
  return s;
}

/* Whether the space-separated list holds `name` as a whole word. */
static bool has_extension(const char *list, const char *name) {
  size_t len = strlen(name);
  for (const char *p = list; p && (p = strstr(p, name)) != NULL; p += len) {
    bool starts = p == list || p[-1] == ' ';
    bool ends = p[len] == '\0' || p[len] == ' ';
    if (starts && ends)
      return true;
  }
  return false;
}

static void pci_bus_id(cl_device_id d, const char *ext, char *out,
                       size_t size) {
  out[0] = '\0';
  if (ext == NULL)
    return;
  if (has_extension(ext, "cl_khr_pci_bus_info")) {
    cl_device_pci_bus_info_khr pci;
    if (clGetDeviceInfo(d, CL_DEVICE_PCI_BUS_INFO_KHR, sizeof pci, &pci,
                        NULL) == CL_SUCCESS) {
      snprintf(out, size, "%04x:%02x:%02x.%x", pci.pci_domain & 0xffffu,
               pci.pci_bus & 0xffu, pci.pci_device & 0x1fu,
               pci.pci_function & 0x7u);
      return;
    }
  }
  if (has_extension(ext, "cl_nv_device_attribute_query")) {
    cl_uint bus = 0, slot = 0, domain = 0;
    if (clGetDeviceInfo(d, OCL_DEVICE_PCI_BUS_ID_NV, sizeof bus, &bus, NULL) ==
            CL_SUCCESS &&
        clGetDeviceInfo(d, OCL_DEVICE_PCI_SLOT_ID_NV, sizeof slot, &slot,
                        NULL) == CL_SUCCESS) {
      /* The domain query is newer than the other two: 0 where absent. */
      if (clGetDeviceInfo(d, OCL_DEVICE_PCI_DOMAIN_ID_NV, sizeof domain,
                          &domain, NULL) != CL_SUCCESS)
        domain = 0;
      snprintf(out, size, "%04x:%02x:%02x.%x", domain & 0xffffu, bus & 0xffu,
               (slot >> 3) & 0x1fu, slot & 0x7u);
      return;
    }
  }
  if (has_extension(ext, "cl_amd_device_attribute_query")) {
    cl_device_topology_amd topo;
    memset(&topo, 0, sizeof topo);
    if (clGetDeviceInfo(d, CL_DEVICE_TOPOLOGY_AMD, sizeof topo, &topo, NULL) ==
            CL_SUCCESS &&
        topo.raw.type == CL_DEVICE_TOPOLOGY_TYPE_PCIE_AMD)
      snprintf(out, size, "0000:%02x:%02x.%x", (unsigned)topo.pcie.bus & 0xffu,
               (unsigned)topo.pcie.device & 0x1fu,
               (unsigned)topo.pcie.function & 0x7u);
  }
}

/* "OpenCL C 1.2 PoCL" -> 1, 2. */
static bool parse_version(const char *s, const char *prefix, unsigned *major,
                          unsigned *minor) {
  size_t n = strlen(prefix);
  if (strncmp(s, prefix, n) != 0)
    return false;
  return sscanf(s + n, "%u.%u", major, minor) == 2;
}

static void describe(ocl_device *dev) {
  cl_device_id d = dev->id;
  ferry_device_info *info = &dev->info;
  memset(info, 0, sizeof *info);
  info->struct_size = sizeof *info;
  info->usable = 1;
  info_string(d, CL_DEVICE_NAME, info->name, sizeof info->name);

  char *ext = extensions(d);
  pci_bus_id(d, ext, info->pci_bus_id, sizeof info->pci_bus_id);
  free(ext);

  cl_uint vendor = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_VENDOR_ID, sizeof vendor, &vendor, NULL) !=
      CL_SUCCESS)
    vendor = 0;
  /* Khronos-assigned vendor ids (0x10000 and up, e.g. PoCL's) are not PCI
   * vendor ids. */
  info->pci_vendor_id = vendor <= 0xffffu ? vendor : 0;

  cl_ulong mem = 0, max_alloc = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL) ==
      CL_SUCCESS)
    info->total_memory = mem;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc,
                      &max_alloc, NULL) == CL_SUCCESS) {
    dev->max_alloc = max_alloc;
    info->max_alloc_bytes = max_alloc;
  }

  /* CL_DEVICE_MEM_BASE_ADDR_ALIGN is in bits. */
  cl_uint align_bits = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits,
                      &align_bits, NULL) == CL_SUCCESS)
    info->base_address_align = align_bits / 8u;
  if (info->base_address_align == 0)
    info->base_address_align = 1;

  cl_bool unified = CL_FALSE;
  if (clGetDeviceInfo(d, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified,
                      &unified, NULL) == CL_SUCCESS)
    info->host_unified_memory = unified ? 1u : 0u;

  char version[128];
  unsigned major = 0, minor = 0;
  info_string(d, CL_DEVICE_OPENCL_C_VERSION, version, sizeof version);
  if (parse_version(version, "OpenCL C ", &major, &minor)) {
    info->capability_major = major;
    info->capability_minor = minor;
  } else {
    info->usable = 0;
    snprintf(info->reason, sizeof info->reason,
             "unreadable OpenCL C version '%.100s'", version);
    return;
  }
  /* The plugin calls OpenCL 1.2 API functions (markers and barriers with
   * wait lists, fill): the device's API version must be at least that. */
  info_string(d, CL_DEVICE_VERSION, version, sizeof version);
  if (!parse_version(version, "OpenCL ", &major, &minor) ||
      (major < 1 || (major == 1 && minor < 2))) {
    info->usable = 0;
    snprintf(info->reason, sizeof info->reason,
             "device version '%.100s' is below OpenCL 1.2", version);
    return;
  }
  cl_bool yes = CL_FALSE;
  if (clGetDeviceInfo(d, CL_DEVICE_AVAILABLE, sizeof yes, &yes, NULL) !=
          CL_SUCCESS ||
      !yes) {
    info->usable = 0;
    snprintf(info->reason, sizeof info->reason,
             "the driver reports the device unavailable (CL_DEVICE_AVAILABLE "
             "is false)");
    return;
  }
  yes = CL_FALSE;
  if (clGetDeviceInfo(d, CL_DEVICE_COMPILER_AVAILABLE, sizeof yes, &yes,
                      NULL) != CL_SUCCESS ||
      !yes) {
    info->usable = 0;
    snprintf(info->reason, sizeof info->reason,
             "the platform has no OpenCL C compiler for it "
             "(CL_DEVICE_COMPILER_AVAILABLE is false)");
  }
}

/* The devices of one platform appended to `list` (grown as needed). */
static ferry_status add_platform(cl_platform_id p, ocl_device **list, int *n) {
  const cl_device_type types =
      CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_CPU | CL_DEVICE_TYPE_ACCELERATOR;
  cl_uint count = 0;
  cl_int err = clGetDeviceIDs(p, types, 0, NULL, &count);
  if (err == CL_DEVICE_NOT_FOUND || count == 0)
    return FERRY_OK;
  if (err != CL_SUCCESS) {
    /* One broken platform must not hide the others. */
    ocl_host->trace("opencl", "skipping a platform: clGetDeviceIDs: %s (%d)",
                    ocl_error_name(err), (int)err);
    return FERRY_OK;
  }
  cl_device_id *ids = malloc(count * sizeof *ids);
  ocl_device *grown =
      ids ? realloc(*list, ((size_t)*n + count) * sizeof **list) : NULL;
  if (grown == NULL) {
    free(ids);
    return ocl_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                               "opencl init: out of host memory");
  }
  *list = grown;
  err = clGetDeviceIDs(p, types, count, ids, NULL);
  if (err != CL_SUCCESS) {
    free(ids);
    ocl_host->trace("opencl", "skipping a platform: clGetDeviceIDs: %s (%d)",
                    ocl_error_name(err), (int)err);
    return FERRY_OK;
  }
  for (cl_uint i = 0; i < count; i++) {
    ocl_device *dev = &grown[*n];
    memset(dev, 0, sizeof *dev);
    dev->platform = p;
    dev->id = ids[i];
    describe(dev);
    ocl_host->trace("opencl", "device %d: %s, OpenCL C %u.%u, bus '%s'%s%s", *n,
                    dev->info.name, dev->info.capability_major,
                    dev->info.capability_minor, dev->info.pci_bus_id,
                    dev->info.usable ? "" : ", unusable: ", dev->info.reason);
    (*n)++;
  }
  free(ids);
  return FERRY_OK;
}

ferry_status ocl_init(const ferry_host_api *host) {
  ocl_host = host;
  cl_uint np = 0;
  cl_int err = clGetPlatformIDs(0, NULL, &np);
  if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ ||
      (err == CL_SUCCESS && np == 0))
    return host->set_error(
        FERRY_ERR_NO_DEVICE,
        "no OpenCL platform: the ICD loader found no driver "
        "(CL_PLATFORM_NOT_FOUND_KHR); install one (e.g. pocl-opencl-icd or "
        "the GPU vendor's ICD) or check OCL_ICD_VENDORS");
  if (err != CL_SUCCESS)
    return ocl_fail("clGetPlatformIDs", err);
  cl_platform_id *platforms = malloc(np * sizeof *platforms);
  if (platforms == NULL)
    return host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                           "opencl init: out of host memory");
  err = clGetPlatformIDs(np, platforms, NULL);
  if (err != CL_SUCCESS) {
    free(platforms);
    return ocl_fail("clGetPlatformIDs", err);
  }
  ocl_device *list = NULL;
  int n = 0;
  for (cl_uint i = 0; i < np; i++) {
    ferry_status st = add_platform(platforms[i], &list, &n);
    if (st != FERRY_OK) {
      free(list);
      free(platforms);
      return st;
    }
  }
  free(platforms);
  if (n == 0) {
    free(list);
    return host->set_error(FERRY_ERR_NO_DEVICE,
                           "%u OpenCL platform(s) found, but none has a GPU, "
                           "CPU or accelerator device",
                           (unsigned)np);
  }
  devices = list;
  device_total = n;
  return FERRY_OK;
}

void ocl_fini(void) {
  free(devices);
  devices = NULL;
  device_total = 0;
}

ferry_status ocl_device_count(int *out) {
  *out = device_total;
  return FERRY_OK;
}

ferry_status ocl_device_info(int device, ferry_device_info *out) {
  const ocl_device *dev = ocl_device_get(device);
  if (dev == NULL)
    return ocl_host->set_error(FERRY_ERR_OUT_OF_RANGE,
                               "opencl: device %d does not exist (%d found)",
                               device, device_total);
  size_t n =
      out->struct_size < sizeof dev->info ? out->struct_size : sizeof dev->info;
  memcpy(out, &dev->info, n);
  out->struct_size = n;
  return FERRY_OK;
}
