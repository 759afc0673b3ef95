// Kernels of feature-table gathers, shared by CUDA and HIP.
//
// A group of `width` lanes (a power of two, at most a warp; 0: the whole
// warp, 32 on NVIDIA and 64 on CDNA wavefronts) copies one row at a time,
// rows grid-strided so that a capped grid still covers every id.
//
// ferry_k_gather_aligned: the group starts at the 128-byte boundary at or
// below the row's first byte and reads 16-byte vectors from there, so every
// read of the group is one aligned 128 B span (one PCIe request from mapped
// host memory, BRIEF §2's "idle leading lanes"): lanes whose vector lies
// before the row idle; a vector that straddles the row's ends is read in
// 2-byte units (only the row's own bytes: the table's ends may be the ends
// of a registered range). Stores go to device memory: 16 B where the output
// position allows, else 4 or 2 B.
// ferry_k_gather_naive: lane c copies element c from the row's start, as a
// plain gather does (the ablation).
//
// kind: 0 copy rows as they are, 1 widen f16 to f32, 2 widen bf16 to f32.
// A table in pieces is gathered with one launch per piece: a launch copies
// ids in [lo, hi); the launch with `first` set zero-fills the rows of ids
// outside [0, rows) and atomicMin's their position into *bad.
#ifndef FERRY_GPU_GATHER_CUH
#define FERRY_GPU_GATHER_CUH

#include "device.cuh"

__device__ __forceinline__ float ferry_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
  if (e == 0 && m == 0) {
    bits = sign;
  } else if (e == 0) { // subnormal: normalise
    uint32_t exp = 113;
    while ((m & 0x400u) == 0) {
      m <<= 1;
      exp--;
    }
    bits = sign | (exp << 23) | ((m & 0x3ffu) << 13);
  } else if (e == 31) {
    bits = sign | 0x7f800000u | (m << 13);
  } else {
    bits = sign | ((e + 112) << 23) | (m << 13);
  }
  return __uint_as_float(bits);
}

__device__ __forceinline__ float ferry_widen(uint16_t h, int kind) {
  return kind == 1 ? ferry_f16_to_f32(h) : __uint_as_float((uint32_t)h << 16);
}

// One 2-byte unit at byte `off` of the source row.
__device__ __forceinline__ void ferry_put2(unsigned char *orow, uint64_t off,
                                           uint16_t h, int kind) {
  if (kind == 0)
    *reinterpret_cast<uint16_t *>(orow + off) = h;
  else
    *reinterpret_cast<float *>(orow + off * 2) = ferry_widen(h, kind);
}

// A 16-byte vector of the source row at byte `off`.
__device__ __forceinline__ void ferry_put16(unsigned char *orow, uint64_t off,
                                            uint4 x, int kind) {
  const uint32_t w[4] = {x.x, x.y, x.z, x.w};
  if (kind == 0) {
    unsigned char *d = orow + off;
    if (((uintptr_t)d & 15u) == 0) {
      *reinterpret_cast<uint4 *>(d) = x;
    } else if (((uintptr_t)d & 3u) == 0) {
      for (int k = 0; k < 4; k++)
        reinterpret_cast<uint32_t *>(d)[k] = w[k];
    } else {
      for (int k = 0; k < 4; k++) {
        reinterpret_cast<uint16_t *>(d)[2 * k] = (uint16_t)w[k];
        reinterpret_cast<uint16_t *>(d)[2 * k + 1] = (uint16_t)(w[k] >> 16);
      }
    }
    return;
  }
  float f[8];
  for (int k = 0; k < 4; k++) {
    f[2 * k] = ferry_widen((uint16_t)w[k], kind);
    f[2 * k + 1] = ferry_widen((uint16_t)(w[k] >> 16), kind);
  }
  float *d = reinterpret_cast<float *>(orow + off * 2);
  if (((uintptr_t)d & 15u) == 0) {
    reinterpret_cast<float4 *>(d)[0] = make_float4(f[0], f[1], f[2], f[3]);
    reinterpret_cast<float4 *>(d)[1] = make_float4(f[4], f[5], f[6], f[7]);
  } else {
    for (int k = 0; k < 8; k++)
      d[k] = f[k];
  }
}

__device__ __forceinline__ int64_t ferry_gather_id(const void *ids, int ids64,
                                                   uint64_t i) {
  return ids64 ? static_cast<const int64_t *>(ids)[i]
               : (int64_t) static_cast<const int32_t *>(ids)[i];
}

template <bool ALIGNED>
__device__ __forceinline__ void ferry_gather_body(
    const unsigned char *__restrict__ table, uint64_t lo, uint64_t hi,
    uint64_t rows, uint64_t row_bytes, const void *__restrict__ ids, int ids64,
    uint64_t n, unsigned char *__restrict__ out, uint64_t out_row_bytes,
    int kind, int width, int first, unsigned long long *__restrict__ bad) {
  if (width <= 0 || width > FERRY_GPU_WARP_SIZE)
    width = FERRY_GPU_WARP_SIZE;
  const uint64_t tid = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const uint64_t groups = (uint64_t)gridDim.x * blockDim.x / (uint64_t)width;
  const uint32_t lane = (uint32_t)(tid % (uint64_t)width);
  for (uint64_t i = tid / (uint64_t)width; i < n; i += groups) {
    const int64_t id = ferry_gather_id(ids, ids64, i);
    unsigned char *orow = out + i * out_row_bytes;
    if (id < 0 || (uint64_t)id >= rows) {
      if (first) {
        for (uint64_t b = (uint64_t)lane * 2u; b < out_row_bytes;
             b += (uint64_t)width * 2u)
          *reinterpret_cast<uint16_t *>(orow + b) = 0;
        if (lane == 0)
          atomicMin(bad, (unsigned long long)i);
      }
      continue;
    }
    if ((uint64_t)id < lo || (uint64_t)id >= hi)
      continue;
    const unsigned char *src = table + ((uint64_t)id - lo) * row_bytes;
    if (!ALIGNED) {
      // Element-wise from the row's start: 4 B units when the row allows.
      if (kind == 0 && (row_bytes & 3u) == 0 && ((uintptr_t)src & 3u) == 0 &&
          ((uintptr_t)orow & 3u) == 0) {
        for (uint64_t b = (uint64_t)lane * 4u; b < row_bytes;
             b += (uint64_t)width * 4u)
          *reinterpret_cast<uint32_t *>(orow + b) =
              *reinterpret_cast<const uint32_t *>(src + b);
      } else {
        for (uint64_t b = (uint64_t)lane * 2u; b < row_bytes;
             b += (uint64_t)width * 2u)
          ferry_put2(orow, b, *reinterpret_cast<const uint16_t *>(src + b),
                     kind);
      }
      continue;
    }
    const uintptr_t s0 = (uintptr_t)src, e0 = s0 + row_bytes;
    for (uintptr_t v = (s0 & ~(uintptr_t)127u) + (uintptr_t)lane * 16u; v < e0;
         v += (uintptr_t)width * 16u) {
      if (v + 16u <= s0)
        continue; // a leading idle lane
      if (v >= s0 && v + 16u <= e0) {
        ferry_put16(orow, v - s0, *reinterpret_cast<const uint4 *>(v), kind);
      } else {
        const uintptr_t a = v > s0 ? v : s0;
        const uintptr_t b = v + 16u < e0 ? v + 16u : e0;
        for (uintptr_t p = a; p < b; p += 2u)
          ferry_put2(orow, p - s0, *reinterpret_cast<const uint16_t *>(p),
                     kind);
      }
    }
  }
}

#define FERRY_GATHER_PARAMS                                                    \
  const unsigned char *__restrict__ table, uint64_t lo, uint64_t hi,           \
      uint64_t rows, uint64_t row_bytes, const void *__restrict__ ids,         \
      int ids64, uint64_t n, unsigned char *__restrict__ out,                  \
      uint64_t out_row_bytes, int kind, int width, int first,                  \
      unsigned long long *__restrict__ bad
#define FERRY_GATHER_ARGS                                                      \
  table, lo, hi, rows, row_bytes, ids, ids64, n, out, out_row_bytes, kind,     \
      width, first, bad

extern "C" __global__ void ferry_k_gather_aligned(FERRY_GATHER_PARAMS) {
  ferry_gather_body<true>(FERRY_GATHER_ARGS);
}

extern "C" __global__ void ferry_k_gather_naive(FERRY_GATHER_PARAMS) {
  ferry_gather_body<false>(FERRY_GATHER_ARGS);
}

#undef FERRY_GATHER_PARAMS
#undef FERRY_GATHER_ARGS

#endif // FERRY_GPU_GATHER_CUH
