/* Philox4x32-10 and the sampler's per-node draws: the one source of truth
 * for C (core, cpu backend, tests) and CUDA/HIP (kernels/sample.cuh includes
 * this file). OpenCL C cannot include files from an embedded program, so
 * backends/opencl/kernels/sample.cl carries a copy; tests/test_sample_philox.c
 * checks that the copies agree bit for bit (Random123's known answers, and
 * the draws of whole nodes).
 *
 * The sample of one node is a pure function of (seed, batch_id, layer, node):
 * its random words come from Philox4x32-10 keyed by the seed, with the
 * counter (block, node low 32 bits, node high 16 bits | layer << 16,
 * batch_id), block = 0, 1, 2, ... giving 4 words each, consumed in order.
 * Nothing depends on which thread or device runs the node. */
#ifndef FERRY_CORE_PHILOX_H
#define FERRY_CORE_PHILOX_H

#if defined(__CUDACC__) || defined(__HIPCC__)
#define FERRY_PHILOX_FN static __host__ __device__ __forceinline__
#else
#include <stdint.h>
#define FERRY_PHILOX_FN static inline
#endif

#define FERRY_PHILOX_M0 0xD2511F53u
#define FERRY_PHILOX_M1 0xCD9E8D57u
#define FERRY_PHILOX_W0 0x9E3779B9u
#define FERRY_PHILOX_W1 0xBB67AE85u

/* Philox4x32 with 10 rounds (Salmon et al., SC'11): out = f(ctr, key). */
FERRY_PHILOX_FN void ferry_philox4x32_10(const uint32_t ctr[4],
                                         const uint32_t key[2],
                                         uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += FERRY_PHILOX_W0;
      k1 += FERRY_PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)FERRY_PHILOX_M0 * c0;
    uint64_t p1 = (uint64_t)FERRY_PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* One node's stream of 32-bit words. */
typedef struct ferry_rng {
  uint32_t key[2];
  uint32_t ctr[4];
  uint32_t buf[4];
  uint32_t used; /* words of buf consumed (4: refill) */
} ferry_rng;

FERRY_PHILOX_FN void ferry_rng_init(ferry_rng *r, uint64_t seed,
                                    uint32_t batch_id, uint32_t layer,
                                    uint64_t node) {
  r->key[0] = (uint32_t)seed;
  r->key[1] = (uint32_t)(seed >> 32);
  r->ctr[0] = 0;
  r->ctr[1] = (uint32_t)node;
  r->ctr[2] = ((uint32_t)(node >> 32) & 0xFFFFu) | (layer << 16);
  r->ctr[3] = batch_id;
  r->used = 4;
}

FERRY_PHILOX_FN uint32_t ferry_rng_next(ferry_rng *r) {
  if (r->used == 4) {
    ferry_philox4x32_10(r->ctr, r->key, r->buf);
    r->ctr[0]++;
    r->used = 0;
  }
  return r->buf[r->used++];
}

/* Lemire's multiply-shift for a word x of `bits` bits (1..32): m = x *
 * range; the draw is m >> bits, accepted unless the low part falls below
 * 2^bits mod range (the words that would bias the result). Returns 1 and
 * *out in [0, range) when accepted. `bits` is a parameter so that a test can
 * run every word of a narrow generator through this very code. */
FERRY_PHILOX_FN int ferry_lemire_accept(uint32_t x, uint32_t range,
                                        unsigned bits, uint32_t *out) {
  uint64_t mask = bits >= 32 ? 0xFFFFFFFFull : ((1ull << bits) - 1u);
  uint64_t m = (uint64_t)x * range;
  uint64_t low = m & mask;
  if (low < range) {
    uint64_t threshold = ((mask + 1u) - range) % range;
    if (low < threshold)
      return 0;
  }
  *out = (uint32_t)(m >> (bits >= 32 ? 32 : bits));
  return 1;
}

/* An unbiased draw in [0, range), range in [1, 2^32). */
FERRY_PHILOX_FN uint32_t ferry_rng_below(ferry_rng *r, uint32_t range) {
  uint32_t v = 0;
  while (!ferry_lemire_accept(ferry_rng_next(r), range, 32, &v)) {
  }
  return v;
}

/* How many neighbors a node of degree `deg` gets: every one for fanout < 0;
 * exactly fanout draws with replacement (none when deg == 0); min(deg,
 * fanout) without. */
FERRY_PHILOX_FN int64_t ferry_sample_count(int64_t deg, int64_t fanout,
                                           int replace) {
  if (fanout < 0)
    return deg;
  if (replace)
    return deg > 0 ? fanout : 0;
  return deg < fanout ? deg : fanout;
}

/* The positions (0 .. deg-1 within the node's row) of the node's sampled
 * neighbors, ferry_sample_count(...) of them, in draw order:
 *   - every neighbor (fanout < 0, or deg <= fanout without replacement):
 *     0, 1, ..., deg-1, no random words used;
 *   - with replacement: fanout draws below deg;
 *   - without (deg > fanout = k): Floyd's algorithm, for j = deg-k .. deg-1
 *     draw t below j+1 and take t, or j when t was already taken; O(k) draws
 *     (membership by a scan of the k taken: fanouts are small).
 * Degrees must be below 2^32 (ferry_graph checks). */
FERRY_PHILOX_FN void ferry_sample_positions(uint64_t seed, uint32_t batch_id,
                                            uint32_t layer, uint64_t node,
                                            int64_t deg, int64_t fanout,
                                            int replace, int64_t *out) {
  int64_t k = ferry_sample_count(deg, fanout, replace);
  if (fanout < 0 || (!replace && deg <= fanout)) {
    for (int64_t j = 0; j < k; j++)
      out[j] = j;
    return;
  }
  ferry_rng r;
  ferry_rng_init(&r, seed, batch_id, layer, node);
  if (replace) {
    for (int64_t j = 0; j < k; j++)
      out[j] = (int64_t)ferry_rng_below(&r, (uint32_t)deg);
    return;
  }
  int64_t taken = 0;
  for (int64_t j = deg - k; j < deg; j++) {
    int64_t t = (int64_t)ferry_rng_below(&r, (uint32_t)(j + 1));
    for (int64_t i = 0; i < taken; i++)
      if (out[i] == t) {
        t = j;
        break;
      }
    out[taken++] = t;
  }
}

#endif /* FERRY_CORE_PHILOX_H */
