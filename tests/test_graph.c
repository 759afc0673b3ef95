/* Graphs on the backend under test: CSR checks naming the bad position,
 * edge lists (caller arrays, text and .npy files, with symmetrisation,
 * self-loop and duplicate removal), R-MAT and Cora's counts. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The graph's CSR read back to host (int64 columns). */
static void read_csr(ferry_context *ctx, const ferry_graph *g, int64_t **off,
                     int64_t **cols, ferry_graph_info *info) {
  *info = (ferry_graph_info)FERRY_GRAPH_INFO_INIT;
  FERRY_OK_(ferry_graph_get_info(g, info));
  size_t n = (size_t)info->num_nodes + 1, e = (size_t)info->num_edges;
  size_t w = ferry_dtype_size(info->id_dtype);
  *off = malloc(n * 8);
  void *raw = malloc(e * w + 8);
  *cols = malloc(e * 8 + 8);
  ferry_test_poison(*off, n * 8);
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  FERRY_OK_(ferry_buffer_read_async(s, info->offsets.buffer, 0, *off, n * 8));
  if (e)
    FERRY_OK_(ferry_buffer_read_async(s, info->cols.buffer, 0, raw, e * w));
  FERRY_OK_(ferry_stream_synchronize(s));
  ferry_stream_destroy(s);
  for (size_t i = 0; i < e; i++)
    (*cols)[i] = w == 4 ? ((int32_t *)raw)[i] : ((int64_t *)raw)[i];
  free(raw);
}

Test(graph, csr_checks) {
  ferry_context *ctx = ferry_test_context();
  ferry_graph *g = NULL;
  int64_t off[] = {0, 2, 1, 3};
  int32_t cols[] = {1, 2, 0};
  FERRY_EXPECT(
      ferry_graph_create_csr(ctx, NULL, 3, off, cols, FERRY_DTYPE_I32, &g),
      FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("offsets[2]");
  int64_t off2[] = {0, 1, 2, 3};
  int32_t bad[] = {1, 3, 0};
  FERRY_EXPECT(
      ferry_graph_create_csr(ctx, NULL, 3, off2, bad, FERRY_DTYPE_I32, &g),
      FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT_MESSAGE("cols[1]");
  FERRY_EXPECT(
      ferry_graph_create_csr(ctx, NULL, 3, off2, cols, FERRY_DTYPE_F32, &g),
      FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT(
      ferry_graph_create_csr(ctx, NULL, 3, NULL, cols, FERRY_DTYPE_I32, &g),
      FERRY_ERR_NULL_POINTER);
  cr_assert_null(g);
  /* Good, copied and wrapped; an empty graph. */
  for (int wrap = 0; wrap <= 1; wrap++) {
    ferry_graph_options o = FERRY_GRAPH_OPTIONS_INIT;
    o.wrap = wrap;
    /* Wrapped memory must meet the device's base alignment (OpenCL's
     * CL_MEM_USE_HOST_PTR): 4 KiB meets every device's. */
    int64_t *aoff = aligned_alloc(4096, 4096);
    int32_t *acols = aligned_alloc(4096, 4096);
    memcpy(aoff, off2, sizeof off2);
    memcpy(acols, cols, sizeof cols);
    FERRY_OK_(
        ferry_graph_create_csr(ctx, &o, 3, aoff, acols, FERRY_DTYPE_I32, &g));
    int64_t *ro, *rc;
    ferry_graph_info info;
    read_csr(ctx, g, &ro, &rc, &info);
    cr_assert_eq(info.num_nodes, 3);
    cr_assert_eq(info.num_edges, 3);
    cr_assert_eq(info.max_degree, 1);
    for (int i = 0; i < 4; i++)
      cr_assert_eq(ro[i], off2[i]);
    for (int i = 0; i < 3; i++)
      cr_assert_eq(rc[i], cols[i]);
    free(ro);
    free(rc);
    ferry_graph_destroy(g);
    free(aoff);
    free(acols);
    g = NULL;
  }
  int64_t zero[] = {0};
  FERRY_OK_(
      ferry_graph_create_csr(ctx, NULL, 0, zero, NULL, FERRY_DTYPE_I64, &g));
  ferry_graph_destroy(g);
  ferry_context_destroy(ctx);
}

Test(graph, edges_symmetrize_dedup) {
  ferry_context *ctx = ferry_test_context();
  int64_t src[] = {0, 1, 0, 2, 2, 3};
  int64_t dst[] = {1, 0, 2, 2, 0, 1};
  ferry_graph_options o = FERRY_GRAPH_OPTIONS_INIT;
  ferry_graph *g = NULL;
  /* Raw: rows keep list order. */
  FERRY_OK_(ferry_graph_create_from_edges(ctx, &o, 4, src, dst, 6, &g));
  int64_t *ro, *rc;
  ferry_graph_info info;
  read_csr(ctx, g, &ro, &rc, &info);
  int64_t e_off[] = {0, 2, 3, 5, 6}, e_cols[] = {1, 2, 0, 2, 0, 1};
  for (int i = 0; i < 5; i++)
    cr_assert_eq(ro[i], e_off[i]);
  for (int i = 0; i < 6; i++)
    cr_assert_eq(rc[i], e_cols[i], "raw cols[%d] = %lld", i, (long long)rc[i]);
  free(ro);
  free(rc);
  ferry_graph_destroy(g);
  /* Symmetrised, self-loops removed, duplicates removed (rows sorted). */
  o.symmetrize = o.remove_self_loops = o.remove_duplicates = 1;
  o.id_dtype = FERRY_DTYPE_I64;
  FERRY_OK_(ferry_graph_create_from_edges(ctx, &o, 4, src, dst, 6, &g));
  read_csr(ctx, g, &ro, &rc, &info);
  int64_t s_off[] = {0, 2, 4, 5, 6}, s_cols[] = {1, 2, 0, 3, 0, 1};
  for (int i = 0; i < 5; i++)
    cr_assert_eq(ro[i], s_off[i], "sym offsets[%d] = %lld", i,
                 (long long)ro[i]);
  for (int i = 0; i < 6; i++)
    cr_assert_eq(rc[i], s_cols[i], "sym cols[%d] = %lld", i, (long long)rc[i]);
  free(ro);
  free(rc);
  ferry_graph_destroy(g);
  int64_t oob[] = {4};
  FERRY_EXPECT(ferry_graph_create_from_edges(ctx, &o, 4, oob, dst, 1, &g),
               FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT_MESSAGE("edge 0");
  ferry_context_destroy(ctx);
}

static char *write_temp(const void *data, size_t n, const char *suffix) {
  static int counter;
  char *path = malloc(256);
  snprintf(path, 256, "/tmp/ferry_graph_%d_%d%s", (int)getpid(), counter++,
           suffix);
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(data, 1, n, f), n);
  fclose(f);
  return path;
}

static char *npy(const char *descr, const char *shape, const void *data,
                 size_t bytes, size_t truncate) {
  char header[128];
  int len = snprintf(header, sizeof header,
                     "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, shape);
  int total = 10 + len + 1;
  int pad = (64 - total % 64) % 64;
  size_t hl = (size_t)len + (size_t)pad + 1;
  unsigned char *buf = malloc(10 + hl + bytes);
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (unsigned char)(hl & 0xFF);
  buf[9] = (unsigned char)(hl >> 8);
  memcpy(buf + 10, header, (size_t)len);
  memset(buf + 10 + len, ' ', (size_t)pad);
  buf[10 + hl - 1] = '\n';
  memcpy(buf + 10 + hl, data, bytes);
  char *p = write_temp(buf, 10 + hl + bytes - truncate, ".npy");
  free(buf);
  return p;
}

/* Temporary files are removed and their paths freed as soon as a case is
 * done with them. */
static void remove_temp(char *path) {
  unlink(path);
  free(path);
}

/* A malformed edge-list file at `path` (removed here): refused as
 * FERRY_ERR_BAD_FORMAT with `needle` in the message. */
static void expect_bad_format(ferry_context *ctx, char *path,
                              const char *needle) {
  ferry_graph *g = NULL;
  FERRY_EXPECT(ferry_graph_load_edge_list(ctx, NULL, path, 0, &g),
               FERRY_ERR_BAD_FORMAT);
  FERRY_EXPECT_MESSAGE(needle);
  remove_temp(path);
}

Test(graph, edge_list_files) {
  ferry_context *ctx = ferry_test_context();
  ferry_graph *g = NULL;
  ferry_graph_info info;
  int64_t *ro, *rc;
  const char *text = "# comment\n0 1\n1\t2\n\n% another\n2,0\n";
  char *p = write_temp(text, strlen(text), ".txt");
  FERRY_OK_(ferry_graph_load_edge_list(ctx, NULL, p, 0, &g));
  read_csr(ctx, g, &ro, &rc, &info);
  cr_assert_eq(info.num_nodes, 3);
  cr_assert_eq(info.num_edges, 3);
  cr_assert(rc[0] == 1 && rc[1] == 2 && rc[2] == 0);
  free(ro);
  free(rc);
  ferry_graph_destroy(g);
  remove_temp(p);
  const char *bad[] = {"0 1\n1 x\n", "0 1\n2\n", "0 1 2\n", "0 -1\n"};
  const char *where[] = {":2:", ":2:", ":1:", "negative"};
  for (int i = 0; i < 4; i++) {
    p = write_temp(bad[i], strlen(bad[i]), ".txt");
    ferry_status st = ferry_graph_load_edge_list(ctx, NULL, p, 0, &g);
    cr_assert(st == FERRY_ERR_BAD_FORMAT || st == FERRY_ERR_OUT_OF_RANGE,
              "case %d: %s", i, ferry_status_string(st));
    FERRY_EXPECT_MESSAGE(where[i]);
    remove_temp(p);
  }
  FERRY_EXPECT(ferry_graph_load_edge_list(ctx, NULL, "/nonexistent/x", 0, &g),
               FERRY_ERR_IO);
  /* .npy int32 and int64, (E, 2). */
  int32_t e32[] = {0, 1, 1, 2, 2, 3, 3, 0};
  int64_t e64[] = {0, 1, 1, 2, 2, 3, 3, 0};
  for (int w = 0; w < 2; w++) {
    p = w ? npy("<i8", "(4, 2)", e64, sizeof e64, 0)
          : npy("<i4", "(4, 2)", e32, sizeof e32, 0);
    FERRY_OK_(ferry_graph_load_edge_list(ctx, NULL, p, 5, &g));
    read_csr(ctx, g, &ro, &rc, &info);
    cr_assert_eq(info.num_nodes, 5);
    cr_assert_eq(info.num_edges, 4);
    for (int i = 0; i < 4; i++)
      cr_assert_eq(rc[i], (i + 1) % 4);
    free(ro);
    free(rc);
    ferry_graph_destroy(g);
    remove_temp(p);
  }
  expect_bad_format(ctx, npy("<i8", "(4, 2)", e64, sizeof e64, 5), "truncated");
  expect_bad_format(ctx, npy("<i8", "(4, 3)", e64, sizeof e64, 0), "shape");
  expect_bad_format(ctx, npy("<f4", "(4, 2)", e32, sizeof e32, 0), "dtype");
  ferry_context_destroy(ctx);
}

typedef struct progress_log {
  int calls;
  double last;
} progress_log;

static void on_progress(void *user, const char *stage, double done) {
  progress_log *l = user;
  cr_assert_not_null(stage);
  cr_assert(done >= 0 && done <= 1);
  l->calls++;
  l->last = done;
}

Test(graph, rmat) {
  ferry_context *ctx = ferry_test_context();
  ferry_rmat_options ro = FERRY_RMAT_OPTIONS_INIT;
  ro.scale = 12;
  ro.seed = 9;
  progress_log log = {0, 0};
  ro.progress = on_progress;
  ro.progress_user = &log;
  ferry_graph *a = NULL, *b = NULL, *c = NULL;
  FERRY_OK_(ferry_graph_create_rmat(ctx, NULL, &ro, &a));
  cr_assert_gt(log.calls, 0);
  FERRY_OK_(ferry_graph_create_rmat(ctx, NULL, &ro, &b));
  ro.seed = 10;
  FERRY_OK_(ferry_graph_create_rmat(ctx, NULL, &ro, &c));
  int64_t *oa, *ca, *ob, *cb, *oc, *cc;
  ferry_graph_info ia, ib, ic;
  read_csr(ctx, a, &oa, &ca, &ia);
  read_csr(ctx, b, &ob, &cb, &ib);
  read_csr(ctx, c, &oc, &cc, &ic);
  cr_assert_eq(ia.num_nodes, 4096);
  cr_assert_eq(ia.num_edges, 16 * 4096);
  cr_assert_eq(memcmp(oa, ob, 4097 * 8), 0, "same seed, same graph");
  cr_assert_eq(memcmp(ca, cb, (size_t)ia.num_edges * 8), 0);
  cr_assert_neq(memcmp(ca, cc, (size_t)ia.num_edges * 8), 0,
                "another seed, another graph");
  /* Skewed, as R-MAT is: the top degree far above the mean of 16. */
  cr_assert_gt(ia.max_degree, 200, "max degree %lld", (long long)ia.max_degree);
  free(oa);
  free(ca);
  free(ob);
  free(cb);
  free(oc);
  free(cc);
  ferry_graph_destroy(a);
  ferry_graph_destroy(b);
  ferry_graph_destroy(c);
  ro.scale = 0;
  FERRY_EXPECT(ferry_graph_create_rmat(ctx, NULL, &ro, &a),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("scale");
  ferry_context_destroy(ctx);
}

/* Cora from the shared data directory (two tests read it). */
static ferry_linqs *load_cora(ferry_context *ctx) {
  char prefix[512];
  snprintf(prefix, sizeof prefix, "%s/data/graphs/cora/cora",
           ferry_test_shared_dir());
  ferry_linqs *d = NULL;
  FERRY_OK_(ferry_linqs_load(ctx, NULL, prefix, &d));
  return d;
}

Test(graph, cora) {
  ferry_context *ctx = ferry_test_context();
  ferry_linqs *d = load_cora(ctx);
  cr_assert_eq(d->num_nodes, 2708);
  cr_assert_eq(d->num_features, 1433);
  cr_assert_eq(d->num_classes, 7);
  cr_assert_eq(d->citation_lines, 5429);
  cr_assert_eq(d->unknown_dropped, 0);
  cr_assert_eq(d->self_loops, 0);
  cr_assert_eq(d->undirected_edges, 5278);
  cr_assert_eq(d->isolated_nodes, 0);
  ferry_graph_info info = FERRY_GRAPH_INFO_INIT;
  FERRY_OK_(ferry_graph_get_info(d->graph, &info));
  cr_assert_eq(info.num_nodes, 2708);
  cr_assert_eq(info.num_edges, 10556);
  double ones = 0;
  for (int64_t i = 0; i < d->num_nodes * d->num_features; i++)
    ones += d->features[i];
  cr_assert_eq(ones, 49216.0);
  int counts[7] = {0};
  for (int64_t i = 0; i < d->num_nodes; i++)
    counts[d->labels[i]]++;
  for (int c = 0; c < 7; c++) {
    if (strcmp(d->class_names[c], "Neural_Networks") == 0)
      cr_assert_eq(counts[c], 818);
    if (strcmp(d->class_names[c], "Rule_Learning") == 0)
      cr_assert_eq(counts[c], 180);
  }
  /* The features as a feature table, read back. */
  ferry_table *t = NULL;
  ferry_status st = ferry_linqs_feature_table(ctx, d, NULL, &t);
  if (st != FERRY_ERR_UNSUPPORTED) {
    FERRY_EXPECT(st, FERRY_OK);
    float *row = malloc(1433 * 4 * 2);
    FERRY_OK_(ferry_table_read(t, 100, 2, row));
    cr_assert_eq(memcmp(row, d->features + 100 * 1433, 1433 * 4 * 2), 0);
    free(row);
    ferry_table_destroy(t);
  }
  ferry_linqs_destroy(d);
  ferry_context_destroy(ctx);
}

Test(graph, linqs_malformed) {
  ferry_context *ctx = ferry_test_context();
  char dir[] = "/tmp/ferry_linqs_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char path[600], prefix[600];
  snprintf(prefix, sizeof prefix, "%s/d", dir);
  /* Paper "b" cites itself; "zz" is unknown; "c" is isolated. */
  snprintf(path, sizeof path, "%s.content", prefix);
  FILE *f = fopen(path, "w");
  fputs("a 1 0 X\nb 0 1 Y\nc 1 1 X\n", f);
  fclose(f);
  snprintf(path, sizeof path, "%s.cites", prefix);
  f = fopen(path, "w");
  fputs("a b\nb b\nzz a\nb a\n", f);
  fclose(f);
  ferry_linqs *d = NULL;
  FERRY_OK_(ferry_linqs_load(ctx, NULL, prefix, &d));
  cr_assert_eq(d->num_nodes, 3);
  cr_assert_eq(d->num_classes, 2);
  cr_assert_eq(d->citation_lines, 4);
  cr_assert_eq(d->unknown_dropped, 1);
  cr_assert_eq(d->self_loops, 1);
  cr_assert_eq(d->undirected_edges, 2);
  cr_assert_eq(d->isolated_nodes, 1);
  ferry_linqs_destroy(d);
  snprintf(path, sizeof path, "%s.content", prefix);
  f = fopen(path, "w");
  fputs("a 1 0 X\nb 0 q Y\n", f);
  fclose(f);
  FERRY_EXPECT(ferry_linqs_load(ctx, NULL, prefix, &d), FERRY_ERR_BAD_FORMAT);
  FERRY_EXPECT_MESSAGE("d.content:2");
  f = fopen(path, "w");
  fputs("a 1 0 X\nb 0 Y\n", f);
  fclose(f);
  FERRY_EXPECT(ferry_linqs_load(ctx, NULL, prefix, &d), FERRY_ERR_BAD_FORMAT);
  FERRY_EXPECT_MESSAGE("d.content:2");
  unlink(path);
  snprintf(path, sizeof path, "%s.cites", prefix);
  unlink(path);
  rmdir(dir);
  ferry_context_destroy(ctx);
}

/* Cora end to end: sample a minibatch, then gather the input nodes' feature
 * rows with the minibatch's id tensor as it is (device memory of the
 * context, no host round trip), and compare with the loaded features. */
Test(graph, cora_sample_then_gather) {
  ferry_context *ctx = ferry_test_context();
  ferry_linqs *d = load_cora(ctx);
  ferry_table *t = NULL;
  ferry_status st = ferry_linqs_feature_table(ctx, d, NULL, &t);
  if (st == FERRY_ERR_UNSUPPORTED) {
    ferry_linqs_destroy(d);
    ferry_context_destroy(ctx);
    cr_skip_test("feature tables unsupported here: %s", ferry_last_error());
  }
  FERRY_EXPECT(st, FERRY_OK);
  ferry_sampler_options so = FERRY_SAMPLER_OPTIONS_INIT;
  so.num_layers = 2;
  so.fanouts[0] = 10;
  so.fanouts[1] = 5;
  so.seed = 1;
  ferry_sampler *s = NULL;
  FERRY_OK_(ferry_sampler_create(d->graph, &so, &s));
  int64_t seeds[64];
  for (int i = 0; i < 64; i++)
    seeds[i] = (i * 41) % 2708;
  ferry_minibatch *mb = NULL;
  FERRY_OK_(ferry_sample(s, seeds, 64, 0, &mb));
  ferry_tensor ids;
  FERRY_OK_(ferry_minibatch_input_nodes(mb, &ids));
  int64_t n = ids.shape[0];
  cr_assert_geq(n, 64);
  ferry_buffer *out = NULL;
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_PINNED_HOST,
                                (uint64_t)n * 1433 * 4, &out));
  int64_t shape[2] = {n, 1433};
  ferry_tensor ot;
  FERRY_OK_(ferry_tensor_make(out, 0, FERRY_DTYPE_F32, 2, shape, &ot));
  ferry_stream *stream = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &stream));
  float *rows = malloc((size_t)n * 1433 * 4);
  int64_t *hid = malloc((size_t)n * 8);
  ferry_test_poison(rows, (size_t)n * 1433 * 4);
  FERRY_OK_(ferry_gather(t, &ids, (uint64_t)n, &ot, stream, NULL));
  FERRY_OK_(
      ferry_buffer_read_async(stream, out, 0, rows, (uint64_t)n * 1433 * 4));
  FERRY_OK_(ferry_buffer_read_async(stream, ids.buffer, ids.byte_offset, hid,
                                    (uint64_t)n * 8));
  FERRY_OK_(ferry_stream_synchronize(stream));
  for (int64_t i = 0; i < n; i++) {
    cr_assert(hid[i] >= 0 && hid[i] < 2708);
    cr_assert_eq(memcmp(rows + i * 1433, d->features + hid[i] * 1433, 1433 * 4),
                 0, "row %lld (node %lld)", (long long)i, (long long)hid[i]);
  }
  free(rows);
  free(hid);
  ferry_stream_destroy(stream);
  ferry_buffer_destroy(out);
  ferry_minibatch_destroy(mb);
  ferry_sampler_destroy(s);
  ferry_table_destroy(t);
  ferry_linqs_destroy(d);
  ferry_context_destroy(ctx);
}
