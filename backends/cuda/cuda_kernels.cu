// ferry's kernels for CUDA: compiled by nvcc into the fatbin that the cuda
// plugin embeds (see backends/gpu_common/gpu_kernel_image.c).
#include "../gpu_common/kernels/ferry_kernels.cuh"
