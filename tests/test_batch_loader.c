/* The minibatch loader (include/ferry/loader.h) on the backend under test.
 * Every batch it yields is checked against sequential calls: its blocks
 * against ferry_sample of the same seeds and sampling id, its features
 * against the host copy of the table's rows (an exact reference written
 * here). Orders FIXED, SHUFFLE and SELECTOR; depths 1, 2, 4; early stops and
 * cancellation; a gather error (a table shorter than the graph) and a
 * selector error reaching the caller; a sampler or selector that does not
 * fit the loader; batches prepared while the caller's compute runs; bad
 * arguments. */
#include "gate.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures ------------------------------------------------------------ */

typedef struct fixture {
  ferry_context *ctx;
  ferry_stream *compute;
  ferry_graph *graph;
  ferry_sampler *sampler;
  ferry_table *table;
  int64_t num_nodes;
  uint64_t rows, cols;
  float *host_rows; /* rows x cols: the table's contents */
} fixture;

/* A random CSR graph of n nodes (degrees 0..12, awkward on purpose), a
 * sampler with fanouts (3, 5), and an f32 table of `rows` x `cols`. */
static fixture fixture_open(int64_t n, uint64_t rows, uint64_t cols,
                            uint64_t seed) {
  fixture f;
  memset(&f, 0, sizeof f);
  f.ctx = ferry_test_context();
  f.num_nodes = n;
  f.rows = rows;
  f.cols = cols;
  uint64_t rng = seed;
  int64_t *offsets = malloc((size_t)(n + 1) * sizeof *offsets);
  cr_assert_not_null(offsets);
  offsets[0] = 0;
  for (int64_t v = 0; v < n; v++)
    offsets[v + 1] = offsets[v] + (int64_t)(ferry_test_rand(&rng) % 13);
  int64_t ne = offsets[n];
  int32_t *cols32 = malloc((size_t)(ne ? ne : 1) * sizeof *cols32);
  cr_assert_not_null(cols32);
  for (int64_t e = 0; e < ne; e++)
    cols32[e] = (int32_t)(ferry_test_rand(&rng) % (uint64_t)n);
  FERRY_OK_(ferry_graph_create_csr(f.ctx, NULL, n, offsets, cols32,
                                   FERRY_DTYPE_I32, &f.graph));
  free(offsets);
  free(cols32);
  ferry_sampler_options so = FERRY_SAMPLER_OPTIONS_INIT;
  so.num_layers = 2;
  so.fanouts[0] = 3;
  so.fanouts[1] = 5;
  so.seed = seed * 7 + 1;
  FERRY_OK_(ferry_sampler_create(f.graph, &so, &f.sampler));
  f.host_rows = malloc(rows * cols * sizeof(float));
  cr_assert_not_null(f.host_rows);
  for (uint64_t i = 0; i < rows * cols; i++)
    f.host_rows[i] = (float)ferry_test_uniform(&rng);
  FERRY_OK_(
      ferry_table_create(f.ctx, rows, cols, FERRY_DTYPE_F32, NULL, &f.table));
  FERRY_OK_(ferry_table_write(f.table, 0, rows, f.host_rows));
  FERRY_OK_(ferry_stream_create(f.ctx, &f.compute));
  return f;
}

static void fixture_close(fixture *f) {
  ferry_stream_destroy(f->compute);
  ferry_table_destroy(f->table);
  ferry_sampler_destroy(f->sampler);
  ferry_graph_destroy(f->graph);
  free(f->host_rows);
  ferry_context_destroy(f->ctx);
}

static int64_t *seed_list(int64_t n, int64_t num_nodes, uint64_t seed) {
  int64_t *s = malloc((size_t)(n ? n : 1) * sizeof *s);
  cr_assert_not_null(s);
  uint64_t rng = seed;
  for (int64_t i = 0; i < n; i++)
    s[i] = (int64_t)(ferry_test_rand(&rng) % (uint64_t)num_nodes);
  return s;
}

/* Bytes of a tensor's view read back to fresh (poisoned) host memory, in
 * order after the work queued on `s`. */
static void *read_back(ferry_stream *s, const ferry_tensor *t, size_t bytes) {
  void *h = malloc(bytes ? bytes : 1);
  cr_assert_not_null(h);
  ferry_test_poison(h, bytes ? bytes : 1);
  if (bytes == 0)
    return h;
  if (t->buffer != NULL)
    FERRY_OK_(ferry_buffer_read_async(s, t->buffer, t->byte_offset, h, bytes));
  else
    memcpy(h, (const char *)t->host + t->byte_offset, bytes);
  FERRY_OK_(ferry_stream_synchronize(s));
  return h;
}

static void *read_i64(ferry_stream *s, const ferry_tensor *t) {
  cr_assert_eq(t->dtype, FERRY_DTYPE_I64);
  return read_back(s, t, (size_t)t->shape[0] * 8);
}

/* The batch's blocks equal those of a sequential ferry_sample of the same
 * seeds and sampling id; its features equal the table's rows of block 0's
 * source nodes. */
static void check_batch(fixture *f, ferry_batch *b, const char *what) {
  ferry_batch_info bi = FERRY_BATCH_INFO_INIT;
  FERRY_OK_(ferry_batch_get_info(b, &bi));
  ferry_minibatch *ref = NULL;
  FERRY_OK_(
      ferry_sample(f->sampler, bi.seeds, bi.num_seeds, bi.sample_id, &ref));
  int nb = 0, nr = 0;
  FERRY_OK_(ferry_minibatch_num_blocks(bi.minibatch, &nb));
  FERRY_OK_(ferry_minibatch_num_blocks(ref, &nr));
  cr_assert_eq(nb, nr, "%s: blocks", what);
  for (int i = 0; i < nb; i++) {
    ferry_block x = FERRY_BLOCK_INIT, y = FERRY_BLOCK_INIT;
    FERRY_OK_(ferry_minibatch_block(bi.minibatch, i, &x));
    FERRY_OK_(ferry_minibatch_block(ref, i, &y));
    cr_assert_eq(x.num_dst, y.num_dst, "%s: block %d num_dst", what, i);
    cr_assert_eq(x.num_src, y.num_src, "%s: block %d num_src", what, i);
    cr_assert_eq(x.num_edges, y.num_edges, "%s: block %d edges", what, i);
    const ferry_tensor *tx[3] = {&x.indptr, &x.indices, &x.src_nodes};
    const ferry_tensor *ty[3] = {&y.indptr, &y.indices, &y.src_nodes};
    for (int k = 0; k < 3; k++) {
      int64_t *a = read_i64(f->compute, tx[k]);
      int64_t *c = read_i64(f->compute, ty[k]);
      cr_assert_eq(tx[k]->shape[0], ty[k]->shape[0]);
      cr_assert(memcmp(a, c, (size_t)tx[k]->shape[0] * 8) == 0,
                "%s: block %d tensor %d differs", what, i, k);
      free(a);
      free(c);
    }
  }
  ferry_tensor in;
  FERRY_OK_(ferry_minibatch_input_nodes(bi.minibatch, &in));
  cr_assert_eq(in.shape[0], bi.num_input_nodes, "%s: input nodes", what);
  int64_t *ids = read_i64(f->compute, &in);
  cr_assert_eq(bi.features.dtype, FERRY_DTYPE_F32);
  cr_assert_eq(bi.features.ndim, 2);
  cr_assert_eq(bi.features.shape[0], bi.num_input_nodes);
  cr_assert_eq((uint64_t)bi.features.shape[1], f->cols);
  size_t bytes = (size_t)bi.num_input_nodes * f->cols * sizeof(float);
  float *feat = read_back(f->compute, &bi.features, bytes);
  for (int64_t r = 0; r < bi.num_input_nodes; r++) {
    cr_assert(ids[r] >= 0 && (uint64_t)ids[r] < f->rows);
    cr_assert(memcmp(feat + (size_t)r * f->cols,
                     f->host_rows + (size_t)ids[r] * f->cols,
                     f->cols * sizeof(float)) == 0,
              "%s: features of row %lld (node %lld) differ", what, (long long)r,
              (long long)ids[r]);
  }
  free(feat);
  free(ids);
  ferry_minibatch_destroy(ref);
}

static ferry_loader *make_loader(fixture *f, const int64_t *seeds, int64_t n,
                                 const ferry_loader_options *o) {
  ferry_loader *l = NULL;
  FERRY_OK_(
      ferry_loader_create(f->graph, f->table, f->sampler, seeds, n, o, &l));
  return l;
}

/* Runs one epoch: checks every batch; returns how many; writes the ids. */
static int64_t run_epoch(fixture *f, ferry_loader *l, uint64_t epoch,
                         int64_t *ids, int64_t max, const char *what) {
  FERRY_OK_(ferry_loader_start_epoch(l, epoch));
  int64_t k = 0;
  for (;;) {
    ferry_batch *b = NULL;
    int done = -1;
    FERRY_OK_(ferry_loader_next(l, f->compute, &b, &done));
    if (done) {
      cr_assert_null(b);
      break;
    }
    ferry_batch_info bi = FERRY_BATCH_INFO_INIT;
    FERRY_OK_(ferry_batch_get_info(b, &bi));
    cr_assert_eq(bi.step, k, "%s: step", what);
    cr_assert_eq(bi.epoch, epoch);
    ferry_loader_info li = FERRY_LOADER_INFO_INIT;
    FERRY_OK_(ferry_loader_get_info(l, &li));
    cr_assert_eq(bi.sample_id,
                 (uint32_t)(epoch * (uint64_t)li.num_batches + (uint64_t)k),
                 "%s: the sampling id is epoch * num_batches + step", what);
    cr_assert(k < max, "%s: too many batches", what);
    ids[k++] = bi.id;
    char w[128];
    snprintf(w, sizeof w, "%s, batch %lld", what, (long long)k - 1);
    check_batch(f, b, w);
    FERRY_OK_(ferry_loader_release(l, b, f->compute));
  }
  return k;
}

/* ---- the tests ----------------------------------------------------------- */

Test(batch_loader, fixed_order_matches_sequential) {
  fixture f = fixture_open(997, 997, 7, 11);
  const int64_t n = 101, bs = 16;
  int64_t *seeds = seed_list(n, f.num_nodes, 5);
  const int depths[] = {1, 2, 4};
  for (size_t d = 0; d < 3; d++)
    for (int drop = 0; drop < 2; drop++) {
      ferry_loader_options o = FERRY_LOADER_OPTIONS_INIT;
      o.batch_size = bs;
      o.order = FERRY_LOADER_ORDER_FIXED;
      o.depth = depths[d];
      o.drop_last = drop;
      ferry_loader *l = make_loader(&f, seeds, n, &o);
      ferry_loader_info li = FERRY_LOADER_INFO_INIT;
      FERRY_OK_(ferry_loader_get_info(l, &li));
      int64_t want = drop ? n / bs : (n + bs - 1) / bs;
      cr_assert_eq(li.num_batches, want);
      cr_assert_eq(li.depth, depths[d]);
      int64_t ids[16];
      char what[64];
      snprintf(what, sizeof what, "depth %d drop_last %d", depths[d], drop);
      cr_assert_eq(run_epoch(&f, l, 2, ids, 16, what), want, "%s", what);
      for (int64_t i = 0; i < want; i++)
        cr_assert_eq(ids[i], i, "%s: FIXED visits batches in order", what);
      ferry_loader_destroy(l);
    }
  free(seeds);
  fixture_close(&f);
}

/* Every placement of the table: a STAGED table gathers on the host, so the
 * loader hands it the minibatch's ids in host-readable memory. */
Test(batch_loader, every_table_placement) {
  fixture f = fixture_open(613, 613, 5, 13);
  const int64_t n = 37, bs = 8;
  int64_t *seeds = seed_list(n, f.num_nodes, 9);
  const ferry_table_placement places[] = {
      FERRY_PLACEMENT_ZEROCOPY, FERRY_PLACEMENT_STAGED, FERRY_PLACEMENT_DEVICE};
  const char *names[] = {"zerocopy", "staged", "device"};
  for (int p = 0; p < 3; p++) {
    ferry_table_destroy(f.table);
    f.table = NULL;
    ferry_table_options to = FERRY_TABLE_OPTIONS_INIT;
    to.placement = places[p];
    FERRY_OK_(ferry_table_create(f.ctx, f.rows, f.cols, FERRY_DTYPE_F32, &to,
                                 &f.table));
    FERRY_OK_(ferry_table_write(f.table, 0, f.rows, f.host_rows));
    ferry_loader_options o = FERRY_LOADER_OPTIONS_INIT;
    o.batch_size = bs;
    o.order = FERRY_LOADER_ORDER_FIXED;
    ferry_loader *l = make_loader(&f, seeds, n, &o);
    int64_t ids[8];
    cr_assert_eq(run_epoch(&f, l, 1, ids, 8, names[p]), (n + bs - 1) / bs, "%s",
                 names[p]);
    ferry_loader_destroy(l);
  }
  free(seeds);
  fixture_close(&f);
}

/* The seeds of every batch of an epoch, concatenated. */
static int64_t *epoch_seeds(fixture *f, ferry_loader *l, uint64_t epoch,
                            int64_t n) {
  int64_t *out = malloc((size_t)n * sizeof *out), k = 0;
  cr_assert_not_null(out);
  FERRY_OK_(ferry_loader_start_epoch(l, epoch));
  for (;;) {
    ferry_batch *b = NULL;
    int done = 0;
    FERRY_OK_(ferry_loader_next(l, NULL, &b, &done));
    if (done)
      break;
    ferry_batch_info bi = FERRY_BATCH_INFO_INIT;
    FERRY_OK_(ferry_batch_get_info(b, &bi));
    cr_assert(k + bi.num_seeds <= n);
    memcpy(out + k, bi.seeds, (size_t)bi.num_seeds * sizeof *out);
    k += bi.num_seeds;
    FERRY_OK_(ferry_loader_release(l, b, NULL));
  }
  cr_assert_eq(k, n);
  (void)f;
  return out;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

Test(batch_loader, shuffle_is_a_pure_function_of_seed_and_epoch) {
  fixture f = fixture_open(613, 613, 5, 12);
  const int64_t n = 97;
  int64_t *seeds = malloc((size_t)n * sizeof *seeds);
  for (int64_t i = 0; i < n; i++)
    seeds[i] = (i * 37) % f.num_nodes; /* distinct */
  ferry_loader_options o = FERRY_LOADER_OPTIONS_INIT;
  o.batch_size = 10;
  o.seed = 99;
  ferry_loader *a = make_loader(&f, seeds, n, &o);
  o.depth = 4;
  ferry_loader *b = make_loader(&f, seeds, n, &o);
  int64_t *a3 = epoch_seeds(&f, a, 3, n);
  int64_t *b3 = epoch_seeds(&f, b, 3, n);
  int64_t *a4 = epoch_seeds(&f, a, 4, n);
  int64_t *a3again = epoch_seeds(&f, a, 3, n);
  cr_assert(memcmp(a3, b3, (size_t)n * 8) == 0, "same seed and epoch");
  cr_assert(memcmp(a3, a3again, (size_t)n * 8) == 0, "epoch 3 repeated");
  cr_assert(memcmp(a3, a4, (size_t)n * 8) != 0, "epochs 3 and 4 differ");
  cr_assert(memcmp(a3, seeds, (size_t)n * 8) != 0, "shuffled at all");
  /* Each epoch is a permutation of the seeds. */
  int64_t *want = malloc((size_t)n * 8);
  memcpy(want, seeds, (size_t)n * 8);
  qsort(want, (size_t)n, 8, cmp_i64);
  int64_t *lists[] = {a3, a4};
  for (int i = 0; i < 2; i++) {
    qsort(lists[i], (size_t)n, 8, cmp_i64);
    cr_assert(memcmp(lists[i], want, (size_t)n * 8) == 0, "a permutation");
  }
  /* The batches themselves (blocks and features) are right. */
  int64_t ids[16];
  cr_assert_eq(run_epoch(&f, b, 5, ids, 16, "shuffle"), 10);
  for (int64_t i = 0; i < 10; i++)
    cr_assert_eq(ids[i], i, "SHUFFLE ids are positions");
  ferry_loader_destroy(a);
  ferry_loader_destroy(b);
  free(a3);
  free(b3);
  free(a4);
  free(a3again);
  free(want);
  free(seeds);
  fixture_close(&f);
}

static double fake_loss(int64_t id, int64_t step) {
  return (double)((id * 7919 + step * 104729) % 1000) / 10.0;
}

Test(batch_loader, selector_order) {
  fixture f = fixture_open(499, 499, 3, 13);
  const int64_t n = 53, bs = 8, nb = 7, epochs = 3;
  int64_t *seeds = seed_list(n, f.num_nodes, 6);
  ferry_selector_options so = FERRY_SELECTOR_OPTIONS_INIT;
  so.num_batches = nb;
  so.epochs = epochs;
  so.delta = 0.4; /* k = 2 */
  ferry_selector *sel = NULL, *ref = NULL;
  FERRY_OK_(ferry_selector_create(&so, &sel));
  FERRY_OK_(ferry_selector_create(&so, &ref));
  ferry_loader_options o = FERRY_LOADER_OPTIONS_INIT;
  o.batch_size = bs;
  o.order = FERRY_LOADER_ORDER_SELECTOR;
  o.selector = sel;
  o.depth = 3;
  ferry_loader *l = make_loader(&f, seeds, n, &o);
  int64_t step = 0;
  for (uint64_t e = 0; e < (uint64_t)epochs; e++) {
    FERRY_OK_(ferry_loader_start_epoch(l, e));
    int64_t in_epoch = 0;
    for (;;) {
      ferry_batch *b = NULL;
      int done = 0;
      FERRY_OK_(ferry_loader_next(l, f.compute, &b, &done));
      /* The reference: the same selector driven directly, in lockstep. */
      int64_t want = -1;
      int ref_done = 0;
      if (in_epoch < nb)
        FERRY_OK_(ferry_selector_next(ref, &want, &ref_done));
      if (done) {
        cr_assert(in_epoch == nb || ref_done, "epoch %llu ended early",
                  (unsigned long long)e);
        break;
      }
      ferry_batch_info bi = FERRY_BATCH_INFO_INIT;
      FERRY_OK_(ferry_batch_get_info(b, &bi));
      cr_assert_eq(bi.id, want, "step %lld: id %lld, expected %lld",
                   (long long)step, (long long)bi.id, (long long)want);
      int64_t len = n - bi.id * bs < bs ? n - bi.id * bs : bs;
      cr_assert_eq(bi.num_seeds, len);
      cr_assert(memcmp(bi.seeds, seeds + bi.id * bs, (size_t)len * 8) == 0,
                "a selector batch is a fixed slice of the seeds");
      char w[64];
      snprintf(w, sizeof w, "selector step %lld", (long long)step);
      check_batch(&f, b, w);
      double loss = fake_loss(bi.id, step);
      FERRY_OK_(ferry_selector_report(sel, bi.id, loss));
      FERRY_OK_(ferry_selector_report(ref, want, loss));
      FERRY_OK_(ferry_loader_release(l, b, f.compute));
      step++;
      in_epoch++;
    }
  }
  cr_assert_eq(step, nb * epochs, "as many steps as the baseline");
  ferry_loader_destroy(l);
  ferry_selector_destroy(sel);
  ferry_selector_destroy(ref);
  free(seeds);
  fixture_close(&f);
}

Test(batch_loader, early_stop_and_cancel_release_everything) {
  fixture f = fixture_open(401, 401, 9, 14);
  const int64_t n = 200;
  int64_t *seeds = seed_list(n, f.num_nodes, 7);
  const int depths[] = {1, 2, 4};
  for (size_t d = 0; d < 3; d++) {
    ferry_loader_options o = FERRY_LOADER_OPTIONS_INIT;
    o.batch_size = 9;
    o.depth = depths[d];
    /* Destroyed before any epoch, and right after starting one. */
    ferry_loader_destroy(make_loader(&f, seeds, n, &o));
    ferry_loader *l = make_loader(&f, seeds, n, &o);
    FERRY_OK_(ferry_loader_start_epoch(l, 0));
    ferry_loader_destroy(l);
    /* One batch, then a new epoch cancels the rest; its batches are right. */
    l = make_loader(&f, seeds, n, &o);
    FERRY_OK_(ferry_loader_start_epoch(l, 0));
    ferry_batch *b = NULL;
    int done = 0;
    FERRY_OK_(ferry_loader_next(l, f.compute, &b, &done));
    cr_assert_eq(done, 0);
    /* An epoch cannot start while a batch is held. */
    FERRY_EXPECT(ferry_loader_start_epoch(l, 1), FERRY_ERR_BUSY);
    FERRY_EXPECT_MESSAGE("release");
    FERRY_OK_(ferry_loader_release(l, b, f.compute));
    FERRY_EXPECT(ferry_loader_release(l, b, f.compute),
                 FERRY_ERR_INVALID_ARGUMENT);
    FERRY_OK_(ferry_loader_start_epoch(l, 1));
    for (int i = 0; i < 3; i++) {
      FERRY_OK_(ferry_loader_next(l, f.compute, &b, &done));
      cr_assert_eq(done, 0);
      ferry_batch_info bi = FERRY_BATCH_INFO_INIT;
      FERRY_OK_(ferry_batch_get_info(b, &bi));
      cr_assert_eq(bi.epoch, 1u);
      cr_assert_eq(bi.step, i);
      check_batch(&f, b, "after cancel");
      FERRY_OK_(ferry_loader_release(l, b, f.compute));
    }
    /* Holding every slot: next says so instead of waiting forever. */
    ferry_batch *held[4];
    for (int i = 0; i < depths[d]; i++)
      FERRY_OK_(ferry_loader_next(l, f.compute, &held[i], &done));
    FERRY_EXPECT(ferry_loader_next(l, f.compute, &b, &done), FERRY_ERR_BUSY);
    /* Destroyed mid-epoch with batches held (the compute stream is done
     * with them). */
    FERRY_OK_(ferry_stream_synchronize(f.compute));
    ferry_loader_destroy(l);
  }
  free(seeds);
  fixture_close(&f);
}

Test(batch_loader, gather_error_reaches_the_caller) {
  /* The table has rows for the first half of the nodes only. */
  fixture f = fixture_open(300, 150, 4, 15);
  const int64_t n = 64;
  int64_t *seeds = malloc((size_t)n * sizeof *seeds);
  /* The last batch's seeds (themselves input nodes) are beyond the table;
   * earlier batches may reach past it through their neighbors. */
  for (int64_t i = 0; i < n; i++)
    seeds[i] = i < 56 ? i : 150 + i;
  for (int depth = 1; depth <= 4; depth *= 2) {
    ferry_loader_options o = FERRY_LOADER_OPTIONS_INIT;
    o.batch_size = 8;
    o.order = FERRY_LOADER_ORDER_FIXED;
    o.depth = depth;
    ferry_loader *l = make_loader(&f, seeds, n, &o);
    FERRY_OK_(ferry_loader_start_epoch(l, 0));
    ferry_status st = FERRY_OK;
    int got = 0;
    for (;;) {
      ferry_batch *b = NULL;
      int done = 0;
      st = ferry_loader_next(l, f.compute, &b, &done);
      if (st != FERRY_OK || done)
        break;
      got++;
      FERRY_OK_(ferry_loader_release(l, b, f.compute));
    }
    cr_assert_eq(st, FERRY_ERR_OUT_OF_RANGE, "depth %d: %s (%s)", depth,
                 ferry_status_string(st), ferry_last_error());
    FERRY_EXPECT_MESSAGE("ids[");
    ferry_error_info ei = FERRY_ERROR_INFO_INIT;
    FERRY_OK_(ferry_last_error_info(&ei));
    cr_assert_str_eq(ei.op, "gather");
    cr_assert(got <= 7, "the last batch must fail (got %d)", got);
    /* The error ended the epoch. */
    ferry_batch *b = NULL;
    int done = 0;
    FERRY_OK_(ferry_loader_next(l, f.compute, &b, &done));
    cr_assert_eq(done, 1);
    /* A new epoch runs again (and fails again, the same way). */
    FERRY_OK_(ferry_loader_start_epoch(l, 1));
    ferry_loader_destroy(l);
  }
  free(seeds);
  fixture_close(&f);
}

Test(batch_loader, selector_error_reaches_the_caller) {
  fixture f = fixture_open(211, 211, 3, 16);
  int64_t *seeds = seed_list(40, f.num_nodes, 8);
  ferry_selector_options so = FERRY_SELECTOR_OPTIONS_INIT;
  so.num_batches = 5;
  so.epochs = 2;
  so.delta = 0.4;
  ferry_selector *sel = NULL;
  FERRY_OK_(ferry_selector_create(&so, &sel));
  ferry_loader_options o = FERRY_LOADER_OPTIONS_INIT;
  o.batch_size = 8;
  o.order = FERRY_LOADER_ORDER_SELECTOR;
  o.selector = sel;
  ferry_loader *l = make_loader(&f, seeds, 40, &o);
  /* The first pass, released without reporting a loss. */
  FERRY_OK_(ferry_loader_start_epoch(l, 0));
  ferry_status st;
  int got = 0;
  for (;;) {
    ferry_batch *b = NULL;
    int done = 0;
    st = ferry_loader_next(l, f.compute, &b, &done);
    if (st != FERRY_OK || done)
      break;
    got++;
    FERRY_OK_(ferry_loader_release(l, b, f.compute));
  }
  cr_assert_eq(st, FERRY_OK);
  cr_assert_eq(got, 5);
  /* The next round needs those losses: the selector's error comes back in
   * place of the batch, with its message. */
  FERRY_OK_(ferry_loader_start_epoch(l, 1));
  ferry_batch *b = NULL;
  int done = 0;
  FERRY_EXPECT(ferry_loader_next(l, f.compute, &b, &done), FERRY_ERR_NOT_READY);
  FERRY_EXPECT_MESSAGE("batch 0 has no loss");
  ferry_loader_destroy(l);
  ferry_selector_destroy(sel);
  free(seeds);
  fixture_close(&f);
}

/* The loader checks what it is given: a sampler of its graph, and a
 * selector of as many batches as it makes. */
Test(batch_loader, sampler_and_selector_must_fit) {
  fixture f = fixture_open(211, 211, 3, 18);
  int64_t *seeds = seed_list(43, f.num_nodes, 9);
  ferry_loader_options o = FERRY_LOADER_OPTIONS_INIT;
  o.batch_size = 8; /* 43 seeds: 6 batches, 5 with drop_last */
  o.order = FERRY_LOADER_ORDER_SELECTOR;
  ferry_loader *l = NULL;
  const int64_t counts[] = {5, 7, 6};
  for (int i = 0; i < 3; i++) {
    ferry_selector_options so = FERRY_SELECTOR_OPTIONS_INIT;
    so.num_batches = counts[i];
    ferry_selector *sel = NULL;
    FERRY_OK_(ferry_selector_create(&so, &sel));
    o.selector = sel;
    o.drop_last = 0;
    if (counts[i] != 6) {
      FERRY_EXPECT(
          ferry_loader_create(f.graph, f.table, f.sampler, seeds, 43, &o, &l),
          FERRY_ERR_MISMATCH);
      FERRY_EXPECT_MESSAGE("create the selector with num_batches = 6");
      cr_assert_null(l);
    } else {
      l = make_loader(&f, seeds, 43, &o);
      ferry_loader_destroy(l);
      l = NULL;
    }
    /* drop_last cuts the short sixth batch. */
    o.drop_last = 1;
    if (counts[i] == 5) {
      l = make_loader(&f, seeds, 43, &o);
      ferry_loader_destroy(l);
      l = NULL;
    } else {
      FERRY_EXPECT(
          ferry_loader_create(f.graph, f.table, f.sampler, seeds, 43, &o, &l),
          FERRY_ERR_MISMATCH);
      FERRY_EXPECT_MESSAGE("num_batches = 5");
    }
    ferry_selector_destroy(sel);
  }
  /* A sampler of another graph (even one of the same size). */
  int64_t offsets[212] = {0};
  int32_t no_cols[1] = {0};
  ferry_graph *other = NULL;
  FERRY_OK_(ferry_graph_create_csr(f.ctx, NULL, 211, offsets, no_cols,
                                   FERRY_DTYPE_I32, &other));
  ferry_sampler_options so = FERRY_SAMPLER_OPTIONS_INIT;
  so.num_layers = 1;
  so.fanouts[0] = 2;
  ferry_sampler *foreign = NULL;
  FERRY_OK_(ferry_sampler_create(other, &so, &foreign));
  o.order = FERRY_LOADER_ORDER_FIXED;
  o.selector = NULL;
  FERRY_EXPECT(
      ferry_loader_create(f.graph, f.table, foreign, seeds, 43, &o, &l),
      FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("another graph");
  cr_assert_null(l);
  ferry_sampler_destroy(foreign);
  ferry_graph_destroy(other);
  free(seeds);
  fixture_close(&f);
}

/* Freeing a buffer waits for the context's queued work (on the cpu backend
 * it drains every stream), so a loader whose sampling freed buffers waited
 * for the caller's compute, and prepared nothing while the model ran. Once
 * warm, an epoch's batches are prepared while a gate holds the compute
 * stream. The graph is made of disjoint 4-cliques and each seed is in its own
 * clique, so every batch has the same sizes in every epoch: nothing needs to
 * grow after the first. */
Test(batch_loader, prepares_batches_while_compute_runs) {
  const int64_t cliques = 60, n = 4 * cliques;
  fixture f = fixture_open(n, (uint64_t)n, 5, 19);
  int64_t offsets[4 * 60 + 1];
  int32_t cols[4 * 60 * 3];
  int64_t e = 0;
  offsets[0] = 0;
  for (int64_t v = 0; v < n; v++) {
    for (int64_t w = v - v % 4; w < v - v % 4 + 4; w++)
      if (w != v)
        cols[e++] = (int32_t)w;
    offsets[v + 1] = e;
  }
  ferry_graph *g = NULL;
  FERRY_OK_(ferry_graph_create_csr(f.ctx, NULL, n, offsets, cols,
                                   FERRY_DTYPE_I32, &g));
  ferry_sampler_options so = FERRY_SAMPLER_OPTIONS_INIT;
  so.num_layers = 2;
  so.fanouts[0] = -1; /* whole cliques: no draw depends on the batch id */
  so.fanouts[1] = -1;
  ferry_sampler *s = NULL;
  FERRY_OK_(ferry_sampler_create(g, &so, &s));
  /* Swap the fixture's graph and sampler for these. */
  ferry_sampler_destroy(f.sampler);
  ferry_graph_destroy(f.graph);
  f.graph = g;
  f.sampler = s;
  int64_t seeds[60];
  for (int64_t i = 0; i < cliques; i++)
    seeds[i] = 4 * ((i * 37) % cliques) + i % 4;
  ferry_loader_options o = FERRY_LOADER_OPTIONS_INIT;
  o.batch_size = 12;
  o.order = FERRY_LOADER_ORDER_FIXED;
  o.depth = 2;
  ferry_loader *l = make_loader(&f, seeds, cliques, &o);
  int64_t ids[8];
  cr_assert_eq(run_epoch(&f, l, 0, ids, 8, "warm-up"), 5);
  FERRY_OK_(ferry_stream_synchronize(f.compute));
  ferry_test_gate gate;
  FERRY_OK_(ferry_test_gate_close(&gate, f.compute, FERRY_TEST_GATE_LIMIT_MS));
  FERRY_OK_(ferry_loader_start_epoch(l, 1));
  int got = 0;
  ferry_status st = FERRY_OK;
  for (;;) {
    ferry_batch *b = NULL;
    int done = 0;
    st = ferry_loader_next(l, NULL, &b, &done);
    if (st != FERRY_OK || done)
      break;
    got++;
    st = ferry_loader_release(l, b, NULL);
    if (st != FERRY_OK)
      break;
  }
  int held = ferry_test_gate_open(&gate, f.compute);
  cr_assert_eq(st, FERRY_OK, "%s", ferry_last_error());
  cr_assert_eq(got, 5);
  cr_assert(held, "the loader waited for the compute stream's work");
  /* The recycled minibatches are right (the blocks against sequential
   * ferry_sample, the features against the table). */
  cr_assert_eq(run_epoch(&f, l, 2, ids, 8, "recycled"), 5);
  ferry_loader_destroy(l);
  fixture_close(&f);
}

Test(batch_loader, bad_arguments) {
  fixture f = fixture_open(50, 50, 2, 17);
  int64_t seeds[4] = {1, 2, 3, 4};
  ferry_loader_options o = FERRY_LOADER_OPTIONS_INIT;
  o.batch_size = 2;
  ferry_loader *l = NULL;
  FERRY_EXPECT(ferry_loader_create(NULL, f.table, f.sampler, seeds, 4, &o, &l),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("graph");
  FERRY_EXPECT(
      ferry_loader_create(f.graph, f.table, f.sampler, NULL, 4, &o, &l),
      FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("seeds");
  FERRY_EXPECT(
      ferry_loader_create(f.graph, f.table, f.sampler, seeds, -1, &o, &l),
      FERRY_ERR_INVALID_ARGUMENT);
  ferry_loader_options bad = o;
  bad.struct_size = 3;
  FERRY_EXPECT(
      ferry_loader_create(f.graph, f.table, f.sampler, seeds, 4, &bad, &l),
      FERRY_ERR_STRUCT_SIZE);
  bad = o;
  bad.batch_size = 0;
  FERRY_EXPECT(
      ferry_loader_create(f.graph, f.table, f.sampler, seeds, 4, &bad, &l),
      FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("batch_size");
  bad = o;
  bad.depth = 65;
  FERRY_EXPECT(
      ferry_loader_create(f.graph, f.table, f.sampler, seeds, 4, &bad, &l),
      FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("depth");
  bad = o;
  bad.order = FERRY_LOADER_ORDER_SELECTOR;
  FERRY_EXPECT(
      ferry_loader_create(f.graph, f.table, f.sampler, seeds, 4, &bad, &l),
      FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("selector");
  bad = o;
  bad.feature_dtype = FERRY_DTYPE_F16;
  FERRY_EXPECT(
      ferry_loader_create(f.graph, f.table, f.sampler, seeds, 4, &bad, &l),
      FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("feature_dtype");
  int64_t far[2] = {3, 50};
  FERRY_EXPECT(ferry_loader_create(f.graph, f.table, f.sampler, far, 2, &o, &l),
               FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT_MESSAGE("seeds[1]");
  cr_assert_null(l, "outputs are written only on success");
  /* Before any epoch: done at once. No seeds: an empty epoch. */
  l = make_loader(&f, seeds, 4, &o);
  ferry_batch *b = (ferry_batch *)&o;
  int done = 0;
  FERRY_OK_(ferry_loader_next(l, NULL, &b, &done));
  cr_assert_eq(done, 1);
  cr_assert_null(b);
  FERRY_EXPECT(ferry_loader_next(l, NULL, NULL, &done), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_loader_start_epoch(NULL, 0), FERRY_ERR_NULL_POINTER);
  ferry_loader_destroy(l);
  l = make_loader(&f, NULL, 0, &o);
  FERRY_OK_(ferry_loader_start_epoch(l, 0));
  FERRY_OK_(ferry_loader_next(l, NULL, &b, &done));
  cr_assert_eq(done, 1);
  ferry_loader_destroy(l);
  ferry_loader_destroy(NULL);
  fixture_close(&f);
}
