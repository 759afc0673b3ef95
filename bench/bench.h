/* What every ferry-bench benchmark sees: the run's settings, the backend it
 * runs on, and the result list it appends to. A benchmark is one function of
 * type bench_fn listed in main.c's table. */
#ifndef FERRY_BENCH_BENCH_H
#define FERRY_BENCH_BENCH_H

#include <ferry/ferry.h>
#include <stdint.h>

#include "results.h"

typedef struct bench_config {
  int quick;          /* small sizes and few repetitions (smoke runs) */
  int warmup;         /* untimed repetitions before the timed ones */
  int reps;           /* timed repetitions; results are their median */
  uint64_t llc_bytes; /* the host's last-level cache */
  int scale; /* --scale: large sizes for big machines (e.g. papers100M-sized
                tables where memory allows); benchmarks may ignore it */
} bench_config;

/* One backend, with a context created under its strict name. */
typedef struct bench_target {
  ferry_context *ctx;
  ferry_context_info info; /* backend, device, worker threads, cpuset */
} bench_target;

/* Runs one benchmark on one backend, appending results and printing a line
 * for anything it skips. Returns 0, or -1 after printing what failed. */
typedef int (*bench_fn)(const bench_config *cfg, const bench_target *target,
                        bench_results *out);

/* The limits every other benchmark is judged against (copy.c). */
int bench_copy(const bench_config *cfg, const bench_target *target,
               bench_results *out);

/* The op benchmarks (one file each: gather.c, sample.c, layernorm.c, adan.c).
 * Weak while they are being written: main.c skips one that is not linked. */
#define BENCH_WEAK __attribute__((weak))
BENCH_WEAK int bench_gather(const bench_config *cfg, const bench_target *target,
                            bench_results *out);
BENCH_WEAK int bench_sample(const bench_config *cfg, const bench_target *target,
                            bench_results *out);
BENCH_WEAK int bench_layernorm(const bench_config *cfg,
                               const bench_target *target, bench_results *out);
BENCH_WEAK int bench_adan(const bench_config *cfg, const bench_target *target,
                          bench_results *out);
/* The end-to-end epoch through the loader, per placement (epoch.c). */
BENCH_WEAK int bench_epoch(const bench_config *cfg, const bench_target *target,
                           bench_results *out);

/* 1 for a device that emulates a GPU on the host's cores (OpenCL on PoCL):
 * the op benchmarks run their small sizes there unless --scale, so that the
 * default run stays a few minutes; such a device is not a speed target. */
int bench_host_emulated(const bench_target *target);

/* Prints "ferry-bench: <what>: <status>: <message>" and returns -1. */
int bench_fail(const char *what, ferry_status status);

#endif
