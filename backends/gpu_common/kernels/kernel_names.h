/* ferry's GPU kernels, named once for the host code (C), which looks each
 * up as "ferry_k_<name>" in the embedded image when a context is created.
 * Each kernel is defined as `extern "C" __global__ void ferry_k_<name>` in
 * a .cuh of this directory, included by ferry_kernels.cuh. Append new
 * kernels here and there. */
#ifndef FERRY_GPU_KERNEL_NAMES_H
#define FERRY_GPU_KERNEL_NAMES_H

#define FERRY_GPU_KERNELS(X) X(copy_bytes)

#endif /* FERRY_GPU_KERNEL_NAMES_H */
