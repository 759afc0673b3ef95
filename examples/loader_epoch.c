/* One training epoch's worth of data through ferry's minibatch loader.
 *
 *   loader_epoch [CORA_PREFIX]
 *
 * With a LINQS prefix (e.g. .../cora/cora, reading cora.content and
 * cora.cites) it loads Cora: the citation graph and its 1433 word features.
 * Without one it makes a Graph500 R-MAT graph (2^12 nodes) and a random f32
 * feature table. Then it samples 3-layer blocks (fanouts 15, 10, 5) for
 * every node in shuffled batches of 256, with the features gathered on the
 * loader's own stream while the program "trains" on the previous batch: here
 * the training step is a read of the batch's features on a compute stream
 * (which waits for that batch's gather only) and a checksum on the host.
 * FERRY_BACKEND picks the backend ("cpu", "cuda", "hip", "opencl"; default:
 * the machine's best). */
#include <ferry/ferry.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                            \
  do {                                                                         \
    ferry_status st_ = (call);                                                 \
    if (st_ != FERRY_OK) {                                                     \
      fprintf(stderr, "loader_epoch: %s failed: %s: %s\n", #call,              \
              ferry_status_string(st_), ferry_last_error());                   \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* An R-MAT graph and a random table with one row per node. */
static void make_synthetic(ferry_context *ctx, ferry_graph **graph,
                           ferry_table **table) {
  ferry_graph_options go = FERRY_GRAPH_OPTIONS_INIT;
  go.symmetrize = 1;
  go.remove_self_loops = 1;
  go.remove_duplicates = 1;
  ferry_rmat_options ro = FERRY_RMAT_OPTIONS_INIT;
  ro.scale = 12;
  ro.edge_factor = 8;
  ro.seed = 42;
  CHECK(ferry_graph_create_rmat(ctx, &go, &ro, graph));
  ferry_graph_info gi = FERRY_GRAPH_INFO_INIT;
  CHECK(ferry_graph_get_info(*graph, &gi));
  const uint64_t cols = 64, rows = (uint64_t)gi.num_nodes;
  float *host = malloc(rows * cols * sizeof *host);
  if (host == NULL) {
    fprintf(stderr, "loader_epoch: out of memory\n");
    exit(1);
  }
  uint64_t x = 1;
  for (uint64_t i = 0; i < rows * cols; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    host[i] = (float)(x >> 40) / (float)(1u << 24) - 0.5f;
  }
  CHECK(ferry_table_create(ctx, rows, cols, FERRY_DTYPE_F32, NULL, table));
  CHECK(ferry_table_write(*table, 0, rows, host));
  free(host);
}

int main(int argc, char **argv) {
  if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
    fprintf(stderr, "usage: %s [CORA_PREFIX]\n", argv[0]);
    return 2;
  }
  ferry_context *ctx = NULL;
  CHECK(ferry_context_create(NULL, &ctx));
  ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
  CHECK(ferry_context_get_info(ctx, &ci));
  printf("backend: %s (%s)\n", ci.backend, ci.device.name);

  ferry_graph *graph = NULL;
  ferry_table *table = NULL;
  ferry_linqs *cora = NULL;
  if (argc == 2) {
    CHECK(ferry_linqs_load(ctx, NULL, argv[1], &cora));
    CHECK(ferry_linqs_feature_table(ctx, cora, NULL, &table));
    graph = cora->graph;
    printf("dataset: %s (%lld classes)\n", argv[1],
           (long long)cora->num_classes);
  } else {
    make_synthetic(ctx, &graph, &table);
    printf("dataset: R-MAT scale 12\n");
  }
  ferry_graph_info gi = FERRY_GRAPH_INFO_INIT;
  ferry_table_info ti = FERRY_TABLE_INFO_INIT;
  CHECK(ferry_graph_get_info(graph, &gi));
  CHECK(ferry_table_get_info(table, &ti));
  printf("graph: %lld nodes, %lld edges; features: %llu x %llu %s\n",
         (long long)gi.num_nodes, (long long)gi.num_edges,
         (unsigned long long)ti.rows, (unsigned long long)ti.cols,
         ferry_dtype_name(ti.dtype));

  ferry_sampler_options so = FERRY_SAMPLER_OPTIONS_INIT;
  so.num_layers = 3;
  so.fanouts[0] = 15;
  so.fanouts[1] = 10;
  so.fanouts[2] = 5;
  so.seed = 7;
  ferry_sampler *sampler = NULL;
  CHECK(ferry_sampler_create(graph, &so, &sampler));

  /* Every node is a seed (a real program would use its training split). */
  int64_t n = gi.num_nodes;
  int64_t *seeds = malloc((size_t)n * sizeof *seeds);
  if (seeds == NULL)
    return 1;
  for (int64_t i = 0; i < n; i++)
    seeds[i] = i;
  ferry_loader_options lo = FERRY_LOADER_OPTIONS_INIT;
  lo.batch_size = 256;
  lo.order = FERRY_LOADER_ORDER_SHUFFLE;
  lo.seed = 1;
  lo.depth = 2;
  ferry_loader *loader = NULL;
  CHECK(ferry_loader_create(graph, table, sampler, seeds, n, &lo, &loader));
  free(seeds); /* the loader keeps its own copy */

  ferry_stream *compute = NULL;
  CHECK(ferry_stream_create(ctx, &compute));
  float *feat = NULL;
  size_t feat_cap = 0;
  double checksum = 0.0, t0 = now_s();
  int64_t batches = 0, seeds_seen = 0, inputs = 0, edges = 0;
  CHECK(ferry_loader_start_epoch(loader, 0));
  for (;;) {
    ferry_batch *b = NULL;
    int done = 0;
    CHECK(ferry_loader_next(loader, compute, &b, &done));
    if (done)
      break;
    ferry_batch_info bi = FERRY_BATCH_INFO_INIT;
    CHECK(ferry_batch_get_info(b, &bi));
    int nblocks = 0;
    CHECK(ferry_minibatch_num_blocks(bi.minibatch, &nblocks));
    for (int i = 0; i < nblocks; i++) {
      ferry_block blk = FERRY_BLOCK_INIT;
      CHECK(ferry_minibatch_block(bi.minibatch, i, &blk));
      edges += blk.num_edges;
    }
    /* The "training step": read the features in stream order (after this
     * batch's gather, whatever the loader is preparing meanwhile). */
    size_t bytes = (size_t)bi.num_input_nodes * ti.cols * sizeof(float);
    if (ti.dtype == FERRY_DTYPE_F32 && bytes > 0) {
      if (bytes > feat_cap) {
        free(feat);
        feat = malloc(bytes);
        feat_cap = feat ? bytes : 0;
        if (feat == NULL)
          return 1;
      }
      CHECK(ferry_buffer_read_async(compute, bi.features.buffer,
                                    bi.features.byte_offset, feat, bytes));
      CHECK(ferry_stream_synchronize(compute));
      for (size_t i = 0; i < bytes / sizeof(float); i++)
        checksum += feat[i];
    }
    batches++;
    seeds_seen += bi.num_seeds;
    inputs += bi.num_input_nodes;
    CHECK(ferry_loader_release(loader, b, compute));
  }
  double dt = now_s() - t0;
  printf("epoch: %lld batches, %lld seeds, %lld input nodes, %lld block "
         "edges, %.3f s\n",
         (long long)batches, (long long)seeds_seen, (long long)inputs,
         (long long)edges, dt);
  printf("feature checksum: %.6g\n", checksum);
  int ok = seeds_seen == n;

  free(feat);
  ferry_stream_destroy(compute);
  ferry_loader_destroy(loader);
  ferry_sampler_destroy(sampler);
  ferry_table_destroy(table);
  if (cora != NULL)
    ferry_linqs_destroy(cora); /* frees its graph */
  else
    ferry_graph_destroy(graph);
  ferry_context_destroy(ctx);
  if (!ok) {
    fprintf(stderr, "loader_epoch: the epoch saw %lld of %lld seeds\n",
            (long long)seeds_seen, (long long)n);
    return 1;
  }
  printf("example: ok\n");
  return 0;
}
