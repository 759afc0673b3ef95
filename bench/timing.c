#include "timing.h"

#include <stdio.h>
#include <string.h>
#include <math.h>
#include <time.h>

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double bench_median(const double *samples, int n) {
  double v[BENCH_MAX_REPS];
  if (n <= 0 || n > BENCH_MAX_REPS)
    return NAN;
  memcpy(v, samples, (size_t)n * sizeof v[0]);
  for (int i = 1; i < n; i++) { /* few samples: insertion sort */
    double x = v[i];
    int k = i - 1;
    for (; k >= 0 && v[k] > x; k--)
      v[k + 1] = v[k];
    v[k + 1] = x;
  }
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int bench_repeat(int warmup, int reps, bench_rep_fn fn, void *arg,
                 double *median_s) {
  double samples[BENCH_MAX_REPS];
  if (reps < 1 || reps > BENCH_MAX_REPS || warmup < 0) {
    fprintf(stderr, "ferry-bench: %d repetitions: must be 1..%d\n", reps,
            BENCH_MAX_REPS);
    return -1;
  }
  for (int r = 0; r < warmup + reps; r++) {
    double s = 0;
    if (fn(arg, r, &s) != 0)
      return -1;
    if (r >= warmup)
      samples[r - warmup] = s;
  }
  *median_s = bench_median(samples, reps);
  return 0;
}

int bench_repeat_pair(int warmup, int reps, bench_rep_fn limit, void *limit_arg,
                      bench_rep_fn op, void *op_arg, double *limit_s,
                      double *op_s) {
  double a[BENCH_MAX_REPS], b[BENCH_MAX_REPS];
  if (reps < 1 || reps > BENCH_MAX_REPS || warmup < 0) {
    fprintf(stderr, "ferry-bench: %d repetitions: must be 1..%d\n", reps,
            BENCH_MAX_REPS);
    return -1;
  }
  for (int r = 0; r < warmup + reps; r++) {
    double s = 0, t = 0;
    if (limit(limit_arg, r, &s) != 0 || op(op_arg, r, &t) != 0)
      return -1;
    if (r >= warmup) {
      a[r - warmup] = s;
      b[r - warmup] = t;
    }
  }
  *limit_s = bench_median(a, reps);
  *op_s = bench_median(b, reps);
  return 0;
}
