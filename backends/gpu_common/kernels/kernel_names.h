/* ferry's GPU kernels, named once for the host code (C), which looks each
 * up as "ferry_k_<name>" in the embedded image when a context is created.
 * Each kernel is defined as `extern "C" __global__ void ferry_k_<name>` in
 * a .cuh of this directory, included by ferry_kernels.cuh. Append new
 * kernels here and there. */
#ifndef FERRY_GPU_KERNEL_NAMES_H
#define FERRY_GPU_KERNEL_NAMES_H

/* One list per area, each owned by that area's kernels. */
#define FERRY_GPU_KERNELS_MEMORY(X) X(copy_bytes)
#define FERRY_GPU_KERNELS_GATHER(X) X(gather_aligned) X(gather_naive)
#define FERRY_GPU_KERNELS_SAMPLE(X)                                            \
  X(sample_count)                                                              \
  X(sample_scan)                                                               \
  X(sample_pick_i32)                                                           \
  X(sample_pick_i64)                                                           \
  X(sample_table_init)                                                         \
  X(sample_insert)                                                             \
  X(sample_mark)                                                               \
  X(sample_emit)
#define FERRY_GPU_KERNELS_NORM(X)                                              \
  X(norm_fwd_warp)                                                             \
  X(norm_fwd_block)                                                            \
  X(norm_bwd_dx_warp)                                                          \
  X(norm_bwd_dx_block)                                                         \
  X(norm_bwd_partial)                                                          \
  X(norm_bwd_final)
#define FERRY_GPU_KERNELS_ADAN(X)                                              \
  X(adan_reduce)                                                               \
  X(adan_scalars)                                                              \
  X(adan_update)

#define FERRY_GPU_KERNELS(X)                                                   \
  FERRY_GPU_KERNELS_MEMORY(X)                                                  \
  FERRY_GPU_KERNELS_GATHER(X)                                                  \
  FERRY_GPU_KERNELS_SAMPLE(X)                                                  \
  FERRY_GPU_KERNELS_NORM(X)                                                    \
  FERRY_GPU_KERNELS_ADAN(X)

#endif /* FERRY_GPU_KERNEL_NAMES_H */
