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
 * are deduplicated here, keeping each at its first occurrence.
 *
 * Memory: freeing a buffer waits for the context's queued work (like
 * cudaFree; on the cpu backend it drains every stream), so a call that freed
 * its temporaries would also wait for the caller's compute on other streams.
 * The temporaries therefore stay with the stream they are used on (a lane)
 * and only grow, and the minibatches the loader hands back
 * (ferry__minibatch_recycle) are reused with their buffers: a call of the
 * same or smaller sizes then creates and frees no buffer. */
#include "graph_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A device buffer kept between calls, and its size. */
typedef struct held_buf {
  ferry_buffer *buf;
  uint64_t bytes;
} held_buf;

/* A stream and the temporaries it last used. */
typedef struct sampler_lane {
  ferry_stream *stream;
  held_buf scratch; /* the relabel's hash table or dense map, kept zeroed */
  held_buf nbrs;    /* a layer's sampled neighbor ids */
  held_buf num_src; /* the relabel's source-node count */
  held_buf seeds;   /* the deduplicated seeds */
} sampler_lane;

struct ferry_sampler {
  ferry_graph *graph;
  ferry_context *ctx;
  ferry_sampler_options opts;
  /* The caller's handle and one per minibatch handed out: a minibatch may
   * outlive its sampler. */
  atomic_int refs;
  pthread_mutex_t lock;
  /* Under lock. */
  bool closed;        /* ferry_sampler_destroy was called */
  int lanes;          /* lanes that exist, idle or in use */
  sampler_lane *idle; /* lanes not in use */
  int n_idle, cap_idle;
  ferry_minibatch **shells; /* recycled minibatches, buffers kept */
  int n_shells, cap_shells;
};

typedef struct mb_block {
  int64_t num_dst, num_src, num_edges;
  held_buf indptr, indices, src;
} mb_block;

struct ferry_minibatch {
  ferry_sampler *sampler; /* holds a reference */
  int num_blocks;
  mb_block blocks[FERRY_SAMPLER_MAX_LAYERS];
};

static void held_free(held_buf *h) {
  ferry_buffer_destroy(h->buf);
  h->buf = NULL;
  h->bytes = 0;
}

/* Makes `h` hold at least `need` bytes of device memory: kept if it does,
 * else replaced (nothing queued may still use it) by one of half as much
 * again, since layers and batches vary in size, and of at least 256 bytes,
 * so that empty layers allocate once too. The contents are not kept.
 * *fresh (may be NULL): a new buffer was made. */
static ferry_status held_reserve(ferry_context *ctx, held_buf *h, uint64_t need,
                                 bool *fresh) {
  if (fresh)
    *fresh = false;
  if (h->buf != NULL && h->bytes >= need)
    return FERRY_OK;
  held_free(h);
  uint64_t size = need > (UINT64_C(1) << 61) ? need : need + need / 2;
  if (size < 256)
    size = 256;
  ferry_status st =
      ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, size, &h->buf);
  if (st != FERRY_OK) {
    h->buf = NULL;
    return st;
  }
  h->bytes = size;
  if (fresh)
    *fresh = true;
  return FERRY_OK;
}

/* Room for one more entry in a pool array of `elem`-byte entries (under the
 * sampler's lock): the array, moved if it had to grow, or NULL. */
static void *pool_room(void *arr, int n, int *cap, size_t elem) {
  if (n < *cap)
    return arr;
  int c = *cap ? 2 * *cap : 4;
  void *p = realloc(arr, (size_t)c * elem);
  if (p != NULL)
    *cap = c;
  return p;
}

static void lane_free(sampler_lane *l) {
  held_free(&l->scratch);
  held_free(&l->nbrs);
  held_free(&l->num_src);
  held_free(&l->seeds);
  ferry_stream_destroy(l->stream);
}

static void shell_free(ferry_minibatch *mb) {
  for (int i = 0; i < FERRY_SAMPLER_MAX_LAYERS; i++) {
    held_free(&mb->blocks[i].indptr);
    held_free(&mb->blocks[i].indices);
    held_free(&mb->blocks[i].src);
  }
  free(mb);
}

static void sampler_unref(ferry_sampler *s) {
  if (atomic_fetch_sub(&s->refs, 1) != 1)
    return;
  /* Closed: ferry_sampler_destroy emptied the pools. */
  pthread_mutex_destroy(&s->lock);
  free(s->idle);
  free(s->shells);
  free(s);
}

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
  s->ctx = graph->ctx;
  s->opts = *opts;
  /* Fanouts past num_layers are never read; the info reports them as 0. */
  for (int i = opts->num_layers; i < FERRY_SAMPLER_MAX_LAYERS; i++)
    s->opts.fanouts[i] = 0;
  atomic_init(&s->refs, 1);
  pthread_mutex_init(&s->lock, NULL);
  *out = s;
  return FERRY_OK;
}

void ferry_sampler_destroy(ferry_sampler *sampler) {
  if (sampler == NULL)
    return;
  ferry_sampler *s = sampler;
  /* In a fork()ed child the lock may be held by a thread that is not
   * there, and nothing else runs. */
  bool forked = ferry__forked();
  if (!forked)
    pthread_mutex_lock(&s->lock);
  s->closed = true;
  sampler_lane *idle = s->idle;
  ferry_minibatch **shells = s->shells;
  int n_idle = s->n_idle, n_shells = s->n_shells;
  s->idle = NULL;
  s->shells = NULL;
  s->n_idle = s->cap_idle = s->n_shells = s->cap_shells = 0;
  if (!forked)
    pthread_mutex_unlock(&s->lock);
  for (int i = 0; i < n_idle; i++)
    lane_free(&idle[i]);
  for (int i = 0; i < n_shells; i++)
    shell_free(shells[i]);
  free(idle);
  free(shells);
  sampler_unref(s);
}

static ferry_status lane_take(ferry_sampler *s, sampler_lane *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&s->lock);
  if (s->n_idle > 0) {
    *out = s->idle[--s->n_idle];
    pthread_mutex_unlock(&s->lock);
    return FERRY_OK;
  }
  s->lanes++;
  pthread_mutex_unlock(&s->lock);
  ferry_status st = ferry_stream_create(s->ctx, &out->stream);
  if (st != FERRY_OK) {
    pthread_mutex_lock(&s->lock);
    s->lanes--;
    pthread_mutex_unlock(&s->lock);
  }
  return st;
}

/* Returns a lane to the pool, or frees it when `keep` is false (a failure
 * may have left its scratch dirty). Nothing queued may still use it. */
static void lane_give(ferry_sampler *s, sampler_lane *l, bool keep) {
  pthread_mutex_lock(&s->lock);
  sampler_lane *idle =
      keep && !s->closed
          ? pool_room(s->idle, s->n_idle, &s->cap_idle, sizeof *idle)
          : NULL;
  if (idle != NULL) {
    s->idle = idle;
    s->idle[s->n_idle++] = *l;
    pthread_mutex_unlock(&s->lock);
    return;
  }
  s->lanes--;
  pthread_mutex_unlock(&s->lock);
  lane_free(l);
}

/* A minibatch to sample into: a recycled one with its buffers, or a new
 * empty one. It holds a reference to the sampler. */
static ferry_minibatch *shell_take(ferry_sampler *s) {
  ferry_minibatch *mb = NULL;
  pthread_mutex_lock(&s->lock);
  if (s->n_shells > 0)
    mb = s->shells[--s->n_shells];
  pthread_mutex_unlock(&s->lock);
  if (mb == NULL && (mb = calloc(1, sizeof *mb)) == NULL)
    return NULL;
  atomic_fetch_add(&s->refs, 1);
  mb->sampler = s;
  mb->num_blocks = s->opts.num_layers;
  for (int i = 0; i < FERRY_SAMPLER_MAX_LAYERS; i++) {
    mb_block *b = &mb->blocks[i];
    b->num_dst = b->num_src = b->num_edges = 0;
  }
  return mb;
}

void ferry_minibatch_destroy(ferry_minibatch *mb) {
  if (mb == NULL)
    return;
  ferry_sampler *s = mb->sampler;
  /* The caller may have queued work that reads the blocks: the buffers go
   * with ferry_buffer_destroy's wait for it, and are not reused. */
  shell_free(mb);
  sampler_unref(s);
}

void ferry__minibatch_recycle(ferry_minibatch *mb) {
  if (mb == NULL)
    return;
  ferry_sampler *s = mb->sampler;
  if (ferry__forked()) {
    ferry_minibatch_destroy(mb);
    return;
  }
  /* A buffer exported through DLPack lives on with its importer, who may
   * still read it: let go of it rather than reuse it. */
  for (int i = 0; i < FERRY_SAMPLER_MAX_LAYERS; i++) {
    held_buf *h[3] = {&mb->blocks[i].indptr, &mb->blocks[i].indices,
                      &mb->blocks[i].src};
    for (int k = 0; k < 3; k++)
      if (h[k]->buf != NULL && atomic_load(&h[k]->buf->refs) != 1)
        held_free(h[k]);
  }
  pthread_mutex_lock(&s->lock);
  ferry_minibatch **shells =
      s->closed
          ? NULL
          : pool_room(s->shells, s->n_shells, &s->cap_shells, sizeof *shells);
  if (shells != NULL) {
    s->shells = shells;
    s->shells[s->n_shells++] = mb;
  }
  pthread_mutex_unlock(&s->lock);
  if (shells == NULL)
    shell_free(mb);
  sampler_unref(s);
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

/* One layer: frontier (n ids in `frontier`) -> block `blk`. On failure the
 * caller synchronizes the lane's stream before anything is freed. */
static ferry_status sample_layer(ferry_sampler *sm, sampler_lane *lane,
                                 const ferry_be_csr *csr, uint32_t batch_id,
                                 int layer, ferry_buffer *frontier, int64_t n,
                                 mb_block *blk) {
  ferry_context *ctx = sm->ctx;
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
  ferry_be_launch l;
  ferry_status st =
      held_reserve(ctx, &blk->indptr, (uint64_t)(n + 1) * 8u, NULL);
  if (st == FERRY_OK)
    st = memref(ctx, "frontier", frontier, &fr);
  if (st == FERRY_OK)
    st = memref(ctx, "indptr", blk->indptr.buf, &offs);
  if (st == FERRY_OK)
    st = ferry__stream_launch(s, "sample_count", &l);
  if (st == FERRY_OK) {
    ferry__clear_error();
    st = be->op_sample_count(s->impl, &l, csr, &p, &fr, (uint64_t)n, &offs);
  }
  int64_t e = 0;
  if (st == FERRY_OK)
    st = read_i64(s, blk->indptr.buf, (uint64_t)n * 8u, &e);
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
  bool fresh = false;
  st = held_reserve(ctx, &lane->scratch, need, &fresh);
  /* Zeroed once, when made: the relabel leaves it zeroed (backend.h). */
  if (st == FERRY_OK && fresh)
    st = ferry_buffer_fill_async(s, lane->scratch.buf, 0, 0,
                                 lane->scratch.bytes);
  if (st == FERRY_OK)
    st = held_reserve(ctx, &lane->nbrs, (uint64_t)e * 8u, NULL);
  if (st == FERRY_OK)
    st = held_reserve(ctx, &blk->src, total * 8u, NULL);
  if (st == FERRY_OK)
    st = held_reserve(ctx, &blk->indices, (uint64_t)e * 8u, NULL);
  if (st == FERRY_OK)
    st = held_reserve(ctx, &lane->num_src, 8u, NULL);
  if (st == FERRY_OK)
    st = memref(ctx, "nbrs", lane->nbrs.buf, &nb);
  if (st == FERRY_OK)
    st = memref(ctx, "scratch", lane->scratch.buf, &scr);
  if (st == FERRY_OK)
    st = memref(ctx, "src", blk->src.buf, &src);
  if (st == FERRY_OK)
    st = memref(ctx, "indices", blk->indices.buf, &loc);
  if (st == FERRY_OK)
    st = memref(ctx, "num_src", lane->num_src.buf, &nsrc);
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
                               csr->num_nodes, &scr, lane->scratch.bytes, slots,
                               &src, &loc, &nsrc);
  }
  int64_t m = 0;
  if (st == FERRY_OK)
    st = read_i64(s, lane->num_src.buf, 0, &m);
  if (st == FERRY_OK && (m < n || (uint64_t)m > total))
    st = ferry__error(FERRY_ERR_INTERNAL,
                      "ferry_sample: layer %d relabelled %lld source nodes "
                      "for %lld destinations and %lld edges",
                      layer, (long long)m, (long long)n, (long long)e);
  blk->num_src = m;
  return st;
}

/* The thread's error, kept while cleanup calls ferry functions that clear
 * it. (A deferred error of the sampler's own stream comes back without its
 * op and sequence, which name nothing the caller enqueued.) */
typedef struct kept_error {
  ferry_status status;
  char message[1024];
} kept_error;

static void keep_error(kept_error *k, ferry_status st) {
  k->status = st;
  snprintf(k->message, sizeof k->message, "%s",
           ferry_last_error()[0] ? ferry_last_error()
                                 : ferry_status_string(st));
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
  ferry_context *ctx = sampler->ctx;
  ferry_status st = ferry__context_check(ctx);
  if (st != FERRY_OK)
    return st;
  int64_t *u = NULL, nu = 0;
  st = unique_seeds(g, seeds, n, &u, &nu);
  if (st != FERRY_OK)
    return st;
  ferry_minibatch *mb = shell_take(sampler);
  if (mb == NULL) {
    free(u);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        __func__);
  }
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
  if (st == FERRY_OK)
    st = held_reserve(ctx, &lane.seeds, (uint64_t)nu * 8u, NULL);
  if (st == FERRY_OK && nu > 0)
    st = ferry_buffer_write_async(lane.stream, lane.seeds.buf, 0, u,
                                  (uint64_t)nu * 8u);
  ferry_buffer *frontier = lane.seeds.buf;
  int64_t fn = nu;
  for (int layer = mb->num_blocks - 1; st == FERRY_OK && layer >= 0; layer--) {
    mb_block *blk = &mb->blocks[layer];
    st = sample_layer(sampler, &lane, &csr, (uint32_t)batch_id, layer, frontier,
                      fn, blk);
    frontier = blk->src.buf;
    fn = blk->num_src;
  }
  kept_error kept;
  if (st != FERRY_OK)
    keep_error(&kept, st);
  if (lane.stream) {
    /* The seeds' upload must be done before `u` goes, and after a failure
     * nothing queued may still use the buffers. */
    ferry_status sync = ferry_stream_synchronize(lane.stream);
    if (st == FERRY_OK && sync != FERRY_OK) {
      st = sync;
      keep_error(&kept, st);
    }
    lane_give(sampler, &lane, st == FERRY_OK);
  }
  free(u);
  if (st != FERRY_OK) {
    ferry__minibatch_recycle(mb);
    return ferry__error(kept.status, "%s", kept.message);
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
  ferry_status st =
      ferry__check_struct_size(__func__, out->struct_size, sizeof(ferry_block),
                               sizeof(ferry_block), "FERRY_BLOCK_INIT");
  if (st != FERRY_OK)
    return st;
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
  st = view(b->indptr.buf, b->num_dst + 1, &r.indptr);
  if (st == FERRY_OK)
    st = view(b->indices.buf, b->num_edges, &r.indices);
  if (st == FERRY_OK)
    st = view(b->src.buf, b->num_src, &r.src_nodes);
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
  return view(mb->blocks[0].src.buf, mb->blocks[0].num_src, out);
}

/* The first version's size: callers built against it pass no less. */
#define SAMPLER_INFO_V1_SIZE                                                   \
  (offsetof(ferry_sampler_info, cached_bytes) + sizeof(uint64_t))

ferry_status ferry_sampler_get_info(const ferry_sampler *sampler,
                                    ferry_sampler_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(sampler);
  FERRY_CHECK_NULL(out);
  ferry_status st = ferry__check_struct_size(
      __func__, out->struct_size, SAMPLER_INFO_V1_SIZE,
      sizeof(ferry_sampler_info), "FERRY_SAMPLER_INFO_INIT");
  if (st != FERRY_OK)
    return st;
  ferry_sampler_info info;
  memset(&info, 0, sizeof info);
  info.num_layers = sampler->opts.num_layers;
  memcpy(info.fanouts, sampler->opts.fanouts, sizeof info.fanouts);
  info.replace = sampler->opts.replace;
  info.seed = sampler->opts.seed;
  info.graph = sampler->graph;
  info.num_nodes = sampler->graph->num_nodes;
  info.num_edges = sampler->graph->num_edges;
  info.id_dtype = sampler->graph->id_dtype;
  /* The pools change under the lock; the sampler is const to the caller
   * only. */
  ferry_sampler *s = (ferry_sampler *)sampler;
  pthread_mutex_lock(&s->lock);
  info.lanes = s->lanes;
  for (int i = 0; i < s->n_idle; i++) {
    const sampler_lane *l = &s->idle[i];
    info.cached_bytes +=
        l->scratch.bytes + l->nbrs.bytes + l->num_src.bytes + l->seeds.bytes;
  }
  for (int i = 0; i < s->n_shells; i++)
    for (int j = 0; j < FERRY_SAMPLER_MAX_LAYERS; j++) {
      const mb_block *b = &s->shells[i]->blocks[j];
      info.cached_bytes += b->indptr.bytes + b->indices.bytes + b->src.bytes;
    }
  pthread_mutex_unlock(&s->lock);
  size_t size = out->struct_size;
  info.struct_size = size;
  memcpy(out, &info, size);
  return FERRY_OK;
}
