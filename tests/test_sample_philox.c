/* The sampler's random numbers (core/philox.h): Random123's known answers
 * for Philox4x32-10, exactly unbiased bounded draws (every word of a narrow
 * generator through the production code), and Floyd's algorithm giving
 * every k-subset equal probability. */
#include "harness.h"

#include "../core/philox.h"

#include <string.h>

/* Random123 kat_vectors: ctr[4] key[2] -> out[4]. */
static const uint32_t kat[3][10] = {
    {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
     0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
     0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};

Test(sample_philox, known_answers) {
  for (int i = 0; i < 3; i++) {
    uint32_t out[4];
    ferry_philox4x32_10(kat[i], kat[i] + 4, out);
    for (int j = 0; j < 4; j++)
      cr_assert_eq(out[j], kat[i][6 + j], "vector %d word %d: %08x != %08x", i,
                   j, out[j], kat[i][6 + j]);
  }
}

/* Every 8-bit word once: the accepted draws must hit each value equally
 * often. Plain multiply-shift without rejection does not (the check that
 * the test can fail). */
Test(sample_philox, unbiased_bounded_draws) {
  const uint32_t ranges[] = {1, 3, 5, 7, 10, 100, 129, 255, 256};
  for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
    uint32_t range = ranges[r];
    unsigned hit[256] = {0}, naive[256] = {0};
    unsigned accepted = 0;
    for (uint32_t x = 0; x < 256; x++) {
      uint32_t v = 0;
      if (ferry_lemire_accept(x, range, 8, &v)) {
        cr_assert_lt(v, range);
        hit[v]++;
        accepted++;
      }
      naive[(x * range) >> 8]++;
    }
    cr_assert_eq(accepted, 256 - 256 % range, "range %u", range);
    for (uint32_t v = 1; v < range; v++)
      cr_assert_eq(hit[v], hit[0], "range %u: value %u drawn %u times, 0 %u",
                   range, v, hit[v], hit[0]);
    if (256 % range != 0) {
      int uneven = 0;
      for (uint32_t v = 1; v < range; v++)
        uneven |= naive[v] != naive[0];
      cr_assert(uneven, "range %u: the biased method should be uneven", range);
    }
  }
}

/* Words of a stream come 4 per counter block, in order. */
Test(sample_philox, stream_layout) {
  ferry_rng r;
  ferry_rng_init(&r, 0x0123456789ABCDEFull, 7, 2, 0x0000BEEF12345678ull);
  uint32_t ctr[4] = {0, 0x12345678u, 0xBEEFu | (2u << 16), 7};
  uint32_t key[2] = {0x89ABCDEFu, 0x01234567u};
  for (uint32_t block = 0; block < 3; block++) {
    uint32_t out[4];
    ctr[0] = block;
    ferry_philox4x32_10(ctr, key, out);
    for (int j = 0; j < 4; j++)
      cr_assert_eq(ferry_rng_next(&r), out[j]);
  }
}

/* Floyd's algorithm, k = 2 of deg = 5: each of the 10 subsets equally
 * likely (chi-square, 9 degrees of freedom, 1e-6 tail: 47.2). */
Test(sample_philox, floyd_uniform_subsets) {
  double count[5][5] = {{0}};
  const int trials = 50000;
  for (int t = 0; t < trials; t++) {
    int64_t out[2];
    ferry_sample_positions(11, 0, 0, (uint64_t)t, 5, 2, 0, out);
    cr_assert_neq(out[0], out[1]);
    int64_t a = out[0] < out[1] ? out[0] : out[1];
    int64_t b = out[0] ^ out[1] ^ a;
    count[a][b] += 1;
  }
  double expect = trials / 10.0, x = 0;
  for (int a = 0; a < 5; a++)
    for (int b = a + 1; b < 5; b++)
      x += (count[a][b] - expect) * (count[a][b] - expect) / expect;
  cr_assert_lt(x, 47.2, "chi-square %.2f", x);
  /* Every neighbor when deg <= fanout, in row order; counts. */
  int64_t out[8];
  ferry_sample_positions(1, 2, 3, 4, 3, 5, 0, out);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(out[i], i);
  cr_assert_eq(ferry_sample_count(3, 5, 0), 3);
  cr_assert_eq(ferry_sample_count(3, 5, 1), 5);
  cr_assert_eq(ferry_sample_count(0, 5, 1), 0);
  cr_assert_eq(ferry_sample_count(7, -1, 1), 7);
}
