/* ferry-bench adan: the fused Adan step (f32) on 1M, 10M and 100M
 * parameters (100M under --scale; --quick and host-emulated devices: 1M),
 * as one tensor and as 200 tensors of mixed
 * sizes (a ResNet/ViT-like profile: a few large weight matrices, many
 * medium ones, biases and norm scales of a few hundred elements), without
 * and with global-norm clipping.
 *
 * GB/s counts 44 bytes per parameter (read p, g, m, v, n, g_prev; write p,
 * m, v, n, g_prev), 48 with clipping (the gradients are read once more).
 * The limit is ferry's own copy on the same backend and context
 * (ferry_buffer_copy_async between two device buffers; on cpu the pool's
 * parallel memcpy) moving the same number of bytes, half read and half
 * written, measured in the same run, its repetitions alternating with the
 * op's. Working sets are
 * rotated (as many optimizer sets as it takes to reach 4x the last-level
 * cache, at most 8); a size whose sets cannot reach that is reported but
 * not judged. Sizes that do not fit the device's memory are skipped. After
 * timing, every set's counter must equal the steps it took and its
 * parameters must be finite. */
#include "bench.h"
#include "copy_limit.h"
#include "timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS 8
#define MULTI_TENSORS 200

typedef struct opt_set {
  ferry_buffer *p, *g;
  ferry_tensor *P, *G;
  ferry_adan *opt;
  int steps;
} opt_set;

typedef struct run {
  const bench_config *cfg;
  const bench_target *target;
  ferry_stream *stream;
  uint64_t params;
  int tensors;
  int clip;
  uint64_t *len; /* tensors' lengths */
  opt_set set[MAX_SETS];
  bench_copy_limit limit; /* the rotation of sets and the copy */
} run;

/* The 200-tensor profile: relative sizes, scaled to `total` elements. */
static void profile(uint64_t total, int n, uint64_t *len) {
  double w[MULTI_TENSORS], sum = 0;
  for (int i = 0; i < n; i++) {
    /* Every third tensor a bias or norm scale; one in twenty a large
     * matrix; the rest medium, varied deterministically. */
    if (i % 3 == 2)
      w[i] = 0.0;
    else if (i % 20 == 0)
      w[i] = 40.0 + (double)(i % 7);
    else
      w[i] = 1.0 + (double)((i * 37) % 11);
    sum += w[i];
  }
  uint64_t small = 384, used = 0;
  for (int i = 0; i < n; i++)
    if (w[i] == 0.0)
      used += small;
  uint64_t rest = total > used ? total - used : (uint64_t)n;
  uint64_t acc = 0;
  int last = -1;
  for (int i = 0; i < n; i++) {
    len[i] = w[i] == 0.0 ? small : (uint64_t)((double)rest * w[i] / sum);
    if (len[i] == 0)
      len[i] = 1;
    acc += len[i];
    if (w[i] != 0.0)
      last = i;
  }
  if (last >= 0 && acc < total) /* rounding: the remainder to one matrix */
    len[last] += total - acc;
}

static void free_sets(run *r) {
  for (int i = 0; i < MAX_SETS; i++) {
    opt_set *s = &r->set[i];
    ferry_adan_destroy(s->opt);
    ferry_buffer_destroy(s->p);
    ferry_buffer_destroy(s->g);
    free(s->P);
    free(s->G);
    memset(s, 0, sizeof *s);
  }
  bench_copy_limit_free(&r->limit);
}

static int make_set(run *r, opt_set *s, int index) {
  ferry_context *ctx = r->target->ctx;
  uint64_t bytes = r->params * sizeof(float);
  s->P = calloc((size_t)r->tensors, sizeof *s->P);
  s->G = calloc((size_t)r->tensors, sizeof *s->G);
  if (s->P == NULL || s->G == NULL) {
    fprintf(stderr, "ferry-bench: adan: out of host memory\n");
    return -1;
  }
  ferry_status st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, bytes, &s->p);
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, bytes, &s->g);
  /* Parameters 0x3c3c3c3c (~0.0115), gradients 0x3a3a3a3a (~7e-4) or, for
   * the odd sets, 0xba.. (negative): finite, and differing between sets. */
  if (st == FERRY_OK)
    st = ferry_buffer_fill_async(r->stream, s->p, 0, 0x3c, bytes);
  if (st == FERRY_OK)
    st = ferry_buffer_fill_async(r->stream, s->g, 0, index & 1 ? 0xba : 0x3a,
                                 bytes);
  uint64_t at = 0;
  for (int i = 0; i < r->tensors && st == FERRY_OK; i++) {
    int64_t shape[1] = {(int64_t)r->len[i]};
    st = ferry_tensor_make(s->p, at * 4, FERRY_DTYPE_F32, 1, shape, &s->P[i]);
    if (st == FERRY_OK)
      st = ferry_tensor_make(s->g, at * 4, FERRY_DTYPE_F32, 1, shape, &s->G[i]);
    at += r->len[i];
  }
  ferry_adan_options o = FERRY_ADAN_OPTIONS_INIT;
  o.weight_decay = 0.02;
  o.max_grad_norm = r->clip ? 1.0 : 0.0;
  int group = 0;
  if (st == FERRY_OK)
    st = ferry_adan_create(ctx, &o, &s->opt);
  if (st == FERRY_OK)
    st = ferry_adan_add_group(s->opt, NULL, s->P, (size_t)r->tensors, &group);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(r->stream);
  return st == FERRY_OK ? 0 : bench_fail("adan: setting up a set", st);
}

static int copy_rep(void *arg, int rep, double *seconds) {
  run *r = arg;
  ferry_status st = bench_copy_limit_run(&r->limit, r->stream, rep, seconds);
  return st == FERRY_OK ? 0 : bench_fail("adan: copy limit", st);
}

static int op_rep(void *arg, int rep, double *seconds) {
  run *r = arg;
  opt_set *s = &r->set[rep % r->limit.sets];
  double t0 = bench_now();
  ferry_status st =
      ferry_adan_step(s->opt, s->P, s->G, (size_t)r->tensors, r->stream);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(r->stream);
  *seconds = bench_now() - t0;
  s->steps++;
  return st == FERRY_OK ? 0 : bench_fail("adan: ferry_adan_step", st);
}

/* Every set's counter equals its steps; its first and last parameters are
 * finite and have moved from the fill value. */
static int check(run *r) {
  for (int i = 0; i < r->limit.sets; i++) {
    opt_set *s = &r->set[i];
    uint64_t k = 0;
    ferry_status st = ferry_adan_get_step(s->opt, 0, &k);
    if (st != FERRY_OK)
      return bench_fail("adan: ferry_adan_get_step", st);
    float v[2] = {0, 0};
    st = ferry_buffer_read_async(r->stream, s->p, 0, &v[0], 4);
    if (st == FERRY_OK)
      st = ferry_buffer_read_async(r->stream, s->p, (r->params - 1) * 4, &v[1],
                                   4);
    if (st == FERRY_OK)
      st = ferry_stream_synchronize(r->stream);
    if (st != FERRY_OK)
      return bench_fail("adan: reading parameters back", st);
    uint32_t fill = 0x3c3c3c3cu;
    float f;
    memcpy(&f, &fill, 4);
    if (k != (uint64_t)s->steps ||
        (s->steps > 0 &&
         (!isfinite(v[0]) || !isfinite(v[1]) || v[0] == f || v[1] == f))) {
      fprintf(stderr,
              "ferry-bench: adan: set %d took %d steps but counts %llu; "
              "parameters %g, %g\n",
              i, s->steps, (unsigned long long)k, (double)v[0], (double)v[1]);
      return -1;
    }
  }
  return 0;
}

static int measure(run *r, bench_results *out) {
  const bench_target *t = r->target;
  uint64_t bpp = r->clip ? 48 : 44;
  uint64_t bytes = bpp * r->params;
  bench_copy_limit_plan(&r->limit, r->cfg, bytes, MAX_SETS);
  /* Device memory: params, grads and 4 state vectors per set, plus the
   * copy's two buffers; leave a quarter of the device free. */
  uint64_t need = (uint64_t)r->limit.sets * (24 * r->params + bytes);
  uint64_t have = t->info.device.total_memory;
  if (have > 0 && need > have / 4 * 3) {
    printf("skip %s adan %llu params: needs %.1f GB of %.1f GB\n",
           t->info.backend, (unsigned long long)r->params, need / 1e9,
           have / 1e9);
    return 0;
  }
  int rc = 0;
  for (int i = 0; i < r->limit.sets && rc == 0; i++) {
    rc = make_set(r, &r->set[i], i);
    ferry_status st = FERRY_OK;
    if (rc == 0)
      st = bench_copy_limit_make_set(&r->limit, t->ctx, r->stream, i);
    if (rc == 0 && st != FERRY_OK)
      rc = bench_fail("adan: copy buffers", st);
  }
  /* One untimed step per set: its first step builds the device chunk
   * table and touches the state, which later steps do not pay for. */
  for (int i = 0; i < r->limit.sets && rc == 0; i++)
    rc = op_rep(r, i, &(double){0});
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
  snprintf(method, sizeof method, "%s%s",
           r->tensors == 1 ? "one_tensor" : "multi_tensor",
           r->clip ? "_clip" : "");
  bench_result *res = bench_results_add(out, "adan", t->info.backend,
                                        t->info.device.name, method);
  if (res == NULL)
    return -1;
  bench_param_int(res, "params", (int64_t)r->params);
  bench_param_int(res, "tensors", r->tensors);
  bench_param_int(res, "bytes_per_param", (int64_t)bpp);
  bench_copy_limit_report(&r->limit, res, r->cfg, t, bytes, t_op, t_copy);
  snprintf(res->rate_key, sizeof res->rate_key, "params_per_s");
  res->rate = (double)r->params / t_op;
  return 0;
}

int bench_adan(const bench_config *cfg, const bench_target *target,
               bench_results *out) {
  /* A backend without the op: skip. */
  ferry_adan *probe = NULL;
  ferry_status st = ferry_adan_create(target->ctx, NULL, &probe);
  if (st == FERRY_ERR_UNSUPPORTED) {
    printf("skip %s adan: %s\n", target->info.backend, ferry_last_error());
    return 0;
  }
  if (st != FERRY_OK)
    return bench_fail("adan: ferry_adan_create", st);
  ferry_adan_destroy(probe);

  /* 100M parameters under --scale only (4.4 GB a step; minutes on this
   * 2-core machine); a host-emulated device (PoCL) runs the quick size. */
  static const uint64_t full[] = {UINT64_C(1) << 20, 10u << 20, 100u << 20};
  static const uint64_t quick[] = {UINT64_C(1) << 20};
  int small = cfg->quick || (!cfg->scale && bench_host_emulated(target));
  const uint64_t *sizes = small ? quick : full;
  int nsizes = small ? 1 : cfg->scale ? 3 : 2;
  if (small && !cfg->quick)
    printf("adan on %s: a host-emulated device, 1M parameters only (--scale "
           "for all)\n",
           target->info.backend);
  run r;
  memset(&r, 0, sizeof r);
  r.cfg = cfg;
  r.target = target;
  uint64_t lens[MULTI_TENSORS];
  if ((st = ferry_stream_create(target->ctx, &r.stream)) != FERRY_OK)
    return bench_fail("adan: ferry_stream_create", st);
  int rc = 0;
  for (int si = 0; si < nsizes && rc == 0; si++)
    for (int multi = 0; multi < 2 && rc == 0; multi++)
      for (int clip = 0; clip < 2 && rc == 0; clip++) {
        r.params = sizes[si];
        r.tensors = multi ? MULTI_TENSORS : 1;
        r.clip = clip;
        if (multi) {
          profile(r.params, MULTI_TENSORS, lens);
          r.len = lens;
        } else {
          lens[0] = r.params;
          r.len = lens;
        }
        rc = measure(&r, out);
      }
  ferry_stream_destroy(r.stream);
  return rc;
}
