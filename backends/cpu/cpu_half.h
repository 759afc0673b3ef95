/* f16 and bf16 <-> f32 conversions for the cpu backend's ops.
 *
 * Written without branches on data where it matters (selects the compiler
 * turns into vector blends), so loops over rows auto-vectorise. f32 -> f16
 * and f32 -> bf16 round to nearest, ties to even; NaN stays NaN (quiet, sign
 * kept), infinities stay infinite, f32 values too large for f16 become
 * infinities, and values below f16's normal range become f16 subnormals or
 * zero, correctly rounded. f16/bf16 -> f32 is exact. */
#ifndef FERRY_CPU_HALF_H
#define FERRY_CPU_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t ferry_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float ferry_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline float ferry_bf16_to_f32(uint16_t h) {
  return ferry_bits_f32((uint32_t)h << 16);
}

static inline uint16_t ferry_f32_to_bf16(float f) {
  uint32_t u = ferry_f32_bits(f);
  /* Round to nearest even on the 16 bits dropped; a NaN could round into
   * an infinity, so it is made quiet instead. */
  uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  uint32_t nan = (u >> 16) | 0x40u;
  return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

static inline float ferry_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t em = (uint32_t)(h & 0x7fffu)
                << 13; /* exponent+mantissa, f32 place */
  uint32_t exp = em & 0x0f800000u;
  /* Normal numbers: rebias the exponent (15 -> 127). */
  uint32_t normal = em + (112u << 23);
  /* Infinity / NaN: all-ones exponent. */
  uint32_t special = em | 0x7f800000u;
  /* Subnormals (and zero): mantissa * 2^-24, computed exactly in f32 as
   * (2^-14 + m * 2^-24) - 2^-14. */
  float sub = ferry_bits_f32(em + (113u << 23)) - ferry_bits_f32(113u << 23);
  uint32_t bits = exp == 0x0f800000u ? special
                  : exp == 0         ? ferry_f32_bits(sub)
                                     : normal;
  return ferry_bits_f32(bits | sign);
}

static inline uint16_t ferry_f32_to_f16(float f) {
  uint32_t u = ferry_f32_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  uint32_t out;
  if (a > 0x7f800000u) {
    out = 0x7e00u; /* NaN: quiet */
  } else if (a >= 0x477ff000u) {
    out = 0x7c00u; /* >= 65520 (and infinity): infinity */
  } else if (a >= 0x38800000u) {
    /* Normal: rebias (127 -> 15) and round the 13 dropped bits to even; a
     * carry into the exponent is the correct next binade. */
    uint32_t r = a - (112u << 23);
    out = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;
  } else if (a > 0x33000000u) {
    /* Subnormal result: the value in units of 2^-24, rounded to even. */
    uint32_t e = a >> 23; /* 102..112 */
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14..24 */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    out = q + (rem > half || (rem == half && (q & 1u)));
  } else {
    out = 0; /* at most 2^-25: rounds to (signed) zero */
  }
  return (uint16_t)(out | sign);
}

#endif /* FERRY_CPU_HALF_H */
