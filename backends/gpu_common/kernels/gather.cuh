// Kernels of feature-table gathers, shared by CUDA and HIP.
#ifndef FERRY_GPU_GATHER_CUH
#define FERRY_GPU_GATHER_CUH

#include "device.cuh"

#endif // FERRY_GPU_GATHER_CUH
