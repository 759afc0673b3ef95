// Kernels of neighbor sampling, shared by CUDA and HIP.
#ifndef FERRY_GPU_SAMPLE_CUH
#define FERRY_GPU_SAMPLE_CUH

#include "device.cuh"

#endif // FERRY_GPU_SAMPLE_CUH
