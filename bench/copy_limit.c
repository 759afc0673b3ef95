#include "copy_limit.h"

#include "timing.h"

void bench_copy_limit_plan(bench_copy_limit *l, const bench_config *cfg,
                           uint64_t op_bytes, int max_sets) {
  uint64_t want = 4 * cfg->llc_bytes;
  l->sets = (int)((want + op_bytes - 1) / op_bytes);
  if (l->sets < 1)
    l->sets = 1;
  if (l->sets > max_sets)
    l->sets = max_sets;
  if (cfg->quick) /* a smoke run: not judged */
    l->sets = 2;
  l->judged = (uint64_t)l->sets * op_bytes >= want;
  l->bytes = op_bytes / 2;
}

ferry_status bench_copy_limit_make_set(bench_copy_limit *l, ferry_context *ctx,
                                       ferry_stream *stream, int i) {
  ferry_status st =
      ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, l->bytes, &l->src[i]);
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, l->bytes, &l->dst[i]);
  if (st == FERRY_OK)
    st = ferry_buffer_fill_async(stream, l->src[i], 0, 1, l->bytes);
  if (st == FERRY_OK)
    st = ferry_buffer_fill_async(stream, l->dst[i], 0, 0, l->bytes);
  return st;
}

ferry_status bench_copy_limit_run(const bench_copy_limit *l,
                                  ferry_stream *stream, int rep,
                                  double *seconds) {
  int i = rep % l->sets;
  double t0 = bench_now();
  ferry_status st =
      ferry_buffer_copy_async(stream, l->dst[i], 0, l->src[i], 0, l->bytes);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(stream);
  *seconds = bench_now() - t0;
  return st;
}

void bench_copy_limit_free(bench_copy_limit *l) {
  for (int i = 0; i < BENCH_COPY_LIMIT_MAX_SETS; i++) {
    ferry_buffer_destroy(l->src[i]);
    ferry_buffer_destroy(l->dst[i]);
    l->src[i] = l->dst[i] = NULL;
  }
}

void bench_copy_limit_report(const bench_copy_limit *l, bench_result *res,
                             const bench_config *cfg,
                             const bench_target *target, uint64_t op_bytes,
                             double op_s, double copy_s) {
  bench_param_int(res, "bytes", (int64_t)op_bytes);
  bench_param_int(res, "sets", l->sets);
  bench_param_int(res, "threads", target->info.num_threads);
  res->reps = cfg->reps;
  res->median_s = op_s;
  res->gbps = (double)op_bytes / op_s / 1e9;
  res->limit_gbps = (double)op_bytes / copy_s / 1e9;
  res->ratio = res->gbps / res->limit_gbps;
  res->judged = l->judged;
}
