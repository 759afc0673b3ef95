/* Timing shared by every benchmark: a monotonic clock, medians, and a
 * warm-up-then-measure loop. */
#ifndef FERRY_BENCH_TIMING_H
#define FERRY_BENCH_TIMING_H

#define BENCH_MAX_REPS 101

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);

/* Median of n > 0 samples (the mean of the middle two for even n); the
 * samples are left as they were. */
double bench_median(const double *samples, int n);

/* One repetition: `rep` counts from 0 through the warm-ups and on into the
 * timed repetitions, so a benchmark can rotate its buffers with rep % k.
 * Stores the repetition's seconds; returns 0, or -1 after printing why. */
typedef int (*bench_rep_fn)(void *arg, int rep, double *seconds);

/* Runs `warmup` untimed then `reps` timed repetitions (1..BENCH_MAX_REPS)
 * and stores their median seconds. Returns 0, or -1 when a repetition
 * failed or reps is out of range. */
int bench_repeat(int warmup, int reps, bench_rep_fn fn, void *arg,
                 double *median_s);

/* The same for an op and its limit, their repetitions alternating (limit,
 * op, limit, op, ...): on a shared machine both then see the same load, so
 * their ratio holds even while the absolute figures drift. */
int bench_repeat_pair(int warmup, int reps, bench_rep_fn limit, void *limit_arg,
                      bench_rep_fn op, void *op_arg, double *limit_s,
                      double *op_s);

#endif
