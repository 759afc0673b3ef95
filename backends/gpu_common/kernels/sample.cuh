// Kernels of neighbor sampling, shared by CUDA and HIP. The draws are
// core/philox.h's, included as is (its functions are __host__ __device__
// here), so cpu, cuda and hip share one source of truth.
//
//   sample_count       one thread per frontier node: out[i + 1] = its count
//   sample_scan        one block: inclusive prefix sum of a[1..n], a[0] = 0
//   sample_pick_*      one thread per frontier node: its draws, mapped to ids
//   relabel, keeping first-occurrence order without a sequential pass:
//     sample_table_init  empty the hash table (key -1, first position max)
//     sample_insert      each element p (frontier, then neighbors) claims its
//                        key's slot (CAS) and lowers the slot's first
//                        position to p (atomicMin)
//     sample_mark        flag[p + 1] = 1 when p is its key's first position
//     (sample_scan over the flags gives each first occurrence its local id)
//     sample_emit        src[id] = key at first occurrences; local ids of the
//                        neighbors; the number of source nodes
#ifndef FERRY_GPU_SAMPLE_CUH
#define FERRY_GPU_SAMPLE_CUH

#include "device.cuh"

#include "../../../core/philox.h"

#define FERRY_SAMPLE_SCAN_THREADS 1024

extern "C" __global__ void
ferry_k_sample_count(const int64_t *__restrict__ offsets,
                     const int64_t *__restrict__ frontier, uint64_t n,
                     int64_t num_nodes, int64_t fanout, int replace,
                     int64_t *__restrict__ out) {
  uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  int64_t v = frontier[i];
  int64_t c = 0;
  if (v >= 0 && v < num_nodes)
    c = ferry_sample_count(offsets[v + 1] - offsets[v], fanout, replace);
  out[i + 1] = c;
}

// One block of FERRY_SAMPLE_SCAN_THREADS threads walks the array in tiles,
// each tile scanned in shared memory (Hillis-Steele) plus the carry of the
// tiles before it.
extern "C" __global__ void ferry_k_sample_scan(int64_t *__restrict__ a,
                                               uint64_t n) {
  __shared__ int64_t tile[FERRY_SAMPLE_SCAN_THREADS];
  __shared__ int64_t carry;
  const unsigned t = threadIdx.x;
  if (t == 0) {
    a[0] = 0;
    carry = 0;
  }
  __syncthreads();
  for (uint64_t base = 1; base <= n; base += FERRY_SAMPLE_SCAN_THREADS) {
    uint64_t i = base + t;
    tile[t] = i <= n ? a[i] : 0;
    __syncthreads();
    for (unsigned d = 1; d < FERRY_SAMPLE_SCAN_THREADS; d <<= 1) {
      int64_t add = t >= d ? tile[t - d] : 0;
      __syncthreads();
      tile[t] += add;
      __syncthreads();
    }
    if (i <= n)
      a[i] = tile[t] + carry;
    __syncthreads();
    if (t == FERRY_SAMPLE_SCAN_THREADS - 1)
      carry += tile[t];
    __syncthreads();
  }
}

template <typename Col>
__device__ __forceinline__ void
sample_pick(const int64_t *__restrict__ offsets, const Col *__restrict__ cols,
            const int64_t *__restrict__ frontier, uint64_t n, int64_t num_nodes,
            const int64_t *__restrict__ eoff, int64_t *__restrict__ out,
            uint64_t seed, uint32_t batch_id, uint32_t layer, int64_t fanout,
            int replace) {
  uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  int64_t v = frontier[i];
  int64_t first = eoff[i], k = eoff[i + 1] - first;
  if (k == 0 || v < 0 || v >= num_nodes)
    return;
  int64_t row = offsets[v], deg = offsets[v + 1] - row;
  int64_t *o = out + first;
  ferry_sample_positions(seed, batch_id, layer, (uint64_t)v, deg, fanout,
                         replace, o);
  for (int64_t j = 0; j < k; j++)
    o[j] = (int64_t)cols[row + o[j]];
}

extern "C" __global__ void
ferry_k_sample_pick_i32(const int64_t *offsets, const int32_t *cols,
                        const int64_t *frontier, uint64_t n, int64_t num_nodes,
                        const int64_t *eoff, int64_t *out, uint64_t seed,
                        uint32_t batch_id, uint32_t layer, int64_t fanout,
                        int replace) {
  sample_pick<int32_t>(offsets, cols, frontier, n, num_nodes, eoff, out, seed,
                       batch_id, layer, fanout, replace);
}

extern "C" __global__ void
ferry_k_sample_pick_i64(const int64_t *offsets, const int64_t *cols,
                        const int64_t *frontier, uint64_t n, int64_t num_nodes,
                        const int64_t *eoff, int64_t *out, uint64_t seed,
                        uint32_t batch_id, uint32_t layer, int64_t fanout,
                        int replace) {
  sample_pick<int64_t>(offsets, cols, frontier, n, num_nodes, eoff, out, seed,
                       batch_id, layer, fanout, replace);
}

// The hash table: slots of (key, first position) as unsigned 64-bit words
// for the atomics; key ~0 is empty.
__device__ __forceinline__ uint64_t sample_hash(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

__device__ __forceinline__ int64_t sample_element(const int64_t *frontier,
                                                  uint64_t n,
                                                  const int64_t *nbrs,
                                                  uint64_t p) {
  return p < n ? frontier[p] : nbrs[p - n];
}

// The slot holding `key` (present: inserted before).
__device__ __forceinline__ uint64_t sample_find(const unsigned long long *table,
                                                uint64_t mask, uint64_t key) {
  uint64_t h = sample_hash(key) & mask;
  while (table[2 * h] != key)
    h = (h + 1) & mask;
  return h;
}

extern "C" __global__ void ferry_k_sample_table_init(unsigned long long *table,
                                                     uint64_t slots) {
  uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
  for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < slots;
       i += stride) {
    table[2 * i] = ~0ull;
    table[2 * i + 1] = ~0ull;
  }
}

extern "C" __global__ void
ferry_k_sample_insert(const int64_t *frontier, uint64_t n, const int64_t *nbrs,
                      uint64_t e, unsigned long long *table, uint64_t slots) {
  uint64_t p = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= n + e)
    return;
  unsigned long long key =
      (unsigned long long)sample_element(frontier, n, nbrs, p);
  uint64_t mask = slots - 1, h = sample_hash(key) & mask;
  for (;;) {
    unsigned long long old = atomicCAS(&table[2 * h], ~0ull, key);
    if (old == ~0ull || old == key) {
      atomicMin(&table[2 * h + 1], (unsigned long long)p);
      return;
    }
    h = (h + 1) & mask;
  }
}

extern "C" __global__ void ferry_k_sample_mark(const int64_t *frontier,
                                               uint64_t n, const int64_t *nbrs,
                                               uint64_t e,
                                               const unsigned long long *table,
                                               uint64_t slots, int64_t *flags) {
  uint64_t p = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= n + e)
    return;
  uint64_t key = (uint64_t)sample_element(frontier, n, nbrs, p);
  uint64_t h = sample_find(table, slots - 1, key);
  flags[p + 1] = table[2 * h + 1] == p ? 1 : 0;
}

// ids = the scanned flags: ids[p] is the local id of element p when p is a
// first occurrence.
extern "C" __global__ void
ferry_k_sample_emit(const int64_t *frontier, uint64_t n, const int64_t *nbrs,
                    uint64_t e, const unsigned long long *table, uint64_t slots,
                    const int64_t *ids, int64_t *src, int64_t *local_ids,
                    int64_t *num_src) {
  uint64_t p = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (p == 0)
    *num_src = ids[n + e];
  if (p >= n + e)
    return;
  int64_t key = sample_element(frontier, n, nbrs, p);
  if (ids[p + 1] != ids[p])
    src[ids[p]] = key;
  if (p >= n) {
    uint64_t h = sample_find(table, slots - 1, (uint64_t)key);
    local_ids[p - n] = ids[table[2 * h + 1]];
  }
}

#endif // FERRY_GPU_SAMPLE_CUH
