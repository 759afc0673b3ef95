/* The vendor API layer of the cuda and hip plugins.
 *
 * Their host code is written once (the gpu_*.c files beside this header)
 * against the gpu* names below and compiled twice: with FERRY_GPU_CUDA
 * against the CUDA runtime into libferry-cuda.so, and with FERRY_GPU_HIP
 * (and __HIP_PLATFORM_AMD__) against the HIP runtime into libferry-hip.so.
 * Where the two runtimes differ in more than a name, a small inline function
 * here hides it; what differs in substance (how a device's architecture is
 * judged, how the caller's current device is kept) lives in one file per
 * vendor under backends/cuda and backends/hip, behind gpu_internal.h. */
#ifndef FERRY_GPU_VENDOR_H
#define FERRY_GPU_VENDOR_H

#include <stdbool.h>
#include <stdint.h>

#if defined(FERRY_GPU_CUDA) == defined(FERRY_GPU_HIP)
#error                                                                         \
    "compile the gpu_common sources with exactly one of FERRY_GPU_CUDA, FERRY_GPU_HIP"
#endif

/* What a pointer is to the runtime (gpuPointerInfo). */
typedef enum gpuMemoryKind {
  GPU_MEMORY_PAGEABLE = 0,   /* host memory the runtime does not know */
  GPU_MEMORY_REGISTERED = 1, /* page-locked host memory, mapped */
  GPU_MEMORY_DEVICE = 2      /* device or managed memory */
} gpuMemoryKind;

/* ------------------------------------------------------------------------ */
#if defined(FERRY_GPU_CUDA)

#include <cuda.h> /* types of the driver entry points only: never linked */
#include <cuda_runtime_api.h>

#define FERRY_GPU_NAME "cuda"
#define FERRY_GPU_RUNTIME "CUDA"
#define FERRY_GPU_PCI_VENDOR 0x10deu
#define FERRY_GPU_ENTRY ferry_backend_cuda_entry

typedef cudaError_t gpuError_t;
typedef cudaStream_t gpuStream_t;
typedef cudaEvent_t gpuEvent_t;
typedef cudaLibrary_t gpuModule_t;
typedef cudaKernel_t gpuKernel_t;
typedef struct cudaDeviceProp gpuDeviceProp_t;
typedef enum cudaStreamCaptureStatus gpuStreamCaptureStatus;
#define GPU_CALLBACK CUDART_CB

#define gpuSuccess cudaSuccess
#define gpuErrorNotReady cudaErrorNotReady
#define gpuErrorHostMemoryAlreadyRegistered cudaErrorHostMemoryAlreadyRegistered
#define gpuErrorMemoryAllocation cudaErrorMemoryAllocation
#define gpuErrorInvalidValue cudaErrorInvalidValue
#define gpuStreamCaptureStatusNone cudaStreamCaptureStatusNone
#define gpuStreamNonBlocking cudaStreamNonBlocking
#define gpuEventDefault cudaEventDefault
#define gpuMemcpyDefault cudaMemcpyDefault
#define gpuHostRegisterMapped cudaHostRegisterMapped
#define gpuHostRegisterPortable cudaHostRegisterPortable

#define gpuGetErrorName cudaGetErrorName
#define gpuGetErrorString cudaGetErrorString
#define gpuGetLastError cudaGetLastError
#define gpuGetDeviceCount cudaGetDeviceCount
#define gpuGetDeviceProperties cudaGetDeviceProperties
#define gpuDeviceGetPCIBusId cudaDeviceGetPCIBusId
#define gpuDriverGetVersion cudaDriverGetVersion
#define gpuRuntimeGetVersion cudaRuntimeGetVersion
#define gpuSetDevice cudaSetDevice
#define gpuGetDevice cudaGetDevice
#define gpuDeviceSynchronize cudaDeviceSynchronize
#define gpuMemGetInfo cudaMemGetInfo
#define gpuMalloc cudaMalloc
#define gpuFree cudaFree
#define gpuHostRegister cudaHostRegister
#define gpuHostUnregister cudaHostUnregister
#define gpuHostGetDevicePointer cudaHostGetDevicePointer
#define gpuStreamCreateWithFlags cudaStreamCreateWithFlags
#define gpuStreamDestroy cudaStreamDestroy
#define gpuStreamSynchronize cudaStreamSynchronize
#define gpuStreamQuery cudaStreamQuery
#define gpuStreamWaitEvent cudaStreamWaitEvent
#define gpuStreamAddCallback cudaStreamAddCallback
#define gpuStreamIsCapturing cudaStreamIsCapturing
#define gpuLaunchHostFunc cudaLaunchHostFunc
#define gpuEventCreateWithFlags cudaEventCreateWithFlags
#define gpuEventDestroy cudaEventDestroy
#define gpuEventRecord cudaEventRecord
#define gpuEventSynchronize cudaEventSynchronize
#define gpuEventQuery cudaEventQuery
#define gpuEventElapsedTime cudaEventElapsedTime
#define gpuMemcpyAsync cudaMemcpyAsync
#define gpuMemsetAsync cudaMemsetAsync

/* Kernels live in an embedded fatbin loaded as a CUDA library: a device the
 * image has no code for is then an error of context creation, not of the
 * first launch. */
static inline gpuError_t gpuModuleLoadData(gpuModule_t *m, const void *image) {
  return cudaLibraryLoadData(m, image, NULL, NULL, 0, NULL, NULL, 0);
}
static inline gpuError_t gpuModuleUnload(gpuModule_t m) {
  return cudaLibraryUnload(m);
}
/* Looks the kernel up and loads it for the current device, which is where a
 * missing image shows (cudaErrorNoKernelImageForDevice). */
static inline gpuError_t gpuModuleGetKernel(gpuKernel_t *k, gpuModule_t m,
                                            const char *name) {
  gpuError_t e = cudaLibraryGetKernel(k, m, name);
  if (e != cudaSuccess)
    return e;
  struct cudaFuncAttributes attr;
  return cudaFuncGetAttributes(&attr, (const void *)*k);
}
static inline gpuError_t gpuLaunchKernel(gpuKernel_t k, uint32_t grid,
                                         uint32_t block, uint32_t shared_bytes,
                                         gpuStream_t s, void **args) {
  dim3 g = {grid, 1, 1}, b = {block, 1, 1};
  return cudaLaunchKernel((const void *)k, g, b, args, shared_bytes, s);
}

/* What the runtime knows of a pointer: its kind, and its device and host
 * addresses (NULL where none). */
static inline gpuError_t gpuPointerInfo(const void *p, gpuMemoryKind *kind,
                                        void **device_ptr, void **host_ptr) {
  struct cudaPointerAttributes a;
  gpuError_t e = cudaPointerGetAttributes(&a, p);
  if (e != cudaSuccess)
    return e;
  *kind = a.type == cudaMemoryTypeHost           ? GPU_MEMORY_REGISTERED
          : a.type == cudaMemoryTypeUnregistered ? GPU_MEMORY_PAGEABLE
                                                 : GPU_MEMORY_DEVICE;
  *device_ptr = a.devicePointer;
  *host_ptr = a.hostPointer;
  return cudaSuccess;
}

#define GPU_HAVE_LAUNCH_HOST_FUNC 1
#define GPU_HAVE_STREAM_GET_DEVICE (CUDART_VERSION >= 12080)
#if GPU_HAVE_STREAM_GET_DEVICE
#define gpuStreamGetDevice cudaStreamGetDevice
#endif

/* ------------------------------------------------------------------------ */
#else /* FERRY_GPU_HIP */

#include <hip/hip_runtime_api.h>
#include <hip/hip_version.h>

#define FERRY_GPU_NAME "hip"
#define FERRY_GPU_RUNTIME "HIP"
#define FERRY_GPU_PCI_VENDOR 0x1002u
#define FERRY_GPU_ENTRY ferry_backend_hip_entry

typedef hipError_t gpuError_t;
typedef hipStream_t gpuStream_t;
typedef hipEvent_t gpuEvent_t;
typedef hipModule_t gpuModule_t;
typedef hipFunction_t gpuKernel_t;
typedef hipDeviceProp_t gpuDeviceProp_t;
typedef hipStreamCaptureStatus gpuStreamCaptureStatus;
#define GPU_CALLBACK

#define gpuSuccess hipSuccess
#define gpuErrorNotReady hipErrorNotReady
#define gpuErrorHostMemoryAlreadyRegistered hipErrorHostMemoryAlreadyRegistered
#define gpuErrorMemoryAllocation hipErrorOutOfMemory
#define gpuErrorInvalidValue hipErrorInvalidValue
#define gpuStreamCaptureStatusNone hipStreamCaptureStatusNone
#define gpuStreamNonBlocking hipStreamNonBlocking
#define gpuEventDefault hipEventDefault
#define gpuMemcpyDefault hipMemcpyDefault
#define gpuHostRegisterMapped hipHostRegisterMapped
#define gpuHostRegisterPortable hipHostRegisterPortable

#define gpuGetErrorName hipGetErrorName
#define gpuGetErrorString hipGetErrorString
#define gpuGetLastError hipGetLastError
#define gpuGetDeviceCount hipGetDeviceCount
#define gpuGetDeviceProperties hipGetDeviceProperties
#define gpuDeviceGetPCIBusId hipDeviceGetPCIBusId
#define gpuDriverGetVersion hipDriverGetVersion
#define gpuRuntimeGetVersion hipRuntimeGetVersion
#define gpuSetDevice hipSetDevice
#define gpuGetDevice hipGetDevice
#define gpuDeviceSynchronize hipDeviceSynchronize
#define gpuMemGetInfo hipMemGetInfo
#define gpuMalloc hipMalloc
#define gpuFree hipFree
#define gpuHostRegister hipHostRegister
#define gpuHostUnregister hipHostUnregister
#define gpuHostGetDevicePointer hipHostGetDevicePointer
#define gpuStreamCreateWithFlags hipStreamCreateWithFlags
#define gpuStreamDestroy hipStreamDestroy
#define gpuStreamSynchronize hipStreamSynchronize
#define gpuStreamQuery hipStreamQuery
#define gpuStreamWaitEvent hipStreamWaitEvent
#define gpuStreamAddCallback hipStreamAddCallback
#define gpuStreamIsCapturing hipStreamIsCapturing
#define gpuLaunchHostFunc hipLaunchHostFunc
#define gpuEventCreateWithFlags hipEventCreateWithFlags
#define gpuEventDestroy hipEventDestroy
#define gpuEventRecord hipEventRecord
#define gpuEventSynchronize hipEventSynchronize
#define gpuEventQuery hipEventQuery
#define gpuEventElapsedTime hipEventElapsedTime
#define gpuMemcpyAsync hipMemcpyAsync
#define gpuMemsetAsync hipMemsetAsync

/* Kernels live in an embedded code-object bundle loaded as a module, not in
 * a fat binary registered at load time: ROCm aborts the whole process when a
 * registered fat binary lacks code for any GPU present, while a module load
 * fails with an error ferry can report. */
static inline gpuError_t gpuModuleLoadData(gpuModule_t *m, const void *image) {
  return hipModuleLoadData(m, image);
}
static inline gpuError_t gpuModuleUnload(gpuModule_t m) {
  return hipModuleUnload(m);
}
static inline gpuError_t gpuModuleGetKernel(gpuKernel_t *k, gpuModule_t m,
                                            const char *name) {
  return hipModuleGetFunction(k, m, name);
}
static inline gpuError_t gpuLaunchKernel(gpuKernel_t k, uint32_t grid,
                                         uint32_t block, uint32_t shared_bytes,
                                         gpuStream_t s, void **args) {
  return hipModuleLaunchKernel(k, grid, 1, 1, block, 1, 1, shared_bytes, s,
                               args, NULL);
}

/* ROCm 5 reports unregistered host memory as an error (hipErrorInvalidValue)
 * and names the field memoryType; ROCm 6 has hipMemoryTypeUnregistered and
 * names it type. */
static inline gpuError_t gpuPointerInfo(const void *p, gpuMemoryKind *kind,
                                        void **device_ptr, void **host_ptr) {
  hipPointerAttribute_t a;
  gpuError_t e = hipPointerGetAttributes(&a, p);
  if (e == hipErrorInvalidValue) {
    (void)hipGetLastError();
    *kind = GPU_MEMORY_PAGEABLE;
    *device_ptr = NULL;
    *host_ptr = NULL;
    return hipSuccess;
  }
  if (e != hipSuccess)
    return e;
#if HIP_VERSION_MAJOR >= 6
  *kind = a.type == hipMemoryTypeHost           ? GPU_MEMORY_REGISTERED
          : a.type == hipMemoryTypeUnregistered ? GPU_MEMORY_PAGEABLE
                                                : GPU_MEMORY_DEVICE;
#else
  *kind = a.isManaged                         ? GPU_MEMORY_DEVICE
          : a.memoryType == hipMemoryTypeHost ? GPU_MEMORY_REGISTERED
                                              : GPU_MEMORY_DEVICE;
#endif
  *device_ptr = a.devicePointer;
  *host_ptr = a.hostPointer;
  return hipSuccess;
}

/* ROCm 5 declares hipLaunchHostFunc but its runtime does not export it:
 * host functions go through hipStreamAddCallback there (gpu_callback.c). */
#define GPU_HAVE_LAUNCH_HOST_FUNC (HIP_VERSION_MAJOR >= 6)
#define GPU_HAVE_STREAM_GET_DEVICE (HIP_VERSION_MAJOR >= 6)
#if GPU_HAVE_STREAM_GET_DEVICE
#define gpuStreamGetDevice hipStreamGetDevice
#endif

#endif /* vendor */

#endif /* FERRY_GPU_VENDOR_H */
