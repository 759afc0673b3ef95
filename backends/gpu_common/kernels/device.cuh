// The device-side vendor layer: what kernels need to compile as CUDA (nvcc)
// and as HIP (hipcc) from one source.
//
// FERRY_GPU_WARP_SIZE is the width of a warp (CUDA: 32) or wavefront (HIP:
// 64 on the CDNA/GCN targets ferry builds for; 32 on RDNA), fixed per
// target at compile time so that shuffles, reductions and lane masks can be
// unrolled. Host code must not use it: it asks the device.
#ifndef FERRY_GPU_DEVICE_CUH
#define FERRY_GPU_DEVICE_CUH

#if defined(FERRY_GPU_EMU)
// On the CPU, for tests (tests/gpu_emu): CUDA's names, emulated.
#include "../../../tests/gpu_emu/emu_device.h"
#define FERRY_GPU_WARP_SIZE FERRY_EMU_WARP_SIZE
#elif defined(__HIPCC__)
#include <hip/hip_runtime.h>
#if defined(__AMDGCN_WAVEFRONT_SIZE)
#define FERRY_GPU_WARP_SIZE __AMDGCN_WAVEFRONT_SIZE
#else
#define FERRY_GPU_WARP_SIZE 64
#endif
#elif defined(__CUDACC__)
#include <cuda_runtime.h>
#define FERRY_GPU_WARP_SIZE 32
#else
#error                                                                         \
    "ferry's kernels compile with nvcc or hipcc (or, for tests, FERRY_GPU_EMU)"
#endif

#include <stdint.h>

// Dynamic shared memory (the launch's shared_bytes), declared in a kernel.
#if defined(FERRY_GPU_EMU)
#define FERRY_GPU_DYNAMIC_SHARED(type, name)                                   \
  FERRY_EMU_DYNAMIC_SHARED(type, name)
#else
#define FERRY_GPU_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

static_assert((FERRY_GPU_WARP_SIZE & (FERRY_GPU_WARP_SIZE - 1)) == 0,
              "a warp is a power of two lanes wide");

#endif // FERRY_GPU_DEVICE_CUH
