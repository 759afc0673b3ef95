/* What the Adan kernels take, shared by the kernels (CUDA/HIP C++) and the
 * host code (C, gpu_op_adan.c): plain structs only. gpu_op_adan.c checks
 * that the layouts match ferry_be_adan_chunk and ferry_be_adan_control of
 * include/ferry/backend.h, which device code cannot include. */
#ifndef FERRY_GPU_ADAN_PARAMS_CUH
#define FERRY_GPU_ADAN_PARAMS_CUH

#include <stdint.h>

#define FERRY_GPU_ADAN_GROUPS 64     /* FERRY_BE_ADAN_MAX_GROUPS */
#define FERRY_GPU_ADAN_PARTIALS 1024 /* FERRY_BE_ADAN_PARTIALS */
#define FERRY_GPU_ADAN_BLOCK 256     /* threads per block, every kernel */

/* Flags (FERRY_BE_ADAN_*). */
#define FERRY_GPU_ADAN_NO_PROX 1u
#define FERRY_GPU_ADAN_CLIP 2u
#define FERRY_GPU_ADAN_CHECK_FINITE 4u
#define FERRY_GPU_ADAN_MASTER 8u

/* The control block as 32-bit words: [0] skipped, [1] clip (f32), then per
 * group 8 words from FERRY_GPU_ADAN_CTL_GROUP(g): step, master_ready,
 * use_master, reserved, s1, s2, inv_sqrt_bc3, decay (f32); then the
 * partial sums (f32) and the partial non-finite flags. */
#define FERRY_GPU_ADAN_CTL_GROUP(g) (4u + 8u * (uint32_t)(g))
#define FERRY_GPU_ADAN_CTL_SUMS FERRY_GPU_ADAN_CTL_GROUP(FERRY_GPU_ADAN_GROUPS)
#define FERRY_GPU_ADAN_CTL_BAD                                                 \
  (FERRY_GPU_ADAN_CTL_SUMS + FERRY_GPU_ADAN_PARTIALS)

/* ferry_be_adan_chunk. */
typedef struct ferry_gpu_adan_chunk {
  uint64_t param, grad, state, stride;
  uint32_t count;
  uint16_t group;
  uint8_t param_dtype, grad_dtype;
} ferry_gpu_adan_chunk;

/* The scalar kernel's hyper-parameters (by value). */
typedef struct ferry_gpu_adan_hyper {
  double beta1, beta2, beta3, eps, max_grad_norm;
  uint32_t flags, groups;
  double lr[FERRY_GPU_ADAN_GROUPS];
  double weight_decay[FERRY_GPU_ADAN_GROUPS];
} ferry_gpu_adan_hyper;

/* The update kernel's constants: betas and 1 - betas rounded from double. */
typedef struct ferry_gpu_adan_coef {
  float b1, omb1, b2, omb2, b3, omb3, eps;
  uint32_t flags;
} ferry_gpu_adan_coef;

#endif /* FERRY_GPU_ADAN_PARAMS_CUH */
