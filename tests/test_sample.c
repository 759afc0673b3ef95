/* The neighbor sampler on the backend under test: exact blocks on small
 * hand-made graphs, every block checked against a reference written here
 * (the draws' specification is core/philox.h, itself checked by
 * test_sample_philox; block structure and relabeling are recomputed
 * independently), statistical checks of the draws, and identical output for
 * 1, 2 and 8 cpu threads and between this backend and cpu; the sampler's
 * info, and sampling that does not wait for other streams. */
#include "gate.h"
#include "harness.h"

#include "../core/philox.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

typedef struct host_csr {
  int64_t n;
  int64_t *offsets;
  int64_t *cols; /* int64 copy, whatever the graph's dtype */
} host_csr;

static void host_csr_free(host_csr *h) {
  free(h->offsets);
  free(h->cols);
}

/* A graph on ctx from a host CSR, with column ids of dtype dt. */
static ferry_graph *make_graph(ferry_context *ctx, const host_csr *h,
                               ferry_dtype dt, ferry_memory_space placement) {
  ferry_graph_options o = FERRY_GRAPH_OPTIONS_INIT;
  o.placement = placement;
  int64_t ne = h->offsets[h->n];
  void *cols = malloc((size_t)(ne ? ne : 1) * 8);
  cr_assert_not_null(cols);
  for (int64_t i = 0; i < ne; i++) {
    if (dt == FERRY_DTYPE_I32)
      ((int32_t *)cols)[i] = (int32_t)h->cols[i];
    else
      ((int64_t *)cols)[i] = h->cols[i];
  }
  ferry_graph *g = NULL;
  FERRY_OK_(ferry_graph_create_csr(ctx, &o, h->n, h->offsets, cols, dt, &g));
  free(cols);
  return g;
}

/* Reads a 1-D int64 tensor back to fresh host memory (poisoned first). */
static int64_t *read_tensor(ferry_context *ctx, const ferry_tensor *t) {
  cr_assert_eq(t->dtype, FERRY_DTYPE_I64);
  cr_assert_eq(t->ndim, 1);
  size_t n = (size_t)t->shape[0];
  int64_t *h = malloc((n ? n : 1) * 8);
  cr_assert_not_null(h);
  ferry_test_poison(h, (n ? n : 1) * 8);
  if (n == 0)
    return h;
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  FERRY_OK_(ferry_buffer_read_async(s, t->buffer, t->byte_offset, h, n * 8));
  FERRY_OK_(ferry_stream_synchronize(s));
  ferry_stream_destroy(s);
  return h;
}

typedef struct host_block {
  int64_t num_dst, num_src, num_edges;
  int64_t *indptr, *indices, *src;
} host_block;

typedef struct host_mb {
  int n;
  host_block b[FERRY_SAMPLER_MAX_LAYERS];
} host_mb;

static void host_mb_free(host_mb *m) {
  for (int i = 0; i < m->n; i++) {
    free(m->b[i].indptr);
    free(m->b[i].indices);
    free(m->b[i].src);
  }
  memset(m, 0, sizeof *m);
}

static void read_mb(ferry_context *ctx, ferry_minibatch *mb, host_mb *out) {
  memset(out, 0, sizeof *out);
  FERRY_OK_(ferry_minibatch_num_blocks(mb, &out->n));
  for (int i = 0; i < out->n; i++) {
    ferry_block blk = FERRY_BLOCK_INIT;
    FERRY_OK_(ferry_minibatch_block(mb, i, &blk));
    host_block *h = &out->b[i];
    h->num_dst = blk.num_dst;
    h->num_src = blk.num_src;
    h->num_edges = blk.num_edges;
    cr_assert_eq(blk.indptr.shape[0], blk.num_dst + 1);
    cr_assert_eq(blk.indices.shape[0], blk.num_edges);
    cr_assert_eq(blk.src_nodes.shape[0], blk.num_src);
    h->indptr = read_tensor(ctx, &blk.indptr);
    h->indices = read_tensor(ctx, &blk.indices);
    h->src = read_tensor(ctx, &blk.src_nodes);
  }
  ferry_tensor in;
  FERRY_OK_(ferry_minibatch_input_nodes(mb, &in));
  cr_assert_eq(in.shape[0], out->b[0].num_src);
}

static ferry_minibatch *sample(ferry_sampler *s, const int64_t *seeds,
                               int64_t n, uint64_t batch) {
  ferry_minibatch *mb = NULL;
  FERRY_OK_(ferry_sample(s, seeds, n, batch, &mb));
  return mb;
}

/* The reference: blocks recomputed from the host CSR. */
static void reference(const host_csr *g, const ferry_sampler_options *o,
                      const int64_t *seeds, int64_t n, uint64_t batch,
                      host_mb *out) {
  memset(out, 0, sizeof *out);
  out->n = o->num_layers;
  int64_t *local = malloc((size_t)g->n * 8);
  cr_assert_not_null(local);
  /* Seeds, first occurrence kept. */
  for (int64_t v = 0; v < g->n; v++)
    local[v] = -1;
  int64_t *front = malloc((size_t)(n ? n : 1) * 8), fn = 0;
  for (int64_t i = 0; i < n; i++)
    if (local[seeds[i]] < 0) {
      local[seeds[i]] = fn;
      front[fn++] = seeds[i];
    }
  for (int64_t i = 0; i < fn; i++)
    local[front[i]] = -1;
  for (int layer = o->num_layers - 1; layer >= 0; layer--) {
    host_block *b = &out->b[layer];
    int64_t f = o->fanouts[layer];
    b->num_dst = fn;
    b->indptr = malloc((size_t)(fn + 1) * 8);
    b->indptr[0] = 0;
    int64_t cap = 16, e = 0;
    int64_t *nb = malloc((size_t)cap * 8);
    for (int64_t i = 0; i < fn; i++) {
      int64_t v = front[i], row = g->offsets[v];
      int64_t deg = g->offsets[v + 1] - row;
      int64_t k =
          f < 0 ? deg : (o->replace ? (deg ? f : 0) : (deg < f ? deg : f));
      if (e + k > cap) {
        while (e + k > cap)
          cap *= 2;
        nb = realloc(nb, (size_t)cap * 8);
      }
      ferry_sample_positions(o->seed, (uint32_t)batch, (uint32_t)layer,
                             (uint64_t)v, deg, f, o->replace, nb + e);
      for (int64_t j = 0; j < k; j++) {
        cr_assert(nb[e + j] >= 0 && nb[e + j] < deg);
        nb[e + j] = g->cols[row + nb[e + j]];
      }
      e += k;
      b->indptr[i + 1] = e;
    }
    b->num_edges = e;
    b->src = malloc((size_t)(fn + e + 1) * 8);
    b->indices = malloc((size_t)(e ? e : 1) * 8);
    int64_t m = 0;
    for (int64_t i = 0; i < fn; i++) {
      local[front[i]] = m;
      b->src[m++] = front[i];
    }
    for (int64_t j = 0; j < e; j++) {
      if (local[nb[j]] < 0) {
        local[nb[j]] = m;
        b->src[m++] = nb[j];
      }
      b->indices[j] = local[nb[j]];
    }
    for (int64_t i = 0; i < m; i++)
      local[b->src[i]] = -1;
    b->num_src = m;
    free(nb);
    free(front);
    front = malloc((size_t)(m ? m : 1) * 8);
    memcpy(front, b->src, (size_t)m * 8);
    fn = m;
  }
  free(front);
  free(local);
}

static void expect_same(const host_mb *a, const host_mb *b, const char *what) {
  cr_assert_eq(a->n, b->n, "%s: block counts", what);
  for (int i = 0; i < a->n; i++) {
    const host_block *x = &a->b[i], *y = &b->b[i];
    cr_assert_eq(x->num_dst, y->num_dst, "%s: block %d num_dst %lld vs %lld",
                 what, i, (long long)x->num_dst, (long long)y->num_dst);
    cr_assert_eq(x->num_src, y->num_src, "%s: block %d num_src %lld vs %lld",
                 what, i, (long long)x->num_src, (long long)y->num_src);
    cr_assert_eq(x->num_edges, y->num_edges, "%s: block %d edges", what, i);
    for (int64_t j = 0; j <= x->num_dst; j++)
      cr_assert_eq(x->indptr[j], y->indptr[j], "%s: block %d indptr[%lld]",
                   what, i, (long long)j);
    for (int64_t j = 0; j < x->num_edges; j++)
      cr_assert_eq(x->indices[j], y->indices[j],
                   "%s: block %d indices[%lld] %lld vs %lld", what, i,
                   (long long)j, (long long)x->indices[j],
                   (long long)y->indices[j]);
    for (int64_t j = 0; j < x->num_src; j++)
      cr_assert_eq(x->src[j], y->src[j], "%s: block %d src[%lld]", what, i,
                   (long long)j);
  }
}

/* Structural rules every minibatch obeys. */
static void expect_structure(const host_mb *m, const ferry_sampler_options *o,
                             int simple) {
  for (int i = 0; i < m->n; i++) {
    const host_block *b = &m->b[i];
    cr_assert(b->num_src >= b->num_dst);
    cr_assert_eq(b->indptr[0], 0);
    for (int64_t j = 0; j < b->num_dst; j++)
      cr_assert(b->indptr[j + 1] >= b->indptr[j]);
    cr_assert_eq(b->indptr[b->num_dst], b->num_edges);
    for (int64_t j = 0; j < b->num_edges; j++)
      cr_assert(b->indices[j] >= 0 && b->indices[j] < b->num_src);
    if (i + 1 < m->n) {
      /* This block's dst nodes are the next block's src nodes. */
      cr_assert_eq(b->num_dst, m->b[i + 1].num_src);
      for (int64_t j = 0; j < b->num_dst; j++)
        cr_assert_eq(b->src[j], m->b[i + 1].src[j]);
    }
    if (!o->replace && simple)
      for (int64_t d = 0; d < b->num_dst; d++)
        for (int64_t x = b->indptr[d]; x < b->indptr[d + 1]; x++)
          for (int64_t y = b->indptr[d]; y < x; y++)
            cr_assert_neq(b->indices[x], b->indices[y],
                          "duplicate neighbor without replacement");
  }
}

static void random_csr(host_csr *h, int64_t n, int64_t max_deg, uint64_t *rng) {
  h->n = n;
  h->offsets = malloc((size_t)(n + 1) * 8);
  h->offsets[0] = 0;
  if (max_deg > n)
    max_deg = n;
  for (int64_t v = 0; v < n; v++)
    h->offsets[v + 1] = h->offsets[v] + (int64_t)(ferry_test_rand(rng) %
                                                  (uint64_t)(max_deg + 1));
  int64_t ne = h->offsets[n];
  h->cols = malloc((size_t)(ne ? ne : 1) * 8);
  /* Distinct ids within a row (a simple graph, so that "no duplicate
   * neighbor without replacement" can be checked on ids). */
  for (int64_t v = 0; v < n; v++)
    for (int64_t i = h->offsets[v]; i < h->offsets[v + 1]; i++) {
      int fresh;
      do {
        h->cols[i] = (int64_t)(ferry_test_rand(rng) % (uint64_t)n);
        fresh = 1;
        for (int64_t j = h->offsets[v]; j < i; j++)
          fresh &= h->cols[j] != h->cols[i];
      } while (!fresh);
    }
}

static void check_case(ferry_context *ctx, const host_csr *h, ferry_dtype dt,
                       const ferry_sampler_options *o, const int64_t *seeds,
                       int64_t n, uint64_t batch, const char *what) {
  ferry_graph *g = make_graph(ctx, h, dt, FERRY_MEMORY_PINNED_HOST);
  ferry_sampler *s = NULL;
  FERRY_OK_(ferry_sampler_create(g, o, &s));
  ferry_minibatch *mb = sample(s, seeds, n, batch);
  host_mb got, want;
  read_mb(ctx, mb, &got);
  reference(h, o, seeds, n, batch, &want);
  expect_same(&got, &want, what);
  expect_structure(&got, o, 1);
  host_mb_free(&got);
  host_mb_free(&want);
  ferry_minibatch_destroy(mb);
  ferry_sampler_destroy(s);
  ferry_graph_destroy(g);
}

/* ---- exact blocks on a hand-made graph ------------------------------------
 */

Test(sample, exact_small_graph) {
  ferry_context *ctx = ferry_test_context();
  /* 0 -> 1 2 3;  1 -> 0;  2 -> (none, isolated);  3 -> 3 (self-loop) 4;
   * 4 -> 0 1 */
  int64_t off[] = {0, 3, 4, 4, 6, 8};
  int64_t cols[] = {1, 2, 3, 0, 3, 4, 0, 1};
  host_csr h = {5, off, cols};
  ferry_dtype dts[] = {FERRY_DTYPE_I32, FERRY_DTYPE_I64};
  for (int d = 0; d < 2; d++) {
    ferry_graph *g = make_graph(ctx, &h, dts[d], FERRY_MEMORY_PINNED_HOST);
    ferry_sampler_options o = FERRY_SAMPLER_OPTIONS_INIT;
    o.num_layers = 2;
    o.fanouts[0] = -1;
    o.fanouts[1] = 3; /* >= every degree: all neighbors, no randomness */
    ferry_sampler *s = NULL;
    FERRY_OK_(ferry_sampler_create(g, &o, &s));
    int64_t seeds[] = {3, 0, 3}; /* the repeated seed is kept once */
    ferry_minibatch *mb = sample(s, seeds, 3, 7);
    host_mb m;
    read_mb(ctx, mb, &m);
    cr_assert_eq(m.n, 2);
    /* Block 1 (seeds): dst 3, 0; edges 3->{3,4}, 0->{1,2,3}. Sources in
     * first-occurrence order: 3 0 4 1 2. */
    const host_block *b1 = &m.b[1];
    cr_assert_eq(b1->num_dst, 2);
    cr_assert_eq(b1->num_src, 5);
    int64_t e_src[] = {3, 0, 4, 1, 2}, e_ptr[] = {0, 2, 5},
            e_idx[] = {0, 2, 3, 4, 0};
    for (int i = 0; i < 5; i++)
      cr_assert_eq(b1->src[i], e_src[i], "src[%d] = %lld", i,
                   (long long)b1->src[i]);
    for (int i = 0; i < 3; i++)
      cr_assert_eq(b1->indptr[i], e_ptr[i]);
    for (int i = 0; i < 5; i++)
      cr_assert_eq(b1->indices[i], e_idx[i], "indices[%d]", i);
    /* Block 0 (fanout -1) over 3 0 4 1 2: 3->{3,4} 0->{1,2,3} 4->{0,1}
     * 1->{0} 2->{}; no new nodes. */
    const host_block *b0 = &m.b[0];
    cr_assert_eq(b0->num_dst, 5);
    cr_assert_eq(b0->num_src, 5);
    int64_t z_ptr[] = {0, 2, 5, 7, 8, 8}, z_idx[] = {0, 2, 3, 4, 0, 1, 3, 1};
    for (int i = 0; i < 6; i++)
      cr_assert_eq(b0->indptr[i], z_ptr[i]);
    for (int i = 0; i < 8; i++)
      cr_assert_eq(b0->indices[i], z_idx[i], "block 0 indices[%d]", i);
    host_mb_free(&m);
    ferry_minibatch_destroy(mb);

    /* Empty seed list: empty blocks. */
    mb = sample(s, NULL, 0, 0);
    read_mb(ctx, mb, &m);
    for (int i = 0; i < 2; i++)
      cr_assert(m.b[i].num_dst == 0 && m.b[i].num_src == 0 &&
                m.b[i].num_edges == 0);
    host_mb_free(&m);
    ferry_minibatch_destroy(mb);
    /* Bad seeds and batch ids are refused up front. */
    int64_t bad[] = {0, 5};
    ferry_minibatch *none = NULL;
    FERRY_EXPECT(ferry_sample(s, bad, 2, 0, &none), FERRY_ERR_OUT_OF_RANGE);
    FERRY_EXPECT_MESSAGE("seeds[1]");
    FERRY_EXPECT(ferry_sample(s, seeds, 1, (uint64_t)1 << 32, &none),
                 FERRY_ERR_OUT_OF_RANGE);
    cr_assert_null(none);
    ferry_sampler_destroy(s);
    ferry_graph_destroy(g);
  }
  ferry_context_destroy(ctx);
}

Test(sample, bad_options) {
  ferry_context *ctx = ferry_test_context();
  int64_t off[] = {0, 1, 1};
  int64_t cols[] = {1};
  host_csr h = {2, off, cols};
  ferry_graph *g =
      make_graph(ctx, &h, FERRY_DTYPE_I32, FERRY_MEMORY_PINNED_HOST);
  ferry_sampler_options o = FERRY_SAMPLER_OPTIONS_INIT;
  ferry_sampler *s = NULL;
  FERRY_EXPECT(ferry_sampler_create(g, &o, &s), FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("num_layers");
  o.num_layers = 2;
  o.fanouts[0] = 5;
  o.fanouts[1] = 0;
  FERRY_EXPECT(ferry_sampler_create(g, &o, &s), FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("fanouts[1]");
  o.struct_size = 3;
  FERRY_EXPECT(ferry_sampler_create(g, &o, &s), FERRY_ERR_STRUCT_SIZE);
  cr_assert_null(s);
  ferry_graph_destroy(g);
  ferry_context_destroy(ctx);
}

/* ---- random graphs against the reference ----------------------------------
 */

Test(sample, random_graphs_match_reference) {
  ferry_context *ctx = ferry_test_context();
  uint64_t rng = 42;
  const int64_t sizes[] = {1, 2, 7, 97, 1000};
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    host_csr h;
    random_csr(&h, sizes[si], si == 4 ? 40 : 9, &rng);
    for (int replace = 0; replace <= 1; replace++)
      for (int d = 0; d < 2; d++) {
        ferry_sampler_options o = FERRY_SAMPLER_OPTIONS_INIT;
        o.num_layers = 3;
        o.fanouts[0] = 4;
        o.fanouts[1] = -1;
        o.fanouts[2] = 3;
        o.replace = replace;
        o.seed = 1234 + si;
        int64_t n = sizes[si] < 31 ? sizes[si] : 31;
        int64_t seeds[64];
        for (int64_t i = 0; i < n; i++)
          seeds[i] = (int64_t)(ferry_test_rand(&rng) % (uint64_t)sizes[si]);
        char what[64];
        snprintf(what, sizeof what, "n=%lld replace=%d dtype=%d",
                 (long long)sizes[si], replace, d);
        check_case(ctx, &h, d ? FERRY_DTYPE_I64 : FERRY_DTYPE_I32, &o, seeds, n,
                   3 + si, what);
      }
    host_csr_free(&h);
  }
  ferry_context_destroy(ctx);
}

/* Degree <= fanout keeps all (without replacement); with replacement every
 * node of degree > 0 gets exactly fanout draws, isolated nodes none; a node
 * of degree 1M costs O(fanout). */
Test(sample, counts_and_big_degree) {
  ferry_context *ctx = ferry_test_context();
  const int64_t big = 1000000;
  host_csr h;
  h.n = big + 3;
  h.offsets = malloc((size_t)(h.n + 1) * 8);
  h.cols = malloc((size_t)(big + 4) * 8);
  /* node 0: neighbors 1..big; node 1: 0 and itself; node 2: isolated;
   * others: neighbor 0. */
  h.offsets[0] = 0;
  for (int64_t i = 0; i < big; i++)
    h.cols[i] = i + 1;
  h.offsets[1] = big;
  h.cols[big] = 0;
  h.cols[big + 1] = 1;
  h.offsets[2] = big + 2;
  h.offsets[3] = big + 2;
  int64_t e = big + 2;
  for (int64_t v = 3; v < h.n; v++) {
    h.cols[e] = 0;
    (void)0;
    if (v < 4)
      e++;
    h.offsets[v + 1] = e;
  }
  int64_t seeds[] = {0, 1, 2, 3};
  for (int replace = 0; replace <= 1; replace++) {
    ferry_sampler_options o = FERRY_SAMPLER_OPTIONS_INIT;
    o.num_layers = 1;
    o.fanouts[0] = 10;
    o.replace = replace;
    o.seed = 99;
    check_case(ctx, &h, FERRY_DTYPE_I32, &o, seeds, 4, 5, "big degree");
    ferry_graph *g =
        make_graph(ctx, &h, FERRY_DTYPE_I32, FERRY_MEMORY_PINNED_HOST);
    ferry_sampler *s = NULL;
    FERRY_OK_(ferry_sampler_create(g, &o, &s));
    ferry_minibatch *mb = sample(s, seeds, 4, 5);
    host_mb m;
    read_mb(ctx, mb, &m);
    const host_block *b = &m.b[0];
    int64_t want[] = {10, replace ? 10 : 2, 0, replace ? 10 : 1};
    for (int i = 0; i < 4; i++)
      cr_assert_eq(b->indptr[i + 1] - b->indptr[i], want[i],
                   "replace=%d node %d: %lld neighbors", replace, i,
                   (long long)(b->indptr[i + 1] - b->indptr[i]));
    host_mb_free(&m);
    ferry_minibatch_destroy(mb);
    ferry_sampler_destroy(s);
    ferry_graph_destroy(g);
  }
  host_csr_free(&h);
  ferry_context_destroy(ctx);
}

/* ---- equal neighbor probability ------------------------------------------ */

/* The chi-square statistic of counts against equal expectation. */
static double chi2(const double *count, int k) {
  double total = 0, x = 0;
  for (int i = 0; i < k; i++)
    total += count[i];
  double expect = total / k;
  for (int i = 0; i < k; i++)
    x += (count[i] - expect) * (count[i] - expect) / expect;
  return x;
}

Test(sample, chi_square_equal_probability) {
  ferry_context *ctx = ferry_test_context();
  /* 400 hubs, each with DEG private neighbors: position j of hub h is node
   * HUBS + h * DEG + j. */
  enum { HUBS = 400, DEG = 20, FAN = 5, BATCHES = 12 };
  host_csr h;
  h.n = HUBS + HUBS * DEG;
  h.offsets = calloc((size_t)h.n + 1, 8);
  h.cols = malloc((size_t)HUBS * DEG * 8);
  for (int64_t v = 0; v < h.n; v++)
    h.offsets[v + 1] = h.offsets[v] + (v < HUBS ? DEG : 0);
  for (int64_t i = 0; i < HUBS * DEG; i++)
    h.cols[i] = HUBS + i;
  ferry_graph *g =
      make_graph(ctx, &h, FERRY_DTYPE_I32, FERRY_MEMORY_PINNED_HOST);
  int64_t seeds[HUBS];
  for (int i = 0; i < HUBS; i++)
    seeds[i] = i;
  /* Upper 1e-6 tail of chi-square with 19 degrees of freedom: 64.2. */
  const double critical = 64.5;
  /* A first-k sampler would always take positions 0..FAN-1: the test must
   * reject it. */
  double firstk[DEG] = {0};
  for (int j = 0; j < FAN; j++)
    firstk[j] = (double)HUBS * BATCHES;
  cr_assert_gt(chi2(firstk, DEG), critical);
  for (int replace = 0; replace <= 1; replace++) {
    ferry_sampler_options o = FERRY_SAMPLER_OPTIONS_INIT;
    o.num_layers = 1;
    o.fanouts[0] = FAN;
    o.replace = replace;
    o.seed = 2024;
    ferry_sampler *s = NULL;
    FERRY_OK_(ferry_sampler_create(g, &o, &s));
    double count[DEG] = {0};
    for (int b = 0; b < BATCHES; b++) {
      ferry_minibatch *mb = sample(s, seeds, HUBS, (uint64_t)b);
      host_mb m;
      read_mb(ctx, mb, &m);
      const host_block *blk = &m.b[0];
      cr_assert_eq(blk->num_edges, HUBS * FAN);
      for (int64_t d = 0; d < HUBS; d++)
        for (int64_t x = blk->indptr[d]; x < blk->indptr[d + 1]; x++) {
          int64_t nb = blk->src[blk->indices[x]];
          int64_t pos = nb - HUBS - blk->src[d] * DEG;
          cr_assert(pos >= 0 && pos < DEG);
          count[pos] += 1;
        }
      host_mb_free(&m);
      ferry_minibatch_destroy(mb);
    }
    double x = chi2(count, DEG);
    cr_assert_lt(x, critical, "replace=%d: chi-square %.2f >= %.1f", replace, x,
                 critical);
    ferry_sampler_destroy(s);
  }
  ferry_graph_destroy(g);
  host_csr_free(&h);
  ferry_context_destroy(ctx);
}

/* ---- the same sample everywhere ------------------------------------------ */

static ferry_context *cpu_context(int threads) {
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = "cpu";
  o.num_threads = threads;
  ferry_context *ctx = NULL;
  FERRY_OK_(ferry_context_create(&o, &ctx));
  return ctx;
}

static ferry_graph *rmat16(ferry_context *ctx, ferry_dtype dt) {
  ferry_graph_options go = FERRY_GRAPH_OPTIONS_INIT;
  go.id_dtype = dt;
  ferry_rmat_options ro = FERRY_RMAT_OPTIONS_INIT;
  ro.scale = 16;
  ro.seed = 5;
  ferry_graph *g = NULL;
  FERRY_OK_(ferry_graph_create_rmat(ctx, &go, &ro, &g));
  return g;
}

/* 100 batches of R-MAT scale 16 on `ctx` compared with those of `ref`. */
static void compare_contexts(ferry_context *ctx, ferry_context *ref,
                             ferry_dtype dt, const char *what) {
  ferry_graph *g = rmat16(ctx, dt), *gr = rmat16(ref, FERRY_DTYPE_I64);
  uint64_t rng = 3;
  for (int replace = 0; replace <= 1; replace++) {
    ferry_sampler_options o = FERRY_SAMPLER_OPTIONS_INIT;
    o.num_layers = 2;
    o.fanouts[0] = 10;
    o.fanouts[1] = 5;
    o.seed = 77;
    o.replace = replace;
    ferry_sampler *s = NULL, *sr = NULL;
    FERRY_OK_(ferry_sampler_create(g, &o, &s));
    FERRY_OK_(ferry_sampler_create(gr, &o, &sr));
    for (int b = 0; b < 50; b++) {
      int64_t seeds[128];
      for (int i = 0; i < 128; i++)
        seeds[i] = (int64_t)(ferry_test_rand(&rng) % 65536);
      ferry_minibatch *m1 = sample(s, seeds, 128, (uint64_t)b);
      ferry_minibatch *m2 = sample(sr, seeds, 128, (uint64_t)b);
      host_mb a, c;
      read_mb(ctx, m1, &a);
      read_mb(ref, m2, &c);
      expect_same(&a, &c, what);
      if (b == 0)
        expect_structure(&a, &o, 0); /* R-MAT has multi-edges */
      host_mb_free(&a);
      host_mb_free(&c);
      ferry_minibatch_destroy(m1);
      ferry_minibatch_destroy(m2);
    }
    ferry_sampler_destroy(s);
    ferry_sampler_destroy(sr);
  }
  ferry_graph_destroy(g);
  ferry_graph_destroy(gr);
}

Test(sample, identical_across_threads_and_backends) {
  ferry_context *ctx = ferry_test_context();
  ferry_context *ref = cpu_context(1);
  if (strcmp(ferry_test_backend(), "cpu") == 0) {
    ferry_context *c2 = cpu_context(2), *c8 = cpu_context(8);
    compare_contexts(c2, ref, FERRY_DTYPE_I32, "2 threads vs 1");
    compare_contexts(c8, ref, FERRY_DTYPE_I64, "8 threads vs 1");
    ferry_context_destroy(c2);
    ferry_context_destroy(c8);
  } else {
    compare_contexts(ctx, ref, FERRY_DTYPE_I32, "backend vs cpu (i32)");
    compare_contexts(ctx, ref, FERRY_DTYPE_I64, "backend vs cpu (i64)");
  }
  ferry_context_destroy(ref);
  ferry_context_destroy(ctx);
}

/* A graph copied to device memory samples the same as one in pinned host
 * memory. */
Test(sample, device_placement) {
  ferry_context *ctx = ferry_test_context();
  uint64_t rng = 11;
  host_csr h;
  random_csr(&h, 301, 12, &rng);
  ferry_graph *g1 = make_graph(ctx, &h, FERRY_DTYPE_I64, FERRY_MEMORY_DEVICE);
  ferry_sampler_options o = FERRY_SAMPLER_OPTIONS_INIT;
  o.num_layers = 2;
  o.fanouts[0] = 3;
  o.fanouts[1] = 6;
  o.seed = 5;
  ferry_sampler *s = NULL;
  FERRY_OK_(ferry_sampler_create(g1, &o, &s));
  int64_t seeds[] = {300, 0, 17, 17, 150};
  ferry_minibatch *mb = sample(s, seeds, 5, 9);
  host_mb got, want;
  read_mb(ctx, mb, &got);
  reference(&h, &o, seeds, 5, 9, &want);
  expect_same(&got, &want, "device placement");
  host_mb_free(&got);
  host_mb_free(&want);
  ferry_minibatch_destroy(mb);
  ferry_sampler_destroy(s);
  ferry_graph_destroy(g1);
  host_csr_free(&h);
  ferry_context_destroy(ctx);
}

/* Several threads sampling with one sampler at once get what one thread
 * gets. */
typedef struct worker {
  ferry_sampler *s;
  const int64_t *seeds;
  int first;
  ferry_minibatch *mb[4];
  ferry_status st;
} worker;

static void *worker_fn(void *arg) {
  worker *w = arg;
  w->st = FERRY_OK;
  for (int i = 0; i < 4 && w->st == FERRY_OK; i++)
    w->st =
        ferry_sample(w->s, w->seeds, 64, (uint64_t)(w->first + i), &w->mb[i]);
  return NULL;
}

/* A random graph of n nodes (degrees 0..max_deg; h, its host copy) with
 * int32 ids in pinned memory, and k random seeds of it. */
static ferry_graph *random_graph(ferry_context *ctx, host_csr *h, int64_t n,
                                 int64_t max_deg, uint64_t rng, int64_t *seeds,
                                 int k) {
  random_csr(h, n, max_deg, &rng);
  for (int i = 0; i < k; i++)
    seeds[i] = (int64_t)(ferry_test_rand(&rng) % (uint64_t)n);
  return make_graph(ctx, h, FERRY_DTYPE_I32, FERRY_MEMORY_PINNED_HOST);
}

Test(sample, concurrent_callers) {
  ferry_context *ctx = ferry_test_context();
  host_csr h;
  int64_t seeds[64];
  ferry_graph *g = random_graph(ctx, &h, 5000, 30, 21, seeds, 64);
  ferry_sampler_options o = FERRY_SAMPLER_OPTIONS_INIT;
  o.num_layers = 2;
  o.fanouts[0] = 4;
  o.fanouts[1] = 8;
  o.seed = 3;
  ferry_sampler *s = NULL;
  FERRY_OK_(ferry_sampler_create(g, &o, &s));
  worker w[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].s = s;
    w[i].seeds = seeds;
    w[i].first = 4 * i;
    cr_assert_eq(pthread_create(&t[i], NULL, worker_fn, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(w[i].st, FERRY_OK);
    for (int j = 0; j < 4; j++) {
      host_mb got, want;
      read_mb(ctx, w[i].mb[j], &got);
      reference(&h, &o, seeds, 64, (uint64_t)(4 * i + j), &want);
      expect_same(&got, &want, "concurrent");
      host_mb_free(&got);
      host_mb_free(&want);
      ferry_minibatch_destroy(w[i].mb[j]);
    }
  }
  ferry_sampler_destroy(s);
  ferry_graph_destroy(g);
  host_csr_free(&h);
  ferry_context_destroy(ctx);
}

/* ---- introspection ------------------------------------------------------- */

Test(sample, get_info) {
  ferry_context *ctx = ferry_test_context();
  int64_t off[] = {0, 3, 4, 4, 6, 8};
  int64_t cols[] = {1, 2, 3, 0, 3, 4, 0, 1};
  host_csr h = {5, off, cols};
  ferry_graph *g = make_graph(ctx, &h, FERRY_DTYPE_I64, FERRY_MEMORY_DEVICE);
  ferry_sampler_options o = FERRY_SAMPLER_OPTIONS_INIT;
  o.num_layers = 3;
  o.fanouts[0] = 4;
  o.fanouts[1] = -1;
  o.fanouts[2] = 2;
  o.fanouts[5] = 77; /* past num_layers: ignored, reported as 0 */
  o.replace = 1;
  o.seed = 0xFEEDFACE12345ull;
  ferry_sampler *s = NULL;
  FERRY_OK_(ferry_sampler_create(g, &o, &s));
  ferry_sampler_info info;
  ferry_test_poison(&info, sizeof info); /* every field must be written */
  info.struct_size = sizeof info;
  FERRY_OK_(ferry_sampler_get_info(s, &info));
  cr_assert_eq(info.struct_size, sizeof info);
  cr_assert_eq(info.num_layers, 3);
  int64_t want[FERRY_SAMPLER_MAX_LAYERS] = {4, -1, 2};
  for (int i = 0; i < FERRY_SAMPLER_MAX_LAYERS; i++)
    cr_assert_eq(info.fanouts[i], want[i], "fanouts[%d] = %lld", i,
                 (long long)info.fanouts[i]);
  cr_assert_eq(info.replace, 1);
  cr_assert_eq(info.seed, 0xFEEDFACE12345ull);
  cr_assert_eq(info.graph, g);
  cr_assert_eq(info.num_nodes, 5);
  cr_assert_eq(info.num_edges, 8);
  cr_assert_eq(info.id_dtype, FERRY_DTYPE_I64);
  cr_assert_eq(info.lanes, 0, "nothing sampled yet");
  cr_assert_eq(info.cached_bytes, 0u);
  /* A call leaves one lane and its temporaries for the next. */
  int64_t seeds[] = {4, 0};
  ferry_minibatch_destroy(sample(s, seeds, 2, 1));
  FERRY_OK_(ferry_sampler_get_info(s, &info));
  cr_assert_eq(info.lanes, 1);
  cr_assert_gt(info.cached_bytes, 0u);
  /* Bad input. */
  FERRY_EXPECT(ferry_sampler_get_info(NULL, &info), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("sampler");
  FERRY_EXPECT(ferry_sampler_get_info(s, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("out");
  ferry_sampler_info bad = FERRY_SAMPLER_INFO_INIT;
  bad.struct_size = sizeof bad - 1;
  FERRY_EXPECT(ferry_sampler_get_info(s, &bad), FERRY_ERR_STRUCT_SIZE);
  FERRY_EXPECT_MESSAGE("FERRY_SAMPLER_INFO_INIT");
  bad.struct_size = sizeof bad + 8;
  FERRY_EXPECT(ferry_sampler_get_info(s, &bad), FERRY_ERR_STRUCT_SIZE);
  ferry_sampler_destroy(s);
  ferry_graph_destroy(g);
  ferry_context_destroy(ctx);
}

/* ---- sampling does not wait for the caller's other streams --------------- */

/* Freeing a buffer waits for the context's queued work (on the cpu backend
 * it drains every stream), so a ferry_sample that freed its temporaries
 * waited for whatever the caller had queued elsewhere, e.g. the model's
 * compute. In steady state (sizes no larger than an earlier call's) it
 * creates and frees no buffer: a gate holding another stream stays closed
 * while ferry_sample runs, and the sampler keeps exactly what it had. */
Test(sample, steady_state_does_not_wait_for_other_streams) {
  ferry_context *ctx = ferry_test_context();
  host_csr h;
  int64_t seeds[97];
  ferry_graph *g = random_graph(ctx, &h, 3001, 17, 31, seeds, 97);
  ferry_sampler_options o = {.struct_size = sizeof o,
                             .num_layers = 3,
                             .fanouts = {4, 3, 6},
                             .seed = 8};
  ferry_sampler *s = NULL;
  FERRY_OK_(ferry_sampler_create(g, &o, &s));
  /* The first call makes the lane and sizes its buffers. */
  ferry_minibatch_destroy(sample(s, seeds, 97, 5));
  ferry_sampler_info before = FERRY_SAMPLER_INFO_INIT;
  FERRY_OK_(ferry_sampler_get_info(s, &before));

  ferry_stream *other = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &other));
  ferry_test_gate gate;
  FERRY_OK_(ferry_test_gate_close(&gate, other, FERRY_TEST_GATE_LIMIT_MS));
  /* The same seeds, then a subset: a node's draws depend on the node alone,
   * so every layer of the subset's sample is no larger. */
  ferry_minibatch *same = NULL, *fewer = NULL;
  ferry_status st1 = ferry_sample(s, seeds, 97, 5, &same);
  ferry_status st2 = ferry_sample(s, seeds + 40, 23, 5, &fewer);
  int held = ferry_test_gate_open(&gate, other);
  cr_assert_eq(st1, FERRY_OK, "%s", ferry_last_error());
  cr_assert_eq(st2, FERRY_OK, "%s", ferry_last_error());
  cr_assert(held, "ferry_sample waited for work queued on another stream");
  ferry_sampler_info after = FERRY_SAMPLER_INFO_INIT;
  FERRY_OK_(ferry_sampler_get_info(s, &after));
  cr_assert_eq(after.lanes, 1);
  cr_assert_eq(after.cached_bytes, before.cached_bytes,
               "the temporaries were regrown: %llu bytes, then %llu",
               (unsigned long long)before.cached_bytes,
               (unsigned long long)after.cached_bytes);
  /* And the samples are right, read after the sampler is gone: a minibatch
   * may outlive its sampler. */
  ferry_sampler_destroy(s);
  const int64_t *from[2] = {seeds, seeds + 40};
  const int64_t count[2] = {97, 23};
  ferry_minibatch *mbs[2] = {same, fewer};
  for (int i = 0; i < 2; i++) {
    host_mb got, want;
    read_mb(ctx, mbs[i], &got);
    reference(&h, &o, from[i], count[i], 5, &want);
    expect_same(&got, &want, i ? "subset" : "same seeds");
    host_mb_free(&got);
    host_mb_free(&want);
    ferry_minibatch_destroy(mbs[i]);
  }
  ferry_stream_destroy(other);
  ferry_graph_destroy(g);
  host_csr_free(&h);
  ferry_context_destroy(ctx);
}
