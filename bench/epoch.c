/* ferry-bench epoch: one training epoch end to end (issue #8), with the
 * feature table in each placement, so that the paper's claim (zero-copy
 * close to all-in-device and ahead of staged) is measured wherever it runs.
 *
 * Setup: a Graph500 R-MAT graph (symmetrised), a feature table of 128 f32
 * per node (512 B rows, as ogbn-papers100M), a training split of random
 * nodes, and ferry's loader (shuffled batches of 1024, fanouts 15,10,5,
 * depth 2). Per batch, on the caller's compute stream:
 *   - LayerNorm forward on the two hidden activations ([d0, 256], [d1, 256]:
 *     the dst nodes of blocks 0 and 1), real ferry calls;
 *   - a busy period as long as the GraphSAGE forward + backward on the
 *     batch's blocks would take (epoch_model.h: FLOPs of the blocks over a
 *     rate), a host function spinning on the stream;
 *   - LayerNorm backward on both (dgamma/dbeta into the gradients), and an
 *     Adan step over the model's parameters (real calls);
 *   - the batch is released against the compute stream.
 * The epoch's time runs from ferry_loader_start_epoch to the compute
 * stream's last work done.
 *
 * The rate: FERRY_BENCH_EPOCH_GFLOPS when set (e.g. from a PyTorch
 * GraphSAGE step on the GPU); otherwise, on devices that are the host's
 * cores (cpu, PoCL), a plain C GEMM loop measured once at start-up times
 * the context's threads; on a discrete GPU a nominal 20 TFLOP/s (fp32
 * dense GEMM class), printed as such.
 *
 * Records (op "epoch"), one per placement (method zerocopy, staged,
 * device): median_s = the epoch's time, gbps = gathered feature bytes / time;
 * limit = the device placement's rate, so ratio = t_device / t_placement
 * (zero-copy's speed relative to all-in-device). One more record,
 * "zerocopy-vs-staged", has the zero-copy rate against the staged one as
 * its limit: ratio = t_staged / t_zerocopy (> 1: zero-copy ahead). Judged
 * when the table is >= 4x the LLC. */
#include "bench.h"
#include "epoch_model.h"
#include "host_copy.h"
#include "timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EPOCH_COLS 128
#define EPOCH_MAX_PARAMS 16

typedef struct epoch_sizes {
  int scale;       /* R-MAT 2^scale nodes */
  int edge_factor; /* before symmetrising */
  int64_t batch;
  int64_t batches; /* per epoch */
  int warm_batches;
  int epochs; /* timed; median taken */
} epoch_sizes;

typedef struct epoch_stats {
  double seconds;
  double busy_s;  /* the model's busy periods, summed */
  double wait_s;  /* the host waiting in ferry_loader_next */
  double flops;   /* of the model, summed */
  int64_t steps;  /* batches trained */
  int64_t inputs; /* input nodes (rows gathered) */
  int64_t edges;  /* block edges */
} epoch_stats;

typedef struct epoch_run {
  const bench_target *t;
  ferry_stream *compute;
  ferry_loader *loader;
  double flops_per_s;
  double *busy; /* seconds, one per step of an epoch (read by host fns) */
  int64_t busy_cap;
  /* hidden activations: two regions of cap0 and cap1 rows each */
  ferry_buffer *x, *y, *dx, *mean, *rstd;
  int64_t cap0, cap1;
  /* model parameters and gradients, flat */
  ferry_buffer *params, *grads;
  ferry_tensor ptens[EPOCH_MAX_PARAMS], gtens[EPOCH_MAX_PARAMS];
  int nparams;
  int ln_index[2]; /* of each hidden LayerNorm's gamma (beta follows) */
  ferry_adan *adan;
  /* The first batch's blocks are printed once (the shapes
   * bench/peers/epoch_graphsage.py takes). */
  int have_first;
} epoch_run;

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Sizes for this run. --scale: the largest graph (up to 2^27 nodes, a
 * papers100M-sized table of 64 GiB) whose table and generation fit in half
 * of the host's memory (~1 KiB per node all told), 1% of the nodes as the
 * training split (papers100M's is 1.1%). */
static epoch_sizes pick_sizes(const bench_config *cfg) {
  epoch_sizes s;
  if (cfg->quick) {
    s = (epoch_sizes){15, 8, 512, 3, 1, 1};
  } else if (cfg->scale) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t mem = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page
                                         : (UINT64_C(16) << 30);
    int scale = 27;
    while (scale > 20 && (UINT64_C(1) << scale) * 1024 > mem / 2)
      scale--;
    int64_t batches = ((INT64_C(1) << scale) / 100) / 1024;
    s = (epoch_sizes){scale, 8, 1024, batches < 64 ? 64 : batches, 8, 3};
  } else {
    s = (epoch_sizes){19, 8, 1024, 4, 1, 1};
  }
  return s;
}

/* The model's rate in FLOP/s, and where it came from. */
static double pick_rate(const bench_target *t, char *source, size_t size) {
  const char *env = getenv("FERRY_BENCH_EPOCH_GFLOPS");
  if (env != NULL && env[0] != '\0') {
    char *end;
    double g = strtod(env, &end);
    if (*end == '\0' && g > 0) {
      snprintf(source, size, "env");
      return g * 1e9;
    }
    printf("# epoch: ignoring FERRY_BENCH_EPOCH_GFLOPS='%s' (want a positive "
           "number)\n",
           env);
  }
  int host =
      strcmp(t->info.backend, "cpu") == 0 || t->info.device.host_unified_memory;
  if (!host) {
    snprintf(source, size, "nominal");
    printf("# epoch: model rate: a nominal 20000 GFLOP/s for a discrete GPU "
           "(set FERRY_BENCH_EPOCH_GFLOPS to a measured one)\n");
    return 20e12;
  }
  static double one_thread = 0; /* measured once per process */
  if (one_thread == 0)
    one_thread = epoch_model_measure_flops(0.25);
  /* Backends without a pool of their own (PoCL) run on the cpuset's
   * cores. */
  int threads = t->info.num_threads > 0 ? t->info.num_threads
                                        : host_copy_cpu_count(t->info.cpuset);
  if (threads < 1)
    threads = 1;
  snprintf(source, size, "host-gemm");
  printf("# epoch: model rate: plain C GEMM loop %.2f GFLOP/s (1 thread) x "
         "%d threads = %.2f GFLOP/s\n",
         one_thread / 1e9, threads, one_thread * threads / 1e9);
  return one_thread * threads;
}

/* Random f32 rows written into the table in slices. */
static ferry_status fill_table(ferry_table *table, uint64_t rows) {
  const uint64_t slice = 16384;
  float *buf = malloc(slice * EPOCH_COLS * sizeof *buf);
  if (buf == NULL)
    return FERRY_ERR_OUT_OF_MEMORY;
  uint64_t rng = 99;
  ferry_status st = FERRY_OK;
  for (uint64_t r = 0; r < rows && st == FERRY_OK; r += slice) {
    uint64_t n = rows - r < slice ? rows - r : slice;
    for (uint64_t i = 0; i < n * EPOCH_COLS; i++)
      buf[i] = (float)(splitmix(&rng) >> 40) / (float)(1u << 24) - 0.5f;
    st = ferry_table_write(table, r, n, buf);
  }
  free(buf);
  return st;
}

/* Host data into a new device buffer (small random values). */
static ferry_status random_buffer(ferry_context *ctx, ferry_stream *s,
                                  uint64_t count, float scale, uint64_t seed,
                                  ferry_buffer **out) {
  float *h = malloc(count * sizeof *h);
  if (h == NULL)
    return FERRY_ERR_OUT_OF_MEMORY;
  for (uint64_t i = 0; i < count; i++)
    h[i] = scale * ((float)(splitmix(&seed) >> 40) / (float)(1u << 24) - 0.5f);
  ferry_status st =
      ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, count * 4, out);
  if (st == FERRY_OK)
    st = ferry_buffer_write_async(s, *out, 0, h, count * 4);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(s);
  free(h);
  return st;
}

/* The model's state: activations, parameters, gradients and the optimizer. */
static ferry_status model_setup(epoch_run *r, int64_t cap0, int64_t cap1) {
  ferry_context *ctx = r->t->ctx;
  const int64_t h = EPOCH_MODEL_HIDDEN;
  r->cap0 = cap0;
  r->cap1 = cap1;
  uint64_t rows = (uint64_t)(cap0 + cap1);
  ferry_status st =
      random_buffer(ctx, r->compute, rows * (uint64_t)h, 2.0f, 1, &r->x);
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, rows * h * 4, &r->y);
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, rows * h * 4, &r->dx);
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, rows * 4, &r->mean);
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, rows * 4, &r->rstd);
  if (st != FERRY_OK)
    return st;

  int64_t shapes[EPOCH_MAX_PARAMS][2], total = 0;
  r->nparams = epoch_model_params(EPOCH_COLS, shapes, EPOCH_MAX_PARAMS, &total);
  if ((st = random_buffer(ctx, r->compute, (uint64_t)total, 0.1f, 2,
                          &r->params)) != FERRY_OK ||
      (st = random_buffer(ctx, r->compute, (uint64_t)total, 0.01f, 3,
                          &r->grads)) != FERRY_OK)
    return st;
  uint64_t off = 0;
  int ln = 0;
  for (int i = 0; i < r->nparams && st == FERRY_OK; i++) {
    int32_t nd = shapes[i][1] > 0 ? 2 : 1;
    int64_t n = nd == 2 ? shapes[i][0] * shapes[i][1] : shapes[i][0];
    st = ferry_tensor_make(r->params, off, FERRY_DTYPE_F32, nd, shapes[i],
                           &r->ptens[i]);
    if (st == FERRY_OK)
      st = ferry_tensor_make(r->grads, off, FERRY_DTYPE_F32, nd, shapes[i],
                             &r->gtens[i]);
    /* LayerNorm's gamma follows a hidden layer's bias (see the model). */
    if (i % 5 == 3 && ln < 2)
      r->ln_index[ln++] = i;
    off += (uint64_t)n * 4;
  }
  if (st != FERRY_OK)
    return st;
  if ((st = ferry_adan_create(ctx, NULL, &r->adan)) != FERRY_OK)
    return st;
  int group = 0;
  return ferry_adan_add_group(r->adan, NULL, r->ptens, (size_t)r->nparams,
                              &group);
}

static void model_teardown(epoch_run *r) {
  ferry_adan_destroy(r->adan);
  ferry_buffer_destroy(r->x);
  ferry_buffer_destroy(r->y);
  ferry_buffer_destroy(r->dx);
  ferry_buffer_destroy(r->mean);
  ferry_buffer_destroy(r->rstd);
  ferry_buffer_destroy(r->params);
  ferry_buffer_destroy(r->grads);
}

/* LayerNorm forward (backward) of hidden layer `layer` on `rows` rows. */
static ferry_status layernorm(epoch_run *r, int layer, int64_t rows,
                              int backward) {
  if (rows <= 0)
    return FERRY_OK;
  const int64_t h = EPOCH_MODEL_HIDDEN;
  uint64_t first = layer == 0 ? 0 : (uint64_t)r->cap0;
  int64_t shape[2] = {rows, h};
  ferry_tensor x, y, dx, mean, rstd;
  ferry_status st =
      ferry_tensor_make(r->x, first * h * 4, FERRY_DTYPE_F32, 2, shape, &x);
  if (st == FERRY_OK)
    st = ferry_tensor_make(r->y, first * h * 4, FERRY_DTYPE_F32, 2, shape, &y);
  if (st == FERRY_OK)
    st =
        ferry_tensor_make(r->dx, first * h * 4, FERRY_DTYPE_F32, 2, shape, &dx);
  if (st == FERRY_OK)
    st =
        ferry_tensor_make(r->mean, first * 4, FERRY_DTYPE_F32, 1, shape, &mean);
  if (st == FERRY_OK)
    st =
        ferry_tensor_make(r->rstd, first * 4, FERRY_DTYPE_F32, 1, shape, &rstd);
  if (st != FERRY_OK)
    return st;
  int g = r->ln_index[layer];
  if (!backward)
    return ferry_norm_forward(r->compute, NULL, &x, &r->ptens[g],
                              &r->ptens[g + 1], &y, &mean, &rstd);
  /* dy: the forward's output stands in for the gradient arriving. */
  return ferry_norm_backward(r->compute, NULL, &y, &x, &r->ptens[g], &mean,
                             &rstd, &dx, &r->gtens[g], &r->gtens[g + 1]);
}

/* One training step on batch `b` (all enqueued on the compute stream). */
static ferry_status train_step(epoch_run *r, ferry_batch *b, int64_t step,
                               epoch_stats *stats) {
  ferry_batch_info bi = FERRY_BATCH_INFO_INIT;
  ferry_status st = ferry_batch_get_info(b, &bi);
  int nb = 0;
  if (st == FERRY_OK)
    st = ferry_minibatch_num_blocks(bi.minibatch, &nb);
  if (st != FERRY_OK)
    return st;
  epoch_block_shape shapes[EPOCH_MODEL_LAYERS];
  memset(shapes, 0, sizeof shapes);
  for (int i = 0; i < nb && i < EPOCH_MODEL_LAYERS; i++) {
    ferry_block blk = FERRY_BLOCK_INIT;
    if ((st = ferry_minibatch_block(bi.minibatch, i, &blk)) != FERRY_OK)
      return st;
    shapes[i] = (epoch_block_shape){blk.num_dst, blk.num_src, blk.num_edges};
    stats->edges += blk.num_edges;
  }
  double flops = epoch_model_flops(shapes, EPOCH_MODEL_LAYERS, EPOCH_COLS);
  if (!r->have_first) {
    r->have_first = 1;
    printf("# epoch: first batch: blocks (dst, src, edges) = (%lld, %lld, "
           "%lld), (%lld, %lld, %lld), (%lld, %lld, %lld): model %.2f GFLOP, "
           "%.1f ms\n",
           (long long)shapes[0].num_dst, (long long)shapes[0].num_src,
           (long long)shapes[0].num_edges, (long long)shapes[1].num_dst,
           (long long)shapes[1].num_src, (long long)shapes[1].num_edges,
           (long long)shapes[2].num_dst, (long long)shapes[2].num_src,
           (long long)shapes[2].num_edges, flops / 1e9,
           flops / r->flops_per_s * 1e3);
  }
  r->busy[step] = flops / r->flops_per_s;
  stats->flops += flops;
  stats->busy_s += r->busy[step];
  stats->inputs += bi.num_input_nodes;
  int64_t d0 = shapes[0].num_dst < r->cap0 ? shapes[0].num_dst : r->cap0;
  int64_t d1 = shapes[1].num_dst < r->cap1 ? shapes[1].num_dst : r->cap1;
  if ((st = layernorm(r, 0, d0, 0)) != FERRY_OK ||
      (st = layernorm(r, 1, d1, 0)) != FERRY_OK ||
      (st = ferry_stream_enqueue_host_fn(r->compute, epoch_model_busy,
                                         &r->busy[step])) != FERRY_OK ||
      (st = layernorm(r, 1, d1, 1)) != FERRY_OK ||
      (st = layernorm(r, 0, d0, 1)) != FERRY_OK)
    return st;
  return ferry_adan_step(r->adan, r->ptens, r->gtens, (size_t)r->nparams,
                         r->compute);
}

/* Epoch `epoch`, at most max_steps batches (the rest is cancelled). */
static int run_epoch(epoch_run *r, uint64_t epoch, int64_t max_steps,
                     epoch_stats *stats) {
  memset(stats, 0, sizeof *stats);
  double t0 = bench_now();
  ferry_status st = ferry_loader_start_epoch(r->loader, epoch);
  if (st != FERRY_OK)
    return bench_fail("ferry_loader_start_epoch", st);
  for (int64_t step = 0; step < max_steps && step < r->busy_cap; step++) {
    ferry_batch *b = NULL;
    int done = 0;
    double w0 = bench_now();
    st = ferry_loader_next(r->loader, r->compute, &b, &done);
    stats->wait_s += bench_now() - w0;
    if (st != FERRY_OK)
      return bench_fail("ferry_loader_next", st);
    if (done)
      break;
    st = train_step(r, b, step, stats);
    ferry_status rs = ferry_loader_release(r->loader, b, r->compute);
    if (st != FERRY_OK)
      return bench_fail("epoch training step", st);
    if (rs != FERRY_OK)
      return bench_fail("ferry_loader_release", rs);
    stats->steps++;
  }
  if ((st = ferry_stream_synchronize(r->compute)) != FERRY_OK)
    return bench_fail("epoch compute stream", st);
  stats->seconds = bench_now() - t0;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static const char *path_name(ferry_gather_path p) {
  switch (p) {
  case FERRY_GATHER_PATH_HOST:
    return "host";
  case FERRY_GATHER_PATH_ZEROCOPY:
    return "zerocopy";
  case FERRY_GATHER_PATH_DEVICE:
    return "device";
  case FERRY_GATHER_PATH_STAGED:
    return "staged";
  }
  return "unknown";
}

typedef struct placement {
  const char *name;
  ferry_table_placement placement;
} placement;

static const placement placements[] = {{"zerocopy", FERRY_PLACEMENT_ZEROCOPY},
                                       {"staged", FERRY_PLACEMENT_STAGED},
                                       {"device", FERRY_PLACEMENT_DEVICE}};
#define NUM_PLACEMENTS 3

/* One placement: a table, a loader, a warm-up then the timed epochs. The
 * record is appended to `out`; NULL in *rec when the placement is
 * unavailable (printed). */
static int run_placement(epoch_run *r, const bench_config *cfg,
                         const epoch_sizes *sz, ferry_graph *graph,
                         ferry_sampler *sampler, const int64_t *seeds,
                         int64_t num_seeds, const placement *pl,
                         const char *rate_source, bench_results *out,
                         bench_result **rec) {
  *rec = NULL;
  ferry_graph_info gi = FERRY_GRAPH_INFO_INIT;
  ferry_status st = ferry_graph_get_info(graph, &gi);
  if (st != FERRY_OK)
    return bench_fail("ferry_graph_get_info", st);
  uint64_t rows = (uint64_t)gi.num_nodes;
  ferry_table_options to = FERRY_TABLE_OPTIONS_INIT;
  to.placement = pl->placement;
  ferry_table *table = NULL;
  st = ferry_table_create(r->t->ctx, rows, EPOCH_COLS, FERRY_DTYPE_F32, &to,
                          &table);
  if (st != FERRY_OK) {
    printf("skip epoch %s: %s\n", pl->name, ferry_last_error());
    return 0;
  }
  ferry_table_info ti = FERRY_TABLE_INFO_INIT;
  if ((st = fill_table(table, rows)) != FERRY_OK ||
      (st = ferry_table_get_info(table, &ti)) != FERRY_OK) {
    ferry_table_destroy(table);
    return bench_fail("epoch table", st);
  }
  ferry_loader_options lo = FERRY_LOADER_OPTIONS_INIT;
  lo.batch_size = sz->batch;
  lo.order = FERRY_LOADER_ORDER_SHUFFLE;
  lo.seed = 1;
  lo.depth = 2;
  st = ferry_loader_create(graph, table, sampler, seeds, num_seeds, &lo,
                           &r->loader);
  if (st != FERRY_OK) {
    ferry_table_destroy(table);
    return bench_fail("ferry_loader_create", st);
  }
  int rc = 0;
  epoch_stats warm, stats[BENCH_MAX_REPS];
  double times[BENCH_MAX_REPS];
  int epochs = sz->epochs < BENCH_MAX_REPS ? sz->epochs : BENCH_MAX_REPS;
  /* Epoch 0 is the warm-up (kernel builds, first touches), cut short; the
   * timed epochs 1.. are the same on every placement. */
  rc = run_epoch(r, 0, sz->warm_batches, &warm);
  if (rc != 0) {
    /* A placement the loader cannot run here (the error was printed) is
     * skipped; the others still run. Later failures fail the benchmark. */
    printf("skip epoch %s: its first batches failed (see above)\n", pl->name);
    ferry_loader_destroy(r->loader);
    r->loader = NULL;
    ferry_table_destroy(table);
    ferry_stream_synchronize(r->compute); /* drop its deferred errors */
    return 0;
  }
  for (int e = 0; e < epochs && rc == 0; e++) {
    rc = run_epoch(r, (uint64_t)e + 1, INT64_MAX, &stats[e]);
    times[e] = stats[e].seconds;
  }
  ferry_loader_destroy(r->loader);
  r->loader = NULL;
  ferry_table_destroy(table);
  if (rc != 0)
    return rc;

  /* The median epoch (for an even count, the lower middle one, so that
   * its own statistics go with it). */
  double sorted[BENCH_MAX_REPS];
  memcpy(sorted, times, (size_t)epochs * sizeof *times);
  qsort(sorted, (size_t)epochs, sizeof *sorted, cmp_double);
  double med = sorted[(epochs - 1) / 2];
  const epoch_stats *m = &stats[0];
  for (int e = 0; e < epochs; e++)
    if (times[e] == med)
      m = &stats[e];

  bench_result *res = bench_results_add(out, "epoch", r->t->info.backend,
                                        r->t->info.device.name, pl->name);
  if (res == NULL)
    return -1;
  uint64_t row_bytes = EPOCH_COLS * 4;
  int64_t bytes = m->inputs * (int64_t)row_bytes;
  bench_param_int(res, "bytes", bytes);
  bench_param_int(res, "table_bytes", (int64_t)(rows * row_bytes));
  bench_param_int(res, "threads", r->t->info.num_threads);
  bench_param_int(res, "scale", sz->scale);
  bench_param_int(res, "batch", sz->batch);
  bench_param_int(res, "batches", m->steps);
  bench_param_int(res, "edges", m->edges);
  bench_param_int(res, "model_ms", (int64_t)llround(m->busy_s * 1e3));
  bench_param_int(res, "wait_ms", (int64_t)llround(m->wait_s * 1e3));
  bench_param_int(res, "gflops", (int64_t)llround(r->flops_per_s / 1e9));
  bench_param_string(res, "rate_src", rate_source);
  bench_param_string(res, "path", path_name(ti.path));
  res->reps = epochs;
  res->median_s = med;
  res->gbps = (double)bytes / med / 1e9;
  res->rate = (double)m->steps / med;
  snprintf(res->rate_key, sizeof res->rate_key, "batches_per_s");
  res->judged = rows * row_bytes >= 4 * cfg->llc_bytes;
  *rec = res;
  return 0;
}

static void set_limit(bench_result *r, const bench_result *limit) {
  if (r == NULL || limit == NULL || !(limit->gbps > 0))
    return;
  r->limit_gbps = limit->gbps;
  r->ratio = r->gbps / limit->gbps;
}

int bench_epoch(const bench_config *cfg, const bench_target *target,
                bench_results *out) {
  epoch_sizes sz = pick_sizes(cfg);
  epoch_run r;
  memset(&r, 0, sizeof r);
  r.t = target;
  char rate_source[16];
  r.flops_per_s = pick_rate(target, rate_source, sizeof rate_source);
  if (!(r.flops_per_s > 0)) {
    fprintf(stderr, "ferry-bench: epoch: measuring the model rate failed\n");
    return -1;
  }

  ferry_graph_options go = FERRY_GRAPH_OPTIONS_INIT;
  go.symmetrize = 1;
  go.remove_self_loops = 1;
  go.remove_duplicates = 1;
  ferry_rmat_options ro = FERRY_RMAT_OPTIONS_INIT;
  ro.scale = sz.scale;
  ro.edge_factor = sz.edge_factor;
  ro.seed = 42;
  ferry_graph *graph = NULL;
  double t0 = bench_now();
  ferry_status st = ferry_graph_create_rmat(target->ctx, &go, &ro, &graph);
  if (st != FERRY_OK)
    return bench_fail("ferry_graph_create_rmat", st);
  ferry_graph_info gi = FERRY_GRAPH_INFO_INIT;
  ferry_graph_get_info(graph, &gi);

  ferry_sampler_options so = FERRY_SAMPLER_OPTIONS_INIT;
  so.num_layers = 3;
  so.fanouts[0] = 15;
  so.fanouts[1] = 10;
  so.fanouts[2] = 5;
  so.seed = 7;
  ferry_sampler *sampler = NULL;
  int rc = 0;
  if ((st = ferry_sampler_create(graph, &so, &sampler)) != FERRY_OK) {
    ferry_graph_destroy(graph);
    return bench_fail("ferry_sampler_create", st);
  }

  /* The training split: distinct random nodes (a partial shuffle). */
  int64_t n = gi.num_nodes;
  int64_t num_seeds = sz.batch * sz.batches < n ? sz.batch * sz.batches : n;
  int64_t *perm = malloc((size_t)n * sizeof *perm);
  if (perm == NULL) {
    ferry_sampler_destroy(sampler);
    ferry_graph_destroy(graph);
    fprintf(stderr, "ferry-bench: epoch: out of memory\n");
    return -1;
  }
  uint64_t rng = 5;
  for (int64_t i = 0; i < n; i++)
    perm[i] = i;
  for (int64_t i = 0; i < num_seeds; i++) {
    int64_t j = i + (int64_t)(splitmix(&rng) % (uint64_t)(n - i));
    int64_t tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
  printf("# epoch: R-MAT scale %d: %lld nodes, %lld edges (%.1f s); %lld "
         "batches of %lld, fanouts 15,10,5; table %lld x %d f32\n",
         sz.scale, (long long)n, (long long)gi.num_edges, bench_now() - t0,
         (long long)((num_seeds + sz.batch - 1) / sz.batch),
         (long long)sz.batch, (long long)n, EPOCH_COLS);

  /* Hidden activations: block 0's dst nodes are at most the batch's
   * 2-hop frontier, block 1's its 1-hop one. */
  int64_t cap1 = sz.batch * (1 + 5), cap0 = cap1 * (1 + 10);
  cap1 = cap1 < n ? cap1 : n;
  cap0 = cap0 < n ? cap0 : n;
  r.busy_cap = (num_seeds + sz.batch - 1) / sz.batch;
  r.busy = calloc((size_t)r.busy_cap, sizeof *r.busy);
  if (r.busy == NULL)
    rc = bench_fail("epoch", FERRY_ERR_OUT_OF_MEMORY);
  if (rc == 0 &&
      (st = ferry_stream_create(target->ctx, &r.compute)) != FERRY_OK)
    rc = bench_fail("ferry_stream_create", st);
  if (rc == 0 && (st = model_setup(&r, cap0, cap1)) != FERRY_OK)
    rc = bench_fail("epoch model setup", st);

  bench_result *rec[NUM_PLACEMENTS] = {NULL, NULL, NULL};
  size_t index[NUM_PLACEMENTS] = {0, 0, 0};
  for (int p = 0; p < NUM_PLACEMENTS && rc == 0; p++) {
    rc = run_placement(&r, cfg, &sz, graph, sampler, perm, num_seeds,
                       &placements[p], rate_source, out, &rec[p]);
    /* The list may move as it grows: keep indices, not pointers. */
    if (rec[p] != NULL)
      index[p] = (size_t)(rec[p] - out->items);
  }
  if (rc == 0) {
    for (int p = 0; p < NUM_PLACEMENTS; p++)
      rec[p] = rec[p] != NULL ? &out->items[index[p]] : NULL;
    bench_result *zc = rec[0], *staged = rec[1], *dev = rec[2];
    for (int p = 0; p < NUM_PLACEMENTS; p++)
      set_limit(rec[p], dev);
    if (zc != NULL && staged != NULL) {
      bench_result copy = *zc;
      bench_result *vs =
          bench_results_add(out, "epoch", target->info.backend,
                            target->info.device.name, "zerocopy-vs-staged");
      if (vs != NULL) {
        staged = &out->items[index[1]];
        memcpy(vs->params, copy.params, sizeof copy.params);
        vs->nparams = copy.nparams;
        vs->reps = copy.reps;
        vs->median_s = copy.median_s;
        vs->gbps = copy.gbps;
        vs->rate = copy.rate;
        snprintf(vs->rate_key, sizeof vs->rate_key, "%s", copy.rate_key);
        vs->judged = copy.judged;
        set_limit(vs, staged);
      }
    }
  }

  free(r.busy);
  free(perm);
  model_teardown(&r);
  ferry_stream_destroy(r.compute);
  ferry_sampler_destroy(sampler);
  ferry_graph_destroy(graph);
  return rc;
}
