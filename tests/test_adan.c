/* The fused Adan step against a float64 implementation of the rule in
 * include/ferry/adan.h (the official adan.py's semantics), written here.
 *
 * Tensors of awkward sizes (1, odd, prime, a chunk and a bit) live in two
 * groups: group 0's views share one flat parameter buffer and one flat
 * gradient buffer at unaligned offsets, group 1's have buffers of their own.
 * Every case runs at least 5 steps with fresh random gradients. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXT 8
#define STEPS 6
/* See delta_err. */
#define DELTA_TOL 1e-4

/* ---- the float64 reference ----------------------------------------------- */

typedef struct ref_cfg {
  double lr[2], wd[2];
  double b1, b2, b3, eps, max_norm;
  int no_prox, check_finite;
} ref_cfg;

typedef struct ref_tensor {
  uint64_t len;
  int group;
  double *p, *m, *v, *n, *gp;
  float *p0; /* the parameters before the first step */
} ref_tensor;

typedef struct ref_opt {
  ref_cfg c;
  ferry_dtype round_to; /* no master weights: p is rounded every step */
  int nt;
  ref_tensor t[MAXT];
  uint32_t k[2];
} ref_opt;

static double lp_round(ferry_dtype dt, double x);

/* One step with gradients g[i] (f32 values). Returns 0 when skipped. */
static int ref_step(ref_opt *r, float *const *g) {
  double sum = 0;
  int bad = 0;
  for (int i = 0; i < r->nt; i++)
    for (uint64_t j = 0; j < r->t[i].len; j++) {
      double x = g[i][j];
      bad |= !isfinite(x);
      sum += x * x;
    }
  if (r->c.check_finite && bad)
    return 0;
  double clip = 1;
  if (r->c.max_norm > 0)
    clip = fmin(1.0, r->c.max_norm / (sqrt(sum) + r->c.eps));
  for (int q = 0; q < 2; q++)
    r->k[q]++;
  for (int i = 0; i < r->nt; i++) {
    ref_tensor *t = &r->t[i];
    int q = t->group;
    double k = r->k[q], lr = r->c.lr[q], wd = r->c.wd[q];
    double b1 = r->c.b1, b2 = r->c.b2, b3 = r->c.b3;
    for (uint64_t j = 0; j < t->len; j++) {
      double gg = clip * (double)g[i][j];
      if (r->k[q] == 1)
        t->gp[j] = gg;
      double d = gg - t->gp[j];
      t->m[j] = b1 * t->m[j] + (1 - b1) * gg;
      t->v[j] = b2 * t->v[j] + (1 - b2) * d;
      double u = gg + b2 * d;
      t->n[j] = b3 * t->n[j] + (1 - b3) * u * u;
      double denom = sqrt(t->n[j]) / sqrt(1 - pow(b3, k)) + r->c.eps;
      double s1 = lr / (1 - pow(b1, k)), s2 = lr * b2 / (1 - pow(b2, k));
      double upd = s1 * t->m[j] / denom + s2 * t->v[j] / denom;
      if (r->c.no_prox)
        t->p[j] = t->p[j] * (1 - lr * wd) - upd;
      else
        t->p[j] = (t->p[j] - upd) / (1 + lr * wd);
      t->gp[j] = gg;
      if (r->round_to != FERRY_DTYPE_INVALID)
        t->p[j] = lp_round(r->round_to, t->p[j]);
    }
  }
  return 1;
}

static void ref_restart(ref_opt *r) {
  r->k[0] = r->k[1] = 0;
  for (int i = 0; i < r->nt; i++)
    for (uint64_t j = 0; j < r->t[i].len; j++)
      r->t[i].m[j] = r->t[i].v[j] = r->t[i].n[j] = 0;
}

static void ref_free(ref_opt *r) {
  for (int i = 0; i < r->nt; i++) {
    free(r->t[i].p);
    free(r->t[i].m);
    free(r->t[i].v);
    free(r->t[i].n);
    free(r->t[i].gp);
    free(r->t[i].p0);
  }
}

/* ---- tensors on the device ----------------------------------------------- */

typedef struct scen {
  ferry_context *ctx;
  ferry_stream *s;
  int nt;
  uint64_t len[MAXT];
  int group[MAXT];
  ferry_dtype dt; /* parameters (gradients: f32) */
  ferry_buffer *shared_p, *shared_g;
  ferry_buffer *own_p[MAXT], *own_g[MAXT];
  ferry_tensor P[MAXT], G[MAXT];
  float *grad[MAXT]; /* this step's gradients (host) */
} scen;

static ferry_tensor view(ferry_buffer *b, uint64_t off, ferry_dtype dt,
                         uint64_t len, int twod) {
  ferry_tensor t;
  int64_t shape[2] = {(int64_t)len, 1};
  if (twod && len % 7 == 0) {
    shape[0] = 7;
    shape[1] = (int64_t)len / 7;
  }
  FERRY_OK_(ferry_tensor_make(b, off, dt, twod ? 2 : 1, shape, &t));
  return t;
}

/* Group 0's tensors share flat buffers (3 elements of gap between views, so
 * most views are unaligned); group 1's have their own. */
static void scen_make(scen *sc, ferry_context *ctx, int nt, const uint64_t *len,
                      const int *group, ferry_dtype dt) {
  memset(sc, 0, sizeof *sc);
  sc->ctx = ctx;
  sc->nt = nt;
  sc->dt = dt;
  FERRY_OK_(ferry_stream_create(ctx, &sc->s));
  size_t es = ferry_dtype_size(dt);
  uint64_t total = 0;
  for (int i = 0; i < nt; i++) {
    sc->len[i] = len[i];
    sc->group[i] = group[i];
    if (group[i] == 0)
      total += len[i] + 3;
  }
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, total * es + 64,
                                &sc->shared_p));
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, total * 4 + 64,
                                &sc->shared_g));
  uint64_t at = 1;
  for (int i = 0; i < nt; i++) {
    sc->grad[i] = malloc(len[i] * sizeof(float));
    cr_assert_not_null(sc->grad[i]);
    if (group[i] == 0) {
      sc->P[i] = view(sc->shared_p, at * es, dt, len[i], i & 1);
      sc->G[i] = view(sc->shared_g, at * 4, FERRY_DTYPE_F32, len[i], i & 1);
      at += len[i] + 3;
    } else {
      FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, len[i] * es,
                                    &sc->own_p[i]));
      FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, len[i] * 4,
                                    &sc->own_g[i]));
      sc->P[i] = view(sc->own_p[i], 0, dt, len[i], 0);
      sc->G[i] = view(sc->own_g[i], 0, FERRY_DTYPE_F32, len[i], 0);
    }
  }
}

static void scen_free(scen *sc) {
  FERRY_OK_(ferry_stream_synchronize(sc->s));
  for (int i = 0; i < sc->nt; i++) {
    ferry_buffer_destroy(sc->own_p[i]);
    ferry_buffer_destroy(sc->own_g[i]);
    free(sc->grad[i]);
  }
  ferry_buffer_destroy(sc->shared_p);
  ferry_buffer_destroy(sc->shared_g);
  ferry_stream_destroy(sc->s);
}

/* Rounding to bf16 / f16 (nearest, ties to even) for finite values in range,
 * written independently of ferry's conversions: bf16 on the bits, f16
 * through double arithmetic (nearbyint rounds ties to even). */
static uint16_t to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static float from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static uint16_t to_f16(float f) {
  uint16_t sign = signbit(f) ? 0x8000 : 0;
  double a = fabs((double)f);
  if (a == 0)
    return sign;
  int e;
  frexp(a, &e);
  int exp = e - 1 < -14 ? -14 : e - 1; /* a in [2^exp, 2^(exp+1)) */
  double q = nearbyint(ldexp(a, 10 - exp));
  if (q >= 2048) {
    q /= 2;
    exp++;
  }
  if (q < 1024) /* subnormal */
    return (uint16_t)(sign | (uint16_t)q);
  return (uint16_t)(sign | ((exp + 15) << 10) | ((int)q - 1024));
}

static float from_f16(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
  return (float)((h & 0x8000) ? -v : v);
}

static uint16_t to_lp(ferry_dtype dt, float f) {
  return dt == FERRY_DTYPE_F16 ? to_f16(f) : to_bf16(f);
}

static float from_lp(ferry_dtype dt, uint16_t h) {
  return dt == FERRY_DTYPE_F16 ? from_f16(h) : from_bf16(h);
}

/* The nearest f32, then the nearest low-precision value. */
static double lp_round(ferry_dtype dt, double x) {
  return from_lp(dt, to_lp(dt, (float)x));
}

/* Writes parameters (f32 values; bf16 scenes round them) and returns the
 * values the device holds. */
static void scen_set_params(scen *sc, int i, float *vals) {
  uint64_t n = sc->len[i];
  if (sc->dt == FERRY_DTYPE_F32) {
    FERRY_OK_(ferry_buffer_write_async(sc->s, sc->P[i].buffer,
                                       sc->P[i].byte_offset, vals, n * 4));
  } else {
    uint16_t *h = malloc(n * 2);
    for (uint64_t j = 0; j < n; j++) {
      h[j] = to_lp(sc->dt, vals[j]);
      vals[j] = from_lp(sc->dt, h[j]);
    }
    FERRY_OK_(ferry_buffer_write_async(sc->s, sc->P[i].buffer,
                                       sc->P[i].byte_offset, h, n * 2));
    FERRY_OK_(ferry_stream_synchronize(sc->s));
    free(h);
  }
  FERRY_OK_(ferry_stream_synchronize(sc->s));
}

static void scen_get_params(scen *sc, int i, float *out) {
  uint64_t n = sc->len[i];
  ferry_test_poison(out, n * 4);
  if (sc->dt == FERRY_DTYPE_F32) {
    FERRY_OK_(ferry_buffer_read_async(sc->s, sc->P[i].buffer,
                                      sc->P[i].byte_offset, out, n * 4));
    FERRY_OK_(ferry_stream_synchronize(sc->s));
    return;
  }
  uint16_t *h = malloc(n * 2);
  FERRY_OK_(ferry_buffer_read_async(sc->s, sc->P[i].buffer,
                                    sc->P[i].byte_offset, h, n * 2));
  FERRY_OK_(ferry_stream_synchronize(sc->s));
  for (uint64_t j = 0; j < n; j++)
    out[j] = from_lp(sc->dt, h[j]);
  free(h);
}

/* Every check reads a tensor's parameters back whole: a malloc'd copy. */
static float *scen_read_params(scen *sc, int i) {
  float *p = malloc(sc->len[i] * sizeof(float));
  cr_assert_not_null(p);
  scen_get_params(sc, i, p);
  return p;
}

/* Starting parameters: n values of U(-1, 1) from rng, malloc'd. */
static float *random_values(uint64_t n, uint64_t *rng) {
  float *p = malloc(n * sizeof(float));
  cr_assert_not_null(p);
  for (uint64_t j = 0; j < n; j++)
    p[j] = (float)ferry_test_uniform(rng);
  return p;
}

static void scen_set_grads(scen *sc, uint64_t *rng, double scale) {
  for (int i = 0; i < sc->nt; i++) {
    for (uint64_t j = 0; j < sc->len[i]; j++)
      sc->grad[i][j] = (float)(scale * ferry_test_uniform(rng));
    FERRY_OK_(ferry_buffer_write_async(sc->s, sc->G[i].buffer,
                                       sc->G[i].byte_offset, sc->grad[i],
                                       sc->len[i] * 4));
  }
  FERRY_OK_(ferry_stream_synchronize(sc->s));
}

/* Runs compared step by step (a resumed checkpoint, another backend) take
 * the same gradients: src's this step, written into dst's. */
static void scen_copy_grads(scen *dst, const scen *src) {
  for (int i = 0; i < dst->nt; i++)
    FERRY_OK_(ferry_buffer_write_async(dst->s, dst->G[i].buffer,
                                       dst->G[i].byte_offset, src->grad[i],
                                       dst->len[i] * 4));
  /* The copies read src->grad, which the next step rewrites. */
  FERRY_OK_(ferry_stream_synchronize(dst->s));
}

/* ---- comparison ---------------------------------------------------------- */

/* Normwise relative error, max |x - r| / max |r|: elementwise ratios are
 * meaningless for values that cancel to near zero in f32 (p - update, sums
 * of random gradients). worst_at is where the largest difference is. */
static uint64_t worst_at;

static double rel_err(const float *x, const double *r, uint64_t n) {
  double big = 0, worst = 0;
  worst_at = 0;
  for (uint64_t j = 0; j < n; j++)
    big = fmax(big, fabs(r[j]));
  for (uint64_t j = 0; j < n; j++) {
    double e = fabs((double)x[j] - r[j]);
    if (!(e <= worst)) { /* NaN counts as the worst */
      worst = isnan(e) ? INFINITY : e;
      worst_at = j;
    }
  }
  return worst / (big + 1e-300);
}

/* The same for the parameters' change over the run, x - x0 against r - x0:
 * the update is ~1e-3 of the parameters, so an error in it would hide in
 * the parameters' own relative error. f32 rounding of p (~6e-8 per step
 * relative to |p|) bounds how tight this can be. */
static double delta_err(const float *x, const double *r, const float *x0,
                        uint64_t n) {
  double big = 0, worst = 0;
  for (uint64_t j = 0; j < n; j++) {
    big = fmax(big, fabs(r[j] - x0[j]));
    double e = fabs((double)x[j] - r[j]);
    if (!(e <= worst))
      worst = isnan(e) ? INFINITY : e;
  }
  return worst / (big + 1e-300);
}

/* Splits a group's plain state array back into its tensors' parts. */
/* A group's state vectors, read as the plain arrays a checkpoint gets,
 * judged normwise over the whole group (a one-element tensor's v, a small
 * difference of two close gradients, has no scale of its own). */
static void check_group_state(ferry_adan *opt, scen *sc, ref_opt *r, int grp,
                              double tol, const char *what) {
  uint64_t n = 0;
  FERRY_OK_(ferry_adan_state_length(opt, grp, &n));
  float *buf = malloc(n * sizeof(float) + 4);
  double *want = malloc(n * sizeof(double) + 8);
  cr_assert(buf && want);
  for (int w = 0; w < 4; w++) {
    ferry_test_poison(buf, n * sizeof(float));
    FERRY_OK_(ferry_adan_read_state(opt, grp, (ferry_adan_state)w, buf, n));
    uint64_t at = 0;
    for (int i = 0; i < sc->nt; i++) {
      if (sc->group[i] != grp)
        continue;
      const double *ref = w == 0   ? r->t[i].m
                          : w == 1 ? r->t[i].v
                          : w == 2 ? r->t[i].n
                                   : r->t[i].gp;
      memcpy(want + at, ref, sc->len[i] * sizeof(double));
      at += sc->len[i];
    }
    cr_assert_eq(at, n);
    double e = rel_err(buf, want, n);
    cr_assert(e < tol,
              "%s: %s group %d state %d: relative error %g at %llu (%.9g, "
              "expected %.9g)",
              ferry_test_backend(), what, grp, w, e,
              (unsigned long long)worst_at, (double)buf[worst_at],
              want[worst_at]);
  }
  free(want);
  free(buf);
}

static void check_all(ferry_adan *opt, scen *sc, ref_opt *r, double tol,
                      const char *what) {
  for (int i = 0; i < sc->nt; i++) {
    float *p = scen_read_params(sc, i);
    double e = rel_err(p, r->t[i].p, sc->len[i]);
    cr_assert(e < tol,
              "%s: %s params of tensor %d (%llu elements): relative error %g",
              ferry_test_backend(), what, i, (unsigned long long)sc->len[i], e);
    e = delta_err(p, r->t[i].p, r->t[i].p0, sc->len[i]);
    cr_assert(e < DELTA_TOL,
              "%s: %s update of tensor %d (%llu elements): relative error %g",
              ferry_test_backend(), what, i, (unsigned long long)sc->len[i], e);
    free(p);
  }
  for (int g = 0; g < 2; g++) {
    uint64_t k = 99;
    FERRY_OK_(ferry_adan_get_step(opt, g, &k));
    cr_assert_eq(k, r->k[g], "%s: group %d counter %llu, expected %u", what, g,
                 (unsigned long long)k, r->k[g]);
    check_group_state(opt, sc, r, g, tol, what);
  }
}

/* ---- a whole run --------------------------------------------------------- */

static const uint64_t sizes[] = {1, 7, 8193, 10007, 13, 65537};
static const int groups[] = {0, 0, 0, 1, 0, 1};
#define NT 6

typedef struct run_cfg {
  const char *name;
  ferry_adan_options o;
  double lr1, wd1;    /* group 1 */
  int restart_before; /* restart before this step (1-based), 0: none */
  double grad_scale;
} run_cfg;

static ferry_adan *make_opt(ferry_context *ctx, scen *sc, const run_cfg *rc) {
  ferry_adan *opt = NULL;
  FERRY_OK_(ferry_adan_create(ctx, &rc->o, &opt));
  ferry_tensor g0[MAXT], g1[MAXT];
  int n0 = 0, n1 = 0;
  for (int i = 0; i < sc->nt; i++) {
    if (sc->group[i] == 0)
      g0[n0++] = sc->P[i];
    else
      g1[n1++] = sc->P[i];
  }
  int gi = -1;
  FERRY_OK_(ferry_adan_add_group(opt, NULL, g0, (size_t)n0, &gi));
  cr_assert_eq(gi, 0);
  ferry_adan_group_options go = FERRY_ADAN_GROUP_OPTIONS_INIT;
  go.lr = rc->lr1;
  go.weight_decay = rc->wd1;
  FERRY_OK_(ferry_adan_add_group(opt, &go, g1, (size_t)n1, &gi));
  cr_assert_eq(gi, 1);
  return opt;
}

/* The step's tensor order is the groups' order. */
static void ordered(const scen *sc, ferry_tensor *P, ferry_tensor *G) {
  int k = 0;
  for (int grp = 0; grp < 2; grp++)
    for (int i = 0; i < sc->nt; i++)
      if (sc->group[i] == grp) {
        P[k] = sc->P[i];
        G[k] = sc->G[i];
        k++;
      }
}

static void ref_init(ref_opt *r, const scen *sc, const run_cfg *rc) {
  memset(r, 0, sizeof *r);
  r->c.lr[0] = rc->o.lr;
  r->c.wd[0] = rc->o.weight_decay;
  r->c.lr[1] = rc->lr1;
  r->c.wd[1] = rc->wd1;
  r->c.b1 = rc->o.beta1;
  r->c.b2 = rc->o.beta2;
  r->c.b3 = rc->o.beta3;
  r->c.eps = rc->o.eps;
  r->c.max_norm = rc->o.max_grad_norm;
  r->c.no_prox = rc->o.no_prox;
  r->c.check_finite = rc->o.check_finite;
  r->nt = sc->nt;
  for (int i = 0; i < sc->nt; i++) {
    ref_tensor *t = &r->t[i];
    t->len = sc->len[i];
    t->group = sc->group[i];
    t->p = calloc(t->len, sizeof(double));
    t->m = calloc(t->len, sizeof(double));
    t->v = calloc(t->len, sizeof(double));
    t->n = calloc(t->len, sizeof(double));
    t->gp = calloc(t->len, sizeof(double));
    t->p0 = calloc(t->len, sizeof(float));
    cr_assert(t->p && t->m && t->v && t->n && t->gp && t->p0);
  }
}

/* One configuration's run on the backend under test, against the
 * reference. */
static void run_against_reference(const run_cfg *rc, ferry_dtype dt,
                                  double tol) {
  ferry_context *ctx = ferry_test_context();
  scen sc;
  scen_make(&sc, ctx, NT, sizes, groups, dt);
  ref_opt r;
  ref_init(&r, &sc, rc);
  r.round_to =
      dt != FERRY_DTYPE_F32 && !rc->o.master_weights ? dt : FERRY_DTYPE_INVALID;
  uint64_t rng = 0x5eed + (uint64_t)rc->restart_before;
  for (int i = 0; i < sc.nt; i++) {
    float *p = random_values(sc.len[i], &rng);
    scen_set_params(&sc, i, p); /* rounds to the dtype */
    for (uint64_t j = 0; j < sc.len[i]; j++)
      r.t[i].p[j] = r.t[i].p0[j] = p[j];
    free(p);
  }
  ferry_adan *opt = make_opt(ctx, &sc, rc);
  ferry_tensor P[MAXT], G[MAXT];
  ordered(&sc, P, G);
  /* The reference's tensors are in scene order; gradients too. */
  for (int step = 1; step <= STEPS; step++) {
    if (step == rc->restart_before) {
      FERRY_OK_(ferry_adan_restart(opt));
      ref_restart(&r);
    }
    scen_set_grads(&sc, &rng, rc->grad_scale);
    FERRY_OK_(ferry_adan_step(opt, P, G, (size_t)sc.nt, sc.s));
    cr_assert(ref_step(&r, sc.grad));
    int skipped = -1;
    FERRY_OK_(ferry_adan_last_step_skipped(opt, &skipped));
    cr_assert_eq(skipped, 0);
  }
  if (dt == FERRY_DTYPE_F32) {
    check_all(opt, &sc, &r, tol, rc->name);
  } else if (!rc->o.master_weights) {
    /* The parameters are the only copy: rounded every step, on both sides,
     * so a value near a rounding tie may land one unit apart (and stay
     * so: the update is small against the value). */
    for (int i = 0; i < sc.nt; i++) {
      float *p = scen_read_params(&sc, i);
      double ulp = dt == FERRY_DTYPE_F16 ? ldexp(1, -10) : ldexp(1, -7);
      for (uint64_t j = 0; j < sc.len[i]; j++)
        cr_assert(fabs(p[j] - r.t[i].p[j]) <=
                      2 * ulp * fabs(r.t[i].p[j]) + 1e-30,
                  "%s: tensor %d [%llu]: %.9g, reference %.9g", rc->name, i,
                  (unsigned long long)j, (double)p[j], r.t[i].p[j]);
      free(p);
    }
    for (int grp = 0; grp < 2; grp++)
      check_group_state(opt, &sc, &r, grp, tol, rc->name);
  } else {
    /* Master weights carry the f32 update; the parameters are them rounded. */
    for (int grp = 0; grp < 2; grp++) {
      uint64_t n = 0;
      FERRY_OK_(ferry_adan_state_length(opt, grp, &n));
      float *master = malloc(n * sizeof(float));
      ferry_test_poison(master, n * sizeof(float));
      FERRY_OK_(
          ferry_adan_read_state(opt, grp, FERRY_ADAN_STATE_MASTER, master, n));
      uint64_t at = 0;
      for (int i = 0; i < sc.nt; i++) {
        if (sc.group[i] != grp)
          continue;
        double e = rel_err(master + at, r.t[i].p, sc.len[i]);
        cr_assert(e < tol, "%s: master weights of tensor %d: error %g",
                  rc->name, i, e);
        float *p = scen_read_params(&sc, i);
        for (uint64_t j = 0; j < sc.len[i]; j++)
          cr_assert_eq(p[j], from_lp(dt, to_lp(dt, master[at + j])),
                       "tensor %d [%llu]: %g is not master %g rounded", i,
                       (unsigned long long)j, (double)p[j],
                       (double)master[at + j]);
        free(p);
        at += sc.len[i];
      }
      free(master);
      check_group_state(opt, &sc, &r, grp, tol, rc->name);
    }
  }
  ferry_adan_destroy(opt);
  ref_free(&r);
  scen_free(&sc);
  ferry_context_destroy(ctx);
}

static run_cfg cfg_defaults(void) {
  run_cfg rc = {.name = "defaults", .o = FERRY_ADAN_OPTIONS_INIT};
  rc.lr1 = rc.o.lr;
  rc.wd1 = rc.o.weight_decay;
  rc.grad_scale = 1.0;
  return rc;
}

Test(adan, defaults) {
  run_cfg rc = cfg_defaults();
  run_against_reference(&rc, FERRY_DTYPE_F32, 1e-6);
}

Test(adan, prox_weight_decay_clipping) {
  run_cfg rc = cfg_defaults();
  rc.name = "prox+wd+clip";
  rc.o.lr = 2e-2;
  rc.o.weight_decay = 0.05;
  rc.o.max_grad_norm = 1.0; /* the gradients' norm is ~170: clipped */
  rc.lr1 = 5e-3;
  rc.wd1 = 0.2;
  run_against_reference(&rc, FERRY_DTYPE_F32, 1e-6);
}

Test(adan, no_prox_other_betas) {
  run_cfg rc = cfg_defaults();
  rc.name = "no_prox";
  rc.o.no_prox = 1;
  rc.o.lr = 1e-2;
  rc.o.beta1 = 0.9;
  rc.o.beta2 = 0.5;
  rc.o.beta3 = 0.999;
  rc.o.eps = 1e-3;
  rc.o.weight_decay = 0.1;
  rc.o.max_grad_norm = 1e4; /* above the norm: coefficient 1 */
  rc.o.check_finite = 1;
  rc.lr1 = 3e-2;
  rc.wd1 = 0.0;
  rc.grad_scale = 0.01;
  run_against_reference(&rc, FERRY_DTYPE_F32, 1e-6);
}

Test(adan, restart_before_step_4) {
  run_cfg rc = cfg_defaults();
  rc.name = "restart";
  rc.o.weight_decay = 0.01;
  rc.restart_before = 4;
  run_against_reference(&rc, FERRY_DTYPE_F32, 1e-6);
}

Test(adan, f16_master_weights) {
  run_cfg rc = cfg_defaults();
  rc.name = "f16";
  rc.o.lr = 1e-2;
  rc.o.no_prox = 1;
  rc.o.weight_decay = 0.05;
  rc.o.max_grad_norm = 3.0;
  run_against_reference(&rc, FERRY_DTYPE_F16, 1e-6);
}

Test(adan, bf16_without_master_weights) {
  run_cfg rc = cfg_defaults();
  rc.name = "bf16 no master";
  rc.o.lr = 1e-2;
  rc.o.master_weights = 0;
  run_against_reference(&rc, FERRY_DTYPE_BF16, 1e-6);
}

Test(adan, bf16_master_weights) {
  run_cfg rc = cfg_defaults();
  rc.name = "bf16";
  rc.o.lr = 1e-2;
  rc.o.weight_decay = 0.02;
  run_against_reference(&rc, FERRY_DTYPE_BF16, 1e-6);
}

/* ---- multi-tensor equals one tensor at a time ---------------------------- */

Test(adan, multi_tensor_equals_single) {
  ferry_context *ctx = ferry_test_context();
  scen sc;
  scen_make(&sc, ctx, NT, sizes, groups, FERRY_DTYPE_F32);
  uint64_t rng = 77;
  float *init[MAXT];
  for (int i = 0; i < sc.nt; i++)
    init[i] = random_values(sc.len[i], &rng);
  ferry_adan_options o = FERRY_ADAN_OPTIONS_INIT;
  o.weight_decay = 0.01;
  o.lr = 1e-2;
  float *multi[MAXT];
  /* Pass 0: one optimizer, one group holding every tensor. Pass 1: one
   * optimizer per tensor. Same gradients (same seed) in both. */
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < sc.nt; i++) {
      float *p = malloc(sc.len[i] * sizeof(float));
      memcpy(p, init[i], sc.len[i] * sizeof(float));
      scen_set_params(&sc, i, p);
      free(p);
    }
    ferry_adan *opts[MAXT] = {0};
    int nopt = pass == 0 ? 1 : sc.nt;
    for (int k = 0; k < nopt; k++) {
      FERRY_OK_(ferry_adan_create(ctx, &o, &opts[k]));
      int gi;
      if (pass == 0)
        FERRY_OK_(
            ferry_adan_add_group(opts[k], NULL, sc.P, (size_t)sc.nt, &gi));
      else
        FERRY_OK_(ferry_adan_add_group(opts[k], NULL, &sc.P[k], 1, &gi));
    }
    uint64_t grng = 1234;
    for (int step = 0; step < 5; step++) {
      scen_set_grads(&sc, &grng, 1.0);
      if (pass == 0)
        FERRY_OK_(ferry_adan_step(opts[0], sc.P, sc.G, (size_t)sc.nt, sc.s));
      else
        for (int k = 0; k < nopt; k++)
          FERRY_OK_(ferry_adan_step(opts[k], &sc.P[k], &sc.G[k], 1, sc.s));
    }
    for (int i = 0; i < sc.nt; i++) {
      float *p = scen_read_params(&sc, i);
      if (pass == 0) {
        multi[i] = p;
      } else {
        cr_assert(memcmp(p, multi[i], sc.len[i] * sizeof(float)) == 0,
                  "tensor %d differs between one launch and one per tensor", i);
        free(p);
        free(multi[i]);
      }
    }
    for (int k = 0; k < nopt; k++)
      ferry_adan_destroy(opts[k]);
  }
  for (int i = 0; i < sc.nt; i++)
    free(init[i]);
  scen_free(&sc);
  ferry_context_destroy(ctx);
}

/* ---- non-finite gradients skip the step ---------------------------------- */

static void snapshot(scen *sc, ferry_adan *opt, float **out) {
  int k = 0;
  for (int i = 0; i < sc->nt; i++, k++)
    out[k] = scen_read_params(sc, i);
  for (int grp = 0; grp < 2; grp++)
    for (int w = 0; w < 4; w++, k++) {
      uint64_t n = 0;
      FERRY_OK_(ferry_adan_state_length(opt, grp, &n));
      out[k] = malloc(n * sizeof(float));
      FERRY_OK_(
          ferry_adan_read_state(opt, grp, (ferry_adan_state)w, out[k], n));
    }
}

Test(adan, nonfinite_gradient_skips_step) {
  ferry_context *ctx = ferry_test_context();
  scen sc;
  scen_make(&sc, ctx, NT, sizes, groups, FERRY_DTYPE_F32);
  run_cfg rc = cfg_defaults();
  rc.o.check_finite = 1;
  rc.o.max_grad_norm = 5.0;
  uint64_t rng = 9;
  for (int i = 0; i < sc.nt; i++) {
    float *p = random_values(sc.len[i], &rng);
    scen_set_params(&sc, i, p);
    free(p);
  }
  ferry_adan *opt = make_opt(ctx, &sc, &rc);
  ferry_tensor P[MAXT], G[MAXT];
  ordered(&sc, P, G);
  for (int step = 0; step < 3; step++) {
    scen_set_grads(&sc, &rng, 1.0);
    FERRY_OK_(ferry_adan_step(opt, P, G, (size_t)sc.nt, sc.s));
  }
  const float bad[3] = {NAN, INFINITY, -INFINITY};
  for (int b = 0; b < 3; b++) {
    float *before[MAXT + 8], *after[MAXT + 8];
    snapshot(&sc, opt, before);
    scen_set_grads(&sc, &rng, 1.0);
    int victim = (b * 3 + 2) % sc.nt;
    uint64_t where = sc.len[victim] / 2;
    sc.grad[victim][where] = bad[b];
    FERRY_OK_(ferry_buffer_write_async(sc.s, sc.G[victim].buffer,
                                       sc.G[victim].byte_offset + where * 4,
                                       &bad[b], 4));
    FERRY_OK_(ferry_adan_step(opt, P, G, (size_t)sc.nt, sc.s));
    int skipped = 0;
    FERRY_OK_(ferry_adan_last_step_skipped(opt, &skipped));
    cr_assert_eq(skipped, 1, "a %g gradient did not skip the step",
                 (double)bad[b]);
    for (int grp = 0; grp < 2; grp++) {
      uint64_t k = 0;
      FERRY_OK_(ferry_adan_get_step(opt, grp, &k));
      cr_assert_eq(k, 3, "the counter moved on a skipped step");
    }
    snapshot(&sc, opt, after);
    for (int k = 0; k < sc.nt + 8; k++) {
      uint64_t n = 0;
      if (k < sc.nt)
        n = sc.len[k];
      else
        FERRY_OK_(ferry_adan_state_length(opt, (k - sc.nt) / 4, &n));
      cr_assert(memcmp(before[k], after[k], n * 4) == 0,
                "item %d changed on a skipped step", k);
      free(before[k]);
      free(after[k]);
    }
  }
  /* A finite step afterwards runs again. */
  scen_set_grads(&sc, &rng, 1.0);
  FERRY_OK_(ferry_adan_step(opt, P, G, (size_t)sc.nt, sc.s));
  int skipped = 1;
  FERRY_OK_(ferry_adan_last_step_skipped(opt, &skipped));
  cr_assert_eq(skipped, 0);
  uint64_t k = 0;
  FERRY_OK_(ferry_adan_get_step(opt, 1, &k));
  cr_assert_eq(k, 4);
  ferry_adan_destroy(opt);
  scen_free(&sc);
  ferry_context_destroy(ctx);
}

/* ---- checkpoints --------------------------------------------------------- */

Test(adan, checkpoint_roundtrip) {
  ferry_context *ctx = ferry_test_context();
  const uint64_t len[2] = {1000, 37};
  const int grp[2] = {0, 1};
  scen a, b;
  scen_make(&a, ctx, 2, len, grp, FERRY_DTYPE_F32);
  scen_make(&b, ctx, 2, len, grp, FERRY_DTYPE_F32);
  run_cfg rc = cfg_defaults();
  rc.o.weight_decay = 0.02;
  rc.lr1 = 3e-3;
  uint64_t rng = 31;
  for (int i = 0; i < 2; i++) {
    float *p = random_values(len[i], &rng);
    scen_set_params(&a, i, p);
    scen_set_params(&b, i, p);
    free(p);
  }
  ferry_adan *oa = make_opt(ctx, &a, &rc);
  for (int s = 0; s < 3; s++) {
    scen_set_grads(&a, &rng, 1.0);
    FERRY_OK_(ferry_adan_step(oa, a.P, a.G, 2, a.s));
  }
  /* Copy a's parameters, state and counters into a fresh optimizer. */
  ferry_adan *ob = make_opt(ctx, &b, &rc);
  for (int i = 0; i < 2; i++) {
    float *p = scen_read_params(&a, i);
    scen_set_params(&b, i, p);
    free(p);
  }
  for (int g = 0; g < 2; g++) {
    float *buf = malloc(len[g] * sizeof(float));
    for (int w = 0; w < 4; w++) {
      FERRY_OK_(ferry_adan_read_state(oa, g, (ferry_adan_state)w, buf, len[g]));
      FERRY_OK_(
          ferry_adan_write_state(ob, g, (ferry_adan_state)w, buf, len[g]));
    }
    /* What went in reads back. */
    float *back = malloc(len[g] * sizeof(float));
    for (int w = 0; w < 4; w++) {
      FERRY_OK_(ferry_adan_read_state(oa, g, (ferry_adan_state)w, buf, len[g]));
      ferry_test_poison(back, len[g] * sizeof(float));
      FERRY_OK_(
          ferry_adan_read_state(ob, g, (ferry_adan_state)w, back, len[g]));
      cr_assert(memcmp(buf, back, len[g] * sizeof(float)) == 0,
                "group %d state %d did not round-trip", g, w);
    }
    free(back);
    free(buf);
    uint64_t k = 0;
    FERRY_OK_(ferry_adan_get_step(oa, g, &k));
    cr_assert_eq(k, 3);
    FERRY_OK_(ferry_adan_set_step(ob, g, k));
  }
  for (int s = 0; s < 3; s++) {
    scen_set_grads(&a, &rng, 1.0);
    scen_copy_grads(&b, &a);
    FERRY_OK_(ferry_adan_step(oa, a.P, a.G, 2, a.s));
    FERRY_OK_(ferry_adan_step(ob, b.P, b.G, 2, b.s));
  }
  for (int i = 0; i < 2; i++) {
    float *pa = scen_read_params(&a, i), *pb = scen_read_params(&b, i);
    cr_assert(memcmp(pa, pb, len[i] * 4) == 0, "tensor %d: resumed run differs",
              i);
    free(pa);
    free(pb);
  }
  ferry_adan_destroy(oa);
  ferry_adan_destroy(ob);
  scen_free(&a);
  scen_free(&b);
  ferry_context_destroy(ctx);
}

/* ---- this backend against cpu -------------------------------------------- */

Test(adan, backend_matches_cpu) {
  ferry_context *ctx = ferry_test_context();
  ferry_context *cpu = NULL;
  ferry_context_options co = FERRY_CONTEXT_OPTIONS_INIT;
  co.backend = "cpu";
  FERRY_OK_(ferry_context_create(&co, &cpu));
  scen s[2];
  scen_make(&s[0], ctx, NT, sizes, groups, FERRY_DTYPE_F32);
  scen_make(&s[1], cpu, NT, sizes, groups, FERRY_DTYPE_F32);
  run_cfg rc = cfg_defaults();
  rc.o.max_grad_norm = 2.0;
  rc.o.weight_decay = 0.03;
  rc.o.lr = 1e-2;
  ferry_adan *opt[2];
  uint64_t rng = 5;
  for (int i = 0; i < NT; i++) {
    float *p = random_values(sizes[i], &rng);
    scen_set_params(&s[0], i, p);
    scen_set_params(&s[1], i, p);
    free(p);
  }
  ferry_tensor P[2][MAXT], G[2][MAXT];
  for (int b = 0; b < 2; b++) {
    opt[b] = make_opt(b ? cpu : ctx, &s[b], &rc);
    ordered(&s[b], P[b], G[b]);
  }
  for (int step = 0; step < 5; step++) {
    scen_set_grads(&s[0], &rng, 1.0);
    scen_copy_grads(&s[1], &s[0]);
    for (int b = 0; b < 2; b++)
      FERRY_OK_(ferry_adan_step(opt[b], P[b], G[b], NT, s[b].s));
  }
  for (int i = 0; i < NT; i++) {
    float *p0 = scen_read_params(&s[0], i), *p1 = scen_read_params(&s[1], i);
    double *r = malloc(sizes[i] * sizeof(double));
    for (uint64_t j = 0; j < sizes[i]; j++)
      r[j] = p1[j];
    double e = rel_err(p0, r, sizes[i]);
    cr_assert(e < 1e-6, "%s vs cpu: tensor %d relative difference %g",
              ferry_test_backend(), i, e);
    free(p0);
    free(p1);
    free(r);
  }
  for (int b = 0; b < 2; b++) {
    ferry_adan_destroy(opt[b]);
    scen_free(&s[b]);
  }
  ferry_context_destroy(cpu);
  ferry_context_destroy(ctx);
}

/* ---- bad input ----------------------------------------------------------- */

Test(adan, bad_input) {
  ferry_context *ctx = ferry_test_context();
  ferry_adan *opt = NULL;
  ferry_adan_options o = FERRY_ADAN_OPTIONS_INIT;
  FERRY_EXPECT(ferry_adan_create(NULL, &o, &opt), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_adan_create(ctx, &o, NULL), FERRY_ERR_NULL_POINTER);
  struct {
    const char *field;
    double *at;
    double value;
  } bads[] = {
      {"lr", &o.lr, -1e-3},
      {"beta1", &o.beta1, 1.0},
      {"beta2", &o.beta2, -0.1},
      {"beta3", &o.beta3, 1.5},
      {"eps", &o.eps, 0.0},
      {"eps", &o.eps, -1.0},
      {"weight_decay", &o.weight_decay, -0.1},
      {"max_grad_norm", &o.max_grad_norm, -1.0},
      {"lr", &o.lr, NAN},
  };
  for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
    o = (ferry_adan_options)FERRY_ADAN_OPTIONS_INIT;
    *bads[i].at = bads[i].value;
    FERRY_EXPECT(ferry_adan_create(ctx, &o, &opt), FERRY_ERR_INVALID_ARGUMENT);
    FERRY_EXPECT_MESSAGE(bads[i].field);
    cr_assert_null(opt);
  }
  o = (ferry_adan_options)FERRY_ADAN_OPTIONS_INIT;
  o.struct_size = 3;
  FERRY_EXPECT(ferry_adan_create(ctx, &o, &opt), FERRY_ERR_STRUCT_SIZE);
  FERRY_OK_(ferry_adan_create(ctx, NULL, &opt));

  const uint64_t len[2] = {100, 31};
  const int grp[2] = {0, 0};
  scen sc;
  scen_make(&sc, ctx, 2, len, grp, FERRY_DTYPE_F32);
  int gi = -1;
  /* The step before any group: an empty list. */
  FERRY_EXPECT(ferry_adan_step(opt, sc.P, sc.G, 2, sc.s),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT(ferry_adan_add_group(opt, NULL, sc.P, 0, &gi),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT(ferry_adan_add_group(opt, NULL, NULL, 2, &gi),
               FERRY_ERR_NULL_POINTER);
  ferry_tensor empty = sc.P[0];
  empty.shape[0] = 0;
  FERRY_EXPECT(ferry_adan_add_group(opt, NULL, &empty, 1, &gi),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("empty");
  ferry_tensor wrong = sc.P[0];
  wrong.dtype = FERRY_DTYPE_I32;
  FERRY_EXPECT(ferry_adan_add_group(opt, NULL, &wrong, 1, &gi),
               FERRY_ERR_INVALID_ARGUMENT);
  ferry_adan_group_options go = FERRY_ADAN_GROUP_OPTIONS_INIT;
  go.lr = -1;
  FERRY_EXPECT(ferry_adan_add_group(opt, &go, sc.P, 2, &gi),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("lr");
  FERRY_OK_(ferry_adan_add_group(opt, NULL, sc.P, 2, &gi));

  uint64_t rng = 3;
  float *p0 = malloc(len[0] * 4), *p1 = malloc(len[0] * 4);
  for (uint64_t j = 0; j < len[0]; j++)
    p0[j] = (float)ferry_test_uniform(&rng);
  scen_set_params(&sc, 0, p0);
  scen_set_grads(&sc, &rng, 1.0);

  ferry_tensor G[2] = {sc.G[0], sc.G[1]};
  FERRY_EXPECT(ferry_adan_step(NULL, sc.P, G, 2, sc.s), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_adan_step(opt, NULL, G, 2, sc.s), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_adan_step(opt, sc.P, NULL, 2, sc.s),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_adan_step(opt, sc.P, G, 2, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_adan_step(opt, sc.P, G, 1, sc.s), FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("count");
  /* Mismatched lengths: the second gradient is one element short. */
  G[1].shape[G[1].ndim - 1] -= 1;
  FERRY_EXPECT(ferry_adan_step(opt, sc.P, G, 2, sc.s), FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("grads[1]");
  G[1] = sc.G[1];
  G[1].dtype = FERRY_DTYPE_F16; /* params are f32 */
  FERRY_EXPECT(ferry_adan_step(opt, sc.P, G, 2, sc.s), FERRY_ERR_MISMATCH);
  G[1] = sc.G[1];
  /* A strided view of the right length: rows 51 elements apart. */
  G[0].ndim = 2;
  G[0].shape[0] = 2;
  G[0].shape[1] = (int64_t)len[0] / 2;
  G[0].strides[0] = (int64_t)len[0] / 2 + 1;
  G[0].strides[1] = 1;
  FERRY_EXPECT(ferry_adan_step(opt, sc.P, G, 2, sc.s),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("strided");
  G[0] = sc.G[0];
  /* Out of the buffer. */
  G[0].byte_offset = 1u << 30;
  FERRY_EXPECT(ferry_adan_step(opt, sc.P, G, 2, sc.s), FERRY_ERR_OUT_OF_RANGE);
  G[0] = sc.G[0];
  uint64_t k = 7;
  FERRY_EXPECT(ferry_adan_get_step(opt, 1, &k), FERRY_ERR_OUT_OF_RANGE);
  FERRY_OK_(ferry_adan_get_step(opt, 0, &k));
  cr_assert_eq(k, 0, "a failed step advanced the counter");
  scen_get_params(&sc, 0, p1);
  cr_assert(memcmp(p0, p1, len[0] * 4) == 0, "a failed step wrote params");
  float st[131];
  FERRY_EXPECT(ferry_adan_read_state(opt, 0, FERRY_ADAN_STATE_M, st, 130),
               FERRY_ERR_MISMATCH);
  FERRY_EXPECT(ferry_adan_read_state(opt, 0, FERRY_ADAN_STATE_MASTER, st, 131),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT(ferry_adan_read_state(opt, 0, (ferry_adan_state)9, st, 131),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT(ferry_adan_set_step(opt, 0, UINT64_C(1) << 33),
               FERRY_ERR_OUT_OF_RANGE);
  FERRY_OK_(ferry_adan_step(opt, sc.P, G, 2, sc.s));
  FERRY_OK_(ferry_adan_get_step(opt, 0, &k));
  cr_assert_eq(k, 1);
  free(p0);
  free(p1);
  ferry_adan_destroy(opt);
  ferry_adan_destroy(NULL);
  scen_free(&sc);
  ferry_context_destroy(ctx);
}
