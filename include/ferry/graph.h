/*
 * ferry: Graphs, neighbor sampling and the hard-batch selector (see
 * docs/sampler.md).
 *
 * Included by <ferry/ferry.h>; may also be included on its own.
 */
#ifndef FERRY_GRAPH_H
#define FERRY_GRAPH_H

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Graphs: CSR (row offsets int64, column ids int32 or int64)                */
/* ------------------------------------------------------------------------ */

typedef struct ferry_graph ferry_graph;

/* How a graph is built and where it lives. */
typedef struct ferry_graph_options {
  size_t struct_size;
  /* FERRY_MEMORY_PINNED_HOST (default: NUMA-local host memory the device
   * reads in place) or FERRY_MEMORY_DEVICE (a copy in device memory). */
  ferry_memory_space placement;
  /* Column id type: FERRY_DTYPE_I32 (default) or FERRY_DTYPE_I64. Builders
   * that read files or generate graphs use it; ferry_graph_create_csr takes
   * the caller's dtype instead. */
  ferry_dtype id_dtype;
  /* Edge lists only: add (v, u) for every (u, v); drop u == v; keep one of
   * equal (u, v). */
  int symmetrize;
  int remove_self_loops;
  int remove_duplicates;
  /* ferry_graph_create_csr only: wrap the caller's arrays in place (pinned
   * placement only; they must outlive the graph) instead of copying. */
  int wrap;
} ferry_graph_options;
#define FERRY_GRAPH_OPTIONS_INIT                                               \
  {                                                                            \
    .struct_size = sizeof(ferry_graph_options),                                \
    .placement = FERRY_MEMORY_PINNED_HOST, .id_dtype = FERRY_DTYPE_I32,        \
    .symmetrize = 0, .remove_self_loops = 0, .remove_duplicates = 0, .wrap = 0 \
  }

/* A CSR graph of `num_nodes` nodes from the caller's arrays: offsets has
 * num_nodes + 1 int64 entries (offsets[0] == 0, non-decreasing), cols
 * offsets[num_nodes] ids of `col_dtype` (I32 or I64), each in [0,
 * num_nodes). Checked in full; the first bad position is named. opts may be
 * NULL. */
FERRY_API ferry_status ferry_graph_create_csr(
    ferry_context *ctx, const ferry_graph_options *opts, int64_t num_nodes,
    const int64_t *offsets, const void *cols, ferry_dtype col_dtype,
    ferry_graph **out);

/* A graph from `num_edges` directed edges (src[i] -> dst[i], int64 ids in
 * [0, num_nodes)); rows are sources, and within a row the edges keep their
 * order in the list (sorted by destination when duplicates are removed). */
FERRY_API ferry_status ferry_graph_create_from_edges(
    ferry_context *ctx, const ferry_graph_options *opts, int64_t num_nodes,
    const int64_t *src, const int64_t *dst, int64_t num_edges,
    ferry_graph **out);

/* An edge list file: NumPy .npy of shape (E, 2) and dtype int32 or int64
 * (little endian, C order), or text (two ids a line separated by spaces,
 * tabs or a comma; '#' and '%' start comments). num_nodes <= 0: the largest
 * id + 1. Malformed files fail with FERRY_ERR_BAD_FORMAT naming the line (or
 * byte offset). */
FERRY_API ferry_status ferry_graph_load_edge_list(
    ferry_context *ctx, const ferry_graph_options *opts, const char *path,
    int64_t num_nodes, ferry_graph **out);

/* Graph500's R-MAT generator. */
typedef void (*ferry_progress_fn)(void *user, const char *stage, double done);
typedef struct ferry_rmat_options {
  size_t struct_size;
  int scale;       /* 2^scale nodes, 1..30 */
  int edge_factor; /* edges = edge_factor * 2^scale (16) */
  double a, b, c;  /* quadrant probabilities (0.57, 0.19, 0.19; d = rest) */
  uint64_t seed;
  /* Called now and then from the calling thread with a stage name and the
   * stage's fraction done (0..1); NULL: none. */
  ferry_progress_fn progress;
  void *progress_user;
} ferry_rmat_options;
#define FERRY_RMAT_OPTIONS_INIT                                                \
  {                                                                            \
    .struct_size = sizeof(ferry_rmat_options), .scale = 16, .edge_factor = 16, \
    .a = 0.57, .b = 0.19, .c = 0.19, .seed = 1, .progress = NULL,              \
    .progress_user = NULL                                                      \
  }
/* Directed edges, node ids permuted at random (seeded); a pure function of
 * the options. graph_opts: placement, id_dtype, symmetrize, self-loop and
 * duplicate removal (all off by default: Graph500 keeps the raw list). */
FERRY_API ferry_status ferry_graph_create_rmat(
    ferry_context *ctx, const ferry_graph_options *graph_opts,
    const ferry_rmat_options *rmat_opts, ferry_graph **out);

FERRY_API void ferry_graph_destroy(ferry_graph *graph);

typedef struct ferry_graph_info {
  size_t struct_size;
  int64_t num_nodes;
  int64_t num_edges;
  int64_t max_degree;
  ferry_dtype id_dtype;
  ferry_memory_space placement;
  /* The CSR, viewed as tensors on the graph's context (offsets: int64
   * [num_nodes + 1]; cols: id_dtype [num_edges]). Valid while the graph
   * lives. */
  ferry_tensor offsets;
  ferry_tensor cols;
} ferry_graph_info;
#define FERRY_GRAPH_INFO_INIT                                                  \
  { .struct_size = sizeof(ferry_graph_info) }
FERRY_API ferry_status ferry_graph_get_info(const ferry_graph *graph,
                                            ferry_graph_info *out);

/* ------------------------------------------------------------------------ */
/* LINQS datasets (Cora, CiteSeer): <prefix>.content and <prefix>.cites      */
/* ------------------------------------------------------------------------ */

typedef struct ferry_linqs {
  ferry_graph *graph; /* symmetrised, duplicates removed, self-loops kept */
  int64_t num_nodes;  /* lines of .content, in that order */
  int64_t num_features;
  float *features; /* num_nodes x num_features, row-major (host) */
  int32_t *labels; /* num_nodes class indices (host) */
  int32_t num_classes;
  char **class_names;      /* num_classes names, in order of first appearance */
  int64_t citation_lines;  /* lines of .cites */
  int64_t unknown_dropped; /* citations naming an id not in .content */
  int64_t self_loops;      /* citations of a paper to itself (kept) */
  int64_t undirected_edges; /* distinct unordered pairs, self-loops included */
  int64_t isolated_nodes;   /* nodes without any citation */
} ferry_linqs;

/* Reads `prefix`.content and `prefix`.cites (e.g. ".../cora/cora"). Ids are
 * strings mapped to 0..N-1 in content order. Malformed lines fail with
 * FERRY_ERR_BAD_FORMAT naming file and line; unknown ids, self-loops and
 * isolated nodes are counted, not fatal. opts: placement and id dtype. */
FERRY_API ferry_status ferry_linqs_load(ferry_context *ctx,
                                        const ferry_graph_options *opts,
                                        const char *prefix, ferry_linqs **out);
FERRY_API void ferry_linqs_destroy(ferry_linqs *data);
/* The features as a feature table (f32, num_nodes x num_features) of ctx,
 * made with ferry_table_create and filled with ferry_table_write. opts as
 * for ferry_table_create (NULL: defaults). */
FERRY_API ferry_status
ferry_linqs_feature_table(ferry_context *ctx, const ferry_linqs *data,
                          const ferry_table_options *opts, ferry_table **out);

/* ------------------------------------------------------------------------ */
/* Neighbor sampling                                                          */
/* ------------------------------------------------------------------------ */

typedef struct ferry_sampler ferry_sampler;
typedef struct ferry_minibatch ferry_minibatch;

#define FERRY_SAMPLER_MAX_LAYERS 8

typedef struct ferry_sampler_options {
  size_t struct_size;
  /* Layers (1..FERRY_SAMPLER_MAX_LAYERS) and their fanouts, in DGL's order:
   * fanouts[i] is block i's, and the last layer's is applied to the seeds.
   * -1 takes every neighbor. */
  int num_layers;
  int64_t fanouts[FERRY_SAMPLER_MAX_LAYERS];
  int replace; /* with replacement: exactly fanout draws per node */
  uint64_t seed;
} ferry_sampler_options;
#define FERRY_SAMPLER_OPTIONS_INIT                                             \
  {                                                                            \
    .struct_size = sizeof(ferry_sampler_options), .num_layers = 0,             \
    .fanouts = {0}, .replace = 0, .seed = 0                                    \
  }

/* A sampler of `graph` on the graph's context. */
FERRY_API ferry_status ferry_sampler_create(ferry_graph *graph,
                                            const ferry_sampler_options *opts,
                                            ferry_sampler **out);
FERRY_API void ferry_sampler_destroy(ferry_sampler *sampler);

/* What a sampler was made with, and what it keeps between calls. */
typedef struct ferry_sampler_info {
  size_t struct_size;
  /* The options it was created with (fanouts past num_layers are 0). */
  int num_layers;
  int64_t fanouts[FERRY_SAMPLER_MAX_LAYERS];
  int replace;
  uint64_t seed;
  /* The graph it samples, and the graph's node and edge counts and column id
   * type. */
  const ferry_graph *graph;
  int64_t num_nodes;
  int64_t num_edges;
  ferry_dtype id_dtype;
  /* Streams the sampler holds, each with its own temporaries: as many as
   * ferry_sample calls have run at once (1 after sequential calls). */
  int lanes;
  /* Device bytes kept for the next calls, counted between calls: the idle
   * streams' temporaries (the relabel scratch, the neighbor list, the
   * seeds) and the buffers of minibatches the loader handed back. */
  uint64_t cached_bytes;
} ferry_sampler_info;
#define FERRY_SAMPLER_INFO_INIT                                                \
  { .struct_size = sizeof(ferry_sampler_info) }
/* Fills *out (struct_size: FERRY_SAMPLER_INFO_INIT's; a caller built against
 * an older, shorter struct gets the fields its size covers). */
FERRY_API ferry_status ferry_sampler_get_info(const ferry_sampler *sampler,
                                              ferry_sampler_info *out);

/* Samples the blocks of one minibatch and returns when they are ready. The
 * result is a pure function of (graph, options, seeds, batch_id): the same on
 * every backend and for every thread count. seeds: n int64 global ids on the
 * host; a seed repeated is kept once, at its first occurrence. batch_id <
 * 2^32. Several threads may sample with one sampler at once. The sampler
 * keeps its temporaries between calls: a call no larger than an earlier one
 * frees no buffer, so it does not wait for work queued on other streams. */
FERRY_API ferry_status ferry_sample(ferry_sampler *sampler,
                                    const int64_t *seeds, int64_t n,
                                    uint64_t batch_id, ferry_minibatch **out);
/* Frees the minibatch once the context's queued work that may read it has
 * finished (as ferry_buffer_destroy). It may outlive its sampler. NULL is
 * accepted. */
FERRY_API void ferry_minibatch_destroy(ferry_minibatch *mb);

/* One block (DGL's message-flow graph): destination nodes are the first
 * num_dst of the source nodes; edges are CSC over local ids. Tensors live on
 * the sampler's device, int64, valid while the minibatch lives. */
typedef struct ferry_block {
  size_t struct_size;
  int64_t num_dst;
  int64_t num_src;
  int64_t num_edges;
  ferry_tensor indptr;    /* [num_dst + 1] offsets into indices */
  ferry_tensor indices;   /* [num_edges] local source ids, < num_src */
  ferry_tensor src_nodes; /* [num_src] global ids */
} ferry_block;
#define FERRY_BLOCK_INIT                                                       \
  { .struct_size = sizeof(ferry_block) }

FERRY_API ferry_status ferry_minibatch_num_blocks(const ferry_minibatch *mb,
                                                  int *out);
/* Block i, 0 (input layer) .. num_blocks - 1 (whose dst nodes are the
 * seeds). */
FERRY_API ferry_status ferry_minibatch_block(const ferry_minibatch *mb, int i,
                                             ferry_block *out);
/* The global ids to gather (block 0's source nodes): int64 on the device,
 * usable as ferry_gather's ids. */
FERRY_API ferry_status ferry_minibatch_input_nodes(const ferry_minibatch *mb,
                                                   ferry_tensor *out);

/* ------------------------------------------------------------------------ */
/* Hard-batch selection ("Can we learn better with hard samples?")           */
/* ------------------------------------------------------------------------ */

typedef struct ferry_selector ferry_selector;

typedef struct ferry_selector_options {
  size_t struct_size;
  int64_t num_batches; /* B >= 1, batch ids 0..B-1 */
  int64_t epochs;      /* total steps = epochs * B */
  double delta;        /* in (0, 1]; k = max(1, floor(delta * B)) */
} ferry_selector_options;
#define FERRY_SELECTOR_OPTIONS_INIT                                            \
  {                                                                            \
    .struct_size = sizeof(ferry_selector_options), .num_batches = 0,           \
    .epochs = 1, .delta = 1.0                                                  \
  }

FERRY_API ferry_status ferry_selector_create(const ferry_selector_options *opts,
                                             ferry_selector **out);
FERRY_API void ferry_selector_destroy(ferry_selector *sel);
/* The next batch to train: *done = 1 (and *batch_id = -1) once every step
 * was handed out. A round after the first pass needs a loss reported for
 * every batch (FERRY_ERR_NOT_READY names the first missing one). */
FERRY_API ferry_status ferry_selector_next(ferry_selector *sel,
                                           int64_t *batch_id, int *done);
/* The loss of a trained batch (finite). */
FERRY_API ferry_status ferry_selector_report(ferry_selector *sel,
                                             int64_t batch_id, double loss);
/* k, the round size after the first pass. */
FERRY_API ferry_status ferry_selector_round_size(const ferry_selector *sel,
                                                 int64_t *out);

/* A selector's options and where it stands (a snapshot under its lock). */
typedef struct ferry_selector_info {
  size_t struct_size;
  /* The options it was created with. */
  int64_t num_batches;
  int64_t epochs;
  double delta;
  int64_t round_size;  /* k = max(1, floor(delta * num_batches)) */
  int64_t total_steps; /* epochs * num_batches */
  int64_t steps;       /* handed out so far */
  int done;            /* every step was handed out */
  /* The current round: 0 is the first pass (num_batches steps in id
   * order), each later one has round_size steps (the last may be cut). */
  int64_t round;
  int64_t round_length;
  int64_t round_handed;   /* steps of this round handed out so far */
  int64_t round_reported; /* of those, batches with a loss reported since */
} ferry_selector_info;
#define FERRY_SELECTOR_INFO_INIT                                               \
  { .struct_size = sizeof(ferry_selector_info) }
/* Fills *out (struct_size as for ferry_sampler_get_info). */
FERRY_API ferry_status ferry_selector_get_info(const ferry_selector *sel,
                                               ferry_selector_info *out);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_GRAPH_H */
