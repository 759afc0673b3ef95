/* ferry-bench sample: neighbor sampling on Graph500 R-MAT graphs (issue #5).
 *
 * For each graph (scale 20 by default; 16 with --quick; the list in
 * FERRY_BENCH_SAMPLE_SCALES, e.g. "20,24", on request), fanouts 15,10,5 and
 * 25,10, batch 1024, with and without replacement: a repetition samples
 * BATCHES minibatches (seeds drawn at random, distinct batch ids) and the
 * median repetition gives sampled edges per second (the record's rate,
 * "edges_per_s"; per thread and batches per second as parameters).
 *
 * The limit: the bytes a repetition's minibatches hold (CSC offsets, local
 * ids, source ids: each written once) against the host memcpy of the same
 * number of bytes by as many threads as the context's pool, measured here,
 * in the same run, on buffers of at least 4x the last-level cache (one
 * thread for backends without a host pool, such as OpenCL). It is
 * judged only when the graph itself is at least 4x the cache (its reads are
 * then memory, not cache). The target is >= 10M sampled edges per
 * second per thread on cpu. */
#include "bench.h"
#include "host_copy.h"
#include "timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 1024

typedef struct sample_rep {
  ferry_sampler *sampler;
  int64_t num_nodes;
  int batches;
  uint64_t next_batch;
  uint64_t rng;
  int64_t edges, bytes; /* of the last repetition */
  int failed;
} sample_rep;

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int sample_rep_fn(void *arg, int rep, double *seconds) {
  (void)rep;
  sample_rep *r = arg;
  int64_t seeds[BATCH];
  int64_t edges = 0, bytes = 0;
  double total = 0;
  for (int b = 0; b < r->batches; b++) {
    for (int i = 0; i < BATCH; i++)
      seeds[i] = (int64_t)(splitmix(&r->rng) % (uint64_t)r->num_nodes);
    ferry_minibatch *mb = NULL;
    double t0 = bench_now();
    ferry_status st =
        ferry_sample(r->sampler, seeds, BATCH, r->next_batch++, &mb);
    total += bench_now() - t0;
    if (st != FERRY_OK)
      return bench_fail("ferry_sample", st);
    int nb = 0;
    ferry_minibatch_num_blocks(mb, &nb);
    for (int i = 0; i < nb; i++) {
      ferry_block blk = FERRY_BLOCK_INIT;
      if ((st = ferry_minibatch_block(mb, i, &blk)) != FERRY_OK) {
        ferry_minibatch_destroy(mb);
        return bench_fail("ferry_minibatch_block", st);
      }
      edges += blk.num_edges;
      bytes += 8 * (blk.num_dst + 1 + blk.num_edges + blk.num_src);
    }
    ferry_minibatch_destroy(mb);
  }
  r->edges = edges;
  r->bytes = bytes;
  *seconds = total;
  return 0;
}

/* The pool memcpy limit for `bytes`, on buffers of max(bytes, 4 x LLC). */
static double pool_copy_gbps(const bench_config *cfg, const bench_target *t,
                             int threads, uint64_t bytes) {
  uint64_t size = bytes > 4 * cfg->llc_bytes ? bytes : 4 * cfg->llc_bytes;
  char *src = malloc(size), *dst = malloc(size);
  if (src == NULL || dst == NULL) {
    free(src);
    free(dst);
    return NAN;
  }
  memset(src, 1, size);
  memset(dst, 2, size);
  host_copy_team *team = host_copy_team_start(threads, t->info.cpuset);
  double best = NAN;
  if (team != NULL) {
    double s[BENCH_MAX_REPS];
    int reps = cfg->reps < BENCH_MAX_REPS ? cfg->reps : BENCH_MAX_REPS;
    for (int i = 0; i < cfg->warmup; i++)
      host_copy_team_run(team, dst, src, size);
    for (int i = 0; i < reps; i++)
      s[i] = host_copy_team_run(team, dst, src, size);
    best = (double)size / bench_median(s, reps) / 1e9;
    host_copy_team_stop(team);
  }
  free(src);
  free(dst);
  return best;
}

static void progress(void *user, const char *stage, double done) {
  (void)user;
  if (done >= 1.0)
    fprintf(stderr, "ferry-bench sample: R-MAT %s done\n", stage);
}

int bench_sample(const bench_config *cfg, const bench_target *target,
                 bench_results *out) {
  int scales[4] = {cfg->quick ? 16 : 20};
  int nscales = 1;
  const char *env = getenv("FERRY_BENCH_SAMPLE_SCALES");
  if (env != NULL && *env) {
    nscales = 0;
    for (const char *p = env; *p && nscales < 4;) {
      char *end;
      long v = strtol(p, &end, 10);
      if (end == p || v < 10 || v > 26) {
        fprintf(stderr,
                "ferry-bench sample: FERRY_BENCH_SAMPLE_SCALES '%s': scales "
                "are integers in 10..26\n",
                env);
        return -1;
      }
      scales[nscales++] = (int)v;
      p = *end == ',' ? end + 1 : end;
    }
  }
  static const int64_t fan_a[] = {15, 10, 5}, fan_b[] = {25, 10};
  const struct {
    const int64_t *f;
    int n;
    const char *name;
  } fans[] = {{fan_a, 3, "15,10,5"}, {fan_b, 2, "25,10"}};
  int threads = target->info.num_threads > 0 ? target->info.num_threads : 1;
  for (int si = 0; si < nscales; si++) {
    ferry_graph_options go = FERRY_GRAPH_OPTIONS_INIT;
    ferry_rmat_options ro = FERRY_RMAT_OPTIONS_INIT;
    ro.scale = scales[si];
    ro.seed = 1;
    ro.progress = scales[si] >= 22 ? progress : NULL;
    ferry_graph *g = NULL;
    double t0 = bench_now();
    ferry_status st = ferry_graph_create_rmat(target->ctx, &go, &ro, &g);
    if (st == FERRY_ERR_UNSUPPORTED) {
      printf("skip %s sample: %s\n", target->info.backend, ferry_last_error());
      return 0;
    }
    if (st != FERRY_OK)
      return bench_fail("ferry_graph_create_rmat", st);
    fprintf(stderr, "ferry-bench sample: R-MAT scale %d built in %.1f s\n",
            scales[si], bench_now() - t0);
    ferry_graph_info gi = FERRY_GRAPH_INFO_INIT;
    ferry_graph_get_info(g, &gi);
    uint64_t graph_bytes =
        (uint64_t)(gi.num_nodes + 1) * 8u +
        (uint64_t)gi.num_edges * ferry_dtype_size(gi.id_dtype);
    double limit = NAN;
    for (size_t fi = 0; fi < sizeof fans / sizeof fans[0]; fi++)
      for (int replace = 0; replace <= 1; replace++) {
        ferry_sampler_options so = FERRY_SAMPLER_OPTIONS_INIT;
        so.num_layers = fans[fi].n;
        for (int i = 0; i < fans[fi].n; i++)
          so.fanouts[i] = fans[fi].f[i];
        so.replace = replace;
        so.seed = 7;
        ferry_sampler *s = NULL;
        st = ferry_sampler_create(g, &so, &s);
        if (st == FERRY_ERR_UNSUPPORTED) {
          printf("skip %s sample: %s\n", target->info.backend,
                 ferry_last_error());
          ferry_graph_destroy(g);
          return 0;
        }
        if (st != FERRY_OK) {
          ferry_graph_destroy(g);
          return bench_fail("ferry_sampler_create", st);
        }
        sample_rep r = {s, gi.num_nodes, cfg->quick ? 2 : 8, 0, 99, 0, 0, 0};
        double median = 0;
        int rc =
            bench_repeat(cfg->warmup, cfg->reps, sample_rep_fn, &r, &median);
        ferry_sampler_destroy(s);
        if (rc != 0) {
          ferry_graph_destroy(g);
          return -1;
        }
        if (isnan(limit))
          limit = pool_copy_gbps(cfg, target, threads, (uint64_t)r.bytes);
        bench_result *res = bench_results_add(
            out, "sample", target->info.backend, target->info.device.name,
            replace ? "rmat_replace" : "rmat_no_replace");
        if (res == NULL) {
          ferry_graph_destroy(g);
          return -1;
        }
        double eps = (double)r.edges / median;
        bench_param_int(res, "scale", scales[si]);
        bench_param_string(res, "fanouts", fans[fi].name);
        bench_param_int(res, "batch", BATCH);
        bench_param_int(res, "batches", r.batches);
        bench_param_int(res, "threads", threads);
        bench_param_int(res, "edges", r.edges);
        bench_param_int(res, "bytes", r.bytes);
        bench_param_int(res, "edges_per_s_per_thread",
                        (int64_t)(eps / threads));
        bench_param_int(res, "batches_per_s",
                        (int64_t)((double)r.batches / median));
        res->reps = cfg->reps;
        res->median_s = median;
        res->gbps = (double)r.bytes / median / 1e9;
        res->limit_gbps = limit;
        res->ratio = res->gbps / limit;
        res->judged = graph_bytes >= 4 * cfg->llc_bytes;
        snprintf(res->rate_key, sizeof res->rate_key, "edges_per_s");
        res->rate = eps;
      }
    ferry_graph_destroy(g);
  }
  return 0;
}
