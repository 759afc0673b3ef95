/* Device enumeration. Nothing here creates a device context: counting and
 * describing devices must stay cheap, since the loader does it for every
 * plugin in every process that asks which backends exist. */
#include "gpu_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Why the runtime sees no device, in words a user can act on. The CUDA
 * runtime answers "driver version is insufficient" also when no driver is
 * installed at all; its driver version query tells the two apart. */
static ferry_status no_device(gpuError_t err) {
  char desc[256];
  ferry_gpu_describe(err, desc, sizeof desc);
  (void)gpuGetLastError();
  int driver = 0, runtime = 0;
  (void)gpuDriverGetVersion(&driver);
  (void)gpuRuntimeGetVersion(&runtime);
  (void)gpuGetLastError();
  ferry_status st = ferry_gpu_status_of(err);
  if (st != FERRY_ERR_CONTEXT_LOST && st != FERRY_ERR_NO_DEVICE)
    st = FERRY_ERR_NO_DEVICE;
#if defined(FERRY_GPU_CUDA)
  if (driver == 0)
    return ferry_gpu_host->set_error(
        st,
        "cuda cudaGetDeviceCount: %s (no NVIDIA driver is installed: "
        "libcuda.so.1 could not be loaded)",
        desc);
  if (driver < runtime)
    return ferry_gpu_host->set_error(
        st,
        "cuda cudaGetDeviceCount: %s (the driver supports CUDA %d.%d; the "
        "plugin was built with CUDA %d.%d)",
        desc, driver / 1000, driver % 1000 / 10, runtime / 1000,
        runtime % 1000 / 10);
#else
  /* ROCm reaches GPUs through the amdgpu driver's /dev/kfd. */
  if (access("/dev/kfd", R_OK | W_OK) != 0)
    return ferry_gpu_host->set_error(
        st,
        "hip hipGetDeviceCount: %s (/dev/kfd is %s: the amdgpu kernel "
        "driver is not loaded, or this user is not in the render group)",
        desc, access("/dev/kfd", F_OK) == 0 ? "not accessible" : "missing");
#endif
  return ferry_gpu_host->set_error(st,
                                   FERRY_GPU_NAME
                                   " " FERRY_GPU_NAME
                                   "GetDeviceCount: %s (driver version %d)",
                                   desc, driver);
}

ferry_status ferry_gpu_device_count(int *out) {
  if (out == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER, FERRY_GPU_NAME
                                     " device_count: 'out' is NULL");
  if (ferry_gpu_in_callback)
    return ferry_gpu_host->set_error(
        FERRY_ERR_UNSUPPORTED,
        FERRY_GPU_NAME " device_count: called from a host function on the "
                       "runtime's callback thread");
  int n = 0;
  gpuError_t e = gpuGetDeviceCount(&n);
  if (e != gpuSuccess)
    return no_device(e);
  *out = n;
  return FERRY_OK;
}

/* "dddd:bb:dd.f", lowercase, as ferry writes PCI bus ids everywhere. */
static void bus_id(int device, char *out, size_t size) {
  char buf[64] = "";
  if (gpuDeviceGetPCIBusId(buf, (int)sizeof buf, device) != gpuSuccess) {
    (void)gpuGetLastError();
    out[0] = '\0';
    return;
  }
  unsigned dom = 0, bus = 0, dev = 0, fn = 0;
  if (sscanf(buf, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) == 4)
    snprintf(out, size, "%04x:%02x:%02x.%x", dom & 0xffffu, bus & 0xffu,
             dev & 0xffu, fn & 0xfu);
  else {
    snprintf(out, size, "%s", buf);
    for (char *c = out; *c; c++)
      *c = (char)tolower((unsigned char)*c);
  }
}

ferry_status ferry_gpu_device_info(int device, ferry_device_info *out) {
  if (out == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER, FERRY_GPU_NAME
                                     " device_info: 'out' is NULL");
  if (out->struct_size < offsetof(ferry_device_info, name))
    return ferry_gpu_host->set_error(
        FERRY_ERR_STRUCT_SIZE,
        FERRY_GPU_NAME " device_info: out->struct_size %zu is too small",
        out->struct_size);
  int n = 0;
  ferry_status st = ferry_gpu_device_count(&n);
  if (st != FERRY_OK)
    return st;
  if (device < 0 || device >= n)
    return ferry_gpu_host->set_error(
        FERRY_ERR_OUT_OF_RANGE,
        FERRY_GPU_NAME " device_info: device %d does not exist (the runtime "
                       "reports %d)",
        device, n);
  gpuDeviceProp_t prop;
  memset(&prop, 0, sizeof prop);
  gpuError_t e = gpuGetDeviceProperties(&prop, device);
  if (e != gpuSuccess)
    return ferry_gpu_fail(NULL, e, "device_info: properties of device %d",
                          device);

  ferry_device_info d;
  memset(&d, 0, sizeof d);
  d.struct_size = out->struct_size;
  snprintf(d.name, sizeof d.name, "%.*s", (int)sizeof d.name - 1, prop.name);
  bus_id(device, d.pci_bus_id, sizeof d.pci_bus_id);
  d.pci_vendor_id = FERRY_GPU_PCI_VENDOR;
  d.total_memory = (uint64_t)prop.totalGlobalMem;
  /* One cudaMalloc/hipMalloc may take all of device memory. */
  d.max_alloc_bytes = d.total_memory;
  /* cudaMalloc and hipMalloc return 256-byte aligned memory; kernels'
   * vector loads need no more. */
  d.base_address_align = 256;
  d.host_unified_memory = prop.integrated ? 1u : 0u;
  ferry_gpu_arch_judge(&prop, &d);
  /* Only the fields the caller's struct covers are written. */
  size_t size = out->struct_size < sizeof d ? out->struct_size : sizeof d;
  memcpy(out, &d, size);
  return FERRY_OK;
}
