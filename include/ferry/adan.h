/*
 * ferry: The fused Adan optimizer step (see docs/adan.md).
 *
 * Adan (Xie et al. 2022) with the semantics of its official implementation
 * (sail-sg/Adan, adan.py): per element, with g the (clipped) gradient and k
 * the group's step counter (the first step is k = 1),
 *
 *   d = g - g_prev                      (0 on the first step)
 *   m = b1 m + (1 - b1) g
 *   v = b2 v + (1 - b2) d
 *   n = b3 n + (1 - b3) (g + b2 d)^2
 *   denom = sqrt(n) / sqrt(1 - b3^k) + eps
 *   s1 = lr / (1 - b1^k),  s2 = lr b2 / (1 - b2^k)
 *   no_prox = 0:  p = (p - s1 m / denom - s2 v / denom) / (1 + lr wd)
 *   no_prox = 1:  p = p (1 - lr wd) - s1 m / denom - s2 v / denom
 *   g_prev = g
 *
 * One step reads every parameter, gradient and state element once and
 * writes parameters and state once (44 bytes per f32 parameter; 48 with
 * clipping or the finite check, which read the gradients once more first).
 * The step counter and the bias corrections live on the device: a step
 * never waits for the device; the calls that read the counter do.
 *
 * Usage:
 *   ferry_adan_create(ctx, &opts, &opt);
 *   ferry_adan_add_group(opt, NULL, params, n, &group);   // shapes, dtypes
 *   ferry_adan_step(opt, params, grads, n, stream);        // each iteration
 *
 * Tensors are compact (row-major, no gaps) views of f32, f16 or bf16
 * elements; gradients are f32 or the parameters' dtype. Parameters and
 * gradients may be views into one flat buffer each, or separate buffers.
 * Gradients are only read.
 */
#ifndef FERRY_ADAN_H
#define FERRY_ADAN_H

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_adan ferry_adan;

/* Parameter groups one optimizer may hold. */
#define FERRY_ADAN_MAX_GROUPS 64

typedef struct ferry_adan_options {
  size_t struct_size;
  double lr;           /* >= 0; default for groups; 1e-3 */
  double beta1;        /* [0, 1); 0.98 */
  double beta2;        /* [0, 1); 0.92 */
  double beta3;        /* [0, 1); 0.99 */
  double eps;          /* > 0; 1e-8 */
  double weight_decay; /* >= 0; default for groups; 0 */
  /* > 0: scale every gradient of every group by
   * min(1, max_grad_norm / (sqrt(sum g^2) + eps)); 0: no clipping. */
  double max_grad_norm;
  int no_prox; /* nonzero: decoupled (multiplicative) weight decay */
  /* Nonzero: look for Inf/NaN in the gradients first; if any is found the
   * whole step is skipped (parameters, state and counters untouched) and
   * ferry_adan_last_step_skipped reports it. */
  int check_finite;
  /* Nonzero (default): f16/bf16 parameters get f32 master weights held by
   * the optimizer, updated in f32 and rounded into the parameters. Zero:
   * the update reads and rounds the low-precision parameters themselves. */
  int master_weights;
} ferry_adan_options;
#define FERRY_ADAN_OPTIONS_INIT                                                \
  {                                                                            \
    .struct_size = sizeof(ferry_adan_options), .lr = 1e-3, .beta1 = 0.98,      \
    .beta2 = 0.92, .beta3 = 0.99, .eps = 1e-8, .weight_decay = 0.0,            \
    .max_grad_norm = 0.0, .no_prox = 0, .check_finite = 0, .master_weights = 1 \
  }

/* One parameter group's own hyper-parameters. */
typedef struct ferry_adan_group_options {
  size_t struct_size;
  double lr;           /* >= 0 */
  double weight_decay; /* >= 0 */
} ferry_adan_group_options;
#define FERRY_ADAN_GROUP_OPTIONS_INIT                                          \
  {                                                                            \
    .struct_size = sizeof(ferry_adan_group_options), .lr = 1e-3,               \
    .weight_decay = 0.0                                                        \
  }

/* opts may be NULL (the defaults above). The optimizer's state lives on the
 * context's device. */
FERRY_API ferry_status ferry_adan_create(ferry_context *ctx,
                                         const ferry_adan_options *opts,
                                         ferry_adan **out);
/* Waits for the optimizer's queued steps, then frees its state. */
FERRY_API void ferry_adan_destroy(ferry_adan *opt);

/* Adds a group of `count` tensors (count > 0, none empty): their shapes and
 * dtypes fix the group's state, one flat arena on the device holding m, v,
 * n and the previous gradient (and f32 master weights for f16/bf16
 * parameters), zeroed. Only the views' shapes and dtypes are read here. g may
 * be NULL: the optimizer's lr and weight_decay. *out_group receives the
 * group's index (0, 1, ...). Waits for the optimizer's earlier steps. */
FERRY_API ferry_status ferry_adan_add_group(ferry_adan *opt,
                                            const ferry_adan_group_options *g,
                                            const ferry_tensor *params,
                                            size_t count, int *out_group);
/* Changes a group's lr and weight decay for the following steps (a
 * schedule); takes effect without waiting for the device. */
FERRY_API ferry_status ferry_adan_set_group(ferry_adan *opt, int group,
                                            const ferry_adan_group_options *g);

/* One optimizer step over every group, enqueued on `stream`. params[i] and
 * grads[i] are the i-th tensor of all groups in the order they were added
 * (count tensors in all), each with the element count it was added with.
 * Nothing is enqueued when an argument is wrong. */
FERRY_API ferry_status ferry_adan_step(ferry_adan *opt,
                                       const ferry_tensor *params,
                                       const ferry_tensor *grads, size_t count,
                                       ferry_stream *stream);

/* The group's step counter k (steps taken since creation or restart). Waits
 * for the optimizer's queued steps. */
FERRY_API ferry_status ferry_adan_get_step(ferry_adan *opt, int group,
                                           uint64_t *out);
/* Sets the group's counter (resuming from a checkpoint); the next step is
 * step + 1. Waits for the queued steps. */
FERRY_API ferry_status ferry_adan_set_step(ferry_adan *opt, int group,
                                           uint64_t step);
/* 1 when the last step found a non-finite gradient and was skipped, else
 * 0. Waits for the queued steps. */
FERRY_API ferry_status ferry_adan_last_step_skipped(ferry_adan *opt, int *out);
/* Every group's counter to 0 and m, v, n to zero; the previous gradient is
 * re-seeded by the next step. Waits for the queued steps. */
FERRY_API ferry_status ferry_adan_restart(ferry_adan *opt);

/* Checkpoints: one state vector of a group as a plain f32 array, the
 * group's tensors one after another in the order they were added. */
typedef enum ferry_adan_state {
  FERRY_ADAN_STATE_M = 0,         /* first moment */
  FERRY_ADAN_STATE_V = 1,         /* moment of gradient differences */
  FERRY_ADAN_STATE_N = 2,         /* second moment */
  FERRY_ADAN_STATE_GRAD_PREV = 3, /* the previous (clipped) gradient */
  FERRY_ADAN_STATE_MASTER = 4     /* f32 master weights (f16/bf16 params) */
} ferry_adan_state;

/* Elements of each state vector of the group (its parameters' total). */
FERRY_API ferry_status ferry_adan_state_length(const ferry_adan *opt, int group,
                                               uint64_t *out);
/* Copy a state vector out (count = the state length). Waits for the queued
 * steps. */
FERRY_API ferry_status ferry_adan_read_state(ferry_adan *opt, int group,
                                             ferry_adan_state which, float *dst,
                                             uint64_t count);
/* Copy a state vector in (count = the state length). Writing the master
 * weights marks them valid (the next step starts from them rather than the
 * parameters). Waits for the queued steps and for the copy. */
FERRY_API ferry_status ferry_adan_write_state(ferry_adan *opt, int group,
                                              ferry_adan_state which,
                                              const float *src, uint64_t count);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_ADAN_H */
