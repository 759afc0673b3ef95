/* ferry-bench gather: every gather method the backend has, judged against a
 * limit measured in the same run on the same bytes (BRIEF §7).
 *
 *   host             cpu: the pool gathers rows (every placement is this)
 *   zerocopy-aligned device threads read pinned host rows, 128 B aligned
 *   zerocopy-naive   the same, element per lane from the row's start
 *   device           the table in device memory (all-in-GPU baseline)
 *   staged           host gather into pinned staging + async copies
 *
 * Counted bytes: the rows' payload, n x row bytes (each read once and
 * written once). Limits: on cpu (and on a device sharing host memory)
 * memcpy of the same payload by as many threads as the context's pool,
 * bound to its cpuset, from a buffer >= 4x LLC. On a GPU two limits, both
 * recorded: (a) "limit_h2d", an async pinned host -> device copy of the
 * payload (DMA engines); (b) "limit_sm_read", the aligned gather kernel
 * reading the same rows in order (ids 0..n-1: contiguous 16 B reads of the
 * mapped table over a full grid). GPU gathers are judged against (b).
 * Tables are >= 4x the LLC; ids are uniform random (repeats allowed). */
#include "bench.h"
#include "host_copy.h"
#include "timing.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct shape {
  uint64_t cols;
  ferry_dtype dtype;
} shape;

/* 64 B .. 4 KB rows, with ogbn-products (100 f32 = 400 B) and papers100M
 * (128 f32 = 512 B) and their f16 halves. */
static const shape full_shapes[] = {
    {16, FERRY_DTYPE_F32},  {64, FERRY_DTYPE_F32},  {100, FERRY_DTYPE_F32},
    {128, FERRY_DTYPE_F32}, {100, FERRY_DTYPE_F16}, {128, FERRY_DTYPE_F16},
    {256, FERRY_DTYPE_F32}, {1024, FERRY_DTYPE_F32}};
static const shape quick_shapes[] = {{128, FERRY_DTYPE_F32},
                                     {100, FERRY_DTYPE_F16}};
static const uint64_t full_batches[] = {1000, 100000, 1000000};
static const uint64_t quick_batches[] = {100000};
/* Payload cap per measurement: out buffers stay modest on any host. */
#define MAX_PAYLOAD (UINT64_C(512) << 20)

typedef struct grun {
  const bench_config *cfg;
  const bench_target *t;
  ferry_stream *stream;
  ferry_table *table;
  ferry_tensor ids, out;
  uint64_t n;
  ferry_gather_options opts;
  int threads; /* host threads of the limit (and of host gathers) */
  /* limits */
  host_copy_team *team;
  void *src, *dst;
  uint64_t bytes;
  ferry_buffer *pin, *dev;
} grun;

static int gather_rep(void *arg, int rep, double *seconds) {
  (void)rep;
  grun *g = arg;
  double t0 = bench_now();
  ferry_status st =
      ferry_gather(g->table, &g->ids, g->n, &g->out, g->stream, &g->opts);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(g->stream);
  if (st != FERRY_OK)
    return bench_fail("ferry_gather", st);
  *seconds = bench_now() - t0;
  return 0;
}

static int host_copy_rep(void *arg, int rep, double *seconds) {
  (void)rep;
  grun *g = arg;
  *seconds = host_copy_team_run(g->team, g->dst, g->src, (size_t)g->bytes);
  return 0;
}

static int h2d_rep(void *arg, int rep, double *seconds) {
  (void)rep;
  grun *g = arg;
  double t0 = bench_now();
  ferry_status st =
      ferry_buffer_copy_async(g->stream, g->dev, 0, g->pin, 0, g->bytes);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(g->stream);
  if (st != FERRY_OK)
    return bench_fail("ferry_buffer_copy_async", st);
  *seconds = bench_now() - t0;
  return 0;
}

static bench_result *record(bench_results *out, const grun *g,
                            const char *method, const shape *s, uint64_t rows,
                            double median) {
  bench_result *r = bench_results_add(out, "gather", g->t->info.backend,
                                      g->t->info.device.name, method);
  if (r == NULL)
    return NULL;
  uint64_t row_bytes = s->cols * ferry_dtype_size(s->dtype);
  bench_param_int(r, "bytes", (int64_t)(g->n * row_bytes));
  bench_param_int(r, "row_bytes", (int64_t)row_bytes);
  bench_param_string(r, "dtype", ferry_dtype_name(s->dtype));
  bench_param_int(r, "n", (int64_t)g->n);
  bench_param_int(r, "table_rows", (int64_t)rows);
  bench_param_int(r, "table_bytes", (int64_t)(rows * row_bytes));
  bench_param_int(r, "threads", g->threads);
  r->reps = g->cfg->reps;
  r->median_s = median;
  r->gbps = (double)(g->n * row_bytes) / median / 1e9;
  r->judged = rows * row_bytes >= 4 * g->cfg->llc_bytes &&
              g->n * row_bytes >= 4 * g->cfg->llc_bytes;
  return r;
}

static void judge(bench_result *r, double limit) {
  if (r == NULL || !(limit > 0))
    return;
  r->limit_gbps = limit;
  r->ratio = r->gbps / limit;
}

typedef struct method {
  const char *name;
  ferry_table_placement placement;
  ferry_gather_method kernel;
} method;

int bench_gather(const bench_config *cfg, const bench_target *target,
                 bench_results *out) {
  const bool cpu = strcmp(target->info.backend, "cpu") == 0;
  const bool host_side = cpu || target->info.device.host_unified_memory;
  const method cpu_methods[] = {
      {"host", FERRY_PLACEMENT_ZEROCOPY, FERRY_GATHER_METHOD_DEFAULT}};
  const method dev_methods[] = {
      {"zerocopy-aligned", FERRY_PLACEMENT_ZEROCOPY,
       FERRY_GATHER_METHOD_ALIGNED},
      {"zerocopy-naive", FERRY_PLACEMENT_ZEROCOPY, FERRY_GATHER_METHOD_NAIVE},
      {"device", FERRY_PLACEMENT_DEVICE, FERRY_GATHER_METHOD_ALIGNED},
      {"staged", FERRY_PLACEMENT_STAGED, FERRY_GATHER_METHOD_DEFAULT}};
  const method *methods = cpu ? cpu_methods : dev_methods;
  size_t num_methods = cpu ? 1 : 4;
  const shape *shapes = cfg->quick ? quick_shapes : full_shapes;
  size_t num_shapes = cfg->quick ? 2 : sizeof full_shapes / sizeof *shapes;
  const uint64_t *batches = cfg->quick ? quick_batches : full_batches;
  size_t num_batches = cfg->quick ? 1 : 3;
  uint64_t table_bytes = 4 * cfg->llc_bytes;
  if (table_bytes < (UINT64_C(64) << 20))
    table_bytes = UINT64_C(64) << 20;

  grun g;
  memset(&g, 0, sizeof g);
  g.cfg = cfg;
  g.t = target;
  ferry_status st = ferry_stream_create(target->ctx, &g.stream);
  if (st != FERRY_OK)
    return bench_fail("ferry_stream_create", st);
  /* The limit's threads: the cpu pool's, or on a device sharing host
   * memory (PoCL) the cores of its cpuset, which its kernels run on. */
  int pool = target->info.num_threads;
  if (pool <= 0)
    pool = host_copy_cpu_count(target->info.cpuset);
  if (pool <= 0)
    pool = 1;
  g.threads = pool;
  int rc = 0;
  uint64_t rng = 0x1234;
  for (size_t si = 0; si < num_shapes && rc == 0; si++) {
    const shape *s = &shapes[si];
    uint64_t row_bytes = s->cols * ferry_dtype_size(s->dtype);
    /* Rounded up: the table is never under 4x LLC (400 B rows). */
    uint64_t rows = (table_bytes + row_bytes - 1) / row_bytes;
    void *host = NULL;
    if (posix_memalign(&host, 4096, (size_t)(rows * row_bytes)) != 0) {
      printf("skip gather: no memory for a %llu-byte table\n",
             (unsigned long long)(rows * row_bytes));
      break;
    }
    /* Huge pages where the kernel offers them (as ferry_table_create's
     * memory gets): random rows then miss the TLB far less. */
    madvise(host, (size_t)(rows * row_bytes), MADV_HUGEPAGE);
    /* Any bits: the benchmark moves rows, it does not read them. */
    memset(host, 0x3c, (size_t)(rows * row_bytes));
    for (size_t bi = 0; bi < num_batches && rc == 0; bi++) {
      g.n = batches[bi];
      g.bytes = g.n * row_bytes;
      if (g.bytes > MAX_PAYLOAD) {
        printf("skip gather %llu B rows x %llu ids: payload over %llu MB\n",
               (unsigned long long)row_bytes, (unsigned long long)g.n,
               (unsigned long long)(MAX_PAYLOAD >> 20));
        continue;
      }
      /* ids: random, and 0..n-1 for the in-order limit. */
      int64_t *ids = malloc(g.n * 8), *seq = malloc(g.n * 8);
      for (uint64_t i = 0; i < g.n; i++) {
        uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        ids[i] = (int64_t)((z ^ (z >> 31)) % rows);
        seq[i] = (int64_t)(i % rows);
      }
      ferry_buffer *ib = NULL, *sb = NULL, *ob = NULL;
      /* Device kernels read ferry buffers in device or pinned memory only
       * (PoCL too: its host-unified memory still needs a cl_mem). */
      ferry_memory_space ispace =
          cpu ? FERRY_MEMORY_HOST : FERRY_MEMORY_PINNED_HOST;
      int64_t ishape[1] = {(int64_t)g.n};
      int64_t oshape[2] = {(int64_t)g.n, (int64_t)s->cols};
      ferry_tensor seq_t;
      st = ferry_buffer_create(target->ctx, ispace, g.n * 8, &ib);
      if (st == FERRY_OK)
        st = ferry_buffer_create(target->ctx, ispace, g.n * 8, &sb);
      if (st == FERRY_OK)
        st =
            ferry_buffer_create(target->ctx, FERRY_MEMORY_DEVICE, g.bytes, &ob);
      if (st == FERRY_OK)
        st = ferry_buffer_write_async(g.stream, ib, 0, ids, g.n * 8);
      if (st == FERRY_OK)
        st = ferry_buffer_write_async(g.stream, sb, 0, seq, g.n * 8);
      if (st == FERRY_OK)
        st = ferry_stream_synchronize(g.stream);
      if (st == FERRY_OK)
        st = ferry_tensor_make(ib, 0, FERRY_DTYPE_I64, 1, ishape, &g.ids);
      if (st == FERRY_OK)
        st = ferry_tensor_make(sb, 0, FERRY_DTYPE_I64, 1, ishape, &seq_t);
      if (st == FERRY_OK)
        st = ferry_tensor_make(ob, 0, s->dtype, 2, oshape, &g.out);
      if (st != FERRY_OK)
        rc = bench_fail("gather buffers", st);

      /* The limits, measured now, between the gathers they judge. */
      double limit = NAN;
      if (rc == 0 && host_side) {
        /* The payload may exceed the table: copy from a buffer of its own
         * then (both are >= 4x LLC or the record is not judged). */
        void *own = NULL;
        if (g.bytes > rows * row_bytes) {
          own = malloc((size_t)g.bytes);
          if (own != NULL)
            memset(own, 0x3c, (size_t)g.bytes);
        }
        g.src = own != NULL ? own : host;
        g.dst = malloc((size_t)g.bytes);
        if (g.dst != NULL)
          memset(g.dst, 0, (size_t)g.bytes); /* first-touch outside timing */
        if (g.bytes > rows * row_bytes && own == NULL) {
          free(g.dst);
          g.dst = NULL;
        }
        g.team = host_copy_team_start(pool, target->info.cpuset);
        double med = 0;
        if (g.team != NULL && g.dst != NULL &&
            bench_repeat(cfg->warmup, cfg->reps, host_copy_rep, &g, &med) ==
                0) {
          limit = (double)g.bytes / med / 1e9;
          bench_result *r = record(out, &g, "limit_pool_copy", s, rows, med);
          if (r != NULL)
            r->judged = 0;
        }
        host_copy_team_stop(g.team);
        g.team = NULL;
        free(g.dst);
        g.dst = NULL;
        free(own);
      }
      for (size_t mi = 0; mi < num_methods && rc == 0; mi++) {
        ferry_table_options to = FERRY_TABLE_OPTIONS_INIT;
        to.placement = methods[mi].placement;
        st = ferry_table_wrap_host(target->ctx, host, rows, s->cols, s->dtype,
                                   &to, &g.table);
        if (st != FERRY_OK) {
          printf("skip gather %s: %s\n", methods[mi].name, ferry_last_error());
          continue;
        }
        ferry_gather_options go = FERRY_GATHER_OPTIONS_INIT;
        go.method = methods[mi].kernel;
        g.opts = go;
        if (!host_side && mi == 0) {
          /* Limits (a) and (b) with the zero-copy table. */
          double med = 0;
          ferry_tensor keep = g.ids;
          g.ids = seq_t;
          if (bench_repeat(cfg->warmup, cfg->reps, gather_rep, &g, &med) == 0) {
            limit = (double)g.bytes / med / 1e9;
            bench_result *r = record(out, &g, "limit_sm_read", s, rows, med);
            if (r != NULL)
              r->judged = 0;
          }
          g.ids = keep;
          if (ferry_buffer_create(target->ctx, FERRY_MEMORY_PINNED_HOST,
                                  g.bytes, &g.pin) == FERRY_OK &&
              ferry_buffer_create(target->ctx, FERRY_MEMORY_DEVICE, g.bytes,
                                  &g.dev) == FERRY_OK &&
              bench_repeat(cfg->warmup, cfg->reps, h2d_rep, &g, &med) == 0) {
            bench_result *r = record(out, &g, "limit_h2d", s, rows, med);
            if (r != NULL)
              r->judged = 0;
          }
          ferry_buffer_destroy(g.pin);
          ferry_buffer_destroy(g.dev);
          g.pin = g.dev = NULL;
        }
        double med = 0;
        if (bench_repeat(cfg->warmup, cfg->reps, gather_rep, &g, &med) == 0)
          judge(record(out, &g, methods[mi].name, s, rows, med), limit);
        else
          rc = -1;
        ferry_table_destroy(g.table);
        g.table = NULL;
      }
      ferry_buffer_destroy(ib);
      ferry_buffer_destroy(sb);
      ferry_buffer_destroy(ob);
      free(ids);
      free(seq);
    }
    free(host);
  }
  ferry_stream_destroy(g.stream);
  return rc;
}
