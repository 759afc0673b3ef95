// Kernels of the Adan step, shared by CUDA and HIP.
#ifndef FERRY_GPU_ADAN_CUH
#define FERRY_GPU_ADAN_CUH

#include "device.cuh"

#endif // FERRY_GPU_ADAN_CUH
