/* Parameters of the norm kernels, passed by value. Included by the kernels
 * (CUDA/HIP C++) and by the host code (C: gpu_op_norm.c), so plain C with
 * fixed-width fields only. */
#ifndef FERRY_GPU_NORM_PARAMS_CUH
#define FERRY_GPU_NORM_PARAMS_CUH

#include <stdint.h>

/* dtype codes: ferry_dtype's values. */
#define FERRY_NORM_DT_F32 1
#define FERRY_NORM_DT_F16 2
#define FERRY_NORM_DT_BF16 3
#define FERRY_NORM_KIND_LAYER 1

typedef struct ferry_norm_fwd_params {
  const void *x;
  void *y;
  const void *gamma; /* or NULL: 1 */
  const void *beta;  /* or NULL: 0 */
  float *mean;       /* or NULL */
  float *rstd;       /* or NULL */
  int64_t rows, cols;
  int64_t x_ld, y_ld; /* row strides in elements */
  int32_t kind, dt, gamma_dt, beta_dt;
  float eps;
  int32_t reserved;
} ferry_norm_fwd_params;

typedef struct ferry_norm_bwd_params {
  const void *dy;
  const void *x;
  const void *gamma; /* or NULL: 1 */
  const float *mean; /* NULL for RMSNorm */
  const float *rstd;
  void *dx;
  float *part_g; /* chunks x cols partials of dgamma, or NULL */
  float *part_b; /* chunks x cols partials of dbeta, or NULL */
  void *dgamma;  /* or NULL */
  void *dbeta;   /* or NULL */
  int64_t rows, cols;
  int64_t dy_ld, x_ld, dx_ld;
  int64_t chunk_rows, chunks, col_tiles;
  int32_t kind, dt, gamma_dt, dgamma_dt, dbeta_dt, accumulate;
} ferry_norm_bwd_params;

#endif /* FERRY_GPU_NORM_PARAMS_CUH */
