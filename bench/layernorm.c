/* ferry-bench layernorm: LayerNorm and RMSNorm, forward and backward, f32
 * and bf16, on rows x cols 4096 x {1024, 4096, 8192, 16384} and 262144 x
 * 128 (the GNN hidden-size case); --quick: 1024 x 1024 and 16384 x 128.
 *
 * GB/s counts each tensor once: forward x, y, gamma, beta (RMSNorm: no
 * beta), mean (LayerNorm), rstd; backward dy, x, dx, gamma, mean, rstd,
 * dgamma, dbeta. The limit is ferry's own copy on the same backend and
 * context (ferry_buffer_copy_async between two device buffers: on cpu the
 * pool's parallel memcpy) moving the same number of bytes (half read, half
 * written), measured in the same run, its repetitions alternating with the
 * op's. Working sets are
 * rotated: as many buffer sets as it takes to reach 4x the last-level cache
 * (at most 16), so no repetition starts with its data cached; a shape whose
 * sets cannot reach that is reported but not judged. Results are checked
 * after timing (finite, and y's first row against an f64 reference). */
#include "bench.h"
#include "copy_limit.h"
#include "timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS 16

typedef struct shape {
  int64_t rows, cols;
} shape;

static const shape full_shapes[] = {
    {4096, 1024}, {4096, 4096}, {4096, 8192}, {4096, 16384}, {262144, 128}};
static const shape quick_shapes[] = {{1024, 1024}, {16384, 128}};

/* One set of operands on the device. */
typedef struct opset {
  ferry_buffer *buf; /* everything in one buffer */
  ferry_tensor x, y, dy, dx, g, b, m, r, dg, db;
} opset;

typedef struct run {
  const bench_config *cfg;
  const bench_target *target;
  ferry_stream *stream;
  ferry_dtype dt;
  ferry_norm_kind kind;
  int backward;
  shape sh;
  opset set[MAX_SETS];
  bench_copy_limit limit; /* the rotation of sets and the copy */
} run;

static size_t esz(ferry_dtype dt) {
  return dt == FERRY_DTYPE_F32 ? 4 : 2;
}

static uint64_t align256(uint64_t v) {
  return (v + 255) & ~(uint64_t)255;
}

/* A set packs all its operands into one buffer: each tensor (compact) at
 * *off, which then moves past it to the next 256-byte boundary. */
static void place(ferry_tensor *t, ferry_buffer *b, uint64_t *off,
                  ferry_dtype dt, int32_t ndim, const int64_t *dims) {
  memset(t, 0, sizeof *t);
  t->buffer = b;
  t->byte_offset = *off;
  t->dtype = dt;
  t->ndim = ndim;
  uint64_t n = 1;
  for (int32_t d = 0; d < ndim; d++) {
    t->shape[d] = dims[d];
    n *= (uint64_t)dims[d];
  }
  *off = align256(*off + n * esz(dt));
}

static void vec(ferry_tensor *t, ferry_buffer *b, uint64_t *off, ferry_dtype dt,
                int64_t n) {
  place(t, b, off, dt, 1, &n);
}

static void mat(ferry_tensor *t, ferry_buffer *b, uint64_t *off, ferry_dtype dt,
                shape s) {
  place(t, b, off, dt, 2, (const int64_t[]){s.rows, s.cols});
}

/* Layout of one set: returns its bytes (with buffer NULL) or fills it. */
static uint64_t layout(const run *r, opset *o, ferry_buffer *b) {
  uint64_t off = 0;
  mat(&o->x, b, &off, r->dt, r->sh);
  mat(&o->y, b, &off, r->dt, r->sh); /* forward: y; backward: dy */
  if (r->backward)
    mat(&o->dx, b, &off, r->dt, r->sh);
  o->dy = o->y;
  vec(&o->g, b, &off, FERRY_DTYPE_F32, r->sh.cols);
  vec(&o->b, b, &off, FERRY_DTYPE_F32, r->sh.cols);
  vec(&o->m, b, &off, FERRY_DTYPE_F32, r->sh.rows);
  vec(&o->r, b, &off, FERRY_DTYPE_F32, r->sh.rows);
  vec(&o->dg, b, &off, FERRY_DTYPE_F32, r->sh.cols);
  vec(&o->db, b, &off, FERRY_DTYPE_F32, r->sh.cols);
  return off;
}

/* Bytes counted for the op: each tensor once. */
static uint64_t counted(const run *r) {
  uint64_t big = (uint64_t)(r->sh.rows * r->sh.cols) * esz(r->dt);
  uint64_t cv = (uint64_t)r->sh.cols * 4, rv = (uint64_t)r->sh.rows * 4;
  int layer = r->kind == FERRY_NORM_LAYER;
  if (!r->backward) /* x, y, gamma, [beta], [mean], rstd */
    return 2 * big + cv + (layer ? cv + rv : 0) + rv;
  /* dy, x, dx, gamma, [mean], rstd, dgamma, [dbeta] */
  return 3 * big + cv + (layer ? rv : 0) + rv + cv + (layer ? cv : 0);
}

/* fill_set reuses its host staging for the next tensor at once: each write
 * is waited for. */
static ferry_status write_and_wait(const run *r, const opset *o,
                                   const ferry_tensor *t, const void *src,
                                   uint64_t bytes) {
  ferry_status s =
      ferry_buffer_write_async(r->stream, o->buf, t->byte_offset, src, bytes);
  if (s == FERRY_OK)
    s = ferry_stream_synchronize(r->stream);
  return s;
}

/* Host staging: random inputs in the dtype, written into the set. */
static int fill_set(run *r, opset *o, uint64_t seed) {
  uint64_t n = (uint64_t)(r->sh.rows * r->sh.cols);
  size_t es = esz(r->dt);
  void *h = malloc(n * es);
  float *v =
      malloc((size_t)(r->sh.cols > r->sh.rows ? r->sh.cols : r->sh.rows) *
             sizeof(float));
  if (h == NULL || v == NULL) {
    free(h);
    free(v);
    fprintf(stderr, "ferry-bench: layernorm: no host memory for staging\n");
    return -1;
  }
  uint64_t st = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int which = 0; which < 2; which++) {
    for (uint64_t i = 0; i < n; i++) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      float f =
          (float)((double)(st >> 40) / (double)(1ull << 24)) * 4.0f - 1.5f;
      if (es == 4) {
        ((float *)h)[i] = f;
      } else {
        uint32_t u;
        memcpy(&u, &f, 4);
        ((uint16_t *)h)[i] = (uint16_t)(u >> 16); /* bf16, truncated */
      }
    }
    ferry_status s = write_and_wait(r, o, which ? &o->dy : &o->x, h, n * es);
    if (s != FERRY_OK) {
      free(h);
      free(v);
      return bench_fail("layernorm: writing inputs", s);
    }
  }
  /* gamma ~ 1, beta ~ 0, mean/rstd plausible (backward reads them). */
  const ferry_tensor *vt[4] = {&o->g, &o->b, &o->m, &o->r};
  for (int k = 0; k < 4; k++) {
    int64_t len = vt[k]->shape[0];
    for (int64_t i = 0; i < len; i++)
      v[i] = k == 0   ? 1.0f + 0.001f * (float)(i % 7)
             : k == 1 ? 0.01f * (float)(i % 5)
             : k == 2 ? 0.5f
                      : 0.9f;
    ferry_status s = write_and_wait(r, o, vt[k], v, (uint64_t)len * 4);
    if (s != FERRY_OK) {
      free(h);
      free(v);
      return bench_fail("layernorm: writing parameters", s);
    }
  }
  free(h);
  free(v);
  return 0;
}

static void free_sets(run *r) {
  for (int i = 0; i < MAX_SETS; i++) {
    ferry_buffer_destroy(r->set[i].buf);
    r->set[i].buf = NULL;
  }
  bench_copy_limit_free(&r->limit);
}

static ferry_status enqueue_op(const run *r, const opset *o) {
  ferry_norm_options opt = FERRY_NORM_OPTIONS_INIT;
  opt.kind = r->kind;
  int layer = r->kind == FERRY_NORM_LAYER;
  if (!r->backward)
    return ferry_norm_forward(r->stream, &opt, &o->x, &o->g,
                              layer ? &o->b : NULL, &o->y, layer ? &o->m : NULL,
                              &o->r);
  return ferry_norm_backward(r->stream, &opt, &o->dy, &o->x, &o->g,
                             layer ? &o->m : NULL, &o->r, &o->dx, &o->dg,
                             layer ? &o->db : NULL);
}

static int op_rep(void *arg, int rep, double *seconds) {
  run *r = arg;
  const opset *o = &r->set[rep % r->limit.sets];
  double t0 = bench_now();
  ferry_status st = enqueue_op(r, o);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(r->stream);
  *seconds = bench_now() - t0;
  return st == FERRY_OK ? 0 : bench_fail("layernorm op", st);
}

static int copy_rep(void *arg, int rep, double *seconds) {
  run *r = arg;
  ferry_status st = bench_copy_limit_run(&r->limit, r->stream, rep, seconds);
  return st == FERRY_OK ? 0 : bench_fail("layernorm copy limit", st);
}

static double load(const void *p, int64_t i, size_t es) {
  if (es == 4)
    return ((const float *)p)[i];
  uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* The output's first row: finite, and for the forward within rounding of an
 * f64 reference (gamma and beta as fill_set wrote them). */
static int check(run *r) {
  const opset *o = &r->set[0];
  ferry_status st = enqueue_op(r, o);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(r->stream);
  if (st != FERRY_OK)
    return bench_fail("layernorm check", st);
  size_t es = esz(r->dt);
  int64_t n = r->sh.cols;
  void *x = malloc((size_t)n * es), *y = malloc((size_t)n * es);
  if (x == NULL || y == NULL) {
    free(x);
    free(y);
    return -1;
  }
  const ferry_tensor *out = r->backward ? &o->dx : &o->y;
  st = ferry_buffer_read_async(r->stream, o->buf, o->x.byte_offset, x,
                               (uint64_t)n * es);
  if (st == FERRY_OK)
    st = ferry_buffer_read_async(r->stream, o->buf, out->byte_offset, y,
                                 (uint64_t)n * es);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(r->stream);
  int layer = r->kind == FERRY_NORM_LAYER;
  double mean = 0, var = 0, num = 0, den = 0;
  for (int64_t j = 0; layer && j < n; j++)
    mean += load(x, j, es);
  mean /= (double)n;
  for (int64_t j = 0; j < n; j++)
    var += (load(x, j, es) - mean) * (load(x, j, es) - mean);
  var /= (double)n;
  double rs = 1.0 / sqrt(var + 1e-5);
  int bad = st != FERRY_OK;
  for (int64_t j = 0; j < n; j++) {
    double got = load(y, j, es);
    bad |= !isfinite(got);
    if (r->backward)
      continue;
    double g = 1.0f + 0.001f * (float)(j % 7), b = 0.01f * (float)(j % 5);
    double ref = (load(x, j, es) - mean) * rs * g + (layer ? b : 0.0);
    num += (got - ref) * (got - ref);
    den += ref * ref;
  }
  free(x);
  free(y);
  if (bad || (!r->backward && sqrt(num / den) > (es == 4 ? 1e-5 : 1e-2))) {
    fprintf(stderr,
            "ferry-bench: layernorm %lldx%lld: output check failed (%s, "
            "relative error %g)\n",
            (long long)r->sh.rows, (long long)n, bad ? "non-finite" : "wrong",
            den > 0 ? sqrt(num / den) : 0.0);
    return -1;
  }
  return 0;
}

static int measure(run *r, bench_results *out) {
  uint64_t bytes = counted(r);
  opset probe;
  uint64_t set_bytes = layout(r, &probe, NULL);
  bench_copy_limit_plan(&r->limit, r->cfg, bytes, MAX_SETS);
  int rc = 0;
  for (int i = 0; i < r->limit.sets && rc == 0; i++) {
    ferry_status st = ferry_buffer_create(r->target->ctx, FERRY_MEMORY_DEVICE,
                                          set_bytes, &r->set[i].buf);
    if (st == FERRY_OK)
      st = bench_copy_limit_make_set(&r->limit, r->target->ctx, r->stream, i);
    if (st != FERRY_OK) {
      rc = bench_fail("layernorm: buffers", st);
      break;
    }
    layout(r, &r->set[i], r->set[i].buf);
    rc = fill_set(r, &r->set[i], (uint64_t)i + 1);
  }
  /* Copy and op alternate, so that both see the same state of a shared
   * machine; each has its own median. */
  double t_copy = 0, t_op = 0;
  if (rc == 0)
    rc = bench_repeat_pair(r->cfg->warmup, r->cfg->reps, copy_rep, r, op_rep, r,
                           &t_copy, &t_op);
  if (rc == 0)
    rc = check(r);
  free_sets(r);
  if (rc != 0)
    return rc;
  char method[48];
  snprintf(method, sizeof method, "%s_%s_%s",
           r->kind == FERRY_NORM_LAYER ? "layer" : "rms",
           r->backward ? "bwd" : "fwd", ferry_dtype_name(r->dt));
  const bench_target *t = r->target;
  bench_result *res = bench_results_add(out, "layernorm", t->info.backend,
                                        t->info.device.name, method);
  if (res == NULL)
    return -1;
  bench_param_int(res, "rows", r->sh.rows);
  bench_param_int(res, "cols", r->sh.cols);
  bench_param_string(res, "dtype", ferry_dtype_name(r->dt));
  bench_copy_limit_report(&r->limit, res, r->cfg, t, bytes, t_op, t_copy);
  return 0;
}

int bench_layernorm(const bench_config *cfg, const bench_target *target,
                    bench_results *out) {
  run r;
  memset(&r, 0, sizeof r);
  r.cfg = cfg;
  r.target = target;
  ferry_status st = ferry_stream_create(target->ctx, &r.stream);
  if (st != FERRY_OK)
    return bench_fail("layernorm: ferry_stream_create", st);
  /* A backend without the op: skip (rows = 0 asks only for the slot). */
  ferry_tensor e;
  memset(&e, 0, sizeof e);
  e.host = &e;
  e.dtype = FERRY_DTYPE_F32;
  e.ndim = 2;
  e.shape[1] = 1;
  st = ferry_norm_forward(r.stream, NULL, &e, NULL, NULL, &e, NULL, NULL);
  if (st == FERRY_OK) {
    ferry_tensor v = e;
    v.ndim = 1;
    v.shape[0] = 0;
    st = ferry_norm_backward(r.stream, NULL, &e, &e, NULL, &v, &v, &e, NULL,
                             NULL);
  }
  if (st == FERRY_ERR_UNSUPPORTED) {
    printf("skip %s layernorm: %s\n", target->info.backend, ferry_last_error());
    ferry_stream_destroy(r.stream);
    return 0;
  }
  if (st != FERRY_OK) {
    ferry_stream_destroy(r.stream);
    return bench_fail("layernorm: probing the backend", st);
  }
  /* A host-emulated device (PoCL) runs the quick shapes unless --scale: its
   * kernels move well under 1 GB/s and the full set takes ten minutes. */
  int small = cfg->quick || (!cfg->scale && bench_host_emulated(target));
  if (small && !cfg->quick)
    printf("layernorm on %s: a host-emulated device, small shapes only "
           "(--scale for all)\n",
           target->info.backend);
  const shape *shapes = small ? quick_shapes : full_shapes;
  size_t nshapes = small ? sizeof quick_shapes / sizeof quick_shapes[0]
                         : sizeof full_shapes / sizeof full_shapes[0];
  const ferry_dtype dts[] = {FERRY_DTYPE_F32, FERRY_DTYPE_BF16};
  int failed = 0;
  for (size_t s = 0; s < nshapes; s++)
    for (int d = 0; d < 2; d++)
      for (int k = 0; k < 2; k++)
        for (int b = 0; b < 2; b++) {
          r.sh = shapes[s];
          r.dt = dts[d];
          r.kind = k ? FERRY_NORM_RMS : FERRY_NORM_LAYER;
          r.backward = b;
          failed |= measure(&r, out) != 0;
        }
  ferry_stream_destroy(r.stream);
  return failed ? -1 : 0;
}
