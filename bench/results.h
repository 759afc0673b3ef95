/* Benchmark results: one record per measurement, printed as a table row and
 * written to JSON (docs/benchmarks.md describes the fields). */
#ifndef FERRY_BENCH_RESULTS_H
#define FERRY_BENCH_RESULTS_H

#include <ferry/ferry.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json_out.h"

#define BENCH_MAX_PARAMS 12

typedef struct bench_param {
  const char *key; /* a string literal */
  int is_string;
  int64_t value;
  char text[32];
} bench_param;

typedef struct bench_result {
  char op[32];
  char backend[FERRY_NAME_MAX];
  char device[FERRY_NAME_MAX];
  char method[48];
  bench_param params[BENCH_MAX_PARAMS];
  int nparams;
  int reps;
  double median_s;
  double gbps;       /* counted bytes / median_s / 1e9 */
  double limit_gbps; /* NaN: no limit applies (written as null) */
  double ratio;      /* gbps / limit_gbps, NaN with it */
  int judged; /* 0: buffers were cache-resident, the ratio is not judged */
  /* An op-specific rate written as its own JSON field when rate_key is set
   * (e.g. "edges_per_s" for sampling). */
  char rate_key[24];
  double rate;
} bench_result;

typedef struct bench_results {
  bench_result *items;
  size_t count, capacity;
} bench_results;

void bench_results_free(bench_results *r);
/* A zeroed record (limit and ratio NaN) appended to the list, or NULL when
 * memory ran out (printed). */
bench_result *bench_results_add(bench_results *r, const char *op,
                                const char *backend, const char *device,
                                const char *method);
void bench_param_int(bench_result *res, const char *key, int64_t value);
void bench_param_string(bench_result *res, const char *key, const char *text);
/* The value of an integer parameter, or `fallback`. */
int64_t bench_param_get(const bench_result *res, const char *key,
                        int64_t fallback);

void bench_results_print_header(FILE *f);
void bench_results_print_row(FILE *f, const bench_result *res);
/* Writes the list as a JSON array member named `key`. */
void bench_results_write_json(json_out *j, const char *key,
                              const bench_results *r);

/* Writes the list as CSV (header row, then one row per result; params joined
 * as "key=value;..."). Returns 0, or -1 after printing why. */
int bench_results_write_csv(const char *path, const bench_results *r);

#endif
