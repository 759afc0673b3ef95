/* LayerNorm and RMSNorm (ferry_norm_forward / ferry_norm_backward) on the
 * backend under test, against a float64 reference written here.
 *
 * Inputs are random (offset and scaled, never only zeros) in the op's dtype;
 * outputs are poisoned first; row strides exceed cols on some shapes. The
 * error measure is ||out - ref|| / ||ref|| over a whole tensor: below 1e-5
 * for f32, 1e-2 for f16/bf16. Shapes: cols {1, 3, 127, 128, 1433, 4097} x
 * rows {1, 7, 257}, 70000 x {1, 128} and 7 x 65536. Also: dgamma/dbeta
 * bit-identical across runs (and on cpu across pool sizes), a
 * finite-difference check of the backward, edge cases (zero rows, |x| near
 * f16's maximum, cols = 1, gamma absent with beta present, rows = 0), bad
 * input, and on every backend but cpu a comparison with the cpu backend. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the test's own dtype conversions (independent of the library's) ---- */

static double bf16_decode(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static uint16_t bf16_encode(double v) { /* finite v only */
  float f = (float)v;
  uint32_t u;
  memcpy(&u, &f, 4);
  uint32_t lower = u & 0xffffu, up = u >> 16;
  if (lower > 0x8000u || (lower == 0x8000u && (up & 1u)))
    up++;
  return (uint16_t)up;
}

static double f16_decode(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double s = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 31)
    return m ? NAN : s * INFINITY;
  if (e == 0)
    return s * ldexp(m, -24);
  return s * ldexp(1024 + m, e - 25);
}

static uint16_t f16_encode(double v) { /* |v| < 65504 */
  uint16_t sign = v < 0 ? 0x8000 : 0;
  double a = fabs(v);
  if (a == 0)
    return sign;
  int e;
  frexp(a, &e); /* a = f * 2^e, f in [0.5, 1): binade exponent e - 1 */
  e -= 1;
  if (e < -14)
    e = -14;
  double q = rint(ldexp(a, 10 - e)); /* ties to even */
  if (q >= 2048) {
    q /= 2;
    e++;
  }
  if (q < 1024) /* subnormal */
    return (uint16_t)(sign | (uint16_t)q);
  return (uint16_t)(sign | ((e + 15) << 10) | ((int)q - 1024));
}

static size_t esize(ferry_dtype dt) {
  return dt == FERRY_DTYPE_F32 ? 4 : 2;
}

/* f16_decode of every value, built at first use (decoding dominates the
 * reference's time otherwise). */
static double *f16_table(void) {
  static double *table;
  if (table == NULL) {
    table = malloc(65536 * sizeof *table);
    cr_assert_not_null(table);
    for (uint32_t h = 0; h < 65536; h++)
      table[h] = f16_decode((uint16_t)h);
  }
  return table;
}

static double decode(const void *p, size_t i, ferry_dtype dt) {
  if (dt == FERRY_DTYPE_F32)
    return ((const float *)p)[i];
  uint16_t h = ((const uint16_t *)p)[i];
  return dt == FERRY_DTYPE_BF16 ? bf16_decode(h) : f16_table()[h];
}

/* Stores v rounded to dt; returns the stored value. */
static double encode(void *p, size_t i, ferry_dtype dt, double v) {
  if (dt == FERRY_DTYPE_F32)
    ((float *)p)[i] = (float)v;
  else if (dt == FERRY_DTYPE_BF16)
    ((uint16_t *)p)[i] = bf16_encode(v);
  else
    ((uint16_t *)p)[i] = f16_encode(v);
  return decode(p, i, dt);
}

/* ---- device tensors ------------------------------------------------------ */

typedef struct dev {
  ferry_buffer *buf;
  ferry_tensor t;
  size_t bytes;
  void *host; /* the host copy (what was written / read back) */
} dev;

static ferry_stream *g_stream;

/* rows x cols (ld >= cols) or, with rows < 0, a vector of cols. The host copy
 * is poisoned; call dev_upload after filling it. */
static dev dev_new(ferry_context *ctx, ferry_dtype dt, int64_t rows,
                   int64_t cols, int64_t ld) {
  dev d;
  memset(&d, 0, sizeof d);
  size_t elems = rows < 0 ? (size_t)cols : (size_t)rows * (size_t)ld;
  d.bytes = elems * esize(dt);
  d.host = malloc(d.bytes ? d.bytes : 1);
  cr_assert_not_null(d.host);
  ferry_test_poison(d.host, d.bytes);
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, d.bytes, &d.buf));
  d.t.buffer = d.buf;
  d.t.dtype = dt;
  if (rows < 0) {
    d.t.ndim = 1;
    d.t.shape[0] = cols;
    d.t.strides[0] = 1;
  } else {
    d.t.ndim = 2;
    d.t.shape[0] = rows;
    d.t.shape[1] = cols;
    d.t.strides[0] = ld;
    d.t.strides[1] = 1;
  }
  return d;
}

static void dev_upload(dev *d) {
  if (d->bytes)
    FERRY_OK_(ferry_buffer_write_async(g_stream, d->buf, 0, d->host, d->bytes));
}

static void dev_download(dev *d) {
  ferry_test_poison(d->host, d->bytes);
  if (d->bytes)
    FERRY_OK_(ferry_buffer_read_async(g_stream, d->buf, 0, d->host, d->bytes));
  FERRY_OK_(ferry_stream_synchronize(g_stream));
}

static void dev_free(dev *d) {
  ferry_buffer_destroy(d->buf);
  free(d->host);
  memset(d, 0, sizeof *d);
}

/* Deterministic random values: offset + scale * U(-1, 1). */
static void fill_random(dev *d, uint64_t seed, double offset, double scale) {
  uint64_t st = seed;
  size_t n = d->bytes / esize(d->t.dtype);
  for (size_t i = 0; i < n; i++)
    encode(d->host, i, d->t.dtype, offset + scale * ferry_test_uniform(&st));
}

/* Most inputs are random values on the device: dev_new, fill_random and
 * dev_upload in one call. */
static dev dev_random(ferry_context *ctx, ferry_dtype dt, int64_t rows,
                      int64_t cols, int64_t ld, uint64_t seed, double offset,
                      double scale) {
  dev d = dev_new(ctx, dt, rows, cols, ld);
  fill_random(&d, seed, offset, scale);
  dev_upload(&d);
  return d;
}

/* Cases hold up to ten tensors: these take a NULL-terminated list, e.g.
 * dev_free_all((dev *[]){&x, &y, NULL}), instead of a line per tensor. */
static void dev_upload_all(dev *const *ds) {
  for (; *ds != NULL; ds++)
    dev_upload(*ds);
}

static void dev_download_all(dev *const *ds) {
  for (; *ds != NULL; ds++)
    dev_download(*ds);
}

static void dev_free_all(dev *const *ds) {
  for (; *ds != NULL; ds++)
    dev_free(*ds);
}

/* ---- error measure ------------------------------------------------------- */

typedef struct err {
  double num, den;
  int bad; /* a non-finite output */
} err;

static void err_add(err *e, double out, double ref) {
  if (!isfinite(out))
    e->bad = 1;
  e->num += (out - ref) * (out - ref);
  e->den += ref * ref;
}

/* The same where ref is a difference of terms of size `scale`: relative to
 * the terms (RMSNorm's dx at cols = 1 is r*g*dy*(1 - xhat^2), which cancels
 * to ~eps/x^2: its own size would judge f32 rounding of the terms). */
static void err_add_scaled(err *e, double out, double ref, double scale) {
  if (!isfinite(out))
    e->bad = 1;
  e->num += (out - ref) * (out - ref);
  e->den += ref * ref > scale * scale ? ref * ref : scale * scale;
}

static double err_rel(const err *e) {
  if (e->bad)
    return INFINITY;
  return e->den > 0 ? sqrt(e->num / e->den) : sqrt(e->num);
}

static double tol(ferry_dtype dt) {
  return dt == FERRY_DTYPE_F32 ? 1e-5 : 1e-2;
}

/* ---- the f64 reference --------------------------------------------------- */

typedef struct ref_case {
  ferry_norm_kind kind;
  float eps;
  ferry_dtype dt, pdt; /* data, parameters */
  int64_t rows, cols, ld;
  int has_gamma, has_beta;
} ref_case;

/* Row r's statistics in f64 from the stored x. */
static void ref_stats(const ref_case *c, const dev *x, int64_t r, double *mean,
                      double *rstd) {
  double s = 0, m = 0, v = 0;
  size_t base = (size_t)(r * c->ld);
  if (c->kind == FERRY_NORM_LAYER) {
    for (int64_t j = 0; j < c->cols; j++)
      s += decode(x->host, base + (size_t)j, c->dt);
    m = s / (double)c->cols;
  }
  for (int64_t j = 0; j < c->cols; j++) {
    double d = decode(x->host, base + (size_t)j, c->dt) - m;
    v += d * d;
  }
  v /= (double)c->cols;
  *mean = m;
  *rstd = 1.0 / sqrt(v + (double)c->eps);
}

static double param(const dev *p, int64_t j, ferry_dtype dt, double absent) {
  return p ? decode(p->host, (size_t)j, dt) : absent;
}

static const char *kind_name(ferry_norm_kind k) {
  return k == FERRY_NORM_LAYER ? "layer" : "rms";
}

/* One forward case: runs the op, compares y, mean, rstd with the reference. */
static void check_forward(ferry_context *ctx, const ref_case *c,
                          uint64_t seed) {
  dev x = dev_new(ctx, c->dt, c->rows, c->cols, c->ld);
  dev y = dev_new(ctx, c->dt, c->rows, c->cols, c->ld + 1);
  dev mean = dev_new(ctx, FERRY_DTYPE_F32, -1, c->rows, 0);
  dev rstd = dev_new(ctx, FERRY_DTYPE_F32, -1, c->rows, 0);
  dev g = {0}, b = {0};
  fill_random(&x, seed, 1.5, 2.0);
  /* x random; y, mean and rstd poisoned. */
  dev_upload_all((dev *[]){&x, &y, &mean, &rstd, NULL});
  if (c->has_gamma)
    g = dev_random(ctx, c->pdt, -1, c->cols, 0, seed + 1, 1.0, 0.5);
  if (c->has_beta)
    b = dev_random(ctx, c->pdt, -1, c->cols, 0, seed + 2, 0.0, 1.0);
  ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
  o.kind = c->kind;
  o.eps = c->eps;
  int layer = c->kind == FERRY_NORM_LAYER;
  FERRY_OK_(ferry_norm_forward(g_stream, &o, &x.t, c->has_gamma ? &g.t : NULL,
                               c->has_beta ? &b.t : NULL, &y.t,
                               layer ? &mean.t : NULL, &rstd.t));
  dev_download_all((dev *[]){&y, &mean, &rstd, NULL});
  err ey = {0}, em = {0}, er = {0};
  for (int64_t r = 0; r < c->rows; r++) {
    double m, rs;
    ref_stats(c, &x, r, &m, &rs);
    if (layer)
      err_add(&em, ((float *)mean.host)[r], m);
    err_add(&er, ((float *)rstd.host)[r], rs);
    for (int64_t j = 0; j < c->cols; j++) {
      double xv = decode(x.host, (size_t)(r * c->ld + j), c->dt);
      double ref =
          (xv - m) * rs * param(c->has_gamma ? &g : NULL, j, c->pdt, 1) +
          param(c->has_beta ? &b : NULL, j, c->pdt, 0);
      err_add(&ey, decode(y.host, (size_t)(r * (c->ld + 1) + j), c->dt), ref);
    }
    /* The padding after each row stays poisoned. */
    if (c->rows > 1 && r + 1 < c->rows)
      cr_assert_eq(
          ((unsigned char *)
               y.host)[(size_t)(r * (c->ld + 1) + c->cols) * esize(c->dt)],
          0xA5, "y's row padding was written");
  }
  double t = tol(c->dt);
  cr_assert(err_rel(&ey) < t,
            "%s %s %lldx%lld (ld %lld) gamma %d beta %d: y error %g",
            kind_name(c->kind), ferry_dtype_name(c->dt), (long long)c->rows,
            (long long)c->cols, (long long)c->ld, c->has_gamma, c->has_beta,
            err_rel(&ey));
  /* Statistics are f32 from the stored x whatever the dtype. */
  if (layer)
    cr_assert(err_rel(&em) < 1e-5 || sqrt(em.num) < 1e-6 * c->rows,
              "%s %lldx%lld: mean error %g", ferry_dtype_name(c->dt),
              (long long)c->rows, (long long)c->cols, err_rel(&em));
  cr_assert(err_rel(&er) < 1e-5, "%s %s %lldx%lld: rstd error %g",
            kind_name(c->kind), ferry_dtype_name(c->dt), (long long)c->rows,
            (long long)c->cols, err_rel(&er));
  dev_free_all((dev *[]){&x, &y, &mean, &rstd, &g, &b, NULL});
}

/* One backward case with reference statistics (rounded to f32, as a forward
 * saves them); dgamma/dbeta accumulate onto random values when `accumulate`. */
static void check_backward(ferry_context *ctx, const ref_case *c, uint64_t seed,
                           int accumulate) {
  int layer = c->kind == FERRY_NORM_LAYER;
  dev x = dev_new(ctx, c->dt, c->rows, c->cols, c->ld);
  dev dy = dev_new(ctx, c->dt, c->rows, c->cols, c->cols);
  dev dx = dev_new(ctx, c->dt, c->rows, c->cols, c->ld + 2);
  dev mean = dev_new(ctx, FERRY_DTYPE_F32, -1, c->rows, 0);
  dev rstd = dev_new(ctx, FERRY_DTYPE_F32, -1, c->rows, 0);
  dev dg = dev_new(ctx, c->pdt, -1, c->cols, 0);
  dev db = dev_new(ctx, c->pdt, -1, c->cols, 0);
  dev g = {0};
  fill_random(&x, seed, -0.5, 3.0);
  fill_random(&dy, seed + 7, 0.1, 1.0);
  if (accumulate) {
    fill_random(&dg, seed + 8, 0.0, 10.0);
    fill_random(&db, seed + 9, 0.0, 10.0);
  }
  double *init_g = calloc((size_t)c->cols, sizeof(double));
  double *init_b = calloc((size_t)c->cols, sizeof(double));
  double *ref_g = calloc((size_t)c->cols, sizeof(double));
  double *ref_b = calloc((size_t)c->cols, sizeof(double));
  cr_assert(init_g && init_b && ref_g && ref_b);
  for (int64_t j = 0; accumulate && j < c->cols; j++) {
    init_g[j] = decode(dg.host, (size_t)j, c->pdt);
    init_b[j] = decode(db.host, (size_t)j, c->pdt);
  }
  for (int64_t r = 0; r < c->rows; r++) {
    double m, rs;
    ref_stats(c, &x, r, &m, &rs);
    ((float *)mean.host)[r] = (float)m;
    ((float *)rstd.host)[r] = (float)rs;
  }
  if (c->has_gamma)
    g = dev_random(ctx, c->pdt, -1, c->cols, 0, seed + 3, 1.0, 0.5);
  dev_upload_all((dev *[]){&x, &dy, &dx, &mean, &rstd, &dg, &db, NULL});
  ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
  o.kind = c->kind;
  o.eps = c->eps;
  o.flags = accumulate ? FERRY_NORM_ACCUMULATE : 0;
  FERRY_OK_(ferry_norm_backward(
      g_stream, &o, &dy.t, &x.t, c->has_gamma ? &g.t : NULL,
      layer ? &mean.t : NULL, &rstd.t, &dx.t, &dg.t, layer ? &db.t : NULL));
  dev_download_all((dev *[]){&dx, &dg, &db, NULL});
  err edx = {0}, edg = {0}, edb = {0};
  const dev *gp = c->has_gamma ? &g : NULL;
  for (int64_t r = 0; r < c->rows; r++) {
    double m = layer ? ((float *)mean.host)[r] : 0.0;
    double rs = ((float *)rstd.host)[r];
    double s1 = 0, s2 = 0;
    size_t bx = (size_t)(r * c->ld), bdy = (size_t)(r * c->cols);
    for (int64_t j = 0; j < c->cols; j++) {
      double xh = (decode(x.host, bx + (size_t)j, c->dt) - m) * rs;
      double gd =
          decode(dy.host, bdy + (size_t)j, c->dt) * param(gp, j, c->pdt, 1);
      s1 += gd;
      s2 += gd * xh;
    }
    s1 /= (double)c->cols;
    s2 /= (double)c->cols;
    for (int64_t j = 0; j < c->cols; j++) {
      double xh = (decode(x.host, bx + (size_t)j, c->dt) - m) * rs;
      double d = decode(dy.host, bdy + (size_t)j, c->dt);
      double gd = d * param(gp, j, c->pdt, 1);
      double ref = rs * (gd - xh * s2 - (layer ? s1 : 0.0));
      err_add_scaled(&edx,
                     decode(dx.host, (size_t)(r * (c->ld + 2) + j), c->dt), ref,
                     rs * gd);
      ref_g[j] += d * xh;
      ref_b[j] += d;
    }
  }
  for (int64_t j = 0; j < c->cols; j++) {
    err_add(&edg, decode(dg.host, (size_t)j, c->pdt), init_g[j] + ref_g[j]);
    if (layer)
      err_add(&edb, decode(db.host, (size_t)j, c->pdt), init_b[j] + ref_b[j]);
  }
  if (!layer && !accumulate) /* RMSNorm has no dbeta: left poisoned */
    for (size_t i = 0; i < db.bytes; i++)
      cr_assert_eq(((unsigned char *)db.host)[i], 0xA5);
  double t = tol(c->dt), tp = c->pdt == FERRY_DTYPE_F32 ? t : 1e-2;
  cr_assert(err_rel(&edx) < t, "%s %s %lldx%lld gamma %d: dx error %g",
            kind_name(c->kind), ferry_dtype_name(c->dt), (long long)c->rows,
            (long long)c->cols, c->has_gamma, err_rel(&edx));
  cr_assert(err_rel(&edg) < tp, "%s %s %lldx%lld: dgamma error %g (acc %d)",
            kind_name(c->kind), ferry_dtype_name(c->dt), (long long)c->rows,
            (long long)c->cols, err_rel(&edg), accumulate);
  if (layer)
    cr_assert(err_rel(&edb) < tp, "%s %s %lldx%lld: dbeta error %g (acc %d)",
              kind_name(c->kind), ferry_dtype_name(c->dt), (long long)c->rows,
              (long long)c->cols, err_rel(&edb), accumulate);
  free(init_g);
  free(init_b);
  free(ref_g);
  free(ref_b);
  dev_free_all((dev *[]){&x, &dy, &dx, &mean, &rstd, &dg, &db, &g, NULL});
}

/* ---- shapes -------------------------------------------------------------- */

static const int64_t k_cols[] = {1, 3, 127, 128, 1433, 4097};
static const int64_t k_rows[] = {1, 7, 257};
static const int64_t k_big[][2] = {{70000, 1}, {70000, 128}, {7, 65536}};

static ferry_context *g_ctx;

static void setup(void) {
  g_ctx = ferry_test_context();
  FERRY_OK_(ferry_stream_create(g_ctx, &g_stream));
}

static void teardown(void) {
  ferry_stream_destroy(g_stream);
  ferry_context_destroy(g_ctx);
}

TestSuite(norm, .init = setup, .fini = teardown, .timeout = 120);

/* Every shape, one kind, in one dtype, forward or backward; parameters
 * alternate between f32 and the data dtype, gamma/beta presence and row
 * padding vary, and half the backward cases accumulate. */
static void all_shapes(ferry_dtype dt, int k, int backward) {
  uint64_t seed =
      (backward ? 2000 : 1000) + (uint64_t)dt * 100 + (uint64_t)k * 50;
  int v = 0;
  ferry_norm_kind kind = k ? FERRY_NORM_RMS : FERRY_NORM_LAYER;
  for (size_t ci = 0; ci < sizeof k_cols / sizeof k_cols[0]; ci++)
    for (size_t ri = 0; ri < sizeof k_rows / sizeof k_rows[0]; ri++, v++) {
      ref_case c = {kind,
                    1e-5f,
                    dt,
                    (v & 1) ? dt : FERRY_DTYPE_F32,
                    k_rows[ri],
                    k_cols[ci],
                    k_cols[ci] + (v % 3 == 0 ? (backward ? 3 : 5) : 0),
                    (v % 4) != 3,
                    !backward && !k && (v % 5) != 4};
      if (backward)
        check_backward(g_ctx, &c, seed++, v % 2);
      else
        check_forward(g_ctx, &c, seed++);
    }
}

/* 70000 x {1, 128} and 7 x 65536, both kinds, in one dtype. */
static void big_shapes(ferry_dtype dt, int backward) {
  uint64_t seed = 3000 + (uint64_t)dt * 100 + (uint64_t)backward * 50;
  int v = 0;
  for (int k = 0; k < 2; k++)
    for (size_t bi = 0; bi < 3; bi++, v++) {
      ref_case c = {k ? FERRY_NORM_RMS : FERRY_NORM_LAYER,
                    1e-5f,
                    dt,
                    FERRY_DTYPE_F32,
                    k_big[bi][0],
                    k_big[bi][1],
                    k_big[bi][1],
                    1,
                    !k && !backward};
      if (backward)
        check_backward(g_ctx, &c, seed++, v % 2);
      else
        check_forward(g_ctx, &c, seed++);
    }
}

Test(norm, forward_layer_f32) {
  all_shapes(FERRY_DTYPE_F32, 0, 0);
}
Test(norm, forward_rms_f32) {
  all_shapes(FERRY_DTYPE_F32, 1, 0);
}
Test(norm, forward_layer_f16) {
  all_shapes(FERRY_DTYPE_F16, 0, 0);
}
Test(norm, forward_rms_f16) {
  all_shapes(FERRY_DTYPE_F16, 1, 0);
}
Test(norm, forward_layer_bf16) {
  all_shapes(FERRY_DTYPE_BF16, 0, 0);
}
Test(norm, forward_rms_bf16) {
  all_shapes(FERRY_DTYPE_BF16, 1, 0);
}
Test(norm, backward_layer_f32) {
  all_shapes(FERRY_DTYPE_F32, 0, 1);
}
Test(norm, backward_rms_f32) {
  all_shapes(FERRY_DTYPE_F32, 1, 1);
}
Test(norm, backward_layer_f16) {
  all_shapes(FERRY_DTYPE_F16, 0, 1);
}
Test(norm, backward_rms_f16) {
  all_shapes(FERRY_DTYPE_F16, 1, 1);
}
Test(norm, backward_layer_bf16) {
  all_shapes(FERRY_DTYPE_BF16, 0, 1);
}
Test(norm, backward_rms_bf16) {
  all_shapes(FERRY_DTYPE_BF16, 1, 1);
}

Test(norm, forward_big_f32) {
  big_shapes(FERRY_DTYPE_F32, 0);
}
Test(norm, backward_big_f32) {
  big_shapes(FERRY_DTYPE_F32, 1);
}
Test(norm, forward_big_f16) {
  big_shapes(FERRY_DTYPE_F16, 0);
}
Test(norm, backward_big_f16) {
  big_shapes(FERRY_DTYPE_F16, 1);
}
Test(norm, forward_big_bf16) {
  big_shapes(FERRY_DTYPE_BF16, 0);
}
Test(norm, backward_big_bf16) {
  big_shapes(FERRY_DTYPE_BF16, 1);
}

/* ---- determinism --------------------------------------------------------- */

/* dgamma and dbeta (overwritten) of one backward on ctx, as raw bytes. */
static void grads_bytes(ferry_context *ctx, ferry_stream *stream,
                        ferry_dtype dt, int64_t rows, int64_t cols,
                        unsigned char *out) {
  ferry_stream *saved = g_stream;
  g_stream = stream;
  dev x = dev_random(ctx, dt, rows, cols, cols, 77, 0.3, 2.0);
  dev dy = dev_random(ctx, dt, rows, cols, cols, 78, 0.0, 1.0);
  dev dx = dev_new(ctx, dt, rows, cols, cols);
  dev mean = dev_new(ctx, FERRY_DTYPE_F32, -1, rows, 0);
  dev rstd = dev_new(ctx, FERRY_DTYPE_F32, -1, rows, 0);
  dev dg = dev_new(ctx, FERRY_DTYPE_F32, -1, cols, 0);
  dev db = dev_new(ctx, FERRY_DTYPE_F32, -1, cols, 0);
  uint64_t st = 79;
  for (int64_t r = 0; r < rows; r++) {
    ((float *)mean.host)[r] = (float)(0.3 + 0.01 * ferry_test_uniform(&st));
    ((float *)rstd.host)[r] = (float)(0.9 + 0.1 * ferry_test_uniform(&st));
  }
  dev_upload_all((dev *[]){&mean, &rstd, &dg, &db, NULL});
  ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
  FERRY_OK_(ferry_norm_backward(stream, &o, &dy.t, &x.t, NULL, &mean.t, &rstd.t,
                                &dx.t, &dg.t, &db.t));
  dev_download_all((dev *[]){&dg, &db, NULL});
  memcpy(out, dg.host, dg.bytes);
  memcpy(out + dg.bytes, db.host, db.bytes);
  dev_free_all((dev *[]){&x, &dy, &dx, &mean, &rstd, &dg, &db, NULL});
  g_stream = saved;
}

Test(norm, dgamma_bit_identical) {
  const int64_t shapes[][2] = {{70000, 128}, {4099, 33}, {257, 1433}};
  for (size_t s = 0; s < 3; s++) {
    int64_t rows = shapes[s][0], cols = shapes[s][1];
    size_t bytes = (size_t)cols * 8;
    unsigned char *first = malloc(bytes), *again = malloc(bytes);
    cr_assert(first && again);
    grads_bytes(g_ctx, g_stream, FERRY_DTYPE_F32, rows, cols, first);
    grads_bytes(g_ctx, g_stream, FERRY_DTYPE_F32, rows, cols, again);
    cr_assert(memcmp(first, again, bytes) == 0,
              "%lldx%lld: dgamma/dbeta differ between two runs",
              (long long)rows, (long long)cols);
    /* On cpu, pools of other sizes give the same bits. */
    if (strcmp(ferry_test_backend(), "cpu") == 0) {
      const int threads[] = {1, 2, 3, 8};
      for (int t = 0; t < 4; t++) {
        ferry_context_options co = FERRY_CONTEXT_OPTIONS_INIT;
        co.backend = "cpu";
        co.num_threads = threads[t];
        ferry_context *ctx = NULL;
        ferry_stream *stream = NULL;
        FERRY_OK_(ferry_context_create(&co, &ctx));
        FERRY_OK_(ferry_stream_create(ctx, &stream));
        grads_bytes(ctx, stream, FERRY_DTYPE_F32, rows, cols, again);
        cr_assert(memcmp(first, again, bytes) == 0,
                  "%lldx%lld: dgamma/dbeta differ with %d threads",
                  (long long)rows, (long long)cols, threads[t]);
        ferry_stream_destroy(stream);
        ferry_context_destroy(ctx);
      }
    }
    free(first);
    free(again);
  }
}

/* ---- finite differences -------------------------------------------------- */

/* loss = sum(w * y) through the op's forward; gradients by central
 * differences against the op's backward (dy = w). f32, h = 1e-2 on O(1)
 * inputs: the difference quotient is good to ~1e-4. */
static double fd_loss(const ferry_norm_options *o, dev *x, dev *g, dev *b,
                      dev *y, const double *w, int64_t n) {
  dev_upload(x);
  dev_upload(g);
  if (b)
    dev_upload(b);
  FERRY_OK_(ferry_norm_forward(g_stream, o, &x->t, &g->t, b ? &b->t : NULL,
                               &y->t, NULL, NULL));
  dev_download(y);
  double l = 0;
  for (int64_t i = 0; i < n; i++)
    l += w[i] * ((float *)y->host)[i];
  return l;
}

Test(norm, finite_differences) {
  const int64_t rows = 3, cols = 5, n = rows * cols;
  for (int k = 0; k < 2; k++) {
    int layer = k == 0;
    ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
    o.kind = layer ? FERRY_NORM_LAYER : FERRY_NORM_RMS;
    o.eps = 1e-3f;
    dev x = dev_new(g_ctx, FERRY_DTYPE_F32, rows, cols, cols);
    dev y = dev_new(g_ctx, FERRY_DTYPE_F32, rows, cols, cols);
    dev g = dev_new(g_ctx, FERRY_DTYPE_F32, -1, cols, 0);
    dev b = dev_new(g_ctx, FERRY_DTYPE_F32, -1, cols, 0);
    dev dy = dev_new(g_ctx, FERRY_DTYPE_F32, rows, cols, cols);
    dev dx = dev_new(g_ctx, FERRY_DTYPE_F32, rows, cols, cols);
    dev dg = dev_new(g_ctx, FERRY_DTYPE_F32, -1, cols, 0);
    dev db = dev_new(g_ctx, FERRY_DTYPE_F32, -1, cols, 0);
    dev mean = dev_new(g_ctx, FERRY_DTYPE_F32, -1, rows, 0);
    dev rstd = dev_new(g_ctx, FERRY_DTYPE_F32, -1, rows, 0);
    fill_random(&x, 31 + (uint64_t)k, 0.2, 1.0);
    fill_random(&g, 33, 1.0, 0.5);
    fill_random(&b, 34, 0.0, 0.5);
    fill_random(&dy, 35, 0.0, 1.0);
    double w[15];
    for (int64_t i = 0; i < n; i++)
      w[i] = ((float *)dy.host)[i];
    dev *bp = layer ? &b : NULL;
    (void)fd_loss(&o, &x, &g, bp, &y, w, n);
    dev_upload(&dy);
    FERRY_OK_(ferry_norm_forward(g_stream, &o, &x.t, &g.t, bp ? &bp->t : NULL,
                                 &y.t, layer ? &mean.t : NULL, &rstd.t));
    FERRY_OK_(ferry_norm_backward(g_stream, &o, &dy.t, &x.t, &g.t,
                                  layer ? &mean.t : NULL, &rstd.t, &dx.t, &dg.t,
                                  layer ? &db.t : NULL));
    dev_download_all((dev *[]){&dx, &dg, &db, NULL});
    const float h = 1e-2f;
    /* Every input: x, gamma, beta. */
    dev *ins[3] = {&x, &g, &b};
    dev *grads[3] = {&dx, &dg, &db};
    for (int which = 0; which < (layer ? 3 : 2); which++) {
      dev *in = ins[which];
      int64_t count = which == 0 ? n : cols;
      for (int64_t i = 0; i < count; i++) {
        float *p = (float *)in->host + i;
        float keep = *p;
        *p = keep + h;
        double lp = fd_loss(&o, &x, &g, bp, &y, w, n);
        *p = keep - h;
        double lm = fd_loss(&o, &x, &g, bp, &y, w, n);
        *p = keep;
        double fd = (lp - lm) / (2.0 * (double)h);
        double an = ((float *)grads[which]->host)[i];
        cr_assert(fabs(fd - an) < 2e-3 * (1.0 + fabs(fd)),
                  "%s: d loss / d %s[%lld]: backward %g, finite difference %g",
                  kind_name(o.kind),
                  which == 0   ? "x"
                  : which == 1 ? "gamma"
                               : "beta",
                  (long long)i, an, fd);
      }
    }
    dev_free_all(
        (dev *[]){&x, &y, &g, &b, &dy, &dx, &dg, &db, &mean, &rstd, NULL});
  }
}

/* ---- edge cases ---------------------------------------------------------- */

Test(norm, zero_rows_and_edges) {
  const ferry_dtype dts[] = {FERRY_DTYPE_F32, FERRY_DTYPE_F16,
                             FERRY_DTYPE_BF16};
  for (int d = 0; d < 3; d++) {
    ferry_dtype dt = dts[d];
    const int64_t rows = 4, cols = 37;
    /* All-zero rows: y = beta exactly, finite gradients. */
    dev x = dev_new(g_ctx, dt, rows, cols, cols);
    dev y = dev_new(g_ctx, dt, rows, cols, cols);
    dev b = dev_random(g_ctx, FERRY_DTYPE_F32, -1, cols, 0, 5, 0.0, 1.0);
    dev mean = dev_new(g_ctx, FERRY_DTYPE_F32, -1, rows, 0);
    dev rstd = dev_new(g_ctx, FERRY_DTYPE_F32, -1, rows, 0);
    dev dy = dev_random(g_ctx, dt, rows, cols, cols, 6, 0.0, 1.0);
    dev dx = dev_new(g_ctx, dt, rows, cols, cols);
    dev dg = dev_new(g_ctx, FERRY_DTYPE_F32, -1, cols, 0);
    dev db = dev_new(g_ctx, FERRY_DTYPE_F32, -1, cols, 0);
    memset(x.host, 0, x.bytes);
    dev_upload(&x);
    ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
    /* gamma absent, beta present. */
    FERRY_OK_(ferry_norm_forward(g_stream, &o, &x.t, NULL, &b.t, &y.t, &mean.t,
                                 &rstd.t));
    dev_download(&y);
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < cols; j++) {
        double want = decode(b.host, (size_t)j, FERRY_DTYPE_F32);
        double got = decode(y.host, (size_t)(r * cols + j), dt);
        cr_assert(
            fabs(got - want) <= (dt == FERRY_DTYPE_F32 ? 0 : 1e-2 * fabs(want)),
            "%s zero row: y %g, beta %g", ferry_dtype_name(dt), got, want);
      }
    FERRY_OK_(ferry_norm_backward(g_stream, &o, &dy.t, &x.t, NULL, &mean.t,
                                  &rstd.t, &dx.t, &dg.t, &db.t));
    dev_download_all((dev *[]){&dx, &dg, &db, NULL});
    for (int64_t i = 0; i < rows * cols; i++)
      cr_assert(isfinite(decode(dx.host, (size_t)i, dt)), "zero row: dx %lld",
                (long long)i);
    for (int64_t j = 0; j < cols; j++)
      cr_assert(isfinite(((float *)dg.host)[j]) &&
                isfinite(((float *)db.host)[j]));
    /* RMSNorm of zero rows: y = 0. */
    o.kind = FERRY_NORM_RMS;
    FERRY_OK_(ferry_norm_forward(g_stream, &o, &x.t, NULL, NULL, &y.t, NULL,
                                 &rstd.t));
    dev_download(&y);
    for (int64_t i = 0; i < rows * cols; i++)
      cr_assert_eq(decode(y.host, (size_t)i, dt), 0.0);

    /* rows = 0: nothing written (buffers stay poisoned), no error. */
    dev e = dev_new(g_ctx, dt, 0, cols, cols);
    dev ey = dev_new(g_ctx, dt, 0, cols, cols);
    dev_upload(&dg);
    FERRY_OK_(
        ferry_norm_forward(g_stream, &o, &e.t, NULL, NULL, &ey.t, NULL, NULL));
    o.kind = FERRY_NORM_LAYER;
    e.t.shape[0] = 0;
    dev em = dev_new(g_ctx, FERRY_DTYPE_F32, -1, 0, 0);
    ferry_test_poison(dg.host, dg.bytes);
    dev_upload(&dg);
    FERRY_OK_(ferry_norm_backward(g_stream, &o, &e.t, &e.t, NULL, &em.t, &em.t,
                                  &ey.t, &dg.t, NULL));
    dev_download(&dg);
    for (size_t i = 0; i < dg.bytes; i++)
      cr_assert_eq(((unsigned char *)dg.host)[i], 0xA5,
                   "rows = 0 wrote dgamma");
    dev_free_all((dev *[]){&e, &ey, &em, &x, &y, &b, &mean, &rstd, &dy, &dx,
                           &dg, &db, NULL});
  }
}

/* |x| up to 6e4 in f16 (x^2 overflows f16, not f32), and cols = 1. */
Test(norm, large_f16_and_one_column) {
  for (int k = 0; k < 2; k++) {
    ref_case c = {k ? FERRY_NORM_RMS : FERRY_NORM_LAYER,
                  1e-5f,
                  FERRY_DTYPE_F16,
                  FERRY_DTYPE_F16,
                  9,
                  300,
                  300,
                  1,
                  !k};
    /* check_forward's inputs are 1.5 + 2 U: scale them by hand here. */
    dev x = dev_random(g_ctx, c.dt, c.rows, c.cols, c.ld, 99, 0.0, 6.0e4);
    dev y = dev_new(g_ctx, c.dt, c.rows, c.cols, c.ld);
    dev rstd = dev_new(g_ctx, FERRY_DTYPE_F32, -1, c.rows, 0);
    ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
    o.kind = c.kind;
    FERRY_OK_(ferry_norm_forward(g_stream, &o, &x.t, NULL, NULL, &y.t, NULL,
                                 &rstd.t));
    dev_download_all((dev *[]){&y, &rstd, NULL});
    err ey = {0}, er = {0};
    for (int64_t r = 0; r < c.rows; r++) {
      double m, rs;
      ref_stats(&c, &x, r, &m, &rs);
      err_add(&er, ((float *)rstd.host)[r], rs);
      for (int64_t j = 0; j < c.cols; j++)
        err_add(&ey, decode(y.host, (size_t)(r * c.cols + j), c.dt),
                (decode(x.host, (size_t)(r * c.cols + j), c.dt) - m) * rs);
    }
    cr_assert(err_rel(&ey) < 1e-2, "%s |x| 6e4 f16: y error %g",
              kind_name(c.kind), err_rel(&ey));
    cr_assert(err_rel(&er) < 1e-5, "%s |x| 6e4 f16: rstd error %g",
              kind_name(c.kind), err_rel(&er));
    dev_free_all((dev *[]){&x, &y, &rstd, NULL});
    /* cols = 1 in every dtype, with and without parameters. */
    const ferry_dtype dts[] = {FERRY_DTYPE_F32, FERRY_DTYPE_F16,
                               FERRY_DTYPE_BF16};
    for (int d = 0; d < 3; d++)
      for (int p = 0; p < 2; p++) {
        ref_case one = {c.kind, 1e-5f, dts[d], dts[d], 300, 1, 1, p, p && !k};
        check_forward(g_ctx, &one, 500 + (uint64_t)(d * 2 + p));
        check_backward(g_ctx, &one, 600 + (uint64_t)(d * 2 + p), p);
      }
  }
}

/* ---- bad input ----------------------------------------------------------- */

/* Most of bad_input's cases change x alone (y to match): the forward with
 * default options refuses them with `want`, naming `needle` unless NULL. */
static void expect_forward_refused(const ferry_tensor *x, const ferry_tensor *y,
                                   ferry_status want, const char *needle) {
  ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
  FERRY_EXPECT(ferry_norm_forward(g_stream, &o, x, NULL, NULL, y, NULL, NULL),
               want);
  if (needle != NULL)
    FERRY_EXPECT_MESSAGE(needle);
}

Test(norm, bad_input) {
  const int64_t rows = 5, cols = 8;
  dev x = dev_random(g_ctx, FERRY_DTYPE_F32, rows, cols, cols, 1, 0, 1);
  dev y = dev_new(g_ctx, FERRY_DTYPE_F32, rows, cols, cols);
  dev yh = dev_new(g_ctx, FERRY_DTYPE_F16, rows, cols, cols);
  dev g = dev_new(g_ctx, FERRY_DTYPE_F32, -1, cols, 0);
  dev g7 = dev_new(g_ctx, FERRY_DTYPE_F32, -1, cols - 1, 0);
  dev gb = dev_new(g_ctx, FERRY_DTYPE_BF16, -1, cols, 0);
  dev m = dev_new(g_ctx, FERRY_DTYPE_F32, -1, rows, 0);
  dev r = dev_new(g_ctx, FERRY_DTYPE_F32, -1, rows, 0);
  dev_upload(&y); /* poisoned: every failing call must leave it so */
  ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
  const ferry_tensor *X = &x.t, *Y = &y.t;

  FERRY_EXPECT(ferry_norm_forward(NULL, &o, X, NULL, NULL, Y, NULL, NULL),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("stream");
  FERRY_EXPECT(
      ferry_norm_forward(g_stream, &o, NULL, NULL, NULL, Y, NULL, NULL),
      FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("'x'");
  FERRY_EXPECT(
      ferry_norm_forward(g_stream, &o, X, NULL, NULL, NULL, NULL, NULL),
      FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("'y'");
  /* dtype mismatch between x and y. */
  FERRY_EXPECT(
      ferry_norm_forward(g_stream, &o, X, NULL, NULL, &yh.t, NULL, NULL),
      FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("'y' is f16");
  /* gamma of the wrong length / dtype. */
  FERRY_EXPECT(ferry_norm_forward(g_stream, &o, X, &g7.t, NULL, Y, NULL, NULL),
               FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("'gamma'");
  FERRY_EXPECT(ferry_norm_forward(g_stream, &o, X, &gb.t, NULL, Y, NULL, NULL),
               FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("bf16");
  /* Bad strides: non-contiguous rows, overlapping rows, 1-D x. */
  ferry_tensor bad = x.t;
  bad.strides[1] = 2;
  bad.shape[1] = 4;
  expect_forward_refused(&bad, &bad, FERRY_ERR_INVALID_ARGUMENT, "strides[1]");
  bad = x.t;
  bad.strides[0] = cols - 1;
  bad.shape[0] = 2;
  expect_forward_refused(&bad, Y, FERRY_ERR_INVALID_ARGUMENT, "strides[0]");
  bad = x.t;
  bad.ndim = 1;
  bad.shape[0] = cols;
  bad.strides[0] = 1;
  expect_forward_refused(&bad, Y, FERRY_ERR_INVALID_ARGUMENT, "2-D");
  /* Beyond the buffer; misaligned offset; i32 data. */
  bad = x.t;
  bad.byte_offset = 4;
  expect_forward_refused(&bad, Y, FERRY_ERR_OUT_OF_RANGE, NULL);
  bad = x.t;
  bad.shape[0] = rows - 1;
  bad.byte_offset = 2;
  ferry_tensor y4 = y.t;
  y4.shape[0] = rows - 1;
  expect_forward_refused(&bad, &y4, FERRY_ERR_INVALID_ARGUMENT, "byte_offset");
  bad = x.t;
  bad.dtype = FERRY_DTYPE_I32;
  expect_forward_refused(&bad, Y, FERRY_ERR_INVALID_ARGUMENT, NULL);
  /* cols = 0 with rows > 0. */
  bad = x.t;
  bad.shape[1] = 0;
  ferry_tensor y0 = y.t;
  y0.shape[1] = 0;
  expect_forward_refused(&bad, &y0, FERRY_ERR_INVALID_ARGUMENT, "0 columns");
  /* Options. */
  ferry_norm_options ob = o;
  ob.eps = -1.0f;
  FERRY_EXPECT(ferry_norm_forward(g_stream, &ob, X, NULL, NULL, Y, NULL, NULL),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("eps");
  ob.eps = NAN;
  FERRY_EXPECT(ferry_norm_forward(g_stream, &ob, X, NULL, NULL, Y, NULL, NULL),
               FERRY_ERR_INVALID_ARGUMENT);
  ob = o;
  ob.kind = (ferry_norm_kind)7;
  FERRY_EXPECT(ferry_norm_forward(g_stream, &ob, X, NULL, NULL, Y, NULL, NULL),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("kind");
  ob = o;
  ob.struct_size = 0;
  FERRY_EXPECT(ferry_norm_forward(g_stream, &ob, X, NULL, NULL, Y, NULL, NULL),
               FERRY_ERR_STRUCT_SIZE);
  ob = o;
  ob.flags = 0x80;
  FERRY_EXPECT(ferry_norm_forward(g_stream, &ob, X, NULL, NULL, Y, NULL, NULL),
               FERRY_ERR_INVALID_ARGUMENT);
  /* RMSNorm takes no beta and no mean. */
  ob = o;
  ob.kind = FERRY_NORM_RMS;
  FERRY_EXPECT(ferry_norm_forward(g_stream, &ob, X, NULL, &g.t, Y, NULL, NULL),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("beta");
  FERRY_EXPECT(ferry_norm_forward(g_stream, &ob, X, NULL, NULL, Y, &m.t, NULL),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("mean");
  /* mean of the wrong length. */
  FERRY_EXPECT(ferry_norm_forward(g_stream, &o, X, NULL, NULL, Y, &g.t, NULL),
               FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("'mean'");
  /* Backward: saved statistics required. */
  FERRY_EXPECT(
      ferry_norm_backward(g_stream, &o, Y, X, NULL, NULL, &r.t, Y, NULL, NULL),
      FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("mean");
  FERRY_EXPECT(
      ferry_norm_backward(g_stream, &o, Y, X, NULL, &m.t, NULL, Y, NULL, NULL),
      FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("rstd");
  FERRY_EXPECT(ferry_norm_backward(g_stream, &o, Y, X, NULL, &m.t, &r.t, NULL,
                                   NULL, NULL),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("'dx'");
  FERRY_EXPECT(ferry_norm_backward(g_stream, &o, &yh.t, X, NULL, &m.t, &r.t, Y,
                                   NULL, NULL),
               FERRY_ERR_MISMATCH);
  FERRY_EXPECT(
      ferry_norm_backward(g_stream, &o, Y, X, NULL, &m.t, &r.t, Y, &g7.t, NULL),
      FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("'dgamma'");
  FERRY_EXPECT(
      ferry_norm_backward(g_stream, &ob, Y, X, NULL, NULL, &r.t, Y, NULL, &g.t),
      FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("dbeta");
  /* A buffer of another context. */
  ferry_context_options co = FERRY_CONTEXT_OPTIONS_INIT;
  co.backend = ferry_test_backend();
  ferry_context *other = NULL;
  FERRY_OK_(ferry_context_create(&co, &other));
  ferry_buffer *ob_buf = NULL;
  FERRY_OK_(ferry_buffer_create(other, FERRY_MEMORY_DEVICE, x.bytes, &ob_buf));
  bad = x.t;
  bad.buffer = ob_buf;
  expect_forward_refused(&bad, Y, FERRY_ERR_MISMATCH, NULL);
  ferry_buffer_destroy(ob_buf);
  ferry_context_destroy(other);

  /* Nothing was written by any failing call. */
  dev_download(&y);
  for (size_t i = 0; i < y.bytes; i++)
    cr_assert_eq(((unsigned char *)y.host)[i], 0xA5, "a failing call wrote y");
  dev_free_all((dev *[]){&x, &y, &yh, &g, &g7, &gb, &m, &r, NULL});
}

/* ---- against the cpu backend --------------------------------------------- */

/* On every backend but cpu: the same forward and backward on a cpu context
 * agree to f32 rounding (and dgamma/dbeta to their summation order). */
Test(norm, matches_cpu) {
  if (strcmp(ferry_test_backend(), "cpu") == 0)
    return; /* the reference tests above are the cpu's comparison */
  ferry_context_options co = FERRY_CONTEXT_OPTIONS_INIT;
  co.backend = "cpu";
  ferry_context *cctx = NULL;
  ferry_stream *cstream = NULL;
  FERRY_OK_(ferry_context_create(&co, &cctx));
  FERRY_OK_(ferry_stream_create(cctx, &cstream));
  const int64_t shapes[][2] = {{257, 1433}, {1000, 64}, {3, 9000}};
  for (size_t s = 0; s < 3; s++)
    for (int k = 0; k < 2; k++) {
      int64_t rows = shapes[s][0], cols = shapes[s][1];
      int layer = k == 0;
      ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
      o.kind = layer ? FERRY_NORM_LAYER : FERRY_NORM_RMS;
      float *out[2][4];
      size_t nb[4] = {(size_t)(rows * cols) * 4, (size_t)rows * 4,
                      (size_t)(rows * cols) * 4, (size_t)cols * 4};
      for (int side = 0; side < 2; side++) {
        ferry_context *ctx = side ? cctx : g_ctx;
        ferry_stream *saved = g_stream;
        g_stream = side ? cstream : g_stream;
        dev x = dev_random(ctx, FERRY_DTYPE_F32, rows, cols, cols, 11 + s, 0.5,
                           2.0);
        dev y = dev_new(ctx, FERRY_DTYPE_F32, rows, cols, cols);
        dev g = dev_random(ctx, FERRY_DTYPE_F32, -1, cols, 0, 12 + s, 1.0, 0.3);
        dev m = dev_new(ctx, FERRY_DTYPE_F32, -1, rows, 0);
        dev r = dev_new(ctx, FERRY_DTYPE_F32, -1, rows, 0);
        dev dy = dev_random(ctx, FERRY_DTYPE_F32, rows, cols, cols, 13 + s, 0.0,
                            1.0);
        dev dx = dev_new(ctx, FERRY_DTYPE_F32, rows, cols, cols);
        dev dg = dev_new(ctx, FERRY_DTYPE_F32, -1, cols, 0);
        FERRY_OK_(ferry_norm_forward(g_stream, &o, &x.t, &g.t, NULL, &y.t,
                                     layer ? &m.t : NULL, &r.t));
        FERRY_OK_(ferry_norm_backward(g_stream, &o, &dy.t, &x.t, &g.t,
                                      layer ? &m.t : NULL, &r.t, &dx.t, &dg.t,
                                      NULL));
        dev *res[5] = {&y, &r, &dx, &dg, NULL};
        dev_download_all(res);
        for (int i = 0; i < 4; i++) {
          out[side][i] = malloc(nb[i]);
          cr_assert_not_null(out[side][i]);
          memcpy(out[side][i], res[i]->host, nb[i]);
        }
        dev_free_all((dev *[]){&x, &y, &g, &m, &r, &dy, &dx, &dg, NULL});
        g_stream = saved;
      }
      const char *names[4] = {"y", "rstd", "dx", "dgamma"};
      for (int i = 0; i < 4; i++) {
        err e = {0};
        for (size_t j = 0; j < nb[i] / 4; j++)
          err_add(&e, out[0][i][j], out[1][i][j]);
        cr_assert(err_rel(&e) < 1e-5, "%s %lldx%lld: %s differs from cpu: %g",
                  kind_name(o.kind), (long long)rows, (long long)cols, names[i],
                  err_rel(&e));
        free(out[0][i]);
        free(out[1][i]);
      }
    }
  ferry_stream_destroy(cstream);
  ferry_context_destroy(cctx);
}

/* ---- host operands ----------------------------------------------------- */

/* Caller host pointers (ferry_tensor.host) and ferry host buffers: used in
 * place where the backend can reach host memory (cpu; opencl wraps them);
 * refused with FERRY_ERR_INVALID_ARGUMENT by cuda/hip (pageable memory). */
Test(norm, host_operands) {
  const int64_t rows = 5, cols = 300;
  const char *be = ferry_test_backend();
  int gpu = strcmp(be, "cuda") == 0 || strcmp(be, "hip") == 0;
  float *x = malloc(rows * cols * 4), *y = malloc(rows * cols * 4);
  float *r = malloc(rows * 4);
  cr_assert(x && y && r);
  uint64_t st = 5;
  for (int64_t i = 0; i < rows * cols; i++)
    x[i] = (float)(2.0 + ferry_test_uniform(&st));
  ferry_test_poison(y, rows * cols * 4);
  ferry_tensor tx, ty, tr;
  memset(&tx, 0, sizeof tx);
  tx.host = x;
  tx.dtype = FERRY_DTYPE_F32;
  tx.ndim = 2;
  tx.shape[0] = rows;
  tx.shape[1] = cols;
  ty = tx;
  ty.host = y;
  memset(&tr, 0, sizeof tr);
  tr.host = r;
  tr.dtype = FERRY_DTYPE_F32;
  tr.ndim = 1;
  tr.shape[0] = rows;
  ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
  o.kind = FERRY_NORM_RMS;
  ferry_status s =
      ferry_norm_forward(g_stream, &o, &tx, NULL, NULL, &ty, NULL, &tr);
  if (gpu) {
    cr_assert_eq(s, FERRY_ERR_INVALID_ARGUMENT, "%s: %s",
                 ferry_status_string(s), ferry_last_error());
    FERRY_EXPECT_MESSAGE("pageable");
  } else {
    cr_assert_eq(s, FERRY_OK, "%s", ferry_last_error());
    FERRY_OK_(ferry_stream_synchronize(g_stream));
    err e = {0};
    for (int64_t i = 0; i < rows; i++) {
      double ss = 0;
      for (int64_t j = 0; j < cols; j++)
        ss += (double)x[i * cols + j] * x[i * cols + j];
      double rs = 1.0 / sqrt(ss / (double)cols + 1e-5);
      for (int64_t j = 0; j < cols; j++)
        err_add(&e, y[i * cols + j], x[i * cols + j] * rs);
    }
    cr_assert(err_rel(&e) < 1e-5, "host operands: y error %g", err_rel(&e));
  }
  free(x);
  free(y);
  free(r);
}
