/* The cpu backend's LayerNorm/RMSNorm gives the same bits whichever of its
 * builds runs (SSE, AVX2, AVX-512: FERRY_CPU_NORM_ISA caps the choice) and
 * whether its outputs are written with non-temporal stores or not
 * (FERRY_CPU_NORM_NT forces either): every output of the forward and the
 * backward (y, mean, rstd, dx, dgamma, dbeta) is compared byte for byte with
 * the default run. Correctness against a float64 reference is
 * tests/test_norm.c's job; this checks that the variants do not drift
 * apart. Shapes: tails of every length mod 32, padded and odd row strides
 * (so the non-temporal path's unaligned prologue runs), many short rows. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static ferry_context *g_ctx;
static ferry_stream *g_stream;

static void setup(void) {
  g_ctx = ferry_test_context();
  FERRY_OK_(ferry_stream_create(g_ctx, &g_stream));
}

static void teardown(void) {
  ferry_stream_destroy(g_stream);
  ferry_context_destroy(g_ctx);
}

TestSuite(norm_isa, .init = setup, .fini = teardown, .timeout = 120);

typedef struct host {
  ferry_tensor t;
  void *p;
  size_t bytes;
} host;

static host mk(ferry_dtype dt, int64_t rows, int64_t cols, int64_t ld) {
  host h;
  memset(&h, 0, sizeof h);
  size_t es = dt == FERRY_DTYPE_F32 ? 4 : 2;
  size_t elems = rows < 0 ? (size_t)cols : (size_t)rows * (size_t)ld;
  h.bytes = elems * es;
  /* An odd 2-byte offset into the allocation: rows start unaligned. */
  h.p = malloc(h.bytes + 64);
  cr_assert_not_null(h.p);
  ferry_test_poison(h.p, h.bytes + 64);
  h.t.host = (char *)h.p + (es == 2 ? 2 : 4);
  h.t.dtype = dt;
  if (rows < 0) {
    h.t.ndim = 1;
    h.t.shape[0] = cols;
  } else {
    h.t.ndim = 2;
    h.t.shape[0] = rows;
    h.t.shape[1] = cols;
    h.t.strides[0] = ld;
    h.t.strides[1] = 1;
  }
  return h;
}

static void fill(host *h, uint64_t seed, double offset, double scale) {
  uint64_t st = seed;
  size_t es = h->t.dtype == FERRY_DTYPE_F32 ? 4 : 2;
  size_t n = h->bytes / es;
  for (size_t i = 0; i < n; i++) {
    float f = (float)(offset + scale * ferry_test_uniform(&st));
    uint32_t u;
    memcpy(&u, &f, 4);
    char *dst = (char *)h->t.host + i * es;
    if (es == 4) {
      memcpy(dst, &f, 4);
    } else {
      /* bf16: truncate; f16: a value of f16's range encoded crudely (any
       * finite bits will do here). */
      uint16_t b = h->t.dtype == FERRY_DTYPE_BF16
                       ? (uint16_t)(u >> 16)
                       : (uint16_t)(((u >> 16) & 0x8000u) |
                                    (((u >> 13) & 0x3ffu)) | (0x3c00u));
      memcpy(dst, &b, 2);
    }
  }
}

/* Outputs of one forward and one backward, concatenated. */
typedef struct outputs {
  unsigned char *bytes;
  size_t n;
} outputs;

static void append(outputs *o, const host *h) {
  o->bytes = realloc(o->bytes, o->n + h->bytes);
  cr_assert_not_null(o->bytes);
  memcpy(o->bytes + o->n, h->t.host, h->bytes);
  o->n += h->bytes;
}

static outputs run(ferry_norm_kind kind, ferry_dtype dt, int64_t rows,
                   int64_t cols, int64_t ld) {
  int layer = kind == FERRY_NORM_LAYER;
  host x = mk(dt, rows, cols, ld), y = mk(dt, rows, cols, ld);
  host dy = mk(dt, rows, cols, ld), dx = mk(dt, rows, cols, ld);
  host g = mk(FERRY_DTYPE_F32, -1, cols, 0), b = mk(dt, -1, cols, 0);
  host m = mk(FERRY_DTYPE_F32, -1, rows, 0),
       r = mk(FERRY_DTYPE_F32, -1, rows, 0);
  host dg = mk(FERRY_DTYPE_F32, -1, cols, 0), db = mk(dt, -1, cols, 0);
  fill(&x, 11, 0.25, 2.0);
  fill(&dy, 12, 0.0, 1.0);
  fill(&g, 13, 1.0, 0.5);
  fill(&b, 14, 0.0, 0.5);
  /* The padding between rows is not written: make it equal in every run. */
  memset(y.t.host, 0, y.bytes);
  memset(dx.t.host, 0, dx.bytes);
  ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
  o.kind = kind;
  FERRY_OK_(ferry_norm_forward(g_stream, &o, &x.t, &g.t, layer ? &b.t : NULL,
                               &y.t, layer ? &m.t : NULL, &r.t));
  FERRY_OK_(ferry_norm_backward(g_stream, &o, &dy.t, &x.t, &g.t,
                                layer ? &m.t : NULL, &r.t, &dx.t, &dg.t,
                                layer ? &db.t : NULL));
  FERRY_OK_(ferry_stream_synchronize(g_stream));
  outputs out = {NULL, 0};
  append(&out, &y);
  append(&out, &r);
  append(&out, &dx);
  append(&out, &dg);
  if (layer) {
    append(&out, &m);
    append(&out, &db);
  }
  host *all[] = {&x, &y, &dy, &dx, &g, &b, &m, &r, &dg, &db};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    free(all[i]->p);
  return out;
}

Test(norm_isa, builds_and_stores_agree) {
  const int64_t shapes[][3] = {
      /* rows, cols, ld */
      {257, 1433, 1437}, {33, 4097, 4100}, {2000, 128, 128},
      {100, 31, 33},     {9, 8191, 8191},  {64, 1, 1},
  };
  const char *isas[] = {"sse", "avx2", NULL};
  const char *nts[] = {"0", "1"};
  const ferry_dtype dts[] = {FERRY_DTYPE_F32, FERRY_DTYPE_BF16,
                             FERRY_DTYPE_F16};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int d = 0; d < 3; d++)
      for (int k = 0; k < 2; k++) {
        ferry_norm_kind kind = k ? FERRY_NORM_RMS : FERRY_NORM_LAYER;
        unsetenv("FERRY_CPU_NORM_ISA");
        unsetenv("FERRY_CPU_NORM_NT");
        outputs ref =
            run(kind, dts[d], shapes[s][0], shapes[s][1], shapes[s][2]);
        for (int i = 0; i < 3; i++)
          for (int n = 0; n < 2; n++) {
            if (isas[i])
              setenv("FERRY_CPU_NORM_ISA", isas[i], 1);
            else
              unsetenv("FERRY_CPU_NORM_ISA");
            setenv("FERRY_CPU_NORM_NT", nts[n], 1);
            outputs got =
                run(kind, dts[d], shapes[s][0], shapes[s][1], shapes[s][2]);
            cr_assert_eq(got.n, ref.n);
            size_t at = 0;
            while (at < ref.n && got.bytes[at] == ref.bytes[at])
              at++;
            cr_assert(at == ref.n,
                      "%s %s %lldx%lld: isa cap %s, non-temporal %s: output "
                      "byte %zu of %zu differs",
                      kind == FERRY_NORM_LAYER ? "layer" : "rms",
                      ferry_dtype_name(dts[d]), (long long)shapes[s][0],
                      (long long)shapes[s][1], isas[i] ? isas[i] : "none",
                      nts[n], at, ref.n);
            free(got.bytes);
          }
        free(ref.bytes);
      }
  unsetenv("FERRY_CPU_NORM_ISA");
  unsetenv("FERRY_CPU_NORM_NT");
}
