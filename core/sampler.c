/* The neighbor sampler: ferry_sample turns seeds into DGL-style blocks by
 * running, layer by layer from the seeds outwards, the backend's
 * sample_count, sample_pick and sample_relabel ops on a stream of the
 * sampler's own, reading back two numbers a layer (the edge count, the
 * source-node count) to size the next buffers.
 *
 * Determinism: the frontier of a layer is the previous layer's source nodes
 * in first-occurrence order (the destination nodes first, in order, then
 * each one's sampled neighbors in draw order); every node's draws are a
 * pure function of (seed, batch_id, layer, node) (core/philox.h). The seeds
 * are deduplicated here, keeping each at its first occurrence. */
#include "graph_internal.h"

#include <stdlib.h>
#include <string.h>

/* A stream with the relabel scratch it last used, reused across calls: the
 * hash table of a big layer is tens of MB, and fresh memory costs page
 * faults on every batch. */
typedef struct sampler_lane {
  ferry_stream *stream;
  ferry_buffer *scratch;
  uint64_t scratch_bytes;
} sampler_lane;

struct ferry_sampler {
  ferry_graph *graph;
  ferry_sampler_options opts;
  pthread_mutex_t lock;
  sampler_lane *idle; /* lanes not in use (under lock) */
  int n_idle, cap_idle;
};

typedef struct mb_block {
  int64_t num_dst, num_src, num_edges;
  ferry_buffer *indptr, *indices, *src;
} mb_block;

struct ferry_minibatch {
  int num_blocks;
  mb_block blocks[FERRY_SAMPLER_MAX_LAYERS];
};

ferry_status ferry_sampler_create(ferry_graph *graph,
                                  const ferry_sampler_options *opts,
                                  ferry_sampler **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(graph);
  FERRY_CHECK_NULL(opts);
  FERRY_CHECK_NULL(out);
  if (opts->struct_size != sizeof(ferry_sampler_options))
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "%s: opts->struct_size is %zu, expected %zu; use "
                        "FERRY_SAMPLER_OPTIONS_INIT",
                        __func__, opts->struct_size,
                        sizeof(ferry_sampler_options));
  if (opts->num_layers < 1 || opts->num_layers > FERRY_SAMPLER_MAX_LAYERS)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: opts->num_layers is %d, outside [1, %d]", __func__,
                        opts->num_layers, FERRY_SAMPLER_MAX_LAYERS);
  for (int i = 0; i < opts->num_layers; i++)
    if (opts->fanouts[i] < -1 || opts->fanouts[i] == 0 ||
        opts->fanouts[i] > INT32_MAX)
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "%s: opts->fanouts[%d] is %lld; use -1 (every "
                          "neighbor) or 1..2^31-1",
                          __func__, i, (long long)opts->fanouts[i]);
  const ferry_backend *be = graph->ctx->be;
  if (be->op_sample_count == NULL || be->op_sample_pick == NULL ||
      be->op_sample_relabel == NULL)
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "%s: backend %s has no neighbor sampler", __func__,
                        graph->ctx->plugin->name);
  ferry_sampler *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        __func__);
  s->graph = graph;
  s->opts = *opts;
  pthread_mutex_init(&s->lock, NULL);
  *out = s;
  return FERRY_OK;
}

static void lane_free(sampler_lane *l) {
  ferry_buffer_destroy(l->scratch);
  ferry_stream_destroy(l->stream);
}

void ferry_sampler_destroy(ferry_sampler *sampler) {
  if (sampler == NULL)
    return;
  for (int i = 0; i < sampler->n_idle; i++)
    lane_free(&sampler->idle[i]);
  free(sampler->idle);
  pthread_mutex_destroy(&sampler->lock);
  free(sampler);
}

static ferry_status lane_take(ferry_sampler *s, sampler_lane *out) {
  pthread_mutex_lock(&s->lock);
  if (s->n_idle > 0) {
    *out = s->idle[--s->n_idle];
    pthread_mutex_unlock(&s->lock);
    return FERRY_OK;
  }
  pthread_mutex_unlock(&s->lock);
  memset(out, 0, sizeof *out);
  return ferry_stream_create(s->graph->ctx, &out->stream);
}

static void lane_give(ferry_sampler *s, sampler_lane *l) {
  pthread_mutex_lock(&s->lock);
  if (s->n_idle == s->cap_idle) {
    int cap = s->cap_idle ? 2 * s->cap_idle : 4;
    sampler_lane *n = realloc(s->idle, (size_t)cap * sizeof *n);
    if (n == NULL) {
      pthread_mutex_unlock(&s->lock);
      lane_free(l);
      return;
    }
    s->idle = n;
    s->cap_idle = cap;
  }
  s->idle[s->n_idle++] = *l;
  pthread_mutex_unlock(&s->lock);
}

void ferry_minibatch_destroy(ferry_minibatch *mb) {
  if (mb == NULL)
    return;
  for (int i = 0; i < FERRY_SAMPLER_MAX_LAYERS; i++) {
    ferry_buffer_destroy(mb->blocks[i].indptr);
    ferry_buffer_destroy(mb->blocks[i].indices);
    ferry_buffer_destroy(mb->blocks[i].src);
  }
  free(mb);
}

static uint64_t next_pow2(uint64_t x) {
  uint64_t p = 16;
  while (p < x)
    p <<= 1;
  return p;
}

static inline uint64_t seed_hash(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  return x;
}

/* The seeds checked and deduplicated (first occurrence kept), into a fresh
 * array *out of *n_out entries. */
static ferry_status unique_seeds(const ferry_graph *g, const int64_t *seeds,
                                 int64_t n, int64_t **out, int64_t *n_out) {
  int64_t *u = malloc((size_t)(n > 0 ? n : 1) * sizeof *u);
  uint64_t slots = next_pow2(2 * (uint64_t)n);
  int64_t *table = malloc((size_t)slots * sizeof *table);
  if (u == NULL || table == NULL) {
    free(u);
    free(table);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_sample: out of host memory");
  }
  memset(table, 0xFF, (size_t)slots * sizeof *table);
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t v = seeds[i];
    if (v < 0 || v >= g->num_nodes) {
      free(u);
      free(table);
      return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                          "ferry_sample: seeds[%lld] = %lld is outside [0, "
                          "%lld)",
                          (long long)i, (long long)v, (long long)g->num_nodes);
    }
    uint64_t h = seed_hash((uint64_t)v) & (slots - 1);
    while (table[h] != -1 && table[h] != v)
      h = (h + 1) & (slots - 1);
    if (table[h] == -1) {
      table[h] = v;
      u[m++] = v;
    }
  }
  free(table);
  *out = u;
  *n_out = m;
  return FERRY_OK;
}

static ferry_status memref(ferry_context *ctx, const char *arg, ferry_buffer *b,
                           ferry_be_memref *out) {
  return ferry__buffer_memref(ctx, arg, b, 0, b->size, out);
}

/* Reads one int64 at `offset` of `b` after the stream's work. */
static ferry_status read_i64(ferry_stream *s, ferry_buffer *b, uint64_t offset,
                             int64_t *out) {
  ferry_status st = ferry_buffer_read_async(s, b, offset, out, 8);
  ferry_status sync = ferry_stream_synchronize(s);
  return st != FERRY_OK ? st : sync;
}

/* One layer: frontier (n ids in `frontier`) -> block `blk`. */
static ferry_status sample_layer(ferry_sampler *sm, sampler_lane *lane,
                                 const ferry_be_csr *csr, uint32_t batch_id,
                                 int layer, ferry_buffer *frontier, int64_t n,
                                 mb_block *blk) {
  ferry_context *ctx = sm->graph->ctx;
  const ferry_backend *be = ctx->be;
  ferry_stream *s = lane->stream;
  ferry_be_sample_layer p;
  memset(&p, 0, sizeof p);
  p.seed = sm->opts.seed;
  p.batch_id = batch_id;
  p.layer = (uint32_t)layer;
  p.fanout = sm->opts.fanouts[layer];
  p.replace = sm->opts.replace != 0;
  blk->num_dst = n;
  ferry_be_memref fr, offs, nb, scr, src, loc, nsrc;
  ferry_buffer *nbrs = NULL, *num_src = NULL;
  ferry_be_launch l;
  ferry_status st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE,
                                        (uint64_t)(n + 1) * 8u, &blk->indptr);
  if (st == FERRY_OK)
    st = memref(ctx, "frontier", frontier, &fr);
  if (st == FERRY_OK)
    st = memref(ctx, "indptr", blk->indptr, &offs);
  if (st == FERRY_OK)
    st = ferry__stream_launch(s, "sample_count", &l);
  if (st == FERRY_OK) {
    ferry__clear_error();
    st = be->op_sample_count(s->impl, &l, csr, &p, &fr, (uint64_t)n, &offs);
  }
  int64_t e = 0;
  if (st == FERRY_OK)
    st = read_i64(s, blk->indptr, (uint64_t)n * 8u, &e);
  if (st != FERRY_OK)
    return st;
  if (e < 0)
    return ferry__error(FERRY_ERR_INTERNAL,
                        "ferry_sample: layer %d counted %lld edges", layer,
                        (long long)e);
  blk->num_edges = e;
  uint64_t total = (uint64_t)n + (uint64_t)e;
  uint64_t slots = next_pow2(2 * total);
  uint64_t need = FERRY_BE_SAMPLE_SCRATCH_BYTES(slots, total);
  /* Host-memory backends get room for a dense map over every node too:
   * direct indexing beats hashing there (see backend.h). */
  if ((be->flags & FERRY_BACKEND_FLAG_HOST_UNIFIED) &&
      need < (uint64_t)csr->num_nodes * 4u)
    need = (uint64_t)csr->num_nodes * 4u;
  if (lane->scratch_bytes < need) {
    ferry_buffer_destroy(lane->scratch);
    lane->scratch = NULL;
    lane->scratch_bytes = 0;
    /* Grown geometrically: layers and batches vary in size. */
    uint64_t size = need + need / 2;
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, size, &lane->scratch);
    if (st == FERRY_OK)
      st = ferry_buffer_fill_async(s, lane->scratch, 0, 0, size);
    if (st != FERRY_OK) {
      (void)ferry_stream_synchronize(s);
      ferry_buffer_destroy(lane->scratch);
      lane->scratch = NULL;
      return st;
    }
    lane->scratch_bytes = size;
  }
  st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, (uint64_t)e * 8u, &nbrs);
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, total * 8u, &blk->src);
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, (uint64_t)e * 8u,
                             &blk->indices);
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, 8u, &num_src);
  if (st == FERRY_OK)
    st = memref(ctx, "nbrs", nbrs, &nb);
  if (st == FERRY_OK)
    st = memref(ctx, "scratch", lane->scratch, &scr);
  if (st == FERRY_OK)
    st = memref(ctx, "src", blk->src, &src);
  if (st == FERRY_OK)
    st = memref(ctx, "indices", blk->indices, &loc);
  if (st == FERRY_OK)
    st = memref(ctx, "num_src", num_src, &nsrc);
  if (st == FERRY_OK && e > 0) {
    st = ferry__stream_launch(s, "sample_pick", &l);
    if (st == FERRY_OK) {
      ferry__clear_error();
      st = be->op_sample_pick(s->impl, &l, csr, &p, &fr, (uint64_t)n, &offs,
                              &nb);
    }
  }
  if (st == FERRY_OK)
    st = ferry__stream_launch(s, "sample_relabel", &l);
  if (st == FERRY_OK) {
    ferry__clear_error();
    st = be->op_sample_relabel(s->impl, &l, &fr, (uint64_t)n, &nb, (uint64_t)e,
                               csr->num_nodes, &scr, lane->scratch_bytes, slots,
                               &src, &loc, &nsrc);
  }
  int64_t m = 0;
  if (st == FERRY_OK)
    st = read_i64(s, num_src, 0, &m);
  if (st == FERRY_OK && (m < n || (uint64_t)m > total))
    st = ferry__error(FERRY_ERR_INTERNAL,
                      "ferry_sample: layer %d relabelled %lld source nodes "
                      "for %lld destinations and %lld edges",
                      layer, (long long)m, (long long)n, (long long)e);
  if (st != FERRY_OK)
    (void)ferry_stream_synchronize(s); /* nothing may still use the buffers */
  ferry_buffer_destroy(nbrs);
  ferry_buffer_destroy(num_src);
  blk->num_src = m;
  return st;
}

ferry_status ferry_sample(ferry_sampler *sampler, const int64_t *seeds,
                          int64_t n, uint64_t batch_id, ferry_minibatch **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(sampler);
  FERRY_CHECK_NULL(out);
  if (n < 0)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument 'n' is %lld (negative)", __func__,
                        (long long)n);
  if (n > 0 && seeds == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER,
                        "%s: argument 'seeds' is NULL with n = %lld", __func__,
                        (long long)n);
  if (batch_id > UINT32_MAX)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "%s: argument 'batch_id' is %llu; batch ids are below "
                        "2^32",
                        __func__, (unsigned long long)batch_id);
  ferry_graph *g = sampler->graph;
  ferry_context *ctx = g->ctx;
  ferry_status st = ferry__context_check(ctx);
  if (st != FERRY_OK)
    return st;
  int64_t *u = NULL, nu = 0;
  st = unique_seeds(g, seeds, n, &u, &nu);
  if (st != FERRY_OK)
    return st;
  ferry_minibatch *mb = calloc(1, sizeof *mb);
  if (mb == NULL) {
    free(u);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        __func__);
  }
  mb->num_blocks = sampler->opts.num_layers;
  ferry_be_csr csr;
  memset(&csr, 0, sizeof csr);
  csr.col_dtype = g->id_dtype;
  csr.num_nodes = g->num_nodes;
  csr.num_edges = g->num_edges;
  st = memref(ctx, "graph offsets", g->offsets, &csr.offsets);
  if (st == FERRY_OK)
    st = memref(ctx, "graph cols", g->cols, &csr.cols);
  sampler_lane lane;
  memset(&lane, 0, sizeof lane);
  if (st == FERRY_OK)
    st = lane_take(sampler, &lane);
  ferry_buffer *seeds_buf = NULL;
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, (uint64_t)nu * 8u,
                             &seeds_buf);
  if (st == FERRY_OK && nu > 0)
    st = ferry_buffer_write_async(lane.stream, seeds_buf, 0, u,
                                  (uint64_t)nu * 8u);
  ferry_buffer *frontier = seeds_buf;
  int64_t fn = nu;
  for (int layer = mb->num_blocks - 1; st == FERRY_OK && layer >= 0; layer--) {
    mb_block *blk = &mb->blocks[layer];
    st = sample_layer(sampler, &lane, &csr, (uint32_t)batch_id, layer, frontier,
                      fn, blk);
    frontier = blk->src;
    fn = blk->num_src;
  }
  if (lane.stream) {
    /* The seeds' upload must be done before `u` goes. */
    ferry_status sync = ferry_stream_synchronize(lane.stream);
    if (st == FERRY_OK)
      st = sync;
    lane_give(sampler, &lane);
  }
  ferry_buffer_destroy(seeds_buf);
  free(u);
  if (st != FERRY_OK) {
    ferry_minibatch_destroy(mb);
    return st;
  }
  *out = mb;
  return FERRY_OK;
}

ferry_status ferry_minibatch_num_blocks(const ferry_minibatch *mb, int *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(mb);
  FERRY_CHECK_NULL(out);
  *out = mb->num_blocks;
  return FERRY_OK;
}

static ferry_status view(ferry_buffer *b, int64_t n, ferry_tensor *out) {
  return ferry_tensor_make(b, 0, FERRY_DTYPE_I64, 1, &n, out);
}

ferry_status ferry_minibatch_block(const ferry_minibatch *mb, int i,
                                   ferry_block *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(mb);
  FERRY_CHECK_NULL(out);
  if (out->struct_size != sizeof(ferry_block))
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "%s: out->struct_size is %zu; use FERRY_BLOCK_INIT",
                        __func__, out->struct_size);
  if (i < 0 || i >= mb->num_blocks)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "%s: argument 'i' is %d, outside [0, %d)", __func__, i,
                        mb->num_blocks);
  const mb_block *b = &mb->blocks[i];
  ferry_block r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  r.num_dst = b->num_dst;
  r.num_src = b->num_src;
  r.num_edges = b->num_edges;
  ferry_status st = view(b->indptr, b->num_dst + 1, &r.indptr);
  if (st == FERRY_OK)
    st = view(b->indices, b->num_edges, &r.indices);
  if (st == FERRY_OK)
    st = view(b->src, b->num_src, &r.src_nodes);
  if (st != FERRY_OK)
    return st;
  *out = r;
  return FERRY_OK;
}

ferry_status ferry_minibatch_input_nodes(const ferry_minibatch *mb,
                                         ferry_tensor *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(mb);
  FERRY_CHECK_NULL(out);
  return view(mb->blocks[0].src, mb->blocks[0].num_src, out);
}
