// Every kernel of ferry, compiled into one image per vendor: included by
// backends/cuda/cuda_kernels.cu and backends/hip/hip_kernels.hip. One
// translation unit keeps nvcc and hipcc runs (slow) to one per build.
#ifndef FERRY_GPU_KERNELS_CUH
#define FERRY_GPU_KERNELS_CUH

#include "copy_bytes.cuh"
#include "gather.cuh"
#include "sample.cuh"
#include "norm.cuh"
#include "adan.cuh"

#endif // FERRY_GPU_KERNELS_CUH
