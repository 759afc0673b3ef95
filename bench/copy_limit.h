/* The scaffolding the layernorm and adan benchmarks share: their working
 * sets rotated between repetitions (enough to reach 4x the last-level
 * cache), and the limit each is judged against, ferry's own device-to-device
 * copy of the same bytes on the same context, one buffer pair per set, its
 * repetitions alternating with the op's (bench_repeat_pair). */
#ifndef FERRY_BENCH_COPY_LIMIT_H
#define FERRY_BENCH_COPY_LIMIT_H

#include "bench.h"

#define BENCH_COPY_LIMIT_MAX_SETS 16

typedef struct bench_copy_limit {
  int sets;       /* working sets the op and the copy rotate over */
  int judged;     /* the sets together reach 4x the last-level cache */
  uint64_t bytes; /* one copy: half the op's counted bytes (read + write) */
  ferry_buffer *src[BENCH_COPY_LIMIT_MAX_SETS];
  ferry_buffer *dst[BENCH_COPY_LIMIT_MAX_SETS];
} bench_copy_limit;

/* Plans the rotation for an op counting `op_bytes` a repetition: as many
 * sets as reach 4x the last-level cache, 1..max_sets (max_sets at most
 * BENCH_COPY_LIMIT_MAX_SETS); 2 under --quick. Leaves the buffers as they
 * are. */
void bench_copy_limit_plan(bench_copy_limit *l, const bench_config *cfg,
                           uint64_t op_bytes, int max_sets);

/* Creates set i's copy buffers on the device (the source filled with 1s, the
 * destination with 0s, on `stream`). */
ferry_status bench_copy_limit_make_set(bench_copy_limit *l, ferry_context *ctx,
                                       ferry_stream *stream, int i);

/* One timed repetition of the copy (set rep % sets), synchronised. */
ferry_status bench_copy_limit_run(const bench_copy_limit *l,
                                  ferry_stream *stream, int rep,
                                  double *seconds);

/* Destroys every set's copy buffers (NULL afterwards). */
void bench_copy_limit_free(bench_copy_limit *l);

/* The end of a result judged against the copy: the bytes, sets and threads
 * parameters, then the rates from the op's and the copy's median seconds. */
void bench_copy_limit_report(const bench_copy_limit *l, bench_result *res,
                             const bench_config *cfg,
                             const bench_target *target, uint64_t op_bytes,
                             double op_s, double copy_s);

#endif
