/* op_adan_step on the cpu: one stream task that runs the whole step.
 *
 *   1. With clipping or the finite check: the sum of squared gradients and
 *      a non-finite flag, one partial per work item (fixed boundaries of
 *      CPU_ADAN_ITEM elements), added in item order: the same result with
 *      any number of threads.
 *   2. The per-group scalars (counter, bias corrections, clip coefficient)
 *      from the control block, on the task's thread (cpu_adan_scalars.c).
 *   3. The fused update over the pool: one pass reading p, g, m, v, n,
 *      g_prev and writing p, m, v, n, g_prev. The f32 loop uses AVX2/FMA
 *      where the CPU has them (chosen at run time: libferry is built for the
 *      baseline ISA), else a scalar loop of the same arithmetic. f16/bf16
 *      tensors are staged through small f32 blocks. */
#include "cpu_adan.h"
#include "cpu_half.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_ADAN_X86 1
#endif

/* Elements per work item: large enough that claiming one is noise, small
 * enough that two threads balance on a 1M-element tensor. */
#define CPU_ADAN_ITEM ((uint64_t)16384)
/* f16/bf16 staging block (floats on the stack). */
#define CPU_ADAN_BLOCK 512u

typedef struct adan_tensor {
  void *param;
  const void *grad;
  float *state; /* m; v, n, g_prev, master follow `stride` apart */
  uint64_t stride, length;
  uint32_t group;
  ferry_dtype pdt, gdt;
} adan_tensor;

typedef struct adan_work {
  uint64_t tensor, begin, count;
} adan_work;

typedef struct adan_partial {
  double sum;
  uint32_t bad;
} adan_partial;

typedef struct adan_args {
  ferry_be_adan_hyper h;
  ferry_be_adan_control *ctl;
  int avx2;
  /* One allocation: tensors, work items, partials. */
  adan_tensor *tensors;
  adan_work *work;
  adan_partial *partials;
  uint64_t ntensors, nwork;
  ferry_cpu_adan_coefs coefs[FERRY_BE_ADAN_MAX_GROUPS];
} adan_args;

/* ---- the f32 update ------------------------------------------------------ */

static void update_scalar(float *p, const float *graw, float *m, float *v,
                          float *n, float *gp, uint64_t len,
                          const ferry_cpu_adan_coefs *c) {
  for (uint64_t i = 0; i < len; i++) {
    float g = c->clip * graw[i];
    float d = c->first ? 0.0f : g - gp[i];
    float mm = c->b1 * m[i] + c->omb1 * g;
    float vv = c->b2 * v[i] + c->omb2 * d;
    float u = g + c->b2 * d;
    float nn = c->b3 * n[i] + c->omb3 * (u * u);
    float den = ferry_cpu_adan_sqrtf(nn) * c->ibc3 + c->eps;
    float st = (c->s1 * mm + c->s2 * vv) / den;
    p[i] = c->no_prox ? p[i] * c->decay - st : (p[i] - st) * c->decay;
    m[i] = mm;
    v[i] = vv;
    n[i] = nn;
    gp[i] = g;
  }
}

#ifdef CPU_ADAN_X86
__attribute__((target("avx2,fma"))) static void
update_avx2(float *p, const float *graw, float *m, float *v, float *n,
            float *gp, uint64_t len, const ferry_cpu_adan_coefs *c) {
  const __m256 clip = _mm256_set1_ps(c->clip), b1 = _mm256_set1_ps(c->b1),
               omb1 = _mm256_set1_ps(c->omb1), b2 = _mm256_set1_ps(c->b2),
               omb2 = _mm256_set1_ps(c->omb2), b3 = _mm256_set1_ps(c->b3),
               omb3 = _mm256_set1_ps(c->omb3), ibc3 = _mm256_set1_ps(c->ibc3),
               eps = _mm256_set1_ps(c->eps), s1 = _mm256_set1_ps(c->s1),
               s2 = _mm256_set1_ps(c->s2), decay = _mm256_set1_ps(c->decay);
  const int first = c->first, no_prox = c->no_prox;
  uint64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    __m256 g = _mm256_mul_ps(clip, _mm256_loadu_ps(graw + i));
    __m256 d =
        first ? _mm256_setzero_ps() : _mm256_sub_ps(g, _mm256_loadu_ps(gp + i));
    __m256 mm =
        _mm256_fmadd_ps(b1, _mm256_loadu_ps(m + i), _mm256_mul_ps(omb1, g));
    __m256 vv =
        _mm256_fmadd_ps(b2, _mm256_loadu_ps(v + i), _mm256_mul_ps(omb2, d));
    __m256 u = _mm256_fmadd_ps(b2, d, g);
    __m256 nn = _mm256_fmadd_ps(b3, _mm256_loadu_ps(n + i),
                                _mm256_mul_ps(omb3, _mm256_mul_ps(u, u)));
    __m256 den = _mm256_fmadd_ps(_mm256_sqrt_ps(nn), ibc3, eps);
    __m256 st =
        _mm256_div_ps(_mm256_fmadd_ps(s1, mm, _mm256_mul_ps(s2, vv)), den);
    __m256 pp = _mm256_loadu_ps(p + i);
    pp = no_prox ? _mm256_fmsub_ps(pp, decay, st)
                 : _mm256_mul_ps(_mm256_sub_ps(pp, st), decay);
    _mm256_storeu_ps(p + i, pp);
    _mm256_storeu_ps(m + i, mm);
    _mm256_storeu_ps(v + i, vv);
    _mm256_storeu_ps(n + i, nn);
    _mm256_storeu_ps(gp + i, g);
  }
  update_scalar(p + i, graw + i, m + i, v + i, n + i, gp + i, len - i, c);
}
#endif

static void update_f32(int avx2, float *p, const float *g, float *m, float *v,
                       float *n, float *gp, uint64_t len,
                       const ferry_cpu_adan_coefs *c) {
#ifdef CPU_ADAN_X86
  if (avx2) {
    update_avx2(p, g, m, v, n, gp, len, c);
    return;
  }
#endif
  (void)avx2;
  update_scalar(p, g, m, v, n, gp, len, c);
}

/* ---- f16 / bf16 staging -------------------------------------------------- */

static void to_f32(ferry_dtype dt, const void *src, float *dst, uint64_t len) {
  const uint16_t *h = src;
  if (dt == FERRY_DTYPE_F16)
    for (uint64_t i = 0; i < len; i++)
      dst[i] = ferry_f16_to_f32(h[i]);
  else
    for (uint64_t i = 0; i < len; i++)
      dst[i] = ferry_bf16_to_f32(h[i]);
}

static void from_f32(ferry_dtype dt, const float *src, void *dst,
                     uint64_t len) {
  uint16_t *h = dst;
  if (dt == FERRY_DTYPE_F16)
    for (uint64_t i = 0; i < len; i++)
      h[i] = ferry_f32_to_f16(src[i]);
  else
    for (uint64_t i = 0; i < len; i++)
      h[i] = ferry_f32_to_bf16(src[i]);
}

static void update_low(const adan_args *a, const adan_tensor *t, uint64_t begin,
                       uint64_t count, const ferry_cpu_adan_coefs *c) {
  const ferry_be_adan_group_ctl *gc = &a->ctl->groups[t->group];
  bool master = (a->h.flags & FERRY_BE_ADAN_MASTER) != 0;
  float pt[CPU_ADAN_BLOCK], gt[CPU_ADAN_BLOCK];
  for (uint64_t at = begin; at < begin + count; at += CPU_ADAN_BLOCK) {
    uint64_t len = begin + count - at;
    if (len > CPU_ADAN_BLOCK)
      len = CPU_ADAN_BLOCK;
    uint16_t *p16 = (uint16_t *)t->param + at;
    const float *g;
    if (t->gdt == FERRY_DTYPE_F32) {
      g = (const float *)t->grad + at;
    } else {
      to_f32(t->gdt, (const uint16_t *)t->grad + at, gt, len);
      g = gt;
    }
    float *s = t->state + at;
    float *pw = pt;
    if (master) {
      pw = s + 4 * t->stride;
      if (!gc->use_master) /* first use: start from the parameters */
        to_f32(t->pdt, p16, pw, len);
    } else {
      to_f32(t->pdt, p16, pw, len);
    }
    update_f32(a->avx2, pw, g, s, s + t->stride, s + 2 * t->stride,
               s + 3 * t->stride, len, c);
    from_f32(t->pdt, pw, p16, len);
  }
}

static void update_range(void *arg, uint64_t begin, uint64_t end) {
  const adan_args *a = arg;
  for (uint64_t w = begin; w < end; w++) {
    const adan_work *k = &a->work[w];
    const adan_tensor *t = &a->tensors[k->tensor];
    const ferry_cpu_adan_coefs *c = &a->coefs[t->group];
    if (t->pdt != FERRY_DTYPE_F32) {
      update_low(a, t, k->begin, k->count, c);
      continue;
    }
    float *s = t->state + k->begin;
    update_f32(a->avx2, (float *)t->param + k->begin,
               (const float *)t->grad + k->begin, s, s + t->stride,
               s + 2 * t->stride, s + 3 * t->stride, k->count, c);
  }
}

/* ---- the reduction ------------------------------------------------------- */

/* Sum of squares of f32 values in double (the clip coefficient scales every
 * update: a float sum would be off by ~1e-4 on large tensors). */
static double sumsq_scalar(const float *g, uint64_t len) {
  double acc[4] = {0, 0, 0, 0};
  uint64_t i = 0;
  for (; i + 4 <= len; i += 4)
    for (int j = 0; j < 4; j++)
      acc[j] += (double)g[i + j] * (double)g[i + j];
  for (; i < len; i++)
    acc[0] += (double)g[i] * (double)g[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

#ifdef CPU_ADAN_X86
/* Four independent accumulators: one FMA chain would wait on its latency. */
__attribute__((target("avx2,fma"))) static double sumsq_avx2(const float *g,
                                                             uint64_t len) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  __m256d a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
  uint64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    __m256d x0 = _mm256_cvtps_pd(_mm_loadu_ps(g + i));
    __m256d x1 = _mm256_cvtps_pd(_mm_loadu_ps(g + i + 4));
    __m256d x2 = _mm256_cvtps_pd(_mm_loadu_ps(g + i + 8));
    __m256d x3 = _mm256_cvtps_pd(_mm_loadu_ps(g + i + 12));
    a0 = _mm256_fmadd_pd(x0, x0, a0);
    a1 = _mm256_fmadd_pd(x1, x1, a1);
    a2 = _mm256_fmadd_pd(x2, x2, a2);
    a3 = _mm256_fmadd_pd(x3, x3, a3);
  }
  double lanes[4];
  _mm256_storeu_pd(lanes,
                   _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) +
         sumsq_scalar(g + i, len - i);
}
#endif

static double sumsq(int avx2, const float *g, uint64_t len) {
#ifdef CPU_ADAN_X86
  if (avx2)
    return sumsq_avx2(g, len);
#endif
  (void)avx2;
  return sumsq_scalar(g, len);
}

static void reduce_range(void *arg, uint64_t begin, uint64_t end) {
  const adan_args *a = arg;
  for (uint64_t w = begin; w < end; w++) {
    const adan_work *k = &a->work[w];
    const adan_tensor *t = &a->tensors[k->tensor];
    double sum = 0;
    if (t->gdt == FERRY_DTYPE_F32) {
      sum = sumsq(a->avx2, (const float *)t->grad + k->begin, k->count);
    } else {
      float gt[CPU_ADAN_BLOCK];
      for (uint64_t at = k->begin; at < k->begin + k->count;
           at += CPU_ADAN_BLOCK) {
        uint64_t len = k->begin + k->count - at;
        if (len > CPU_ADAN_BLOCK)
          len = CPU_ADAN_BLOCK;
        to_f32(t->gdt, (const uint16_t *)t->grad + at, gt, len);
        sum += sumsq(a->avx2, gt, len);
      }
    }
    /* Inf or NaN anywhere makes the sum Inf or NaN; a sum of squares of
     * finite f32 values cannot overflow a double. */
    a->partials[w].sum = sum;
    a->partials[w].bad = !(sum - sum == 0.0);
  }
}

/* ---- the task ------------------------------------------------------------ */

static void run_step(const ferry_cpu_task *task, void *args) {
  adan_args *a = args;
  ferry_be_context *ctx = ferry_cpu_task_context(task);
  double sum = 0;
  uint32_t bad = 0;
  if (a->h.flags & (FERRY_BE_ADAN_CLIP | FERRY_BE_ADAN_CHECK_FINITE)) {
    ferry_cpu_parallel_for(ctx, a->nwork, 1, reduce_range, a);
    for (uint64_t w = 0; w < a->nwork; w++) { /* in order: deterministic */
      sum += a->partials[w].sum;
      bad |= a->partials[w].bad;
    }
  }
  if (!ferry_cpu_adan_scalars(&a->h, a->ctl, sum, bad, a->coefs))
    return; /* skipped: nothing touched */
  ferry_cpu_parallel_for(ctx, a->nwork, 1, update_range, a);
}

static void free_step(void *args) {
  adan_args *a = args;
  free(a->tensors);
}

ferry_status ferry_cpu_op_adan_step(ferry_be_stream *s,
                                    const ferry_be_launch *l,
                                    const ferry_be_adan_step *step) {
  adan_args a;
  memset(&a, 0, sizeof a);
  a.h = step->hyper;
  a.ctl = ferry_cpu_memref_addr(&step->control);
  if (a.ctl == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                                     "cpu adan_step: the control block has "
                                     "no host address");
  uint64_t nwork = 0;
  for (uint64_t i = 0; i < step->tensor_count; i++)
    nwork += (step->tensors[i].length + CPU_ADAN_ITEM - 1) / CPU_ADAN_ITEM;
  size_t bytes = step->tensor_count * sizeof(adan_tensor) +
                 nwork * (sizeof(adan_work) + sizeof(adan_partial));
  char *mem = malloc(bytes);
  if (mem == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                                     "cpu adan_step: out of host memory");
  a.tensors = (adan_tensor *)mem;
  a.partials = (adan_partial *)(a.tensors + step->tensor_count);
  a.work = (adan_work *)(a.partials + nwork);
  a.ntensors = step->tensor_count;
  a.nwork = nwork;
  uint64_t w = 0;
  for (uint64_t i = 0; i < step->tensor_count; i++) {
    const ferry_be_adan_tensor *t = &step->tensors[i];
    adan_tensor *d = &a.tensors[i];
    d->param = ferry_cpu_memref_addr(&t->param);
    d->grad = ferry_cpu_memref_addr(&t->grad);
    d->state = ferry_cpu_memref_addr(&t->state);
    if (d->param == NULL || d->grad == NULL || d->state == NULL) {
      free(mem);
      return ferry_cpu_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                                       "cpu adan_step: tensor %llu has an "
                                       "operand without a host address",
                                       (unsigned long long)i);
    }
    d->stride = t->stride;
    d->length = t->length;
    d->group = t->group;
    d->pdt = t->param_dtype;
    d->gdt = t->grad_dtype;
    for (uint64_t at = 0; at < t->length; at += CPU_ADAN_ITEM, w++) {
      a.work[w].tensor = i;
      a.work[w].begin = at;
      a.work[w].count =
          t->length - at < CPU_ADAN_ITEM ? t->length - at : CPU_ADAN_ITEM;
    }
  }
#ifdef CPU_ADAN_X86
  __builtin_cpu_init();
  a.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  ferry_status st = ferry_cpu_enqueue(s, l, run_step, &a, sizeof a, free_step);
  if (st != FERRY_OK)
    free(mem);
  return st;
}
