/* The Adan optimizer: options, groups and their state arenas, and the step,
 * which checks every tensor and hands one op to the backend. The backend
 * does all of the step's device work (reduction, scalars, update) in stream
 * order; this file never waits for the device during a step. */
#include "adan_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- options ------------------------------------------------------------- */

static ferry_status check_rate(const char *func, const char *name, double x) {
  if (!(x >= 0.0) || !isfinite(x))
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: %s is %g; it must be finite and >= 0", func, name,
                        x);
  return FERRY_OK;
}

static ferry_status check_options(const ferry_adan_options *o) {
  const char *f = "ferry_adan_create";
  ferry_status st = check_rate(f, "opts->lr", o->lr);
  if (st == FERRY_OK)
    st = check_rate(f, "opts->weight_decay", o->weight_decay);
  if (st == FERRY_OK)
    st = check_rate(f, "opts->max_grad_norm", o->max_grad_norm);
  if (st != FERRY_OK)
    return st;
  const double betas[3] = {o->beta1, o->beta2, o->beta3};
  for (int i = 0; i < 3; i++)
    if (!(betas[i] >= 0.0 && betas[i] < 1.0))
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "%s: opts->beta%d is %g; betas must lie in [0, 1)", f,
                          i + 1, betas[i]);
  if (!(o->eps > 0.0) || !isfinite(o->eps))
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: opts->eps is %g; it must be finite and > 0", f,
                        o->eps);
  return FERRY_OK;
}

/* The caller's group options (or the optimizer's defaults), checked. */
static ferry_status group_options(const ferry_adan *opt, const char *func,
                                  const ferry_adan_group_options *g, double *lr,
                                  double *wd) {
  *lr = opt->o.lr;
  *wd = opt->o.weight_decay;
  if (g == NULL)
    return FERRY_OK;
  if (g->struct_size <
          offsetof(ferry_adan_group_options, weight_decay) + sizeof(double) ||
      g->struct_size > sizeof(ferry_adan_group_options) * 4)
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "%s: g->struct_size is %zu; initialise the options "
                        "with FERRY_ADAN_GROUP_OPTIONS_INIT (size %zu)",
                        func, g->struct_size, sizeof(ferry_adan_group_options));
  ferry_status st = check_rate(func, "g->lr", g->lr);
  if (st == FERRY_OK)
    st = check_rate(func, "g->weight_decay", g->weight_decay);
  if (st != FERRY_OK)
    return st;
  *lr = g->lr;
  *wd = g->weight_decay;
  return FERRY_OK;
}

/* ---- creation ------------------------------------------------------------ */

ferry_status ferry_adan_create(ferry_context *ctx,
                               const ferry_adan_options *opts,
                               ferry_adan **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(out);
  ferry_adan_options o = FERRY_ADAN_OPTIONS_INIT;
  if (opts != NULL) {
    if (opts->struct_size < offsetof(ferry_adan_options, lr) + sizeof(double) ||
        opts->struct_size > sizeof(ferry_adan_options) * 4)
      return ferry__error(FERRY_ERR_STRUCT_SIZE,
                          "ferry_adan_create: opts->struct_size is %zu; "
                          "initialise the options with FERRY_ADAN_OPTIONS_INIT "
                          "(size %zu)",
                          opts->struct_size, sizeof(ferry_adan_options));
    size_t n = opts->struct_size < sizeof o ? opts->struct_size : sizeof o;
    memcpy(&o, opts, n);
    o.struct_size = sizeof o;
  }
  ferry_status st = check_options(&o);
  if (st != FERRY_OK)
    return st;
  if ((st = ferry__context_check(ctx)) != FERRY_OK)
    return st;
  if (ctx->be->op_adan_step == NULL)
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "ferry_adan_create: backend '%s' lacks the Adan step",
                        ctx->plugin->name);

  ferry_adan *opt = calloc(1, sizeof *opt);
  if (opt == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_adan_create: out of host memory");
  opt->ctx = ctx;
  opt->o = o;
  pthread_mutex_init(&opt->lock, NULL);
  st = ferry_stream_create(ctx, &opt->stream);
  if (st == FERRY_OK)
    st = ferry_event_create(ctx, &opt->done);
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE,
                             sizeof(ferry_be_adan_control), &opt->control);
  if (st == FERRY_OK)
    st = ferry_buffer_fill_async(opt->stream, opt->control, 0, 0,
                                 sizeof(ferry_be_adan_control));
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(opt->stream);
  if (st != FERRY_OK) {
    /* Keep the first failure's message across the clean-up. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ferry_last_error());
    ferry_adan_destroy(opt);
    return ferry__error(st, "ferry_adan_create: %s", msg);
  }
  *out = opt;
  return FERRY_OK;
}

void ferry_adan_destroy(ferry_adan *opt) {
  if (opt == NULL)
    return;
  if (!ferry__forked() && opt->stream != NULL) {
    /* Steps still queued use the state: let them finish first. */
    pthread_mutex_lock(&opt->lock);
    if (ferry__adan_wait_steps(opt) == FERRY_OK)
      (void)ferry_stream_synchronize(opt->stream);
    pthread_mutex_unlock(&opt->lock);
  }
  for (int i = 0; i < opt->group_count; i++)
    ferry_buffer_destroy(opt->groups[i].arena);
  ferry_buffer_destroy(opt->table);
  ferry_buffer_destroy(opt->control);
  ferry_event_destroy(opt->done);
  ferry_stream_destroy(opt->stream);
  free(opt->table_host);
  free(opt->tensors);
  pthread_mutex_destroy(&opt->lock);
  free(opt);
  ferry__clear_error();
}

ferry_status ferry__adan_wait_steps(ferry_adan *opt) {
  if (!opt->recorded)
    return FERRY_OK;
  return ferry_stream_wait_event(opt->stream, opt->done);
}

/* ---- groups -------------------------------------------------------------- */

static bool adan_dtype(ferry_dtype d) {
  return d == FERRY_DTYPE_F32 || d == FERRY_DTYPE_F16 || d == FERRY_DTYPE_BF16;
}

/* Elements of a view from its shape (ndim 0: one), or an error. */
static ferry_status view_length(const char *func, const char *arg,
                                const ferry_tensor *t, uint64_t *out) {
  if (t->ndim < 0 || t->ndim > FERRY_MAX_DIMS)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: %s: ndim %d is outside [0, %d]", func, arg,
                        t->ndim, FERRY_MAX_DIMS);
  uint64_t n = 1;
  for (int32_t i = 0; i < t->ndim; i++) {
    if (t->shape[i] < 0)
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "%s: %s: shape[%d] is %lld (negative)", func, arg, i,
                          (long long)t->shape[i]);
    if (__builtin_mul_overflow(n, (uint64_t)t->shape[i], &n))
      return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                          "%s: %s: the shape's product overflows", func, arg);
  }
  *out = n;
  return FERRY_OK;
}

ferry_status ferry_adan_add_group(ferry_adan *opt,
                                  const ferry_adan_group_options *g,
                                  const ferry_tensor *params, size_t count,
                                  int *out_group) {
  FERRY_ENTER();
  const char *f = "ferry_adan_add_group";
  FERRY_CHECK_NULL(opt);
  FERRY_CHECK_NULL(params);
  FERRY_CHECK_NULL(out_group);
  if (count == 0)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument 'count' is 0; a group needs at least one "
                        "tensor",
                        f);
  double lr, wd;
  ferry_status st = group_options(opt, f, g, &lr, &wd);
  if (st != FERRY_OK)
    return st;

  /* Lay the group's tensors out before touching the optimizer. */
  ferry__adan_tensor *lay = calloc(count, sizeof *lay);
  if (lay == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory", f);
  uint64_t offset = 0, length = 0;
  bool low_precision = false;
  for (size_t i = 0; i < count && st == FERRY_OK; i++) {
    char arg[48];
    snprintf(arg, sizeof arg, "params[%zu]", i);
    uint64_t n = 0;
    if (!adan_dtype(params[i].dtype))
      st = ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: %s has dtype %s; Adan takes f32, f16 or bf16", f,
                        arg, ferry_dtype_name(params[i].dtype));
    else if ((st = view_length(f, arg, &params[i], &n)) != FERRY_OK)
      break;
    else if (n == 0)
      st = ferry__error(FERRY_ERR_INVALID_ARGUMENT, "%s: %s is empty", f, arg);
    else if (n > (UINT64_C(1) << 48))
      st = ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "%s: %s has %llu elements; at most 2^48", f, arg,
                        (unsigned long long)n);
    if (st != FERRY_OK)
      break;
    lay[i].length = n;
    lay[i].offset = offset;
    lay[i].dtype = params[i].dtype;
    low_precision |= params[i].dtype != FERRY_DTYPE_F32;
    length += n;
    offset += (n + FERRY_ADAN_ALIGN - 1) / FERRY_ADAN_ALIGN * FERRY_ADAN_ALIGN;
  }
  if (st != FERRY_OK) {
    free(lay);
    return st;
  }

  pthread_mutex_lock(&opt->lock);
  ferry_buffer *arena = NULL;
  ferry__adan_tensor *all = NULL;
  int vectors = low_precision && opt->o.master_weights
                    ? FERRY_ADAN_VECTORS_MASTER
                    : FERRY_ADAN_VECTORS;
  /* stride * 4 = FERRY_ADAN_STAGGER (mod 4096): at most 1024 elements of
   * padding per vector. */
  const uint64_t page = 4096 / sizeof(float);
  const uint64_t stagger = FERRY_ADAN_STAGGER / sizeof(float);
  uint64_t stride = offset <= stagger
                        ? stagger
                        : (offset - stagger + page - 1) / page * page + stagger;
  uint64_t bytes = 0;
  if (opt->group_count == FERRY_ADAN_MAX_GROUPS)
    st = ferry__error(FERRY_ERR_OUT_OF_RANGE,
                      "%s: the optimizer already has %d groups, the most it "
                      "can hold",
                      f, FERRY_ADAN_MAX_GROUPS);
  else if (__builtin_mul_overflow(stride, (uint64_t)vectors * sizeof(float),
                                  &bytes) ||
           __builtin_add_overflow(bytes, (uint64_t)FERRY_ADAN_SKEW, &bytes))
    st = ferry__error(FERRY_ERR_OUT_OF_RANGE, "%s: the state's size overflows",
                      f);
  if (st == FERRY_OK) {
    all = realloc(opt->tensors, (opt->tensor_count + count) * sizeof *all);
    if (all == NULL)
      st = ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory", f);
    else
      opt->tensors = all;
  }
  if (st == FERRY_OK)
    st = ferry_buffer_create(opt->ctx, FERRY_MEMORY_DEVICE, bytes, &arena);
  if (st == FERRY_OK)
    st = ferry_buffer_fill_async(opt->stream, arena, 0, 0, bytes);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(opt->stream);
  if (st != FERRY_OK) {
    ferry_buffer_destroy(arena);
    pthread_mutex_unlock(&opt->lock);
    free(lay);
    return st;
  }
  int gi = opt->group_count++;
  ferry__adan_group *grp = &opt->groups[gi];
  grp->lr = lr;
  grp->weight_decay = wd;
  grp->arena = arena;
  grp->length = length;
  grp->stride = stride;
  grp->vectors = vectors;
  grp->first = opt->tensor_count;
  grp->count = count;
  for (size_t i = 0; i < count; i++) {
    lay[i].group = gi;
    all[opt->tensor_count + i] = lay[i];
  }
  opt->tensor_count += count;
  pthread_mutex_unlock(&opt->lock);
  free(lay);
  *out_group = gi;
  return FERRY_OK;
}

ferry_status ferry_adan_set_group(ferry_adan *opt, int group,
                                  const ferry_adan_group_options *g) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(opt);
  FERRY_CHECK_NULL(g);
  double lr, wd;
  ferry_status st = group_options(opt, "ferry_adan_set_group", g, &lr, &wd);
  if (st != FERRY_OK)
    return st;
  pthread_mutex_lock(&opt->lock);
  if (group < 0 || group >= opt->group_count) {
    int n = opt->group_count;
    pthread_mutex_unlock(&opt->lock);
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_adan_set_group: argument 'group' is %d; the "
                        "optimizer has %d groups",
                        group, n);
  }
  opt->groups[group].lr = lr;
  opt->groups[group].weight_decay = wd;
  pthread_mutex_unlock(&opt->lock);
  return FERRY_OK;
}

/* ---- the step ------------------------------------------------------------ */

/* A step operand: resolved, compact, of the registered length. */
static ferry_status step_operand(ferry_adan *opt, const char *arg,
                                 const ferry_tensor *t, uint64_t length,
                                 ferry_dtype want, ferry_be_tensor *out) {
  const char *f = "ferry_adan_step";
  ferry_status st = ferry__tensor_resolve(opt->ctx, arg, t, out);
  if (st != FERRY_OK)
    return st;
  if (!adan_dtype(t->dtype) ||
      (want != FERRY_DTYPE_INVALID && t->dtype != want &&
       t->dtype != FERRY_DTYPE_F32))
    return ferry__error(
        FERRY_ERR_MISMATCH, "%s: %s has dtype %s; expected %s%s", f, arg,
        ferry_dtype_name(t->dtype),
        ferry_dtype_name(want == FERRY_DTYPE_INVALID ? FERRY_DTYPE_F32 : want),
        want != FERRY_DTYPE_INVALID && want != FERRY_DTYPE_F32 ? " or f32"
                                                               : "");
  uint64_t n = 1;
  int64_t expect = 1;
  bool compact = true;
  for (int32_t i = out->ndim - 1; i >= 0; i--) {
    n *= (uint64_t)out->shape[i];
    if (out->shape[i] > 1 && out->strides[i] != expect)
      compact = false;
    expect *= out->shape[i] ? out->shape[i] : 1;
  }
  if (n != length)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "%s: %s has %llu elements; the optimizer's tensor has "
                        "%llu",
                        f, arg, (unsigned long long)n,
                        (unsigned long long)length);
  if (!compact)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: %s is strided; Adan needs compact (row-major, "
                        "gap-free) views",
                        f, arg);
  return FERRY_OK;
}

static uint64_t memref_address(const ferry_be_memref *m) {
  return (uint64_t)(uintptr_t)m->ptr + m->offset;
}

/* Cut the tensors into chunks; returns the count, or 0 on no memory. */
static uint64_t build_chunks(const ferry_be_adan_tensor *t, size_t n,
                             ferry_be_adan_chunk **out) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += (t[i].length + FERRY_BE_ADAN_CHUNK - 1) / FERRY_BE_ADAN_CHUNK;
  ferry_be_adan_chunk *c = calloc(total, sizeof *c);
  if (c == NULL)
    return 0;
  uint64_t k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t pe = ferry_dtype_size(t[i].param_dtype);
    size_t ge = ferry_dtype_size(t[i].grad_dtype);
    for (uint64_t at = 0; at < t[i].length; at += FERRY_BE_ADAN_CHUNK, k++) {
      uint64_t left = t[i].length - at;
      c[k].param = memref_address(&t[i].param) + at * pe;
      c[k].grad = memref_address(&t[i].grad) + at * ge;
      c[k].state = memref_address(&t[i].state) + at * sizeof(float);
      c[k].stride = t[i].stride;
      c[k].count =
          (uint32_t)(left < FERRY_BE_ADAN_CHUNK ? left : FERRY_BE_ADAN_CHUNK);
      c[k].group = (uint16_t)t[i].group;
      c[k].param_dtype = (uint8_t)t[i].param_dtype;
      c[k].grad_dtype = (uint8_t)t[i].grad_dtype;
    }
  }
  *out = c;
  return total;
}

/* Keep the device chunk table in step with `chunks` (taken). A new table
 * goes in a new buffer: the old one may still be read by queued steps, and
 * destroying it waits for them. */
static ferry_status update_table(ferry_adan *opt, ferry_be_adan_chunk *chunks,
                                 uint64_t count) {
  size_t bytes = (size_t)count * sizeof *chunks;
  if (opt->table != NULL && count == opt->table_count &&
      memcmp(chunks, opt->table_host, bytes) == 0) {
    free(chunks);
    return FERRY_OK;
  }
  ferry_buffer *buf = NULL;
  ferry_status st =
      ferry_buffer_create(opt->ctx, FERRY_MEMORY_DEVICE, bytes, &buf);
  if (st == FERRY_OK)
    st = ferry_buffer_write_async(opt->stream, buf, 0, chunks, bytes);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(opt->stream);
  if (st != FERRY_OK) {
    ferry_buffer_destroy(buf);
    free(chunks);
    return st;
  }
  ferry_buffer_destroy(opt->table);
  free(opt->table_host);
  opt->table = buf;
  opt->table_host = chunks;
  opt->table_count = count;
  return FERRY_OK;
}

static ferry_status step_locked(ferry_adan *opt, const ferry_tensor *params,
                                const ferry_tensor *grads, ferry_stream *stream,
                                ferry_be_adan_tensor *bt) {
  const char *f = "ferry_adan_step";
  ferry_context *ctx = opt->ctx;
  ferry_status st = FERRY_OK;
  for (size_t i = 0; i < opt->tensor_count; i++) {
    const ferry__adan_tensor *t = &opt->tensors[i];
    const ferry__adan_group *g = &opt->groups[t->group];
    char arg[48];
    ferry_be_tensor p, gr;
    snprintf(arg, sizeof arg, "params[%zu]", i);
    if (params[i].dtype != t->dtype)
      return ferry__error(
          FERRY_ERR_MISMATCH, "%s: %s has dtype %s; it was added as %s", f, arg,
          ferry_dtype_name(params[i].dtype), ferry_dtype_name(t->dtype));
    if ((st = step_operand(opt, arg, &params[i], t->length, FERRY_DTYPE_INVALID,
                           &p)) != FERRY_OK)
      return st;
    snprintf(arg, sizeof arg, "grads[%zu]", i);
    if ((st = step_operand(opt, arg, &grads[i], t->length, t->dtype, &gr)) !=
        FERRY_OK)
      return st;
    bt[i].param = p.mem;
    bt[i].grad = gr.mem;
    st = ferry__buffer_memref(ctx, "state", g->arena,
                              FERRY_ADAN_SKEW + t->offset * sizeof(float),
                              t->length * sizeof(float), &bt[i].state);
    if (st != FERRY_OK)
      return st;
    bt[i].stride = g->stride;
    bt[i].length = t->length;
    bt[i].group = (uint32_t)t->group;
    bt[i].param_dtype = params[i].dtype;
    bt[i].grad_dtype = grads[i].dtype;
  }

  ferry_be_adan_chunk *chunks = NULL;
  uint64_t nchunks = build_chunks(bt, opt->tensor_count, &chunks);
  if (nchunks == 0)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory", f);
  if ((st = update_table(opt, chunks, nchunks)) != FERRY_OK)
    return st;

  ferry_be_adan_step step;
  memset(&step, 0, sizeof step);
  step.struct_size = sizeof step;
  ferry_be_adan_hyper *h = &step.hyper;
  h->beta1 = opt->o.beta1;
  h->beta2 = opt->o.beta2;
  h->beta3 = opt->o.beta3;
  h->eps = opt->o.eps;
  h->max_grad_norm = opt->o.max_grad_norm;
  h->flags = (opt->o.no_prox ? FERRY_BE_ADAN_NO_PROX : 0u) |
             (opt->o.max_grad_norm > 0 ? FERRY_BE_ADAN_CLIP : 0u) |
             (opt->o.check_finite ? FERRY_BE_ADAN_CHECK_FINITE : 0u) |
             (opt->o.master_weights ? FERRY_BE_ADAN_MASTER : 0u);
  h->group_count = (uint32_t)opt->group_count;
  for (int i = 0; i < opt->group_count; i++) {
    h->lr[i] = opt->groups[i].lr;
    h->weight_decay[i] = opt->groups[i].weight_decay;
  }
  st = ferry__buffer_memref(ctx, "control", opt->control, 0,
                            sizeof(ferry_be_adan_control), &step.control);
  if (st == FERRY_OK)
    st = ferry__buffer_memref(ctx, "chunks", opt->table, 0,
                              nchunks * sizeof(ferry_be_adan_chunk),
                              &step.chunks);
  if (st != FERRY_OK)
    return st;
  step.tensors = bt;
  step.tensor_count = opt->tensor_count;
  step.chunk_count = nchunks;

  ferry_be_launch l;
  if ((st = ferry__stream_launch(stream, "adan_step", &l)) != FERRY_OK)
    return st;
  ferry__clear_error();
  st = ctx->be->op_adan_step(stream->impl, &l, &step);
  if (st != FERRY_OK) {
    if (ferry_last_error()[0] == '\0')
      ferry__error(st, "%s: backend '%s' failed to enqueue the step", f,
                   ctx->plugin->name);
    return st;
  }
  /* Later counter and state reads wait for this step through `done`. */
  if ((st = ferry_event_record(opt->done, stream)) != FERRY_OK)
    return st;
  opt->recorded = true;
  return FERRY_OK;
}

ferry_status ferry_adan_step(ferry_adan *opt, const ferry_tensor *params,
                             const ferry_tensor *grads, size_t count,
                             ferry_stream *stream) {
  FERRY_ENTER();
  const char *f = "ferry_adan_step";
  FERRY_CHECK_NULL(opt);
  FERRY_CHECK_NULL(params);
  FERRY_CHECK_NULL(grads);
  FERRY_CHECK_NULL(stream);
  if (stream->ctx != opt->ctx)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "%s: argument 'stream' belongs to another context", f);
  pthread_mutex_lock(&opt->lock);
  ferry_status st = FERRY_OK;
  if (opt->tensor_count == 0)
    st = ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                      "%s: the optimizer has no tensors; add a group first", f);
  else if (count != opt->tensor_count)
    st = ferry__error(FERRY_ERR_MISMATCH,
                      "%s: argument 'count' is %zu; the optimizer's groups "
                      "hold %zu tensors",
                      f, count, opt->tensor_count);
  ferry_be_adan_tensor *bt = NULL;
  if (st == FERRY_OK) {
    bt = calloc(count, sizeof *bt);
    if (bt == NULL)
      st = ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory", f);
  }
  if (st == FERRY_OK)
    st = step_locked(opt, params, grads, stream, bt);
  pthread_mutex_unlock(&opt->lock);
  free(bt);
  return st;
}
