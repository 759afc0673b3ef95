/* ferry_norm_forward / ferry_norm_backward: argument checks, then the
 * backend's norm_forward / norm_backward slot (include/ferry/norm.h).
 *
 * Everything a backend may assume is checked here, once, with a message
 * naming the argument: dtypes, shapes, contiguous rows, ranges inside their
 * buffers, one context for all operands. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool is_float_dtype(ferry_dtype d) {
  return d == FERRY_DTYPE_F32 || d == FERRY_DTYPE_F16 || d == FERRY_DTYPE_BF16;
}

/* Options with defaults for what struct_size does not cover. */
static ferry_status read_options(const char *func,
                                 const ferry_norm_options *opts,
                                 ferry_norm_options *out) {
  ferry_norm_options o = FERRY_NORM_OPTIONS_INIT;
  if (opts != NULL) {
    if (opts->struct_size <
            offsetof(ferry_norm_options, kind) + sizeof(opts->kind) ||
        opts->struct_size > ((size_t)1 << 16))
      return ferry__error(FERRY_ERR_STRUCT_SIZE,
                          "%s: opts->struct_size is %zu; use "
                          "FERRY_NORM_OPTIONS_INIT",
                          func, opts->struct_size);
    size_t n = opts->struct_size < sizeof o ? opts->struct_size : sizeof o;
    memcpy(&o, opts, n);
    o.struct_size = sizeof o;
  }
  if (o.kind != FERRY_NORM_LAYER && o.kind != FERRY_NORM_RMS)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: opts->kind is %d; use FERRY_NORM_LAYER or "
                        "FERRY_NORM_RMS",
                        func, (int)o.kind);
  if (!isfinite(o.eps) || o.eps < 0.0f)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: opts->eps is %g; it must be finite and >= 0", func,
                        (double)o.eps);
  if ((o.flags & ~(uint32_t)FERRY_NORM_ACCUMULATE) != 0)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: opts->flags has unknown bits 0x%x", func,
                        (unsigned)(o.flags & ~(uint32_t)FERRY_NORM_ACCUMULATE));
  *out = o;
  return FERRY_OK;
}

/* Resolve and re-prefix the message with the function's name. */
static ferry_status resolve(ferry_context *ctx, const char *func,
                            const char *arg, const ferry_tensor *t,
                            ferry_be_tensor *out) {
  ferry_status st = ferry__tensor_resolve(ctx, arg, t, out);
  if (st != FERRY_OK) {
    char m[1024];
    snprintf(m, sizeof m, "%s", ferry_last_error());
    return ferry__error(st, "%s: %s", func, m);
  }
  size_t esize = ferry_dtype_size(out->dtype);
  if (out->mem.offset % esize != 0)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument '%s': byte_offset %llu is not a multiple "
                        "of its element size %zu",
                        func, arg, (unsigned long long)out->mem.offset, esize);
  return FERRY_OK;
}

/* A rows x cols matrix with contiguous rows, of a float dtype. */
static ferry_status check_matrix(ferry_context *ctx, const char *func,
                                 const char *arg, const ferry_tensor *t,
                                 ferry_be_tensor *out) {
  if (t == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER, "%s: argument '%s' is NULL",
                        func, arg);
  ferry_status st = resolve(ctx, func, arg, t, out);
  if (st != FERRY_OK)
    return st;
  if (out->ndim != 2)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument '%s' has %d dimensions; it must be 2-D "
                        "(rows x cols)",
                        func, arg, out->ndim);
  if (!is_float_dtype(out->dtype))
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument '%s' is %s; it must be f32, f16 or bf16",
                        func, arg, ferry_dtype_name(out->dtype));
  /* Compact views get strides from the core; these hold for them. */
  if (out->shape[1] > 1 && out->strides[1] != 1)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument '%s' has strides[1] %lld; rows must be "
                        "contiguous (strides[1] == 1)",
                        func, arg, (long long)out->strides[1]);
  if (out->shape[0] > 1 && out->strides[0] < out->shape[1])
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument '%s' has strides[0] %lld < cols %lld; "
                        "rows would overlap",
                        func, arg, (long long)out->strides[0],
                        (long long)out->shape[1]);
  out->strides[1] = 1;
  if (out->shape[0] <= 1)
    out->strides[0] = out->shape[1]; /* unused; keep it sane */
  return FERRY_OK;
}

/* A contiguous 1-D vector of n elements of one of two dtypes, or NULL (every
 * vector is optional somewhere; a required one is checked for NULL first,
 * with its own message). */
static ferry_status check_vector(ferry_context *ctx, const char *func,
                                 const char *arg, const ferry_tensor *t,
                                 int64_t n, const char *what, ferry_dtype a,
                                 ferry_dtype b, ferry_be_tensor *out) {
  if (t == NULL)
    return FERRY_OK;
  ferry_status st = resolve(ctx, func, arg, t, out);
  if (st != FERRY_OK)
    return st;
  if (out->ndim != 1 || out->shape[0] != n)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "%s: argument '%s' must be 1-D of %lld elements (%s); "
                        "it is %d-D with shape[0] %lld",
                        func, arg, (long long)n, what, out->ndim,
                        (long long)(out->ndim > 0 ? out->shape[0] : 0));
  if (out->dtype != a && out->dtype != b)
    return ferry__error(
        FERRY_ERR_MISMATCH, "%s: argument '%s' is %s; it must be %s%s%s", func,
        arg, ferry_dtype_name(out->dtype), ferry_dtype_name(a),
        a != b ? " or " : "", a != b ? ferry_dtype_name(b) : "");
  if (n > 1 && out->strides[0] != 1)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument '%s' has strides[0] %lld; it must be "
                        "contiguous",
                        func, arg, (long long)out->strides[0]);
  out->strides[0] = 1;
  return FERRY_OK;
}

static ferry_status same_shape(const char *func, const char *arg,
                               const ferry_be_tensor *t, const char *ref_arg,
                               const ferry_be_tensor *ref) {
  if (t->shape[0] != ref->shape[0] || t->shape[1] != ref->shape[1])
    return ferry__error(FERRY_ERR_MISMATCH,
                        "%s: argument '%s' is %lld x %lld but '%s' is %lld x "
                        "%lld",
                        func, arg, (long long)t->shape[0],
                        (long long)t->shape[1], ref_arg,
                        (long long)ref->shape[0], (long long)ref->shape[1]);
  if (t->dtype != ref->dtype)
    return ferry__error(
        FERRY_ERR_MISMATCH, "%s: argument '%s' is %s but '%s' is %s", func, arg,
        ferry_dtype_name(t->dtype), ref_arg, ferry_dtype_name(ref->dtype));
  return FERRY_OK;
}

/* y, dy and dx: matrices of x's shape and dtype. */
static ferry_status check_like_x(ferry_context *ctx, const char *func,
                                 const char *arg, const ferry_tensor *t,
                                 const ferry_be_tensor *x,
                                 ferry_be_tensor *out) {
  ferry_status st = check_matrix(ctx, func, arg, t, out);
  if (st != FERRY_OK)
    return st;
  return same_shape(func, arg, out, "x", x);
}

static ferry_status check_stream(const char *func, ferry_stream *stream) {
  if (stream == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER, "%s: argument 'stream' is NULL",
                        func);
  return FERRY_OK;
}

static ferry_status rows_cols(const char *func, const ferry_be_tensor *x) {
  if (x->shape[0] > 0 && x->shape[1] == 0)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument 'x' has %lld rows of 0 columns; a row "
                        "needs at least one element to normalise",
                        func, (long long)x->shape[0]);
  return FERRY_OK;
}

/* The checks both entry points start with, in the same order: the stream,
 * then the options. */
static ferry_status check_call(const char *func, ferry_stream *stream,
                               const ferry_norm_options *opts,
                               ferry_norm_options *o) {
  ferry_status st = check_stream(func, stream);
  if (st != FERRY_OK)
    return st;
  return read_options(func, opts, o);
}

/* gamma, beta and their gradients are checked alike: one element per column
 * of x, f32 or x's dtype. */
static ferry_status check_cols_vector(ferry_context *ctx, const char *func,
                                      const char *arg, const ferry_tensor *t,
                                      const ferry_be_tensor *x,
                                      ferry_be_tensor *out) {
  return check_vector(ctx, func, arg, t, x->shape[1], "cols of x",
                      FERRY_DTYPE_F32, x->dtype, out);
}

/* mean and rstd are checked alike: one f32 per row of x. */
static ferry_status check_rows_vector(ferry_context *ctx, const char *func,
                                      const char *arg, const ferry_tensor *t,
                                      const ferry_be_tensor *x,
                                      ferry_be_tensor *out) {
  return check_vector(ctx, func, arg, t, x->shape[0], "rows of x",
                      FERRY_DTYPE_F32, FERRY_DTYPE_F32, out);
}

/* RMSNorm has no mean and no bias: the one message for an operand it would
 * ignore. */
static ferry_status given_to_rms(const char *func, const char *arg,
                                 const char *what) {
  return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                      "%s: argument '%s' is given but RMSNorm has no %s; pass "
                      "NULL",
                      func, arg, what);
}

/* A backend may leave either op out: say which, naming the plugin. */
static ferry_status check_slot(const char *func, const ferry_context *ctx,
                               bool present, const char *slot) {
  if (!present)
    return ferry__error(FERRY_ERR_UNSUPPORTED, "%s: backend '%s' lacks %s",
                        func, ctx->plugin->name, slot);
  return FERRY_OK;
}

ferry_status
ferry_norm_forward(ferry_stream *stream, const ferry_norm_options *opts,
                   const ferry_tensor *x, const ferry_tensor *gamma,
                   const ferry_tensor *beta, const ferry_tensor *y,
                   const ferry_tensor *mean, const ferry_tensor *rstd) {
  FERRY_ENTER();
  const char *func = __func__;
  ferry_norm_options o;
  ferry_be_tensor bx, by, bg, bb, bm, br;
  ferry_status st = check_call(func, stream, opts, &o);
  if (st != FERRY_OK)
    return st;
  ferry_context *ctx = stream->ctx;
  if ((st = check_matrix(ctx, func, "x", x, &bx)) != FERRY_OK ||
      (st = check_like_x(ctx, func, "y", y, &bx, &by)) != FERRY_OK ||
      (st = rows_cols(func, &bx)) != FERRY_OK ||
      (st = check_cols_vector(ctx, func, "gamma", gamma, &bx, &bg)) != FERRY_OK)
    return st;
  if (o.kind == FERRY_NORM_RMS && beta != NULL)
    return given_to_rms(func, "beta", "bias");
  if ((st = check_cols_vector(ctx, func, "beta", beta, &bx, &bb)) != FERRY_OK)
    return st;
  if (o.kind == FERRY_NORM_RMS && mean != NULL)
    return given_to_rms(func, "mean", "mean");
  if ((st = check_rows_vector(ctx, func, "mean", mean, &bx, &bm)) != FERRY_OK ||
      (st = check_rows_vector(ctx, func, "rstd", rstd, &bx, &br)) != FERRY_OK)
    return st;
  const ferry_backend *be = ctx->be;
  if ((st = check_slot(func, ctx, be->op_norm_forward != NULL,
                       "norm_forward")) != FERRY_OK)
    return st;
  if (bx.shape[0] == 0)
    return FERRY_OK;
  ferry_be_launch l;
  if ((st = ferry__stream_launch(stream, "norm_forward", &l)) != FERRY_OK)
    return st;
  return be->op_norm_forward(stream->impl, &l, (int)o.kind, o.eps, &bx,
                             gamma ? &bg : NULL, beta ? &bb : NULL, &by,
                             mean ? &bm : NULL, rstd ? &br : NULL);
}

ferry_status
ferry_norm_backward(ferry_stream *stream, const ferry_norm_options *opts,
                    const ferry_tensor *dy, const ferry_tensor *x,
                    const ferry_tensor *gamma, const ferry_tensor *mean,
                    const ferry_tensor *rstd, const ferry_tensor *dx,
                    const ferry_tensor *dgamma, const ferry_tensor *dbeta) {
  FERRY_ENTER();
  const char *func = __func__;
  ferry_norm_options o;
  ferry_be_tensor bdy, bx, bg, bm, br, bdx, bdg, bdb;
  ferry_status st = check_call(func, stream, opts, &o);
  if (st != FERRY_OK)
    return st;
  ferry_context *ctx = stream->ctx;
  if ((st = check_matrix(ctx, func, "x", x, &bx)) != FERRY_OK ||
      (st = check_like_x(ctx, func, "dy", dy, &bx, &bdy)) != FERRY_OK ||
      (st = check_like_x(ctx, func, "dx", dx, &bx, &bdx)) != FERRY_OK ||
      (st = rows_cols(func, &bx)) != FERRY_OK ||
      (st = check_cols_vector(ctx, func, "gamma", gamma, &bx, &bg)) != FERRY_OK)
    return st;
  if (o.kind == FERRY_NORM_LAYER) {
    if (mean == NULL)
      return ferry__error(FERRY_ERR_NULL_POINTER,
                          "%s: argument 'mean' is NULL; LayerNorm's backward "
                          "needs the forward's saved mean",
                          func);
    if ((st = check_rows_vector(ctx, func, "mean", mean, &bx, &bm)) != FERRY_OK)
      return st;
  } else {
    if (mean != NULL)
      return given_to_rms(func, "mean", "mean");
    if (dbeta != NULL)
      return given_to_rms(func, "dbeta", "bias");
  }
  if (rstd == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER,
                        "%s: argument 'rstd' is NULL; the backward needs the "
                        "forward's saved rstd",
                        func);
  if ((st = check_rows_vector(ctx, func, "rstd", rstd, &bx, &br)) != FERRY_OK ||
      (st = check_cols_vector(ctx, func, "dgamma", dgamma, &bx, &bdg)) !=
          FERRY_OK ||
      (st = check_cols_vector(ctx, func, "dbeta", dbeta, &bx, &bdb)) !=
          FERRY_OK)
    return st;
  const ferry_backend *be = ctx->be;
  if ((st = check_slot(func, ctx, be->op_norm_backward != NULL,
                       "norm_backward")) != FERRY_OK)
    return st;
  /* rows == 0 is a no-op (dgamma/dbeta are left as they are, as the
   * header says). */
  if (bx.shape[0] == 0)
    return FERRY_OK;
  ferry_be_launch l;
  if ((st = ferry__stream_launch(stream, "norm_backward", &l)) != FERRY_OK)
    return st;
  return be->op_norm_backward(stream->impl, &l, (int)o.kind, o.flags, &bdy, &bx,
                              gamma ? &bg : NULL,
                              o.kind == FERRY_NORM_LAYER ? &bm : NULL, &br,
                              &bdx, dgamma ? &bdg : NULL, dbeta ? &bdb : NULL);
}
