#include "epoch_model.h"
#include "timing.h"

#include <stdlib.h>

double epoch_model_flops(const epoch_block_shape *blocks, int layers,
                         int64_t in) {
  double total = 0;
  for (int l = 0; l < layers; l++) {
    double fin = l == 0 ? (double)in : EPOCH_MODEL_HIDDEN;
    double fout = l == layers - 1 ? EPOCH_MODEL_CLASSES : EPOCH_MODEL_HIDDEN;
    double d = (double)blocks[l].num_dst, e = (double)blocks[l].num_edges;
    double agg = e * fin;
    double gemm = 2.0 * 2.0 * d * fin * fout; /* self and neighbour */
    total += agg + gemm;                      /* forward */
    total += agg + gemm + (l > 0 ? gemm : 0); /* backward: dW (+ dX) */
  }
  return total;
}

int epoch_model_params(int64_t in, int64_t shapes[][2], int max,
                       int64_t *total) {
  int n = 0;
  int64_t sum = 0;
  for (int l = 0; l < EPOCH_MODEL_LAYERS; l++) {
    int64_t fin = l == 0 ? in : EPOCH_MODEL_HIDDEN;
    int last = l == EPOCH_MODEL_LAYERS - 1;
    int64_t fout = last ? EPOCH_MODEL_CLASSES : EPOCH_MODEL_HIDDEN;
    int64_t s[5][2] = {
        {fin, fout}, {fin, fout}, {fout, 0}, {fout, 0}, {fout, 0}};
    int count = last ? 3 : 5; /* hidden layers: + LayerNorm gamma, beta */
    for (int i = 0; i < count; i++) {
      if (shapes != NULL && n < max) {
        shapes[n][0] = s[i][0];
        shapes[n][1] = s[i][1];
      }
      n++;
      sum += s[i][1] > 0 ? s[i][0] * s[i][1] : s[i][0];
    }
  }
  if (total != NULL)
    *total = sum;
  return n;
}

#define GEMM_N 192

/* c += a * b, i-k-j order so that the inner loop is a unit-stride axpy the
 * compiler vectorises (restrict: no aliasing checks): the loop a C
 * programmer writes first. */
static void gemm_pass(const float *restrict a, const float *restrict b,
                      float *restrict c) {
  for (int i = 0; i < GEMM_N; i++)
    for (int k = 0; k < GEMM_N; k++) {
      float aik = a[i * GEMM_N + k];
      const float *restrict brow = b + k * GEMM_N;
      float *restrict crow = c + i * GEMM_N;
      for (int j = 0; j < GEMM_N; j++)
        crow[j] += aik * brow[j];
    }
}

double epoch_model_measure_flops(double seconds) {
  float *a = malloc(3 * sizeof(float) * GEMM_N * GEMM_N);
  if (a == NULL)
    return 0;
  float *b = a + GEMM_N * GEMM_N, *c = b + GEMM_N * GEMM_N;
  for (int i = 0; i < GEMM_N * GEMM_N; i++) {
    a[i] = (float)(i % 7) * 0.01f;
    b[i] = (float)(i % 5) * 0.01f;
    c[i] = 0;
  }
  gemm_pass(a, b, c); /* warm the caches */
  /* The best of five trials: on a shared host the slowest ones measure the
   * neighbours, not the loop. */
  double best = 0;
  for (int trial = 0; trial < 5; trial++) {
    long passes = 0;
    double t0 = bench_now(), dt;
    do {
      gemm_pass(a, b, c);
      passes++;
      dt = bench_now() - t0;
    } while (dt < seconds / 5);
    double rate = 2.0 * GEMM_N * GEMM_N * (double)GEMM_N * (double)passes / dt;
    best = rate > best ? rate : best;
  }
  /* Keep the result observable so the loop cannot be dropped. */
  volatile float sink = c[GEMM_N + 1];
  (void)sink;
  free(a);
  return best;
}

ferry_status epoch_model_busy(void *user) {
  double until = bench_now() + *(const double *)user;
  while (bench_now() < until) {
  }
  return FERRY_OK;
}
