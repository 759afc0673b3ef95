/* The row kernels of the cpu LayerNorm/RMSNorm, written once for a native
 * vector width NORM_VW (4: SSE, 8: AVX2, 16: AVX-512) and included by
 * cpu_norm_sse.c, cpu_norm_avx2.c and cpu_norm_avx512.c, which define
 * NORM_VW and NORM_KERNELS (the name of the cpu_norm_kernels table).
 *
 * Everything goes 32 elements a step (a `v32`: 32 / NORM_VW native
 * vectors), so every build does the same arithmetic: lane k of a step holds
 * element i + k, a row sum keeps 32 f32 lanes (32 independent add chains,
 * not one: a single 8-lane chain was bound by the adder's latency) over a
 * block of CPU_NORM_BLOCK elements, folds them to 8 in a fixed tree and adds
 * those into an f64 total in a fixed tree; the < 32 elements left at the
 * end of a row are added one by one in f64. Nothing is contracted into an
 * FMA. So all three builds give the same bits.
 *
 * Memory. Every row is read from memory once; the statistics take further
 * passes over the row while it sits in the core's cache. During those
 * passes the next rows are prefetched into L2 (`pf`), so that the memory
 * system keeps streaming while the core computes. Outputs of large calls
 * are written with non-temporal stores (`nt`): they bypass the cache and
 * skip the read-for-ownership a normal store costs, a third of a
 * forward's memory traffic.
 *
 * Numerics. LayerNorm's variance is two-pass and centred: the mean first,
 * then the sums of d and d^2 with d = x - mean, var = (S(d^2) - S(d)^2 / n)
 * / n (the S(d) term corrects the rounding of the mean). f16 and bf16 are
 * converted as they are loaded and stored, with integer vector operations
 * (bf16 -> f32 is a shift; f32 -> bf16 rounds to nearest even). */
#include "cpu_half.h"
#include "cpu_norm.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NORM_X86 1
#else
#define NORM_X86 0
#endif

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define NORM_U (32 / NORM_VW) /* native vectors per 32-element step */

typedef float vf __attribute__((vector_size(NORM_VW * 4)));
typedef uint32_t vu __attribute__((vector_size(NORM_VW * 4)));
typedef int32_t vi __attribute__((vector_size(NORM_VW * 4)));
typedef uint16_t vh __attribute__((vector_size(NORM_VW * 2)));

typedef struct v32 {
  vf v[NORM_U];
} v32;

/* ---- scalars ------------------------------------------------------------- */

ALWAYS_INLINE float ld1(const void *p, int64_t i, ferry_dtype dt) {
  if (dt == FERRY_DTYPE_F32)
    return ((const float *)p)[i];
  if (dt == FERRY_DTYPE_BF16)
    return ferry_bf16_to_f32(((const uint16_t *)p)[i]);
  return ferry_f16_to_f32(((const uint16_t *)p)[i]);
}

ALWAYS_INLINE void st1(void *p, int64_t i, ferry_dtype dt, float v) {
  if (dt == FERRY_DTYPE_F32)
    ((float *)p)[i] = v;
  else if (dt == FERRY_DTYPE_BF16)
    ((uint16_t *)p)[i] = ferry_f32_to_bf16(v);
  else
    ((uint16_t *)p)[i] = ferry_f32_to_f16(v);
}

/* ---- one native vector: conversions -------------------------------------- */

ALWAYS_INLINE vf as_f(vu u) {
  vf f;
  memcpy(&f, &u, sizeof f);
  return f;
}
ALWAYS_INLINE vu as_u(vf f) {
  vu u;
  memcpy(&u, &f, sizeof u);
  return u;
}
ALWAYS_INLINE vu sel(vi mask, vu a, vu b) {
  return (a & (vu)mask) | (b & ~(vu)mask);
}
ALWAYS_INLINE vu splat_u(uint32_t v) {
  return (vu){0} + v;
}
ALWAYS_INLINE vf splat_f(float v) {
  return (vf){0} + v;
}

ALWAYS_INLINE vf bf16v_to_f32(vh h) {
  return as_f(__builtin_convertvector(h, vu) << 16);
}

ALWAYS_INLINE vh f32v_to_bf16(vf f) {
  vu u = as_u(f);
  vu rounded = (u + splat_u(0x7fffu) + ((u >> 16) & splat_u(1u))) >> 16;
  vu nan = (u >> 16) | splat_u(0x40u);
  vi is_nan = (u & splat_u(0x7fffffffu)) > splat_u(0x7f800000u);
  return __builtin_convertvector(sel(is_nan, nan, rounded), vh);
}

ALWAYS_INLINE vf f16v_to_f32(vh h) {
  vu w = __builtin_convertvector(h, vu);
  vu sign = (w & splat_u(0x8000u)) << 16;
  vu em = (w & splat_u(0x7fffu)) << 13;
  vu exp = em & splat_u(0x0f800000u);
  vu normal = em + splat_u(112u << 23);
  vu special = em | splat_u(0x7f800000u);
  vu sub = as_u(as_f(em + splat_u(113u << 23)) - as_f(splat_u(113u << 23)));
  vu bits = sel(exp == splat_u(0x0f800000u), special,
                sel(exp == splat_u(0), sub, normal));
  return as_f(bits | sign);
}

/* Lanes in f16's normal range take the vector path; otherwise the scalar
 * conversion handles subnormals, overflow and NaN. */
ALWAYS_INLINE vh f32v_to_f16(vf f) {
  vu u = as_u(f);
  vu a = u & splat_u(0x7fffffffu);
  vi normal = (a >= splat_u(0x38800000u)) & (a < splat_u(0x477ff000u));
  int all = 1;
  for (int k = 0; k < NORM_VW; k++)
    all &= normal[k] != 0;
  if (all) {
    vu r = a - splat_u(112u << 23);
    vu out = (r + splat_u(0xfffu) + ((r >> 13) & splat_u(1u))) >> 13;
    return __builtin_convertvector(out | ((u >> 16) & splat_u(0x8000u)), vh);
  }
  vh h;
  for (int k = 0; k < NORM_VW; k++)
    h[k] = ferry_f32_to_f16(f[k]);
  return h;
}

ALWAYS_INLINE vf ldv(const void *p, int64_t i, ferry_dtype dt) {
  if (dt == FERRY_DTYPE_F32) {
    vf v;
    memcpy(&v, (const float *)p + i, sizeof v);
    return v;
  }
  vh h;
  memcpy(&h, (const uint16_t *)p + i, sizeof h);
  return dt == FERRY_DTYPE_BF16 ? bf16v_to_f32(h) : f16v_to_f32(h);
}

/* A store of one native vector; `nt`: non-temporal, p + i aligned to the
 * bytes stored (the caller's prologue sees to it). */
ALWAYS_INLINE void stv(void *p, int64_t i, ferry_dtype dt, vf v, int nt) {
  if (dt == FERRY_DTYPE_F32) {
    float *d = (float *)p + i;
#if NORM_X86 && NORM_VW == 4
    if (nt) {
      _mm_stream_ps(d, (__m128)v);
      return;
    }
#elif NORM_X86 && NORM_VW == 8
    if (nt) {
      _mm256_stream_ps(d, (__m256)v);
      return;
    }
#elif NORM_X86 && NORM_VW == 16
    if (nt) {
      _mm512_stream_ps(d, (__m512)v);
      return;
    }
#endif
    (void)nt;
    memcpy(d, &v, sizeof v);
    return;
  }
  vh h = dt == FERRY_DTYPE_BF16 ? f32v_to_bf16(v) : f32v_to_f16(v);
  uint16_t *d = (uint16_t *)p + i;
#if NORM_X86 && NORM_VW == 4 && defined(__x86_64__)
  if (nt) {
    long long b;
    memcpy(&b, &h, sizeof b);
    _mm_stream_si64((long long *)(void *)d, b);
    return;
  }
#elif NORM_X86 && NORM_VW == 8
  if (nt) {
    _mm_stream_si128((__m128i *)(void *)d, (__m128i)h);
    return;
  }
#elif NORM_X86 && NORM_VW == 16
  if (nt) {
    _mm256_stream_si256((__m256i *)(void *)d, (__m256i)h);
    return;
  }
#endif
  (void)nt;
  memcpy(d, &h, sizeof h);
}

/* Orders this thread's non-temporal stores before whatever signals the
 * task's completion. */
ALWAYS_INLINE void nt_fence(int nt) {
#if NORM_X86
  if (nt)
    _mm_sfence();
#else
  (void)nt;
#endif
}

/* ---- 32 elements: v32 ---------------------------------------------------- */

#define FOR_U for (int u = 0; u < NORM_U; u++)

ALWAYS_INLINE v32 v_splat(float f) {
  v32 r;
  FOR_U r.v[u] = splat_f(f);
  return r;
}
ALWAYS_INLINE v32 v_add(v32 a, v32 b) {
  FOR_U a.v[u] += b.v[u];
  return a;
}
ALWAYS_INLINE v32 v_sub(v32 a, v32 b) {
  FOR_U a.v[u] -= b.v[u];
  return a;
}
ALWAYS_INLINE v32 v_mul(v32 a, v32 b) {
  FOR_U a.v[u] *= b.v[u];
  return a;
}
ALWAYS_INLINE v32 v_ld(const void *p, int64_t i, ferry_dtype dt) {
  v32 r;
  FOR_U r.v[u] = ldv(p, i + u * NORM_VW, dt);
  return r;
}
ALWAYS_INLINE v32 v_ldf(const float *p, int64_t i) {
  return v_ld(p, i, FERRY_DTYPE_F32);
}
ALWAYS_INLINE void v_st(void *p, int64_t i, ferry_dtype dt, v32 v, int nt) {
  FOR_U stv(p, i + u * NORM_VW, dt, v.v[u], nt);
}
ALWAYS_INLINE void v_stf(float *p, int64_t i, v32 v) {
  v_st(p, i, FERRY_DTYPE_F32, v, 0);
}

/* The 32 lanes' sum, in the same order in every build: lane l of the
 * 8-lane fold is (a[l] + a[l+16]) + (a[l+8] + a[l+24]); those 8 are added
 * in f64 as ((0+1)+(2+3)) + ((4+5)+(6+7)). */
ALWAYS_INLINE double v_hsum(v32 a) {
  float l[8];
#if NORM_VW == 16
  vf c = a.v[0] + a.v[1];
  for (int k = 0; k < 8; k++)
    l[k] = c[k] + c[k + 8];
#elif NORM_VW == 8
  vf c = (a.v[0] + a.v[2]) + (a.v[1] + a.v[3]);
  for (int k = 0; k < 8; k++)
    l[k] = c[k];
#elif NORM_VW == 4
  vf lo = (a.v[0] + a.v[4]) + (a.v[2] + a.v[6]);
  vf hi = (a.v[1] + a.v[5]) + (a.v[3] + a.v[7]);
  for (int k = 0; k < 4; k++) {
    l[k] = lo[k];
    l[k + 4] = hi[k];
  }
#else
#error "NORM_VW is 4, 8 or 16"
#endif
  double s0 = ((double)l[0] + (double)l[1]) + ((double)l[2] + (double)l[3]);
  double s1 = ((double)l[4] + (double)l[5]) + ((double)l[6] + (double)l[7]);
  return s0 + s1;
}

/* Prefetch into L2 the bytes [i * es, (i + 32) * es) of a row to come. */
ALWAYS_INLINE void pf32(const char *pf, int64_t i, size_t es) {
  if (pf == NULL)
    return;
  __builtin_prefetch(pf + (size_t)i * es, 0, 2);
  if (es == 4)
    __builtin_prefetch(pf + (size_t)i * es + 64, 0, 2);
}

/* Elements before p's first 64-byte boundary (at most n): written with
 * ordinary stores, so that the non-temporal ones are aligned. */
ALWAYS_INLINE int64_t nt_lead(const void *p, int64_t n, size_t es, int nt) {
  if (!nt)
    return 0;
  /* Elements not aligned to their size (a caller's odd host pointer) never
   * reach a 64-byte boundary: all normal stores then (see row_nt). */
  int64_t lead = (int64_t)((64 - ((uintptr_t)p & 63)) & 63) / (int64_t)es;
  return lead < n ? lead : n;
}

/* Whether a row's output at p takes non-temporal stores: asked for, and p
 * aligned to its element size (so that some element is 64-byte aligned). */
ALWAYS_INLINE int row_nt(int nt, const void *p, size_t es) {
  return nt && ((uintptr_t)p & (es - 1)) == 0;
}

/* ---- row statistics ------------------------------------------------------ */

/* Sum of x (sq = 0) or of x^2 (sq = 1) over n elements. */
ALWAYS_INLINE double row_sum(const void *x, int64_t n, ferry_dtype dt, int sq) {
  double total = 0;
  int64_t i = 0;
  while (i + 32 <= n) {
    int64_t end = i + CPU_NORM_BLOCK <= n ? i + CPU_NORM_BLOCK : n;
    v32 acc = v_splat(0.0f);
    for (; i + 32 <= end; i += 32) {
      v32 v = v_ld(x, i, dt);
      acc = v_add(acc, sq ? v_mul(v, v) : v);
    }
    total += v_hsum(acc);
  }
  for (; i < n; i++) {
    double v = ld1(x, i, dt);
    total += sq ? v * v : v;
  }
  return total;
}

/* Sums of d and d^2, d = x - m; prefetches the row `pf` (or not: NULL). */
ALWAYS_INLINE void row_centred(const void *x, int64_t n, ferry_dtype dt,
                               float m, double *s1, double *s2,
                               const char *pf) {
  size_t es = dt == FERRY_DTYPE_F32 ? 4 : 2;
  double t1 = 0, t2 = 0;
  int64_t i = 0;
  v32 vm = v_splat(m);
  while (i + 32 <= n) {
    int64_t end = i + CPU_NORM_BLOCK <= n ? i + CPU_NORM_BLOCK : n;
    v32 a = v_splat(0.0f), b = v_splat(0.0f);
    for (; i + 32 <= end; i += 32) {
      pf32(pf, i, es);
      v32 d = v_sub(v_ld(x, i, dt), vm);
      a = v_add(a, d);
      b = v_add(b, v_mul(d, d));
    }
    t1 += v_hsum(a);
    t2 += v_hsum(b);
  }
  for (; i < n; i++) {
    double d = (double)(ld1(x, i, dt) - m);
    t1 += d;
    t2 += d * d;
  }
  *s1 = t1;
  *s2 = t2;
}

/* ---- forward ------------------------------------------------------------- */

/* y = (x - m) * rs * g + b (LayerNorm) or x * rs * g (RMSNorm) for elements
 * [i, i + 32). */
ALWAYS_INLINE v32 fwd_step(const void *x, int64_t i, ferry_dtype dt, int layer,
                           v32 vm, v32 vr, const float *g, const float *b) {
  if (layer)
    return v_add(v_mul(v_mul(v_sub(v_ld(x, i, dt), vm), vr), v_ldf(g, i)),
                 v_ldf(b, i));
  return v_mul(v_mul(v_ld(x, i, dt), vr), v_ldf(g, i));
}

ALWAYS_INLINE float fwd_one(const void *x, int64_t i, ferry_dtype dt, int layer,
                            float m, float rs, const float *g, const float *b) {
  if (layer)
    return (ld1(x, i, dt) - m) * rs * g[i] + b[i];
  return ld1(x, i, dt) * rs * g[i];
}

ALWAYS_INLINE void fwd_row(const cpu_norm_fwd_args *a, int64_t r,
                           ferry_dtype dt) {
  size_t es = dt == FERRY_DTYPE_F32 ? 4 : 2;
  const void *x = a->x + (size_t)(r * a->x_ld) * es;
  void *y = a->y + (size_t)(r * a->y_ld) * es;
  int64_t n = a->cols;
  const float *g = a->g, *b = a->b;
  int layer = a->kind == CPU_NORM_LAYER, nt = row_nt(a->nt, y, es);
  /* The row read `pf_rows` ahead: about 4 KiB ahead of this one. */
  const char *pf = r + a->pf_rows < a->rows
                       ? a->x + (size_t)((r + a->pf_rows) * a->x_ld) * es
                       : NULL;
  float m = 0.0f;
  double var;
  if (layer) {
    double mean = row_sum(x, n, dt, 0) / (double)n;
    m = (float)mean;
    double s1, s2;
    row_centred(x, n, dt, m, &s1, &s2, pf);
    pf = NULL; /* done */
    var = (s2 - s1 * s1 / (double)n) / (double)n;
    m = (float)(mean + s1 / (double)n);
  } else {
    var = row_sum(x, n, dt, 1) / (double)n;
  }
  if (var < 0)
    var = 0;
  /* eps is added in f32 (as a caller setting it expects), the root taken in
   * f64. */
  float rs = (float)(1.0 / sqrt((double)((float)var + a->eps)));
  if (a->mean)
    a->mean[r] = m;
  if (a->rstd)
    a->rstd[r] = rs;
  v32 vm = v_splat(m), vr = v_splat(rs);
  int64_t i = 0, lead = nt_lead(y, n, es, nt);
  for (; i < lead; i++)
    st1(y, i, dt, fwd_one(x, i, dt, layer, m, rs, g, b));
  if (nt) {
    for (; i + 32 <= n; i += 32) {
      pf32(pf, i, es);
      v_st(y, i, dt, fwd_step(x, i, dt, layer, vm, vr, g, b), 1);
    }
  } else {
    for (; i + 32 <= n; i += 32) {
      pf32(pf, i, es);
      v_st(y, i, dt, fwd_step(x, i, dt, layer, vm, vr, g, b), 0);
    }
  }
  for (; i < n; i++)
    st1(y, i, dt, fwd_one(x, i, dt, layer, m, rs, g, b));
}

ALWAYS_INLINE void fwd_rows(void *arg, uint64_t begin, uint64_t end,
                            ferry_dtype dt) {
  const cpu_norm_fwd_args *a = arg;
  for (uint64_t r = begin; r < end; r++)
    fwd_row(a, (int64_t)r, dt);
  nt_fence(a->nt);
}

static void fwd_f32(void *arg, uint64_t begin, uint64_t end) {
  fwd_rows(arg, begin, end, FERRY_DTYPE_F32);
}
static void fwd_bf16(void *arg, uint64_t begin, uint64_t end) {
  fwd_rows(arg, begin, end, FERRY_DTYPE_BF16);
}
static void fwd_f16(void *arg, uint64_t begin, uint64_t end) {
  fwd_rows(arg, begin, end, FERRY_DTYPE_F16);
}

/* ---- backward ------------------------------------------------------------ */

/* dx for elements [i, i + 32), with dy * xhat and dy added to ag and ab
 * when given. */
ALWAYS_INLINE void bwd_step(const void *x, const void *dy, void *dx, int64_t i,
                            ferry_dtype dt, const float *g, v32 vm, v32 vr,
                            v32 vc1, v32 vc2, float *ag, float *ab, int nt) {
  v32 xh = v_mul(v_sub(v_ld(x, i, dt), vm), vr);
  v32 d = v_ld(dy, i, dt);
  v_st(dx, i, dt,
       v_mul(vr, v_sub(v_sub(v_mul(d, v_ldf(g, i)), v_mul(xh, vc2)), vc1)), nt);
  if (ag)
    v_stf(ag, i, v_add(v_ldf(ag, i), v_mul(d, xh)));
  if (ab)
    v_stf(ab, i, v_add(v_ldf(ab, i), d));
}

ALWAYS_INLINE void bwd_one(const void *x, const void *dy, void *dx, int64_t i,
                           ferry_dtype dt, const float *g, float m, float rs,
                           float c1, float c2, float *ag, float *ab) {
  float xh = (ld1(x, i, dt) - m) * rs;
  float d = ld1(dy, i, dt);
  st1(dx, i, dt, rs * (d * g[i] - xh * c2 - c1));
  if (ag)
    ag[i] += d * xh;
  if (ab)
    ab[i] += d;
}

/* One row's dx; adds dy * xhat and dy to ag and ab when given. */
ALWAYS_INLINE void bwd_row(const cpu_norm_bwd_args *a, int64_t r,
                           ferry_dtype dt, float *ag, float *ab) {
  size_t es = dt == FERRY_DTYPE_F32 ? 4 : 2;
  const void *x = a->x + (size_t)(r * a->x_ld) * es;
  const void *dy = a->dy + (size_t)(r * a->dy_ld) * es;
  void *dx = a->dx + (size_t)(r * a->dx_ld) * es;
  int64_t n = a->cols;
  const float *g = a->g;
  int layer = a->kind == CPU_NORM_LAYER, nt = row_nt(a->nt, dx, es);
  float m = layer ? a->mean[r] : 0.0f, rs = a->rstd[r];
  v32 vm = v_splat(m), vr = v_splat(rs);
  /* Sums of g*dy (LayerNorm only) and g*dy*xhat. */
  double t1 = 0, t2 = 0;
  int64_t i = 0;
  while (i + 32 <= n) {
    int64_t end = i + CPU_NORM_BLOCK <= n ? i + CPU_NORM_BLOCK : n;
    v32 s1 = v_splat(0.0f), s2 = v_splat(0.0f);
    for (; i + 32 <= end; i += 32) {
      v32 xh = v_mul(v_sub(v_ld(x, i, dt), vm), vr);
      v32 gd = v_mul(v_ld(dy, i, dt), v_ldf(g, i));
      s1 = v_add(s1, gd);
      s2 = v_add(s2, v_mul(gd, xh));
    }
    t1 += v_hsum(s1);
    t2 += v_hsum(s2);
  }
  for (; i < n; i++) {
    float xh = (ld1(x, i, dt) - m) * rs;
    float gd = ld1(dy, i, dt) * g[i];
    t1 += gd;
    t2 += (double)gd * xh;
  }
  float c1 = layer ? (float)(t1 / (double)n) : 0.0f;
  float c2 = (float)(t2 / (double)n);
  v32 vc1 = v_splat(c1), vc2 = v_splat(c2);
  /* x and dy of the row about 4 KiB ahead, prefetched during this pass. */
  int64_t pr = r + a->pf_rows;
  const char *pfx = pr < a->rows ? a->x + (size_t)(pr * a->x_ld) * es : NULL;
  const char *pfd = pr < a->rows ? a->dy + (size_t)(pr * a->dy_ld) * es : NULL;
  int64_t lead = nt_lead(dx, n, es, nt);
  for (i = 0; i < lead; i++)
    bwd_one(x, dy, dx, i, dt, g, m, rs, c1, c2, ag, ab);
  if (nt) {
    for (; i + 32 <= n; i += 32) {
      pf32(pfx, i, es);
      pf32(pfd, i, es);
      bwd_step(x, dy, dx, i, dt, g, vm, vr, vc1, vc2, ag, ab, 1);
    }
  } else {
    for (; i + 32 <= n; i += 32) {
      pf32(pfx, i, es);
      pf32(pfd, i, es);
      bwd_step(x, dy, dx, i, dt, g, vm, vr, vc1, vc2, ag, ab, 0);
    }
  }
  for (; i < n; i++)
    bwd_one(x, dy, dx, i, dt, g, m, rs, c1, c2, ag, ab);
}

/* Chunks [begin, end): each sums its rows (at most CPU_NORM_CHUNK_ROWS) in
 * f32 into its own partials. */
ALWAYS_INLINE void bwd_chunks(cpu_norm_bwd_args *a, uint64_t begin,
                              uint64_t end, ferry_dtype dt) {
  int64_t n = a->cols;
  for (uint64_t c = begin; c < end; c++) {
    int64_t r0 = (int64_t)c * a->chunk_rows;
    int64_t r1 = r0 + a->chunk_rows < a->rows ? r0 + a->chunk_rows : a->rows;
    float *ag = a->part_g ? a->part_g + c * (uint64_t)n : NULL;
    float *ab = a->part_b ? a->part_b + c * (uint64_t)n : NULL;
    if (ag)
      memset(ag, 0, (size_t)n * sizeof *ag);
    if (ab)
      memset(ab, 0, (size_t)n * sizeof *ab);
    /* The branches on ag/ab are hoisted out of the row loop. */
    if (ag && ab)
      for (int64_t r = r0; r < r1; r++)
        bwd_row(a, r, dt, ag, ab);
    else if (ag)
      for (int64_t r = r0; r < r1; r++)
        bwd_row(a, r, dt, ag, NULL);
    else
      for (int64_t r = r0; r < r1; r++)
        bwd_row(a, r, dt, NULL, ab);
  }
  nt_fence(a->nt);
}

static void bwd_f32(void *arg, uint64_t begin, uint64_t end) {
  bwd_chunks(arg, begin, end, FERRY_DTYPE_F32);
}
static void bwd_bf16(void *arg, uint64_t begin, uint64_t end) {
  bwd_chunks(arg, begin, end, FERRY_DTYPE_BF16);
}
static void bwd_f16(void *arg, uint64_t begin, uint64_t end) {
  bwd_chunks(arg, begin, end, FERRY_DTYPE_F16);
}

/* dgamma/dbeta columns [begin, end) (begin a multiple of
 * CPU_NORM_FINAL_COLS): each column's partials added in chunk order in f64.
 * Chunk-major over a block of columns, NORM_VW columns a vector: the same
 * additions, in the same order, as one column at a time. */
typedef double vd __attribute__((vector_size(NORM_VW * 8)));

static void bwd_final(void *arg, uint64_t begin, uint64_t end) {
  const cpu_norm_bwd_args *a = arg;
  int add = (a->flags & FERRY_NORM_ACCUMULATE) != 0;
  double s[CPU_NORM_FINAL_COLS];
  for (int w = 0; w < 2; w++) {
    const float *part = w ? a->part_b : a->part_g;
    void *out = w ? a->dbeta : a->dgamma;
    ferry_dtype odt = w ? a->dbeta_dt : a->dgamma_dt;
    if (out == NULL)
      continue;
    for (uint64_t c0 = begin; c0 < end; c0 += CPU_NORM_FINAL_COLS) {
      uint64_t n =
          end - c0 < CPU_NORM_FINAL_COLS ? end - c0 : CPU_NORM_FINAL_COLS;
      uint64_t nv = n / NORM_VW * NORM_VW;
      memset(s, 0, sizeof s);
      for (int64_t c = 0; c < a->chunks; c++) {
        const float *p = part + (uint64_t)c * (uint64_t)a->cols + c0;
        for (uint64_t j = 0; j < nv; j += NORM_VW) {
          vd t;
          vf f;
          memcpy(&t, s + j, sizeof t);
          memcpy(&f, p + j, sizeof f);
          t += __builtin_convertvector(f, vd);
          memcpy(s + j, &t, sizeof t);
        }
        for (uint64_t j = nv; j < n; j++)
          s[j] += p[j];
      }
      for (uint64_t j = 0; j < n; j++) {
        double v = s[j];
        if (add)
          v += ld1(out, (int64_t)(c0 + j), odt);
        st1(out, (int64_t)(c0 + j), odt, (float)v);
      }
    }
  }
}

const cpu_norm_kernels NORM_KERNELS = {
    {fwd_f32, fwd_bf16, fwd_f16}, {bwd_f32, bwd_bf16, bwd_f16}, bwd_final};
