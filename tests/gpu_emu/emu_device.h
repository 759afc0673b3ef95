// The CUDA device-side names ferry's kernels use, for running them on the
// CPU (the GPU emulator, see emu_runtime.c and docs/gpu-emulator.md).
//
// Compiled as C++ in place of cuda_runtime.h when FERRY_GPU_EMU is defined
// (backends/gpu_common/kernels/device.cuh includes this file then). Every
// CUDA thread of a block is a fiber on one host thread (emu_kernels.cpp);
// the block's fibers run in turn until each finishes or reaches a barrier
// (__syncthreads, or a warp shuffle), so barriers and shuffles behave as on
// a GPU, and a kernel that lets some lanes of a warp skip a shuffle, or
// some threads of a block skip a barrier, is reported instead of hanging.
// Blocks of a launch run one after another: kernels may not rely on blocks
// running at the same time (CUDA does not promise it either).
#ifndef FERRY_EMU_DEVICE_H
#define FERRY_EMU_DEVICE_H

#include <math.h> // sqrtf, fmaxf, isfinite... at global scope, as in CUDA
#include <cstdint>
#include <cstring>

#ifndef FERRY_EMU_WARP_SIZE
#define FERRY_EMU_WARP_SIZE 32
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Shared memory is per block; blocks run one at a time on a host thread,
// and each stream has its own host thread.
#define __shared__ static thread_local

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
};
struct alignas(16) uint4 {
  unsigned int x, y, z, w;
};
struct alignas(16) float4 {
  float x, y, z, w;
};

inline float4 make_float4(float x, float y, float z, float w) {
  return float4{x, y, z, w};
}
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
  return uint4{x, y, z, w};
}

namespace ferry_emu {

// What a fiber (a CUDA thread) sees of itself and its launch.
struct ThreadState {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
  unsigned char *dynamic_shared;
};

// The running fiber's state (set by the scheduler before each resume).
extern thread_local ThreadState *current;

// Barriers: they return once every thread of the block (or every lane of
// the warp) has arrived.
void block_barrier();
// Shuffle: publishes `bits` (the caller's value) and returns lane `src`'s.
uint64_t warp_exchange(uint64_t bits, unsigned src_lane);

template <class T> inline T shfl_xor(T v, int lane_mask, int width) {
  static_assert(sizeof(T) <= 8, "shuffles of up to 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  const unsigned lane = current->thread_idx.x % FERRY_EMU_WARP_SIZE;
  unsigned src = lane ^ (unsigned)lane_mask;
  // A source outside the caller's width-lane segment gives its own value.
  if (width > 0 && src / (unsigned)width != lane / (unsigned)width)
    src = lane;
  bits = warp_exchange(bits, src);
  T out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

} // namespace ferry_emu

#define threadIdx (ferry_emu::current->thread_idx)
#define blockIdx (ferry_emu::current->block_idx)
#define blockDim (ferry_emu::current->block_dim)
#define gridDim (ferry_emu::current->grid_dim)
#define warpSize FERRY_EMU_WARP_SIZE

// Dynamic shared memory of the launch (kernels declare it through
// FERRY_GPU_DYNAMIC_SHARED, see device.cuh).
#define FERRY_EMU_DYNAMIC_SHARED(type, name)                                   \
  type *name = reinterpret_cast<type *>(ferry_emu::current->dynamic_shared)

inline void __syncthreads() {
  ferry_emu::block_barrier();
}

template <class T>
inline T __shfl_xor_sync(unsigned, T v, int lane_mask,
                         int width = FERRY_EMU_WARP_SIZE) {
  return ferry_emu::shfl_xor(v, lane_mask, width);
}
template <class T>
inline T __shfl_xor(T v, int lane_mask, int width = FERRY_EMU_WARP_SIZE) {
  return ferry_emu::shfl_xor(v, lane_mask, width);
}

// Atomics: a block's fibers share one host thread, but kernels on other
// streams run on other host threads at the same time.
inline unsigned long long atomicMin(unsigned long long *p,
                                    unsigned long long v) {
  unsigned long long old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v < old && !__atomic_compare_exchange_n(
                        p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
inline unsigned long long atomicCAS(unsigned long long *p,
                                    unsigned long long expected,
                                    unsigned long long desired) {
  __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED,
                              __ATOMIC_RELAXED);
  return expected;
}
inline unsigned long long atomicAdd(unsigned long long *p,
                                    unsigned long long v) {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline unsigned int atomicAdd(unsigned int *p, unsigned int v) {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline int atomicAdd(int *p, int v) {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

inline float __uint_as_float(unsigned int u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline unsigned int __float_as_uint(float f) {
  unsigned int u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Half precision through the compiler's _Float16 (IEEE binary16, conversions
// rounded to nearest even), not through ferry's own conversion code, so the
// tests compare against an independent implementation.
struct __half {
  unsigned short bits;
};
inline float __half2float(__half h) {
  _Float16 f;
  std::memcpy(&f, &h.bits, sizeof f);
  return (float)f;
}
inline __half __float2half_rn(float v) {
  _Float16 f = (_Float16)v;
  __half h;
  std::memcpy(&h.bits, &f, sizeof h.bits);
  return h;
}
inline __half __ushort_as_half(unsigned short u) {
  return __half{u};
}
inline unsigned short __half_as_ushort(__half h) {
  return h.bits;
}

inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}

#endif // FERRY_EMU_DEVICE_H
