/* Shared by the cpu backend's Adan files. */
#ifndef FERRY_CPU_ADAN_H
#define FERRY_CPU_ADAN_H

#include "cpu_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* What the update of one group needs for one step, in f32. */
typedef struct ferry_cpu_adan_coefs {
  float b1, omb1, b2, omb2, b3, omb3; /* betas and 1 - betas */
  float clip, s1, s2, ibc3, eps, decay;
  int no_prox;
  int first; /* k == 1: the difference to the previous gradient is 0 */
} ferry_cpu_adan_coefs;

/* Square roots without libm (libferry links none): the SSE instructions on
 * x86, the compiler's builtin elsewhere. */
static inline float ferry_cpu_adan_sqrtf(float x) {
#if defined(__x86_64__) || defined(__i386__)
  return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x)));
#else
  return __builtin_sqrtf(x);
#endif
}

static inline double ferry_cpu_adan_sqrt(double x) {
#if defined(__x86_64__) || defined(__i386__)
  __m128d v = _mm_set_sd(x);
  return _mm_cvtsd_f64(_mm_sqrt_sd(v, v));
#else
  return __builtin_sqrt(x);
#endif
}

/* The step's scalar pass: from the gradients' sum of squares and non-finite
 * flag, decide skip and clip, advance every group's counter and derive its
 * coefficients into the control block and coefs[]. Returns 0 when the step
 * is skipped (nothing else may be touched), 1 otherwise. */
int ferry_cpu_adan_scalars(const ferry_be_adan_hyper *h,
                           ferry_be_adan_control *ctl, double sum, uint32_t bad,
                           ferry_cpu_adan_coefs *coefs);

#endif /* FERRY_CPU_ADAN_H */
