// copy_bytes: dst[i] = src[i] for n bytes over a grid-stride loop, 16 bytes
// per load and store where both addresses allow it. It is ferry's own copy
// kernel: the bandwidth a kernel reaches moving bytes (from device memory,
// or over the bus from mapped pinned host memory) is the limit ferry's
// memory-bound ops are judged against.
#ifndef FERRY_GPU_COPY_BYTES_CUH
#define FERRY_GPU_COPY_BYTES_CUH

#include "device.cuh"

extern "C" __global__ void
ferry_k_copy_bytes(unsigned char *__restrict__ dst,
                   const unsigned char *__restrict__ src, uint64_t n) {
  const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
  const uint64_t first = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  uint64_t done = 0;
  if ((((uintptr_t)dst | (uintptr_t)src) & 15u) == 0) {
    const uint64_t vectors = n / 16u;
    const uint4 *s4 = reinterpret_cast<const uint4 *>(src);
    uint4 *d4 = reinterpret_cast<uint4 *>(dst);
    for (uint64_t i = first; i < vectors; i += stride)
      d4[i] = s4[i];
    done = vectors * 16u;
  }
  for (uint64_t i = done + first; i < n; i += stride)
    dst[i] = src[i];
}

#endif // FERRY_GPU_COPY_BYTES_CUH
