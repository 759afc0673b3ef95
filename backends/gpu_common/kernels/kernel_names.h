/* ferry's GPU kernels, named once for the host code (C), which looks each
 * up as "ferry_k_<name>" in the embedded image when a context is created.
 * Each kernel is defined as `extern "C" __global__ void ferry_k_<name>` in
 * a .cuh of this directory, included by ferry_kernels.cuh. Append new
 * kernels here and there. */
#ifndef FERRY_GPU_KERNEL_NAMES_H
#define FERRY_GPU_KERNEL_NAMES_H

/* One list per area, each owned by that area's kernels. */
#define FERRY_GPU_KERNELS_MEMORY(X) X(copy_bytes)
#define FERRY_GPU_KERNELS_GATHER(X)
#define FERRY_GPU_KERNELS_SAMPLE(X)
#define FERRY_GPU_KERNELS_NORM(X)
#define FERRY_GPU_KERNELS_ADAN(X)

#define FERRY_GPU_KERNELS(X)                                                   \
  FERRY_GPU_KERNELS_MEMORY(X)                                                  \
  FERRY_GPU_KERNELS_GATHER(X)                                                  \
  FERRY_GPU_KERNELS_SAMPLE(X)                                                  \
  FERRY_GPU_KERNELS_NORM(X)                                                    \
  FERRY_GPU_KERNELS_ADAN(X)

#endif /* FERRY_GPU_KERNEL_NAMES_H */
