/*
 * ferry: Fused LayerNorm and RMSNorm, forward and backward (see docs/norm.md).
 *
 * Both normalise each row of a 2-D `rows x cols` view over its last
 * dimension:
 *
 *   LayerNorm  y = (x - mean) * rstd * gamma + beta,
 *              rstd = 1 / sqrt(var + eps), var the biased variance;
 *   RMSNorm    y = x * rstd * gamma,
 *              rstd = 1 / sqrt(mean(x^2) + eps).
 *
 * Tensors are ferry_tensor views: x, y, dy and dx are 2-D with contiguous
 * rows (strides[1] == 1) whose row stride (strides[0], in elements) may
 * exceed cols; gamma, beta, dgamma and dbeta are 1-D of length cols; mean
 * and rstd are 1-D f32 of length rows. x, y, dy, dx are f32, f16 or bf16 (one
 * dtype for all four); gamma, beta, dgamma, dbeta are f32 or that dtype.
 * Statistics and accumulation are f32 or wider whatever the dtype.
 *
 * Both calls are enqueued on `stream` and return at once; faults found while
 * running are the stream's deferred errors. Outputs must not overlap inputs.
 * rows == 0 is a no-op: nothing is written (dgamma and dbeta included).
 */
#ifndef FERRY_NORM_H
#define FERRY_NORM_H

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ferry_norm_kind {
  FERRY_NORM_LAYER = 1, /* LayerNorm (Ba, Kiros, Hinton 2016) */
  FERRY_NORM_RMS = 2    /* RMSNorm (Zhang, Sennrich 2019) */
} ferry_norm_kind;

/* Flags of ferry_norm_options. */
enum {
  /* Backward: add dgamma/dbeta to what the tensors hold instead of
   * overwriting them (gradient accumulation over micro-batches). */
  FERRY_NORM_ACCUMULATE = 1u << 0
};

typedef struct ferry_norm_options {
  size_t struct_size;
  ferry_norm_kind kind;
  /* Added to the variance (mean square) in f32; finite and >= 0. With 0 a
   * constant row (all zero for RMSNorm) divides by zero. */
  float eps;
  uint32_t flags; /* FERRY_NORM_* */
} ferry_norm_options;
#define FERRY_NORM_OPTIONS_INIT                                                \
  {                                                                            \
    .struct_size = sizeof(ferry_norm_options), .kind = FERRY_NORM_LAYER,       \
    .eps = 1e-5f, .flags = 0                                                   \
  }

/* Forward. `opts` may be NULL (LayerNorm, eps 1e-5). gamma and beta may each
 * be NULL (1 and 0); RMSNorm takes no beta. mean and rstd may each be NULL
 * (not saved); RMSNorm has no mean (pass NULL) and saves its 1/rms in rstd. */
FERRY_API ferry_status ferry_norm_forward(
    ferry_stream *stream, const ferry_norm_options *opts, const ferry_tensor *x,
    const ferry_tensor *gamma, const ferry_tensor *beta, const ferry_tensor *y,
    const ferry_tensor *mean, const ferry_tensor *rstd);

/* Backward from the forward's saved statistics: dx (required), dgamma and
 * dbeta (each may be NULL: not computed). gamma is the forward's (NULL: 1);
 * mean is required for LayerNorm and must be NULL for RMSNorm; rstd is
 * required. dgamma/dbeta are deterministic (bit-identical across runs and
 * thread counts): per-block partial sums added in a fixed order, never
 * atomics. opts->flags & FERRY_NORM_ACCUMULATE adds them to the tensors'
 * contents; otherwise they are overwritten. RMSNorm takes no dbeta. */
FERRY_API ferry_status ferry_norm_backward(
    ferry_stream *stream, const ferry_norm_options *opts,
    const ferry_tensor *dy, const ferry_tensor *x, const ferry_tensor *gamma,
    const ferry_tensor *mean, const ferry_tensor *rstd, const ferry_tensor *dx,
    const ferry_tensor *dgamma, const ferry_tensor *dbeta);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_NORM_H */
