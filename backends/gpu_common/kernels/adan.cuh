// Kernels of the Adan step, shared by CUDA and HIP (see gpu_op_adan.c):
//
//   adan_reduce   blocks over the chunk table (fixed grid: min(chunks,
//                 FERRY_GPU_ADAN_PARTIALS)), each summing g^2 in double with
//                 a fixed tree and writing one partial and a non-finite flag;
//   adan_scalars  one thread: partials added in index order (deterministic),
//                 skip/clip decided, each group's counter advanced and its
//                 coefficients derived in double (b^k by squaring);
//   adan_update   blocks over the chunk table, grid-stride within a chunk;
//                 16-byte vector loads where a chunk's f32 operands allow.
//
// Block reductions use shared memory only (no warp shuffles), so the same
// code is right for 32-wide warps and 64-wide wavefronts.
#ifndef FERRY_GPU_ADAN_CUH
#define FERRY_GPU_ADAN_CUH

#include "adan_params.cuh"
#include "device.cuh"

// f16 <-> f32 by bits (round to nearest even), so that no vendor half
// header is needed.
__device__ __forceinline__ float ferry_adan_f16_to_f32(uint32_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t em = (h & 0x7fffu) << 13;
  uint32_t exp = em & 0x0f800000u;
  uint32_t bits;
  if (exp == 0x0f800000u)
    bits = em | 0x7f800000u;
  else if (exp == 0)
    bits = __float_as_uint(__uint_as_float(em + (113u << 23)) -
                           __uint_as_float(113u << 23));
  else
    bits = em + (112u << 23);
  return __uint_as_float(bits | sign);
}

__device__ __forceinline__ uint16_t ferry_adan_f32_to_f16(float f) {
  uint32_t u = __float_as_uint(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  uint32_t out;
  if (a > 0x7f800000u) {
    out = 0x7e00u;
  } else if (a >= 0x477ff000u) {
    out = 0x7c00u;
  } else if (a >= 0x38800000u) {
    uint32_t r = a - (112u << 23);
    out = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;
  } else if (a > 0x33000000u) {
    uint32_t e = a >> 23;
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e;
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    out = q + (rem > half || (rem == half && (q & 1u)));
  } else {
    out = 0;
  }
  return (uint16_t)(out | sign);
}

__device__ __forceinline__ float ferry_adan_load(uint64_t base, uint64_t i,
                                                 uint32_t dt) {
  if (dt == 1u)
    return reinterpret_cast<const float *>(base)[i];
  uint32_t h = reinterpret_cast<const uint16_t *>(base)[i];
  return dt == 2u ? ferry_adan_f16_to_f32(h) : __uint_as_float(h << 16);
}

__device__ __forceinline__ void ferry_adan_store(uint64_t base, uint64_t i,
                                                 uint32_t dt, float v) {
  if (dt == 1u) {
    reinterpret_cast<float *>(base)[i] = v;
    return;
  }
  uint16_t out;
  if (dt == 2u) {
    out = ferry_adan_f32_to_f16(v);
  } else {
    uint32_t u = __float_as_uint(v);
    out = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u
                         ? (u >> 16) | 0x40u
                         : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
  reinterpret_cast<uint16_t *>(base)[i] = out;
}

extern "C" __global__ void __launch_bounds__(FERRY_GPU_ADAN_BLOCK)
    ferry_k_adan_reduce(const ferry_gpu_adan_chunk *__restrict__ chunks,
                        uint64_t nchunks, uint32_t *__restrict__ ctl) {
  __shared__ double sums[FERRY_GPU_ADAN_BLOCK];
  __shared__ uint32_t bads[FERRY_GPU_ADAN_BLOCK];
  double acc = 0.0;
  uint32_t bad = 0;
  for (uint64_t c = blockIdx.x; c < nchunks; c += gridDim.x) {
    const ferry_gpu_adan_chunk ch = chunks[c];
    for (uint32_t i = threadIdx.x; i < ch.count; i += blockDim.x) {
      float x = ferry_adan_load(ch.grad, i, ch.grad_dtype);
      acc += (double)x * (double)x;
      bad |= isfinite(x) ? 0u : 1u;
    }
  }
  sums[threadIdx.x] = acc;
  bads[threadIdx.x] = bad;
  __syncthreads();
  for (uint32_t s = FERRY_GPU_ADAN_BLOCK / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      sums[threadIdx.x] += sums[threadIdx.x + s];
      bads[threadIdx.x] |= bads[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    reinterpret_cast<float *>(ctl)[FERRY_GPU_ADAN_CTL_SUMS + blockIdx.x] =
        (float)sums[0];
    ctl[FERRY_GPU_ADAN_CTL_BAD + blockIdx.x] = bads[0];
  }
}

__device__ __forceinline__ double ferry_adan_pow(double b, uint32_t k) {
  double r = 1.0;
  while (k) {
    if (k & 1u)
      r *= b;
    b *= b;
    k >>= 1;
  }
  return r;
}

extern "C" __global__ void ferry_k_adan_scalars(uint32_t *__restrict__ ctl,
                                                ferry_gpu_adan_hyper h,
                                                uint32_t nparts) {
  if (threadIdx.x != 0 || blockIdx.x != 0)
    return;
  double sum = 0.0;
  uint32_t bad = 0;
  const float *sums = reinterpret_cast<const float *>(ctl);
  for (uint32_t i = 0; i < nparts; i++) { // in order: deterministic
    sum += (double)sums[FERRY_GPU_ADAN_CTL_SUMS + i];
    bad |= ctl[FERRY_GPU_ADAN_CTL_BAD + i];
  }
  if ((h.flags & FERRY_GPU_ADAN_CHECK_FINITE) && bad) {
    ctl[0] = 1u;
    return;
  }
  double clip = 1.0;
  if (h.flags & FERRY_GPU_ADAN_CLIP) {
    clip = h.max_grad_norm / (sqrt(sum) + h.eps);
    clip = clip > 1.0 ? 1.0 : clip; // NaN stays NaN
  }
  ctl[0] = 0u;
  ctl[1] = __float_as_uint((float)clip);
  for (uint32_t g = 0; g < h.groups && g < FERRY_GPU_ADAN_GROUPS; g++) {
    uint32_t *c = ctl + FERRY_GPU_ADAN_CTL_GROUP(g);
    uint32_t k = ++c[0];
    double lr = h.lr[g], wd = h.weight_decay[g];
    double bc1 = 1.0 - ferry_adan_pow(h.beta1, k);
    double bc2 = 1.0 - ferry_adan_pow(h.beta2, k);
    double bc3 = 1.0 - ferry_adan_pow(h.beta3, k);
    c[4] = __float_as_uint((float)(lr / bc1));
    c[5] = __float_as_uint((float)(lr * h.beta2 / bc2));
    c[6] = __float_as_uint((float)(1.0 / sqrt(bc3)));
    c[7] = __float_as_uint((float)((h.flags & FERRY_GPU_ADAN_NO_PROX)
                                       ? 1.0 - lr * wd
                                       : 1.0 / (1.0 + lr * wd)));
    c[2] = c[1];
    if (h.flags & FERRY_GPU_ADAN_MASTER)
      c[1] = 1u;
  }
}

// The per-element rule; returns the new parameter.
struct ferry_adan_elem {
  float b1, omb1, b2, omb2, b3, omb3, eps, clip, s1, s2, ibc3, decay;
  bool first, no_prox;
  __device__ __forceinline__ float apply(float p, float graw, float &m,
                                         float &v, float &n, float &gp) const {
    float g = clip * graw;
    float d = first ? 0.0f : g - gp;
    m = b1 * m + omb1 * g;
    v = b2 * v + omb2 * d;
    float u = g + b2 * d;
    n = b3 * n + omb3 * (u * u);
    float den = sqrtf(n) * ibc3 + eps;
    float st = (s1 * m + s2 * v) / den;
    gp = g;
    return no_prox ? p * decay - st : (p - st) * decay;
  }
};

extern "C" __global__ void __launch_bounds__(FERRY_GPU_ADAN_BLOCK)
    ferry_k_adan_update(const ferry_gpu_adan_chunk *__restrict__ chunks,
                        uint64_t nchunks, const uint32_t *__restrict__ ctl,
                        ferry_gpu_adan_coef k) {
  if (ctl[0] != 0u)
    return; // skipped: nothing touched
  for (uint64_t c = blockIdx.x; c < nchunks; c += gridDim.x) {
    const ferry_gpu_adan_chunk ch = chunks[c];
    const uint32_t *gc = ctl + FERRY_GPU_ADAN_CTL_GROUP(ch.group);
    ferry_adan_elem e;
    e.b1 = k.b1;
    e.omb1 = k.omb1;
    e.b2 = k.b2;
    e.omb2 = k.omb2;
    e.b3 = k.b3;
    e.omb3 = k.omb3;
    e.eps = k.eps;
    e.clip = __uint_as_float(ctl[1]);
    e.s1 = __uint_as_float(gc[4]);
    e.s2 = __uint_as_float(gc[5]);
    e.ibc3 = __uint_as_float(gc[6]);
    e.decay = __uint_as_float(gc[7]);
    e.first = gc[0] == 1u;
    e.no_prox = (k.flags & FERRY_GPU_ADAN_NO_PROX) != 0;
    float *m = reinterpret_cast<float *>(ch.state);
    float *v = m + ch.stride;
    float *n = v + ch.stride;
    float *gp = n + ch.stride;
    float *mw = gp + ch.stride;
    uint32_t done = 0;
    if (ch.param_dtype == 1u && ch.grad_dtype == 1u) {
      if (((ch.param | ch.grad | ch.state) & 15u) == 0 &&
          (ch.stride & 3u) == 0) {
        const uint32_t vecs = ch.count / 4u;
        float4 *p4 = reinterpret_cast<float4 *>(ch.param);
        const float4 *g4 = reinterpret_cast<const float4 *>(ch.grad);
        float4 *m4 = reinterpret_cast<float4 *>(m);
        float4 *v4 = reinterpret_cast<float4 *>(v);
        float4 *n4 = reinterpret_cast<float4 *>(n);
        float4 *q4 = reinterpret_cast<float4 *>(gp);
        for (uint32_t i = threadIdx.x; i < vecs; i += blockDim.x) {
          float4 p = p4[i], g = g4[i], mm = m4[i], vv = v4[i], nn = n4[i],
                 qq = q4[i];
          p.x = e.apply(p.x, g.x, mm.x, vv.x, nn.x, qq.x);
          p.y = e.apply(p.y, g.y, mm.y, vv.y, nn.y, qq.y);
          p.z = e.apply(p.z, g.z, mm.z, vv.z, nn.z, qq.z);
          p.w = e.apply(p.w, g.w, mm.w, vv.w, nn.w, qq.w);
          p4[i] = p;
          m4[i] = mm;
          v4[i] = vv;
          n4[i] = nn;
          q4[i] = qq;
        }
        done = vecs * 4u;
      }
      float *p = reinterpret_cast<float *>(ch.param);
      const float *g = reinterpret_cast<const float *>(ch.grad);
      for (uint32_t i = done + threadIdx.x; i < ch.count; i += blockDim.x)
        p[i] = e.apply(p[i], g[i], m[i], v[i], n[i], gp[i]);
      continue;
    }
    // f16/bf16 parameters (optionally with f32 master weights).
    const bool master = (k.flags & FERRY_GPU_ADAN_MASTER) != 0;
    const bool use_master = master && gc[2] != 0u;
    for (uint32_t i = threadIdx.x; i < ch.count; i += blockDim.x) {
      float pw =
          use_master ? mw[i] : ferry_adan_load(ch.param, i, ch.param_dtype);
      float g = ferry_adan_load(ch.grad, i, ch.grad_dtype);
      pw = e.apply(pw, g, m[i], v[i], n[i], gp[i]);
      if (master)
        mw[i] = pw;
      ferry_adan_store(ch.param, i, ch.param_dtype, pw);
    }
  }
}

#endif // FERRY_GPU_ADAN_CUH
