// Kernels of LayerNorm and RMSNorm, shared by CUDA and HIP.
#ifndef FERRY_GPU_NORM_CUH
#define FERRY_GPU_NORM_CUH

#include "device.cuh"

#endif // FERRY_GPU_NORM_CUH
