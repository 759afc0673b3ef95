/* The cpu backend's f16/bf16 conversions (backends/cpu/cpu_half.h) against
 * conversions written here in double arithmetic: every f16 and bf16 value
 * decoded, and f32 -> f16/bf16 rounding over a sweep of f32 bit patterns
 * (every 211th, plus halfway cases and the edges of the ranges). */
#include "harness.h"

#include "cpu_half.h"

#include <math.h>

static double ref_f16_decode(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double s = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 31)
    return m ? NAN : s * INFINITY;
  if (e == 0)
    return s * ldexp(m, -24);
  return s * ldexp(1024 + m, e - 25);
}

/* Round-to-nearest-even of a finite double into f16's value set (as a
 * double; +-INFINITY past the largest finite value's rounding range). */
static double ref_f16_round(double v) {
  double a = fabs(v);
  if (a >= 65520.0)
    return copysign(INFINITY, v);
  if (a == 0)
    return v;
  int e;
  frexp(a, &e);
  e -= 1;
  if (e < -14)
    e = -14;
  return copysign(ldexp(rint(ldexp(a, 10 - e)), e - 10), v);
}

static double ref_bf16_round(float f) {
  if (isinf(f))
    return f;
  double a = fabs((double)f);
  if (a == 0)
    return f;
  int e;
  frexp(a, &e);
  e -= 1;
  if (e < -126)
    e = -126;
  double r = ldexp(rint(ldexp(a, 7 - e)), e - 7);
  if (r > 3.3895313892515355e38) /* past bf16's largest finite value */
    r = INFINITY;
  return copysign(r, (double)f);
}

static void check_f32(uint32_t u) {
  float f = ferry_bits_f32(u);
  /* f16 */
  uint16_t h = ferry_f32_to_f16(f);
  double got = ref_f16_decode(h);
  if (isnan(f)) {
    cr_assert(isnan(got), "f16(%08x) = %04x, not NaN", u, h);
  } else {
    double want = ref_f16_round((double)f);
    cr_assert(got == want && signbit(got) == signbit(want),
              "f16(%08x = %a) = %04x (%a), want %a", u, (double)f, h, got,
              want);
  }
  /* bf16 */
  uint16_t b = ferry_f32_to_bf16(f);
  double gotb = (double)ferry_bf16_to_f32(b);
  if (isnan(f)) {
    cr_assert(isnan(gotb) && (b & 0x40), "bf16(%08x) = %04x, not a quiet NaN",
              u, b);
  } else {
    double want = ref_bf16_round(f);
    cr_assert(gotb == want && signbit(gotb) == signbit(want),
              "bf16(%08x = %a) = %04x (%a), want %a", u, (double)f, b, gotb,
              want);
  }
}

Test(norm_half, decode_every_value) {
  for (uint32_t h = 0; h < 65536; h++) {
    double want = ref_f16_decode((uint16_t)h);
    double got = ferry_f16_to_f32((uint16_t)h);
    if (isnan(want))
      cr_assert(isnan(got), "f16 %04x", h);
    else
      cr_assert(got == want && signbit(got) == signbit(want),
                "f16 %04x -> %a, want %a", h, got, want);
    /* Every finite value survives the round trip exactly. */
    if (!isnan(want)) {
      cr_assert_eq(ferry_f32_to_f16((float)got), h, "f16 round trip %04x", h);
      cr_assert_eq(ferry_f32_to_bf16(ferry_bf16_to_f32((uint16_t)h)), h,
                   "bf16 round trip %04x", h);
    }
  }
}

Test(norm_half, encode_sweep) {
  for (uint64_t u = 0; u <= 0xffffffffull; u += 211)
    check_f32((uint32_t)u);
  /* Halfway and neighbouring cases around every f16 and bf16 value. */
  for (uint32_t h = 0; h < 0x7c00; h++) {
    double lo = ref_f16_decode((uint16_t)h),
           hi = ref_f16_decode((uint16_t)(h + 1));
    float mid = (float)((lo + hi) / 2);
    uint32_t m = ferry_f32_bits(mid);
    for (uint32_t d = 0; d < 3; d++) {
      check_f32(m - 1 + d);
      check_f32((m - 1 + d) | 0x80000000u);
    }
  }
  for (uint32_t b = 0; b < 0x7f80; b++) {
    uint32_t m = (b << 16) | 0x8000u; /* halfway to the next bf16 */
    for (uint32_t d = 0; d < 3; d++)
      check_f32(m - 1 + d);
  }
  check_f32(0x7f800000u);
  check_f32(0xff800000u);
  check_f32(0x7fc00001u);
  check_f32(0x7f800001u); /* signalling NaN */
  check_f32(0x477ff000u); /* 65520: rounds up to infinity */
  check_f32(0x477fefffu);
  check_f32(0x33000000u); /* 2^-25: ties to zero */
  check_f32(0x33000001u);
}
