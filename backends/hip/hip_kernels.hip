// ferry's kernels for HIP: compiled by hipcc into the code-object bundle
// that the hip plugin embeds (see backends/gpu_common/gpu_kernel_image.c).
#include <hip/hip_runtime.h>

#include "../gpu_common/kernels/ferry_kernels.cuh"
