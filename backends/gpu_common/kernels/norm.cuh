// Kernels of LayerNorm and RMSNorm, shared by CUDA and HIP
// (backends/gpu_common/gpu_op_norm.c launches them).
//
// Strategy by row length (docs/norm.md):
//   norm_fwd_warp / norm_bwd_dx_warp   rows of at most FERRY_NORM_WARP_COLS
//       columns: a sub-warp of L lanes per row (L the smallest power of two
//       with at most 8 elements a lane, at most a warp), so a warp takes
//       warp/L rows at once;
//   norm_fwd_block / norm_bwd_dx_block longer rows: a block per row.
// Both loop over rows (grid-stride), so any row count fits any grid (the
// apex #411 grid limit does not apply). Rows stay in L1/L2 between the
// passes over them (statistics, then output), so memory sees each tensor
// once. 16-byte vector loads and stores where every row start is aligned
// (4 x f32, 8 x f16/bf16). Statistics: Kahan-compensated f32 per thread,
// reduced in a fixed tree; LayerNorm's variance is centred (two passes over
// the cached row) with the S(d) correction term.
//
// dgamma/dbeta: norm_bwd_partial sums a chunk of rows per (column, chunk)
// into a workspace, norm_bwd_final adds the chunks of a column in chunk
// order: deterministic, no atomics.
#ifndef FERRY_GPU_NORM_CUH
#define FERRY_GPU_NORM_CUH

#include "device.cuh"
#include "norm_params.cuh"

#if defined(__HIPCC__)
#include <hip/hip_fp16.h>
#define FERRY_NORM_SHFL_XOR(v, o) __shfl_xor((v), (o))
#else
#if !defined(FERRY_GPU_EMU)
#include <cuda_fp16.h>
#endif
#define FERRY_NORM_SHFL_XOR(v, o) __shfl_xor_sync(0xffffffffu, (v), (o))
#endif

#define FERRY_NORM_WARP_COLS 1024

namespace ferry_norm {

// ---- element types ---------------------------------------------------------

struct F32 {
  typedef float S;
  static __device__ __forceinline__ float load(S v) {
    return v;
  }
  static __device__ __forceinline__ S store(float v) {
    return v;
  }
};
struct BF16 {
  typedef uint16_t S;
  static __device__ __forceinline__ float load(S v) {
    return __uint_as_float((uint32_t)v << 16);
  }
  static __device__ __forceinline__ S store(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) // NaN stays a (quiet) NaN
      return (S)((u >> 16) | 0x40u);
    return (S)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
};
struct F16 {
  typedef uint16_t S;
  static __device__ __forceinline__ float load(S v) {
    return __half2float(__ushort_as_half(v));
  }
  static __device__ __forceinline__ S store(float v) {
    return __half_as_ushort(__float2half_rn(v));
  }
};

// A parameter vector element (f32 or the data dtype), `absent` for NULL.
__device__ __forceinline__ float param(const void *p, int32_t dt, int64_t i,
                                       float absent) {
  if (p == nullptr)
    return absent;
  if (dt == FERRY_NORM_DT_F32)
    return static_cast<const float *>(p)[i];
  uint16_t h = static_cast<const uint16_t *>(p)[i];
  return dt == FERRY_NORM_DT_BF16 ? BF16::load(h) : F16::load(h);
}

__device__ __forceinline__ void param_store(void *p, int32_t dt, int64_t i,
                                            float v) {
  if (dt == FERRY_NORM_DT_F32)
    static_cast<float *>(p)[i] = v;
  else if (dt == FERRY_NORM_DT_BF16)
    static_cast<uint16_t *>(p)[i] = BF16::store(v);
  else
    static_cast<uint16_t *>(p)[i] = F16::store(v);
}

// V elements at p[i] (16 bytes, aligned) or one element (V == 1).
template <class D, int V> struct Vec {
  float v[V];
  __device__ __forceinline__ void load(const typename D::S *p, int64_t i) {
    if (V == 1) {
      v[0] = D::load(p[i]);
    } else {
      uint4 raw = *reinterpret_cast<const uint4 *>(p + i);
      const typename D::S *e = reinterpret_cast<const typename D::S *>(&raw);
#pragma unroll
      for (int k = 0; k < V; k++)
        v[k] = D::load(e[k]);
    }
  }
  __device__ __forceinline__ void store(typename D::S *p, int64_t i) const {
    if (V == 1) {
      p[i] = D::store(v[0]);
    } else {
      uint4 raw;
      typename D::S *e = reinterpret_cast<typename D::S *>(&raw);
#pragma unroll
      for (int k = 0; k < V; k++)
        e[k] = D::store(v[k]);
      *reinterpret_cast<uint4 *>(p + i) = raw;
    }
  }
};

// Kahan-compensated sum.
struct KSum {
  float s = 0.0f, c = 0.0f;
  __device__ __forceinline__ void add(float x) {
    float y = x - c;
    float t = s + y;
    c = (t - s) - y;
    s = t;
  }
};

// ---- reductions
// --------------------------------------------------------------

// Over the L lanes of a sub-warp (xor butterfly: every lane gets the same
// bits, since each step adds the same two values in either order). Every
// lane of the warp must call it.
struct SubWarpSum {
  int lanes;
  __device__ __forceinline__ float operator()(float v) const {
    for (int o = lanes / 2; o > 0; o /= 2)
      v += FERRY_NORM_SHFL_XOR(v, o);
    return v;
  }
};

// Over the block: butterfly within each warp, then every thread adds the
// warps' sums in warp order. `sh` holds one float per warp.
struct BlockSum {
  float *sh;
  __device__ __forceinline__ float operator()(float v) const {
    for (int o = FERRY_GPU_WARP_SIZE / 2; o > 0; o /= 2)
      v += FERRY_NORM_SHFL_XOR(v, o);
    const int warps = (int)(blockDim.x / FERRY_GPU_WARP_SIZE);
    const int w = (int)(threadIdx.x / FERRY_GPU_WARP_SIZE);
    if (threadIdx.x % FERRY_GPU_WARP_SIZE == 0)
      sh[w] = v;
    __syncthreads();
    float s = 0.0f;
    for (int i = 0; i < warps; i++)
      s += sh[i];
    __syncthreads();
    return s;
  }
};

// ---- forward
// -------------------------------------------------------------------

// Row r by the `lanes` threads with index `lane`; `active` false: the
// thread only takes part in the reductions (its sub-warp has no row).
template <class D, int V, class R>
__device__ __forceinline__ void fwd_row(const ferry_norm_fwd_params &p,
                                        int64_t r, bool active, int lane,
                                        int lanes, const R &sum) {
  typedef typename D::S S;
  const S *x = static_cast<const S *>(p.x) + (active ? r * p.x_ld : 0);
  S *y = static_cast<S *>(p.y) + (active ? r * p.y_ld : 0);
  const int64_t n = active ? p.cols : 0;
  const int64_t first = (int64_t)lane * V, step = (int64_t)lanes * V;
  const bool layer = p.kind == FERRY_NORM_KIND_LAYER;
  Vec<D, V> e;
  float m = 0.0f;
  if (layer) {
    KSum s;
    for (int64_t c = first; c < n; c += step) {
      e.load(x, c);
#pragma unroll
      for (int k = 0; k < V; k++)
        s.add(e.v[k]);
    }
    m = sum(s.s) / (float)p.cols;
  }
  KSum s1, s2;
  for (int64_t c = first; c < n; c += step) {
    e.load(x, c);
#pragma unroll
    for (int k = 0; k < V; k++) {
      float d = e.v[k] - m;
      s1.add(d);
      s2.add(d * d);
    }
  }
  const float t1 = layer ? sum(s1.s) : 0.0f;
  const float t2 = sum(s2.s);
  const float nf = (float)p.cols;
  const float var = fmaxf((t2 - t1 * t1 / nf) / nf, 0.0f);
  const float mu = layer ? m + t1 / nf : 0.0f;
  const float rs = 1.0f / sqrtf(var + p.eps);
  if (active && lane == 0) {
    if (p.mean)
      p.mean[r] = mu;
    if (p.rstd)
      p.rstd[r] = rs;
  }
  for (int64_t c = first; c < n; c += step) {
    e.load(x, c);
#pragma unroll
    for (int k = 0; k < V; k++) {
      float v = (e.v[k] - mu) * rs * param(p.gamma, p.gamma_dt, c + k, 1.0f);
      if (layer)
        v += param(p.beta, p.beta_dt, c + k, 0.0f);
      e.v[k] = v;
    }
    e.store(y, c);
  }
}

// 16-byte vectors apply when every row start of every operand is aligned.
template <class D>
__device__ __forceinline__ bool
vec_ok(const void *a, int64_t lda, const void *b, int64_t ldb, const void *c,
       int64_t ldc, int64_t cols) {
  const int64_t v = 16 / (int64_t)sizeof(typename D::S);
  return ((((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) & 15u) == 0) &&
         lda % v == 0 && ldb % v == 0 && ldc % v == 0 && cols % v == 0;
}

// Lanes per row for the sub-warp kernels: at most 8 elements a lane.
__device__ __forceinline__ int sub_lanes(int64_t cols) {
  int l = 1;
  while (l < FERRY_GPU_WARP_SIZE && (int64_t)l * 8 < cols)
    l *= 2;
  return l;
}

template <class D, int V>
__device__ void fwd_warp(const ferry_norm_fwd_params &p) {
  const int lanes = sub_lanes(p.cols);
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t groups = (int64_t)gridDim.x * blockDim.x / lanes;
  const int lane = (int)(threadIdx.x % lanes);
  // Loop bounds are uniform over a warp (its first row), so every lane
  // reaches every shuffle.
  const int64_t warp_first =
      (tid / FERRY_GPU_WARP_SIZE) * (FERRY_GPU_WARP_SIZE / lanes);
  SubWarpSum sum{lanes};
  for (int64_t base = warp_first; base < p.rows; base += groups) {
    int64_t r = base + (threadIdx.x % FERRY_GPU_WARP_SIZE) / lanes;
    fwd_row<D, V>(p, r, r < p.rows, lane, lanes, sum);
  }
}

template <class D, int V>
__device__ void fwd_block(const ferry_norm_fwd_params &p, float *sh) {
  BlockSum sum{sh};
  for (int64_t r = blockIdx.x; r < p.rows; r += gridDim.x)
    fwd_row<D, V>(p, r, true, (int)threadIdx.x, (int)blockDim.x, sum);
}

template <template <class, int> class K, class... A>
__device__ __forceinline__ void dispatch_fwd(const ferry_norm_fwd_params &p,
                                             A... a) {
  if (p.dt == FERRY_NORM_DT_F32) {
    if (vec_ok<F32>(p.x, p.x_ld, p.y, p.y_ld, p.x, p.x_ld, p.cols))
      K<F32, 4>::run(p, a...);
    else
      K<F32, 1>::run(p, a...);
  } else if (p.dt == FERRY_NORM_DT_BF16) {
    if (vec_ok<BF16>(p.x, p.x_ld, p.y, p.y_ld, p.x, p.x_ld, p.cols))
      K<BF16, 8>::run(p, a...);
    else
      K<BF16, 1>::run(p, a...);
  } else {
    if (vec_ok<F16>(p.x, p.x_ld, p.y, p.y_ld, p.x, p.x_ld, p.cols))
      K<F16, 8>::run(p, a...);
    else
      K<F16, 1>::run(p, a...);
  }
}

template <class D, int V> struct FwdWarp {
  static __device__ void run(const ferry_norm_fwd_params &p) {
    fwd_warp<D, V>(p);
  }
};
template <class D, int V> struct FwdBlock {
  static __device__ void run(const ferry_norm_fwd_params &p, float *sh) {
    fwd_block<D, V>(p, sh);
  }
};

// ---- backward: dx
// --------------------------------------------------------------

template <class D, int V, class R>
__device__ __forceinline__ void bwd_row(const ferry_norm_bwd_params &p,
                                        int64_t r, bool active, int lane,
                                        int lanes, const R &sum) {
  typedef typename D::S S;
  const S *x = static_cast<const S *>(p.x) + (active ? r * p.x_ld : 0);
  const S *dy = static_cast<const S *>(p.dy) + (active ? r * p.dy_ld : 0);
  S *dx = static_cast<S *>(p.dx) + (active ? r * p.dx_ld : 0);
  const int64_t n = active ? p.cols : 0;
  const int64_t first = (int64_t)lane * V, step = (int64_t)lanes * V;
  const bool layer = p.kind == FERRY_NORM_KIND_LAYER;
  const float m = active && layer ? p.mean[r] : 0.0f;
  const float rs = active ? p.rstd[r] : 0.0f;
  Vec<D, V> xe, de;
  KSum a1, a2;
  for (int64_t c = first; c < n; c += step) {
    xe.load(x, c);
    de.load(dy, c);
#pragma unroll
    for (int k = 0; k < V; k++) {
      float xh = (xe.v[k] - m) * rs;
      float gd = de.v[k] * param(p.gamma, p.gamma_dt, c + k, 1.0f);
      a1.add(gd);
      a2.add(gd * xh);
    }
  }
  const float nf = (float)p.cols;
  const float c1 = layer ? sum(a1.s) / nf : 0.0f;
  const float c2 = sum(a2.s) / nf;
  for (int64_t c = first; c < n; c += step) {
    xe.load(x, c);
    de.load(dy, c);
#pragma unroll
    for (int k = 0; k < V; k++) {
      float xh = (xe.v[k] - m) * rs;
      float gd = de.v[k] * param(p.gamma, p.gamma_dt, c + k, 1.0f);
      de.v[k] = rs * (gd - xh * c2 - c1);
    }
    de.store(dx, c);
  }
}

template <class D, int V> struct BwdWarp {
  static __device__ void run(const ferry_norm_bwd_params &p) {
    const int lanes = sub_lanes(p.cols);
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t groups = (int64_t)gridDim.x * blockDim.x / lanes;
    const int lane = (int)(threadIdx.x % lanes);
    const int64_t warp_first =
        (tid / FERRY_GPU_WARP_SIZE) * (FERRY_GPU_WARP_SIZE / lanes);
    SubWarpSum sum{lanes};
    for (int64_t base = warp_first; base < p.rows; base += groups) {
      int64_t r = base + (threadIdx.x % FERRY_GPU_WARP_SIZE) / lanes;
      bwd_row<D, V>(p, r, r < p.rows, lane, lanes, sum);
    }
  }
};
template <class D, int V> struct BwdBlock {
  static __device__ void run(const ferry_norm_bwd_params &p, float *sh) {
    BlockSum sum{sh};
    for (int64_t r = blockIdx.x; r < p.rows; r += gridDim.x)
      bwd_row<D, V>(p, r, true, (int)threadIdx.x, (int)blockDim.x, sum);
  }
};

template <template <class, int> class K, class... A>
__device__ __forceinline__ void dispatch_bwd(const ferry_norm_bwd_params &p,
                                             A... a) {
  if (p.dt == FERRY_NORM_DT_F32) {
    if (vec_ok<F32>(p.x, p.x_ld, p.dy, p.dy_ld, p.dx, p.dx_ld, p.cols))
      K<F32, 4>::run(p, a...);
    else
      K<F32, 1>::run(p, a...);
  } else if (p.dt == FERRY_NORM_DT_BF16) {
    if (vec_ok<BF16>(p.x, p.x_ld, p.dy, p.dy_ld, p.dx, p.dx_ld, p.cols))
      K<BF16, 8>::run(p, a...);
    else
      K<BF16, 1>::run(p, a...);
  } else {
    if (vec_ok<F16>(p.x, p.x_ld, p.dy, p.dy_ld, p.dx, p.dx_ld, p.cols))
      K<F16, 8>::run(p, a...);
    else
      K<F16, 1>::run(p, a...);
  }
}

// ---- backward: dgamma, dbeta
// -------------------------------------------------

template <class D> __device__ void bwd_partial(const ferry_norm_bwd_params &p) {
  typedef typename D::S S;
  const bool layer = p.kind == FERRY_NORM_KIND_LAYER;
  const int64_t blocks = (int64_t)p.col_tiles * p.chunks;
  for (int64_t b = blockIdx.x; b < blocks; b += gridDim.x) {
    const int64_t tile = b % p.col_tiles, chunk = b / p.col_tiles;
    const int64_t c = tile * blockDim.x + threadIdx.x;
    if (c >= p.cols)
      continue;
    const int64_t r0 = chunk * p.chunk_rows;
    const int64_t r1 = r0 + p.chunk_rows < p.rows ? r0 + p.chunk_rows : p.rows;
    KSum sg, sb;
    for (int64_t r = r0; r < r1; r++) {
      const float m = layer ? p.mean[r] : 0.0f;
      const float xh =
          (D::load(static_cast<const S *>(p.x)[r * p.x_ld + c]) - m) *
          p.rstd[r];
      const float d = D::load(static_cast<const S *>(p.dy)[r * p.dy_ld + c]);
      sg.add(d * xh);
      sb.add(d);
    }
    if (p.part_g)
      p.part_g[chunk * p.cols + c] = sg.s;
    if (p.part_b)
      p.part_b[chunk * p.cols + c] = sb.s;
  }
}

} // namespace ferry_norm

extern "C" __global__ void ferry_k_norm_fwd_warp(ferry_norm_fwd_params p) {
  ferry_norm::dispatch_fwd<ferry_norm::FwdWarp>(p);
}

// Dynamic shared memory: one float per warp of the block.
extern "C" __global__ void ferry_k_norm_fwd_block(ferry_norm_fwd_params p) {
  FERRY_GPU_DYNAMIC_SHARED(float, ferry_norm_fwd_sh);
  ferry_norm::dispatch_fwd<ferry_norm::FwdBlock>(p, ferry_norm_fwd_sh);
}

extern "C" __global__ void ferry_k_norm_bwd_dx_warp(ferry_norm_bwd_params p) {
  ferry_norm::dispatch_bwd<ferry_norm::BwdWarp>(p);
}

extern "C" __global__ void ferry_k_norm_bwd_dx_block(ferry_norm_bwd_params p) {
  FERRY_GPU_DYNAMIC_SHARED(float, ferry_norm_bwd_sh);
  ferry_norm::dispatch_bwd<ferry_norm::BwdBlock>(p, ferry_norm_bwd_sh);
}

// Block b covers column tile b % col_tiles of chunk b / col_tiles.
extern "C" __global__ void ferry_k_norm_bwd_partial(ferry_norm_bwd_params p) {
  if (p.dt == FERRY_NORM_DT_F32)
    ferry_norm::bwd_partial<ferry_norm::F32>(p);
  else if (p.dt == FERRY_NORM_DT_BF16)
    ferry_norm::bwd_partial<ferry_norm::BF16>(p);
  else
    ferry_norm::bwd_partial<ferry_norm::F16>(p);
}

// A thread per column: the chunks' partials in chunk order, then written or
// added to dgamma / dbeta.
extern "C" __global__ void ferry_k_norm_bwd_final(ferry_norm_bwd_params p) {
  for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < p.cols;
       c += (int64_t)gridDim.x * blockDim.x) {
    if (p.dgamma) {
      ferry_norm::KSum s;
      for (int64_t k = 0; k < p.chunks; k++)
        s.add(p.part_g[k * p.cols + c]);
      float v = p.accumulate
                    ? ferry_norm::param(p.dgamma, p.dgamma_dt, c, 0.0f) + s.s
                    : s.s;
      ferry_norm::param_store(p.dgamma, p.dgamma_dt, c, v);
    }
    if (p.dbeta) {
      ferry_norm::KSum s;
      for (int64_t k = 0; k < p.chunks; k++)
        s.add(p.part_b[k * p.cols + c]);
      float v = p.accumulate
                    ? ferry_norm::param(p.dbeta, p.dbeta_dt, c, 0.0f) + s.s
                    : s.s;
      ferry_norm::param_store(p.dbeta, p.dbeta_dt, c, v);
    }
  }
}

#endif // FERRY_GPU_NORM_CUH
