/* Internals of the cpu backend's LayerNorm/RMSNorm (cpu_norm.c): the
 * arguments of its tasks and the row kernels, which are compiled three
 * times (cpu_norm_rows.h included by cpu_norm_sse.c, cpu_norm_avx2.c and
 * cpu_norm_avx512.c) and picked at run time by what the CPU supports. */
#ifndef FERRY_CPU_NORM_H
#define FERRY_CPU_NORM_H

#include "cpu_internal.h"

#define CPU_NORM_BLOCK 256     /* elements per f32 block of a row sum */
#define CPU_NORM_CHUNK_ROWS 64 /* rows a dgamma/dbeta chunk sums in f32 */
#define CPU_NORM_FINAL_COLS                                                    \
  512 /* columns the final dgamma/dbeta pass sums                              \
         at once (a multiple of 16) */

enum { CPU_NORM_LAYER = FERRY_NORM_LAYER, CPU_NORM_RMS = FERRY_NORM_RMS };

typedef struct cpu_norm_fwd_args {
  int kind;
  float eps;
  ferry_dtype dt;
  int64_t rows, cols;
  const char *x;
  int64_t x_ld; /* row stride in elements */
  char *y;
  int64_t y_ld;
  const void *gamma, *beta; /* as given, or NULL */
  ferry_dtype gamma_dt, beta_dt;
  float *mean, *rstd; /* or NULL */
  /* Set by the task: f32 gamma and beta (1 and 0 where absent); whether y
   * is written with non-temporal stores; how many rows ahead to prefetch. */
  const float *g, *b;
  int nt;
  int64_t pf_rows;
} cpu_norm_fwd_args;

typedef struct cpu_norm_bwd_args {
  int kind;
  uint32_t flags;
  ferry_dtype dt;
  int64_t rows, cols;
  const char *dy, *x;
  int64_t dy_ld, x_ld;
  char *dx;
  int64_t dx_ld;
  const void *gamma;
  ferry_dtype gamma_dt;
  const float *mean, *rstd;
  void *dgamma, *dbeta; /* or NULL */
  ferry_dtype dgamma_dt, dbeta_dt;
  /* Set by the task (nt, pf_rows: as in cpu_norm_fwd_args, for dx). */
  const float *g;
  int nt;
  int64_t pf_rows;
  int64_t chunk_rows, chunks;
  /* chunks x cols sums of dy * xhat and dy per chunk (NULL: not wanted). */
  float *part_g, *part_b;
} cpu_norm_bwd_args;

/* Range functions for ferry_cpu_parallel_for, by dtype (0 f32, 1 bf16,
 * 2 f16): fwd over rows (arg: cpu_norm_fwd_args), bwd over chunks of rows
 * (arg: cpu_norm_bwd_args). All builds give the same bits: the same
 * lanes, the same summation order, no contraction into FMAs. */
typedef struct cpu_norm_kernels {
  ferry_cpu_range_fn fwd[3];
  ferry_cpu_range_fn bwd[3];
  /* dgamma/dbeta over columns (arg: cpu_norm_bwd_args), in chunks of
   * CPU_NORM_FINAL_COLS: each column's partials added in chunk order. */
  ferry_cpu_range_fn final;
} cpu_norm_kernels;

extern const cpu_norm_kernels cpu_norm_kernels_sse;
/* NULL where the build has no AVX2 variant (not x86-64 GCC/Clang). */
extern const cpu_norm_kernels *const cpu_norm_kernels_avx2;
/* NULL where the build has no AVX-512 variant. */
extern const cpu_norm_kernels *const cpu_norm_kernels_avx512;

#endif /* FERRY_CPU_NORM_H */
