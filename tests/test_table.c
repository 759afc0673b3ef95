/* Feature tables and ferry_gather on every backend, against a plain loop in
 * the test: placements x dtypes x id types x row widths, random ids with
 * repeats, out poisoned first; out-of-range ids; tables split into pieces;
 * .npy round trips and every malformed kind; bad input. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const ferry_table_placement placements[] = {
    FERRY_PLACEMENT_ZEROCOPY, FERRY_PLACEMENT_DEVICE, FERRY_PLACEMENT_STAGED,
    FERRY_PLACEMENT_AUTO};
static const ferry_dtype dtypes[] = {FERRY_DTYPE_F32, FERRY_DTYPE_F16,
                                     FERRY_DTYPE_BF16};
static const uint64_t widths[] = {1, 3, 31, 100, 128, 129, 1433};

/* ---- an independent reference: element bits -> double -------------------- */

static double ref_value(ferry_dtype dt, const void *row, uint64_t c) {
  if (dt == FERRY_DTYPE_F32)
    return ((const float *)row)[c];
  uint16_t h = ((const uint16_t *)row)[c];
  int sign = (h >> 15) & 1;
  if (dt == FERRY_DTYPE_BF16) {
    int e = (h >> 7) & 0xff, m = h & 0x7f;
    double v = e == 0 ? ldexp(m / 128.0, -126) : ldexp(1 + m / 128.0, e - 127);
    return sign ? -v : v;
  }
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v = e == 0 ? ldexp(m / 1024.0, -14) : ldexp(1 + m / 1024.0, e - 15);
  return sign ? -v : v;
}

/* Random finite elements (no inf/NaN exponents). */
static void fill_random(void *p, ferry_dtype dt, uint64_t count,
                        uint64_t *rng) {
  for (uint64_t i = 0; i < count; i++) {
    uint64_t r = ferry_test_rand(rng);
    if (dt == FERRY_DTYPE_F32) {
      ((float *)p)[i] = (float)ferry_test_uniform(rng) * 100.0f;
    } else if (dt == FERRY_DTYPE_F16) {
      uint16_t h = (uint16_t)r;
      if (((h >> 10) & 0x1f) == 0x1f)
        h &= 0xbfff; /* clear an exponent bit: finite */
      ((uint16_t *)p)[i] = h;
    } else {
      uint16_t h = (uint16_t)r;
      if (((h >> 7) & 0xff) == 0xff)
        h &= 0xbfff;
      ((uint16_t *)p)[i] = h;
    }
  }
}

/* Check out (n rows of out_dt) against table[ids]; bad ids give zero rows. */
static void check_rows(const void *table, ferry_dtype dt, uint64_t rows,
                       uint64_t cols, const void *ids, ferry_dtype idt,
                       uint64_t n, const void *out, ferry_dtype out_dt,
                       const char *what) {
  size_t es = ferry_dtype_size(dt), oes = ferry_dtype_size(out_dt);
  for (uint64_t i = 0; i < n; i++) {
    int64_t id = idt == FERRY_DTYPE_I32 ? ((const int32_t *)ids)[i]
                                        : ((const int64_t *)ids)[i];
    const char *orow = (const char *)out + i * cols * oes;
    if (id < 0 || (uint64_t)id >= rows) {
      for (uint64_t b = 0; b < cols * oes; b++)
        cr_assert_eq(orow[b], 0, "%s: row %llu (bad id %lld) not zeroed", what,
                     (unsigned long long)i, (long long)id);
      continue;
    }
    const char *trow = (const char *)table + (uint64_t)id * cols * es;
    if (out_dt == dt) {
      cr_assert(memcmp(orow, trow, cols * es) == 0,
                "%s: row %llu (id %lld) differs", what, (unsigned long long)i,
                (long long)id);
      continue;
    }
    for (uint64_t c = 0; c < cols; c++) {
      float want = (float)ref_value(dt, trow, c);
      float got = ((const float *)orow)[c];
      cr_assert(memcmp(&want, &got, 4) == 0,
                "%s: row %llu col %llu: %.9g, expected %.9g", what,
                (unsigned long long)i, (unsigned long long)c, (double)got,
                (double)want);
    }
  }
}

/* Memory a caller would wrap: page-aligned, as CL_MEM_USE_HOST_PTR wants
 * (docs/table.md: wrapped memory must meet the device's base alignment). */
static void *aligned_host(size_t bytes) {
  void *p = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
  cr_assert_not_null(p);
  return p;
}

/* ---- running one gather through device-side buffers ---------------------- */

typedef struct run {
  ferry_context *ctx;
  ferry_stream *stream;
} run;

static run run_open(void) {
  run r;
  r.ctx = ferry_test_context();
  FERRY_OK_(ferry_stream_create(r.ctx, &r.stream));
  return r;
}

static void run_close(run *r) {
  ferry_stream_destroy(r->stream);
  ferry_context_destroy(r->ctx);
}

/* Gather n ids into host memory `out` (poisoned here) through an ids buffer
 * (pinned for STAGED tables, device otherwise) and a device out buffer.
 * Returns the status of the synchronize; a deferred error's op must be
 * "gather" and its message goes to `msg`. */
static ferry_status gather_to_host(run *r, ferry_table *t, const void *ids,
                                   ferry_dtype idt, uint64_t n, void *out,
                                   ferry_dtype out_dt, char msg[512]) {
  ferry_table_info info = FERRY_TABLE_INFO_INIT;
  FERRY_OK_(ferry_table_get_info(t, &info));
  size_t ies = ferry_dtype_size(idt);
  uint64_t obytes = n * info.cols * ferry_dtype_size(out_dt);
  ferry_buffer *ib = NULL, *ob = NULL;
  ferry_memory_space ispace = info.path == FERRY_GATHER_PATH_STAGED
                                  ? FERRY_MEMORY_PINNED_HOST
                                  : FERRY_MEMORY_DEVICE;
  FERRY_OK_(ferry_buffer_create(r->ctx, ispace, n * ies, &ib));
  FERRY_OK_(ferry_buffer_create(r->ctx, FERRY_MEMORY_DEVICE, obytes, &ob));
  if (n > 0)
    FERRY_OK_(ferry_buffer_write_async(r->stream, ib, 0, ids, n * ies));
  ferry_test_poison(out, obytes);
  if (obytes > 0)
    FERRY_OK_(ferry_buffer_write_async(r->stream, ob, 0, out, obytes));
  ferry_tensor ti, to;
  int64_t ishape[1] = {(int64_t)n};
  int64_t oshape[2] = {(int64_t)n, (int64_t)info.cols};
  FERRY_OK_(ferry_tensor_make(ib, 0, idt, 1, ishape, &ti));
  FERRY_OK_(ferry_tensor_make(ob, 0, out_dt, 2, oshape, &to));
  FERRY_OK_(ferry_gather(t, &ti, n, &to, r->stream, NULL));
  ferry_status st = ferry_stream_synchronize(r->stream);
  msg[0] = '\0';
  if (st != FERRY_OK) {
    ferry_error_info ei = FERRY_ERROR_INFO_INIT;
    FERRY_OK_(ferry_last_error_info(&ei));
    cr_assert_eq(ei.status, st);
    cr_assert_str_eq(ei.op, "gather");
    snprintf(msg, 512, "%s", ei.message);
  }
  if (obytes > 0)
    FERRY_OK_(ferry_buffer_read_async(r->stream, ob, 0, out, obytes));
  FERRY_OK_(ferry_stream_synchronize(r->stream));
  ferry_buffer_destroy(ib);
  ferry_buffer_destroy(ob);
  return st;
}

static void *random_ids(ferry_dtype idt, uint64_t n, uint64_t rows,
                        uint64_t *rng) {
  void *ids = malloc(n * ferry_dtype_size(idt) + 8);
  cr_assert_not_null(ids);
  for (uint64_t i = 0; i < n; i++) {
    /* Repeats on purpose: rows is small against n. */
    uint64_t id = rows ? ferry_test_rand(rng) % rows : 0;
    if (idt == FERRY_DTYPE_I32)
      ((int32_t *)ids)[i] = (int32_t)id;
    else
      ((int64_t *)ids)[i] = (int64_t)id;
  }
  return ids;
}

/* One table of every placement, dtype, width; every id type and out dtype;
 * n in {0, 1, 7, 1000}. */
static void sweep(run *r, uint64_t rows, const uint64_t *ns, size_t num_ns,
                  const uint64_t *ws, size_t num_ws, uint64_t seed) {
  uint64_t rng = seed;
  char msg[512];
  for (size_t p = 0; p < sizeof placements / sizeof placements[0]; p++)
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++)
      for (size_t w = 0; w < num_ws; w++) {
        ferry_dtype dt = dtypes[d];
        uint64_t cols = ws[w];
        size_t es = ferry_dtype_size(dt);
        void *host = malloc(rows * cols * es + 1);
        fill_random(host, dt, rows * cols, &rng);
        ferry_table_options o = FERRY_TABLE_OPTIONS_INIT;
        o.placement = placements[p];
        ferry_table *t = NULL;
        FERRY_OK_(ferry_table_create(r->ctx, rows, cols, dt, &o, &t));
        FERRY_OK_(ferry_table_write(t, 0, rows, host));
        for (size_t k = 0; k < num_ns; k++)
          for (int it = 0; it < 2; it++) {
            ferry_dtype idt = it ? FERRY_DTYPE_I64 : FERRY_DTYPE_I32;
            uint64_t n = ns[k];
            void *ids = random_ids(idt, n, rows, &rng);
            ferry_dtype outs[2] = {dt, FERRY_DTYPE_F32};
            for (int od = 0; od < (dt == FERRY_DTYPE_F32 ? 1 : 2); od++) {
              void *out = malloc(n * cols * 4 + 1);
              char what[128];
              snprintf(what, sizeof what,
                       "placement %d %s cols %llu n %llu %s -> %s",
                       (int)placements[p], ferry_dtype_name(dt),
                       (unsigned long long)cols, (unsigned long long)n,
                       ferry_dtype_name(idt), ferry_dtype_name(outs[od]));
              ferry_status st =
                  gather_to_host(r, t, ids, idt, n, out, outs[od], msg);
              cr_assert_eq(st, FERRY_OK, "%s: %s (%s)", what,
                           ferry_status_string(st), msg);
              check_rows(host, dt, rows, cols, ids, idt, n, out, outs[od],
                         what);
              free(out);
            }
            free(ids);
          }
        ferry_table_destroy(t);
        free(host);
      }
}

Test(table, gather_matches_reference) {
  run r = run_open();
  const uint64_t ns[] = {0, 1, 7, 1000};
  sweep(&r, 1009, ns, 4, widths, sizeof widths / sizeof widths[0], 1);
  run_close(&r);
}

Test(table, gather_large_batches) {
  /* n = 1M on narrow rows, 100000 on wider ones: each <= 256 MB with the
   * device-side copies. */
  run r = run_open();
  uint64_t rng = 7;
  char msg[512];
  const struct {
    uint64_t cols, n;
    ferry_dtype dt;
  } cases[] = {{1, 1000000, FERRY_DTYPE_F32},   {31, 1000000, FERRY_DTYPE_F16},
               {100, 100000, FERRY_DTYPE_F16},  {128, 100000, FERRY_DTYPE_F32},
               {129, 100000, FERRY_DTYPE_BF16}, {1433, 10000, FERRY_DTYPE_F32}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    uint64_t rows = 100003, cols = cases[c].cols, n = cases[c].n;
    ferry_dtype dt = cases[c].dt;
    void *host = aligned_host(rows * cols * ferry_dtype_size(dt));
    fill_random(host, dt, rows * cols, &rng);
    ferry_table *t = NULL;
    FERRY_OK_(ferry_table_wrap_host(r.ctx, host, rows, cols, dt, NULL, &t));
    void *ids = random_ids(FERRY_DTYPE_I64, n, rows, &rng);
    void *out = malloc(n * cols * ferry_dtype_size(dt));
    FERRY_OK_(gather_to_host(&r, t, ids, FERRY_DTYPE_I64, n, out, dt, msg));
    check_rows(host, dt, rows, cols, ids, FERRY_DTYPE_I64, n, out, dt, "large");
    free(out);
    free(ids);
    ferry_table_destroy(t);
    free(host);
  }
  run_close(&r);
}

Test(table, out_of_range_ids) {
  run r = run_open();
  uint64_t rng = 3, rows = 101, cols = 33;
  char msg[512], want[64];
  float *host = aligned_host(rows * cols * 4);
  fill_random(host, FERRY_DTYPE_F32, rows * cols, &rng);
  for (size_t p = 0; p < sizeof placements / sizeof placements[0]; p++) {
    ferry_table_options o = FERRY_TABLE_OPTIONS_INIT;
    o.placement = placements[p];
    ferry_table *t = NULL;
    FERRY_OK_(ferry_table_wrap_host(r.ctx, host, rows, cols, FERRY_DTYPE_F32,
                                    &o, &t));
    const uint64_t n = 257;
    const uint64_t where[] = {0, 128, 256};
    const int64_t bad[] = {-1, 101, INT32_MAX, -5};
    for (int it = 0; it < 2; it++)
      for (size_t w = 0; w < 3; w++) {
        ferry_dtype idt = it ? FERRY_DTYPE_I64 : FERRY_DTYPE_I32;
        void *ids = random_ids(idt, n, rows, &rng);
        /* The first bad position is where[w]; another one after it. */
        for (uint64_t k = where[w]; k < n; k += 97) {
          int64_t b = bad[(k + w) % 4];
          if (idt == FERRY_DTYPE_I32)
            ((int32_t *)ids)[k] = (int32_t)b;
          else
            ((int64_t *)ids)[k] = b;
        }
        float *out = malloc(n * cols * 4);
        ferry_status st =
            gather_to_host(&r, t, ids, idt, n, out, FERRY_DTYPE_F32, msg);
        cr_assert_eq(st, FERRY_ERR_OUT_OF_RANGE, "placement %d: %s",
                     (int)placements[p], ferry_status_string(st));
        snprintf(want, sizeof want, "ids[%llu]", (unsigned long long)where[w]);
        cr_assert(strstr(msg, want) != NULL, "message '%s' lacks '%s'", msg,
                  want);
        check_rows(host, FERRY_DTYPE_F32, rows, cols, ids, idt, n, out,
                   FERRY_DTYPE_F32, "bad ids");
        free(out);
        free(ids);
      }
    /* A later good gather on the same stream is not affected. */
    int32_t good = 5;
    float row[33];
    FERRY_OK_(gather_to_host(&r, t, &good, FERRY_DTYPE_I32, 1, row,
                             FERRY_DTYPE_F32, msg));
    cr_assert(memcmp(row, host + 5 * cols, sizeof row) == 0);
    ferry_table_destroy(t);
  }
  free(host);
  run_close(&r);
}

Test(table, tables_split_into_pieces) {
  /* Small pieces exercise the multi-buffer path every backend must take
   * for tables over the device's maximum allocation. */
  setenv("FERRY_TABLE_PIECE_BYTES", "8192", 1);
  run r = run_open();
  const uint64_t ns[] = {1000};
  const uint64_t ws[] = {3, 129, 1433};
  ferry_table *t = NULL;
  FERRY_OK_(ferry_table_create(r.ctx, 2000, 3, FERRY_DTYPE_F32, NULL, &t));
  ferry_table_info info = FERRY_TABLE_INFO_INIT;
  FERRY_OK_(ferry_table_get_info(t, &info));
  cr_assert_gt(info.pieces, 1, "2000 x 12 B rows over 8 KiB pieces: %u pieces",
               info.pieces);
  ferry_table_destroy(t);
  sweep(&r, 777, ns, 1, ws, 3, 11);
  run_close(&r);
  unsetenv("FERRY_TABLE_PIECE_BYTES");
}

/* ---- .npy files ---------------------------------------------------------- */

/* Write a .npy file: header dict text as given (padded to 64 B as NumPy
 * does), then `data_bytes` of `data`. version 1 or 2. */
static void write_npy(const char *path, int version, const char *dict,
                      const void *data, size_t data_bytes) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot write %s", path);
  size_t pre = version == 1 ? 10 : 12;
  size_t len = strlen(dict) + 1; /* + '\n' */
  size_t total = (pre + len + 63) / 64 * 64;
  size_t hlen = total - pre;
  fwrite("\x93NUMPY", 1, 6, f);
  unsigned char v[2] = {(unsigned char)version, 0};
  fwrite(v, 1, 2, f);
  unsigned char l[4] = {(unsigned char)(hlen & 0xff),
                        (unsigned char)((hlen >> 8) & 0xff),
                        (unsigned char)((hlen >> 16) & 0xff), 0};
  fwrite(l, 1, version == 1 ? 2 : 4, f);
  fwrite(dict, 1, strlen(dict), f);
  for (size_t i = len; i < hlen; i++)
    fputc(' ', f);
  fputc('\n', f);
  if (data_bytes)
    fwrite(data, 1, data_bytes, f);
  fclose(f);
}

static char *tmp_path(const char *name) {
  static char buf[4][256];
  static int k;
  char *b = buf[k++ % 4];
  snprintf(b, 256, "/tmp/ferry_test_table_%d_%s.npy", (int)getpid(), name);
  return b;
}

typedef struct progress {
  uint64_t last_done, total;
  int calls;
} progress;

static void on_progress(uint64_t done, uint64_t total, void *user) {
  progress *p = user;
  cr_assert_geq(done, p->last_done, "progress went backwards");
  p->last_done = done;
  p->total = total;
  p->calls++;
}

Test(table, npy_round_trips) {
  run r = run_open();
  uint64_t rng = 5;
  char msg[512];
  const struct {
    const char *descr;
    ferry_dtype dt;
    uint64_t rows, cols;
    int version;
  } files[] = {{"<f4", FERRY_DTYPE_F32, 97, 31, 1},
               {"<f2", FERRY_DTYPE_F16, 64, 129, 2},
               {"<u2", FERRY_DTYPE_BF16, 1, 1433, 1},
               {"<f4", FERRY_DTYPE_F32, 0, 7, 1}};
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    uint64_t rows = files[f].rows, cols = files[f].cols;
    ferry_dtype dt = files[f].dt;
    size_t bytes = rows * cols * ferry_dtype_size(dt);
    void *data = malloc(bytes + 1);
    fill_random(data, dt, rows * cols, &rng);
    char dict[256];
    snprintf(dict, sizeof dict,
             "{'descr': '%s', 'fortran_order': False, 'shape': (%llu, %llu), }",
             files[f].descr, (unsigned long long)rows,
             (unsigned long long)cols);
    const char *path = tmp_path("rt");
    write_npy(path, files[f].version, dict, data, bytes);
    for (size_t p = 0; p < sizeof placements / sizeof placements[0]; p++) {
      ferry_table_options o = FERRY_TABLE_OPTIONS_INIT;
      o.placement = placements[p];
      o.npy_u2_is_bf16 = 1;
      progress pr = {0, 0, 0};
      o.progress = on_progress;
      o.progress_user = &pr;
      ferry_table *t = NULL;
      FERRY_OK_(ferry_table_from_npy(r.ctx, path, &o, &t));
      ferry_table_info info = FERRY_TABLE_INFO_INIT;
      FERRY_OK_(ferry_table_get_info(t, &info));
      cr_assert_eq(info.rows, rows);
      cr_assert_eq(info.cols, cols);
      cr_assert_eq(info.dtype, dt);
      cr_assert_neq(info.placement, FERRY_PLACEMENT_AUTO);
      if (rows > 0)
        cr_assert(pr.calls > 0 && pr.last_done == pr.total,
                  "progress: %d calls, %llu of %llu", pr.calls,
                  (unsigned long long)pr.last_done,
                  (unsigned long long)pr.total);
      void *back = malloc(bytes + 1);
      ferry_test_poison(back, bytes);
      FERRY_OK_(ferry_table_read(t, 0, rows, back));
      cr_assert(memcmp(back, data, bytes) == 0, "read back differs");
      /* Writing a file's table is refused. */
      if (rows > 0)
        FERRY_EXPECT(ferry_table_write(t, 0, 1, data),
                     FERRY_ERR_INVALID_ARGUMENT);
      uint64_t n = rows ? 50 : 0;
      void *ids = random_ids(FERRY_DTYPE_I32, n, rows, &rng);
      void *out = malloc(n * cols * 4 + 1);
      FERRY_OK_(gather_to_host(&r, t, ids, FERRY_DTYPE_I32, n, out,
                               FERRY_DTYPE_F32, msg));
      check_rows(data, dt, rows, cols, ids, FERRY_DTYPE_I32, n, out,
                 FERRY_DTYPE_F32, files[f].descr);
      free(out);
      free(ids);
      free(back);
      ferry_table_destroy(t);
    }
    unlink(path);
    free(data);
  }
  run_close(&r);
}

Test(table, npy_malformed) {
  ferry_context *ctx = ferry_test_context();
  float data[12] = {0};
  const struct {
    const char *dict;
    size_t data_bytes;
    const char *needle;
  } bad[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 47,
       "truncated"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", 48,
       "Fortran"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 2), }", 48,
       "3-D"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (12,), }", 48, "1-D"},
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", 48,
       "'<f8' is unsupported"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }", 48,
       "'>f4' is unsupported"},
      {"{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }", 24,
       "npy_u2_is_bf16"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", 0,
       "0 columns"},
      {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (3, 4), }", 48,
       "fortran_order"},
      {"{'descr': '<f4', 'shape': (3, 4), }", 48, "fortran_order"},
      {"{'fortran_order': False, 'shape': (3, 4), }", 48, "descr"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, x), }", 48,
       "shape"},
      {"[1, 2, 3]", 48, "dict"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *path = tmp_path("bad");
    write_npy(path, 1, bad[i].dict, data, bad[i].data_bytes);
    ferry_table *t = (ferry_table *)0x1;
    FERRY_EXPECT(ferry_table_from_npy(ctx, path, NULL, &t),
                 FERRY_ERR_BAD_FORMAT);
    FERRY_EXPECT_MESSAGE(bad[i].needle);
    cr_assert_eq(t, (ferry_table *)0x1, "output written on failure");
    unlink(path);
  }
  /* No magic; a header longer than the file; a file of 5 bytes; none. */
  const char *path = tmp_path("raw");
  FILE *f = fopen(path, "wb");
  fputs("NUMPY\x01\x00garbage and more garbage", f);
  fclose(f);
  ferry_table *t = NULL;
  FERRY_EXPECT(ferry_table_from_npy(ctx, path, NULL, &t), FERRY_ERR_BAD_FORMAT);
  FERRY_EXPECT_MESSAGE("magic");
  f = fopen(path, "wb");
  fwrite("\x93NUMPY\x01\x00\xff\x7f{'descr'", 1, 17, f);
  fclose(f);
  FERRY_EXPECT(ferry_table_from_npy(ctx, path, NULL, &t), FERRY_ERR_BAD_FORMAT);
  FERRY_EXPECT_MESSAGE("truncated");
  f = fopen(path, "wb");
  fwrite("\x93NUM", 1, 4, f);
  fclose(f);
  FERRY_EXPECT(ferry_table_from_npy(ctx, path, NULL, &t), FERRY_ERR_BAD_FORMAT);
  unlink(path);
  FERRY_EXPECT(ferry_table_from_npy(ctx, path, NULL, &t), FERRY_ERR_IO);
  FERRY_EXPECT_MESSAGE(path);
  ferry_context_destroy(ctx);
}

/* ---- the caller's memory, info, destruction ------------------------------ */

Test(table, wrap_host_reads_in_place) {
  run r = run_open();
  char msg[512];
  uint64_t rows = 64, cols = 40;
  float *host = aligned_host(rows * cols * 4);
  for (uint64_t i = 0; i < rows * cols; i++)
    host[i] = (float)i;
  const ferry_table_placement ps[] = {FERRY_PLACEMENT_ZEROCOPY,
                                      FERRY_PLACEMENT_STAGED};
  for (size_t p = 0; p < 2; p++) {
    ferry_table_options o = FERRY_TABLE_OPTIONS_INIT;
    o.placement = ps[p];
    ferry_table *t = NULL;
    FERRY_OK_(ferry_table_wrap_host(r.ctx, host, rows, cols, FERRY_DTYPE_F32,
                                    &o, &t));
    ferry_table_info info = FERRY_TABLE_INFO_INIT;
    FERRY_OK_(ferry_table_get_info(t, &info));
    cr_assert(info.wrapped);
    cr_assert_eq(info.host_pointer, host);
    cr_assert_eq(info.numa_bound, 0, "the caller's memory is not ferry's");
    FERRY_EXPECT(ferry_table_write(t, 0, 1, host), FERRY_ERR_INVALID_ARGUMENT);
    /* Not copied: a change of the caller's memory shows in the next gather. */
    host[7 * cols + 3] = -42.0f;
    int64_t id = 7;
    float row[40];
    FERRY_OK_(gather_to_host(&r, t, &id, FERRY_DTYPE_I64, 1, row,
                             FERRY_DTYPE_F32, msg));
    cr_assert_eq(row[3], -42.0f);
    host[7 * cols + 3] = (float)(7 * cols + 3);
    ferry_table_destroy(t);
  }
  free(host);
  run_close(&r);
}

/* CPUs in an hwloc list string ("0-3,8"); "" is every online CPU. */
static int cpus_in(const char *list) {
  if (list[0] == '\0')
    return (int)sysconf(_SC_NPROCESSORS_ONLN);
  int count = 0;
  const char *p = list;
  while (*p) {
    char *end;
    long lo = strtol(p, &end, 10), hi = lo;
    if (*end == '-')
      hi = strtol(end + 1, &end, 10);
    count += (int)(hi - lo + 1);
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p != '\0')
      break;
  }
  return count;
}

Test(table, info_reports_path_and_binding) {
  ferry_context *ctx = ferry_test_context();
  int cpu = strcmp(ferry_test_backend(), "cpu") == 0;
  for (size_t p = 0; p < sizeof placements / sizeof placements[0]; p++) {
    ferry_table_options o = FERRY_TABLE_OPTIONS_INIT;
    o.placement = placements[p];
    ferry_table *t = NULL;
    FERRY_OK_(ferry_table_create(ctx, 10, 5, FERRY_DTYPE_BF16, &o, &t));
    ferry_table_info info = FERRY_TABLE_INFO_INIT;
    FERRY_OK_(ferry_table_get_info(t, &info));
    cr_assert_eq(info.row_bytes, 10);
    cr_assert_eq(info.pieces, 1);
    if (cpu)
      cr_assert_eq(info.path, FERRY_GATHER_PATH_HOST);
    else if (info.placement == FERRY_PLACEMENT_DEVICE)
      cr_assert_eq(info.path, FERRY_GATHER_PATH_DEVICE);
    else if (info.placement == FERRY_PLACEMENT_STAGED)
      cr_assert_eq(info.path, FERRY_GATHER_PATH_STAGED);
    if (info.path != FERRY_GATHER_PATH_DEVICE)
      cr_assert_not_null(info.host_pointer);
    /* Host gathers use every core of the context's cpuset: the cpu pool,
     * or (STAGED) the core's gather pool; device paths none. */
    ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
    FERRY_OK_(ferry_context_get_info(ctx, &ci));
    if (info.path == FERRY_GATHER_PATH_HOST)
      cr_assert_eq(info.host_threads, ci.num_threads);
    else if (info.path == FERRY_GATHER_PATH_STAGED)
      cr_assert_eq(info.host_threads, cpus_in(ci.cpuset), "%d threads, '%s'",
                   info.host_threads, ci.cpuset);
    else
      cr_assert_eq(info.host_threads, 0);
    /* OpenCL reports its allocation cap: tables split at it. */
    if (strcmp(ci.backend, "opencl") == 0)
      cr_assert_gt(ci.device.max_alloc_bytes, 0);
    /* Bound memory names its nodes. */
    if (info.numa_bound)
      cr_assert_neq(info.numa_nodes[0], '\0');
    ferry_table_info small = {.struct_size = 8};
    FERRY_EXPECT(ferry_table_get_info(t, &small), FERRY_ERR_STRUCT_SIZE);
    ferry_table_destroy(t);
  }
  ferry_context_destroy(ctx);
}

Test(table, destroy_with_gather_queued) {
  run r = run_open();
  uint64_t rows = 4096, cols = 256, n = 20000;
  ferry_table *t = NULL;
  float *host = malloc(rows * cols * 4);
  for (uint64_t i = 0; i < rows * cols; i++)
    host[i] = (float)(i % 1000);
  FERRY_OK_(ferry_table_create(r.ctx, rows, cols, FERRY_DTYPE_F32, NULL, &t));
  FERRY_OK_(ferry_table_write(t, 0, rows, host));
  uint64_t rng = 9;
  int64_t *ids = random_ids(FERRY_DTYPE_I64, n, rows, &rng);
  ferry_buffer *ib, *ob;
  FERRY_OK_(ferry_buffer_create(r.ctx, FERRY_MEMORY_DEVICE, n * 8, &ib));
  FERRY_OK_(ferry_buffer_create(r.ctx, FERRY_MEMORY_DEVICE, n * cols * 4, &ob));
  FERRY_OK_(ferry_buffer_write_async(r.stream, ib, 0, ids, n * 8));
  ferry_tensor ti, to;
  int64_t is[1] = {(int64_t)n}, os[2] = {(int64_t)n, (int64_t)cols};
  FERRY_OK_(ferry_tensor_make(ib, 0, FERRY_DTYPE_I64, 1, is, &ti));
  FERRY_OK_(ferry_tensor_make(ob, 0, FERRY_DTYPE_F32, 2, os, &to));
  FERRY_OK_(ferry_gather(t, &ti, n, &to, r.stream, NULL));
  ferry_table_destroy(t); /* waits for the gather */
  float *out = malloc(n * cols * 4);
  FERRY_OK_(ferry_buffer_read_async(r.stream, ob, 0, out, n * cols * 4));
  FERRY_OK_(ferry_stream_synchronize(r.stream));
  check_rows(host, FERRY_DTYPE_F32, rows, cols, ids, FERRY_DTYPE_I64, n, out,
             FERRY_DTYPE_F32, "destroyed");
  free(out);
  free(ids);
  free(host);
  ferry_buffer_destroy(ib);
  ferry_buffer_destroy(ob);
  run_close(&r);
}

Test(table, staged_gathers_from_two_streams) {
  /* Two streams' host functions share the context's gather pool (STAGED;
   * the cpu pool on cpu): jobs run side by side, each complete and right. */
  run r = run_open();
  ferry_stream *s2;
  FERRY_OK_(ferry_stream_create(r.ctx, &s2));
  uint64_t rows = 5003, cols = 129, n = 40009, rng = 17;
  float *host = aligned_host(rows * cols * 4);
  fill_random(host, FERRY_DTYPE_F32, rows * cols, &rng);
  ferry_table_options o = FERRY_TABLE_OPTIONS_INIT;
  o.placement = FERRY_PLACEMENT_STAGED;
  ferry_table *t;
  FERRY_OK_(
      ferry_table_wrap_host(r.ctx, host, rows, cols, FERRY_DTYPE_F32, &o, &t));
  ferry_stream *streams[2] = {r.stream, s2};
  int64_t *ids[2];
  float *out[2];
  ferry_buffer *ib[2], *ob[2];
  for (int k = 0; k < 2; k++) {
    ids[k] = random_ids(FERRY_DTYPE_I64, n, rows, &rng);
    out[k] = malloc(n * cols * 4);
    ferry_test_poison(out[k], n * cols * 4);
    FERRY_OK_(
        ferry_buffer_create(r.ctx, FERRY_MEMORY_PINNED_HOST, n * 8, &ib[k]));
    FERRY_OK_(
        ferry_buffer_create(r.ctx, FERRY_MEMORY_DEVICE, n * cols * 4, &ob[k]));
    FERRY_OK_(ferry_buffer_write_async(streams[k], ib[k], 0, ids[k], n * 8));
    FERRY_OK_(
        ferry_buffer_write_async(streams[k], ob[k], 0, out[k], n * cols * 4));
    FERRY_OK_(ferry_stream_synchronize(streams[k]));
  }
  for (int k = 0; k < 2; k++) {
    ferry_tensor ti, to;
    int64_t is[1] = {(int64_t)n}, os[2] = {(int64_t)n, (int64_t)cols};
    FERRY_OK_(ferry_tensor_make(ib[k], 0, FERRY_DTYPE_I64, 1, is, &ti));
    FERRY_OK_(ferry_tensor_make(ob[k], 0, FERRY_DTYPE_F32, 2, os, &to));
    /* Twice: the second gather reuses the lane's staging buffers. */
    FERRY_OK_(ferry_gather(t, &ti, n, &to, streams[k], NULL));
    FERRY_OK_(ferry_gather(t, &ti, n, &to, streams[k], NULL));
  }
  for (int k = 0; k < 2; k++) {
    FERRY_OK_(ferry_stream_synchronize(streams[k]));
    FERRY_OK_(
        ferry_buffer_read_async(streams[k], ob[k], 0, out[k], n * cols * 4));
    FERRY_OK_(ferry_stream_synchronize(streams[k]));
    check_rows(host, FERRY_DTYPE_F32, rows, cols, ids[k], FERRY_DTYPE_I64, n,
               out[k], FERRY_DTYPE_F32, k ? "second stream" : "first stream");
    ferry_buffer_destroy(ib[k]);
    ferry_buffer_destroy(ob[k]);
    free(ids[k]);
    free(out[k]);
  }
  ferry_table_destroy(t);
  free(host);
  ferry_stream_destroy(s2);
  run_close(&r);
}

Test(table, host_ids_and_out_on_host_unified_backends) {
  /* cpu (and devices sharing host memory): plain host pointers work. */
  ferry_context *ctx = ferry_test_context();
  ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &ci));
  if (strcmp(ci.backend, "cpu") != 0) {
    ferry_context_destroy(ctx);
    cr_skip_test("device kernels read ferry buffers only");
  }
  ferry_stream *s;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  float *host = aligned_host(15 * 4);
  for (int i = 0; i < 15; i++)
    host[i] = (float)i;
  ferry_table *t;
  FERRY_OK_(ferry_table_wrap_host(ctx, host, 5, 3, FERRY_DTYPE_F32, NULL, &t));
  int32_t ids[4] = {4, 0, 4, 2};
  float out[12];
  ferry_test_poison(out, sizeof out);
  ferry_tensor ti = {
      .host = ids, .dtype = FERRY_DTYPE_I32, .ndim = 1, .shape = {4}};
  ferry_tensor to = {
      .host = out, .dtype = FERRY_DTYPE_F32, .ndim = 2, .shape = {4, 3}};
  FERRY_OK_(ferry_gather(t, &ti, 4, &to, s, NULL));
  FERRY_OK_(ferry_stream_synchronize(s));
  check_rows(host, FERRY_DTYPE_F32, 5, 3, ids, FERRY_DTYPE_I32, 4, out,
             FERRY_DTYPE_F32, "host pointers");
  ferry_table_destroy(t);
  free(host);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

Test(table, streaming_stores_any_alignment) {
  /* cpu: outputs over a threshold are written with 64 B non-temporal
   * stores where rows are whole cache lines of >= 512 B and out is
   * line-aligned (AVX-512 cpus), ordinary stores otherwise. A threshold of 1
   * byte streams every gather here: out at offsets 0..64 B, rows of 64 B ..
   * 5732 B, bad ids in the middle, against the loop. */
  setenv("FERRY_GATHER_STREAM_BYTES", "1", 1);
  ferry_context *ctx = ferry_test_context();
  ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &ci));
  if (strcmp(ci.backend, "cpu") != 0) {
    ferry_context_destroy(ctx);
    unsetenv("FERRY_GATHER_STREAM_BYTES");
    cr_skip_test("streaming stores are the cpu gather's");
  }
  ferry_stream *s;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  uint64_t rng = 21;
  const struct {
    uint64_t cols;
    ferry_dtype dt;
  } shapes[] = {{16, FERRY_DTYPE_F32},  {32, FERRY_DTYPE_F16},
                {128, FERRY_DTYPE_F32}, {1024, FERRY_DTYPE_BF16},
                {100, FERRY_DTYPE_F32}, {100, FERRY_DTYPE_F16},
                {129, FERRY_DTYPE_F32}, {131, FERRY_DTYPE_BF16},
                {1433, FERRY_DTYPE_F32}};
  const size_t offsets[] = {0, 2, 4, 16, 64};
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
    uint64_t rows = 1009, cols = shapes[k].cols, n = 3001;
    ferry_dtype dt = shapes[k].dt;
    size_t es = ferry_dtype_size(dt);
    void *host = aligned_host(rows * cols * es);
    fill_random(host, dt, rows * cols, &rng);
    ferry_table *t;
    FERRY_OK_(ferry_table_wrap_host(ctx, host, rows, cols, dt, NULL, &t));
    int64_t *ids = random_ids(FERRY_DTYPE_I64, n, rows, &rng);
    ids[1500] = (int64_t)rows; /* out of range: zero row, deferred error */
    char *base = aligned_host(n * cols * es + 128);
    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
      char *out = base + offsets[o];
      ferry_test_poison(base, n * cols * es + 128);
      ferry_tensor ti = {.host = ids,
                         .dtype = FERRY_DTYPE_I64,
                         .ndim = 1,
                         .shape = {(int64_t)n}};
      ferry_tensor to = {.host = out,
                         .dtype = dt,
                         .ndim = 2,
                         .shape = {(int64_t)n, (int64_t)cols}};
      FERRY_OK_(ferry_gather(t, &ti, n, &to, s, NULL));
      ferry_status st = ferry_stream_synchronize(s);
      cr_assert_eq(st, FERRY_ERR_OUT_OF_RANGE, "cols %llu offset %zu: %s",
                   (unsigned long long)cols, offsets[o],
                   ferry_status_string(st));
      cr_assert(strstr(ferry_last_error(), "ids[1500]") != NULL, "%s",
                ferry_last_error());
      char what[96];
      snprintf(what, sizeof what, "streamed %s cols %llu out offset %zu",
               ferry_dtype_name(dt), (unsigned long long)cols, offsets[o]);
      check_rows(host, dt, rows, cols, ids, FERRY_DTYPE_I64, n, out, dt, what);
      /* Nothing written around out. */
      unsigned char before[64], after[64], pz[64];
      ferry_test_poison(pz, sizeof pz);
      memcpy(before, base, offsets[o]);
      cr_assert(memcmp(before, pz, offsets[o]) == 0, "%s: bytes before out",
                what);
      memcpy(after, out + n * cols * es, 64);
      cr_assert(memcmp(after, pz, 64) == 0, "%s: bytes after out", what);
    }
    free(base);
    free(ids);
    ferry_table_destroy(t);
    free(host);
  }
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
  unsetenv("FERRY_GATHER_STREAM_BYTES");
}

/* ---- bad input ----------------------------------------------------------- */

Test(table, bad_input) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  ferry_table *t = (ferry_table *)0x1;
  float host[8] = {0};
  FERRY_EXPECT(ferry_table_create(NULL, 1, 1, FERRY_DTYPE_F32, NULL, &t),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_table_create(ctx, 1, 1, FERRY_DTYPE_F32, NULL, NULL),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_table_create(ctx, 4, 0, FERRY_DTYPE_F32, NULL, &t),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("cols");
  FERRY_EXPECT(ferry_table_create(ctx, 4, 2, FERRY_DTYPE_F64, NULL, &t),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("dtype");
  FERRY_EXPECT(
      ferry_table_wrap_host(ctx, NULL, 4, 2, FERRY_DTYPE_F32, NULL, &t),
      FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_table_from_npy(ctx, NULL, NULL, &t),
               FERRY_ERR_NULL_POINTER);
  ferry_table_options o = FERRY_TABLE_OPTIONS_INIT;
  o.struct_size = 3;
  FERRY_EXPECT(ferry_table_create(ctx, 4, 2, FERRY_DTYPE_F32, &o, &t),
               FERRY_ERR_STRUCT_SIZE);
  o.struct_size = sizeof o;
  o.placement = (ferry_table_placement)9;
  FERRY_EXPECT(ferry_table_create(ctx, 4, 2, FERRY_DTYPE_F32, &o, &t),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("placement");
  /* Larger than memory: a clean failure, nothing leaked (ASan checks). */
  FERRY_EXPECT(ferry_table_create(ctx, UINT64_C(1) << 40, 1024, FERRY_DTYPE_F32,
                                  NULL, &t),
               FERRY_ERR_OUT_OF_MEMORY);
  FERRY_EXPECT(ferry_table_create(ctx, UINT64_C(1) << 36, UINT64_C(1) << 36,
                                  FERRY_DTYPE_F32, NULL, &t),
               FERRY_ERR_OUT_OF_MEMORY);
  cr_assert_eq(t, (ferry_table *)0x1, "output written on failure");

  FERRY_OK_(ferry_table_create(ctx, 4, 2, FERRY_DTYPE_F16, NULL, &t));
  FERRY_EXPECT(ferry_table_write(t, 3, 2, host), FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT(ferry_table_write(t, 0, 1, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_table_read(t, 5, 0, host), FERRY_ERR_OUT_OF_RANGE);
  ferry_buffer *ib, *ob;
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, 64, &ib));
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, 256, &ob));
  ferry_tensor ids, out;
  int64_t is[1] = {4}, os[2] = {4, 2};
  FERRY_OK_(ferry_tensor_make(ib, 0, FERRY_DTYPE_I32, 1, is, &ids));
  FERRY_OK_(ferry_tensor_make(ob, 0, FERRY_DTYPE_F16, 2, os, &out));
  FERRY_EXPECT(ferry_gather(NULL, &ids, 4, &out, s, NULL),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_gather(t, NULL, 4, &out, s, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_gather(t, &ids, 4, NULL, s, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_gather(t, &ids, 4, &out, NULL, NULL),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_gather(t, &ids, 5, &out, s, NULL), FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT_MESSAGE("'n'");
  ferry_tensor bad = ids;
  bad.dtype = FERRY_DTYPE_F32;
  FERRY_EXPECT(ferry_gather(t, &bad, 4, &out, s, NULL), FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("ids");
  bad = out;
  bad.dtype = FERRY_DTYPE_BF16;
  FERRY_EXPECT(ferry_gather(t, &ids, 4, &bad, s, NULL), FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("out");
  bad = out;
  bad.shape[1] = 3;
  FERRY_EXPECT(ferry_gather(t, &ids, 4, &bad, s, NULL), FERRY_ERR_MISMATCH);
  bad = out;
  bad.shape[1] = 1;
  bad.ndim = 1;
  FERRY_EXPECT(ferry_gather(t, &ids, 4, &bad, s, NULL), FERRY_ERR_MISMATCH);
  bad = out;
  bad.shape[0] = 1000; /* beyond the buffer */
  FERRY_EXPECT(ferry_gather(t, &ids, 4, &bad, s, NULL), FERRY_ERR_OUT_OF_RANGE);
  ferry_gather_options go = FERRY_GATHER_OPTIONS_INIT;
  go.struct_size = 1;
  FERRY_EXPECT(ferry_gather(t, &ids, 4, &out, s, &go), FERRY_ERR_STRUCT_SIZE);
  go.struct_size = sizeof go;
  go.method = (ferry_gather_method)7;
  FERRY_EXPECT(ferry_gather(t, &ids, 4, &out, s, &go),
               FERRY_ERR_INVALID_ARGUMENT);
  /* n = 0 is a no-op. */
  FERRY_OK_(ferry_gather(t, &ids, 0, &out, s, NULL));
  FERRY_OK_(ferry_stream_synchronize(s));
  ferry_buffer_destroy(ib);
  ferry_buffer_destroy(ob);
  ferry_table_destroy(t);
  ferry_table_destroy(NULL);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}
