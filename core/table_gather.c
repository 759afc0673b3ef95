/* ferry_gather: argument checks, then the backend's gather op, or the core's
 * STAGED path (table_staged.c) on a GPU. */
#include "table_internal.h"

#include <stdio.h>
#include <string.h>

static ferry_status check_gather_options(const ferry_gather_options *opts,
                                         ferry_gather_options *o) {
  ferry_gather_options d = FERRY_GATHER_OPTIONS_INIT;
  *o = d;
  if (opts == NULL)
    return FERRY_OK;
  if (opts->struct_size <
          offsetof(ferry_gather_options, method) + sizeof opts->method ||
      opts->struct_size > sizeof(ferry_gather_options))
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "ferry_gather: opts->struct_size is %zu; use "
                        "FERRY_GATHER_OPTIONS_INIT",
                        opts->struct_size);
  memcpy(o, opts, opts->struct_size);
  o->struct_size = sizeof *o;
  if ((int)o->method < FERRY_GATHER_METHOD_DEFAULT ||
      (int)o->method > FERRY_GATHER_METHOD_NAIVE)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "ferry_gather: opts->method is %d, not a "
                        "ferry_gather_method",
                        (int)o->method);
  return FERRY_OK;
}

/* Memory a device kernel can read: a ferry buffer in device or pinned host
 * memory (a plain host pointer has no cl_mem or device address, and is
 * HOST space), or any host memory on the cpu backend. An empty device
 * buffer has no backend handle (the cuda and hip plugins allocate nothing
 * for it) and is still device memory. */
static bool device_visible(const ferry_context *ctx, const ferry_be_tensor *t) {
  if (ctx->be->flags & FERRY_BACKEND_FLAG_HOST_UNIFIED)
    return true;
  return t->mem.space != FERRY_MEMORY_HOST;
}

ferry_status ferry_gather(ferry_table *table, const ferry_tensor *ids,
                          uint64_t n, const ferry_tensor *out,
                          ferry_stream *stream,
                          const ferry_gather_options *opts) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(table);
  FERRY_CHECK_NULL(ids);
  FERRY_CHECK_NULL(out);
  FERRY_CHECK_NULL(stream);
  ferry_gather_options o;
  ferry_status st = check_gather_options(opts, &o);
  if (st != FERRY_OK)
    return st;
  ferry_context *ctx = table->ctx;
  if (stream->ctx != ctx)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "ferry_gather: 'stream' and 'table' belong to "
                        "different contexts");
  ferry_be_tensor rids, rout;
  st = ferry__tensor_resolve(ctx, "ids", ids, &rids);
  if (st == FERRY_OK)
    st = ferry__tensor_resolve(ctx, "out", out, &rout);
  if (st != FERRY_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ferry_last_error());
    return ferry__error(st, "ferry_gather: %s", msg);
  }
  if (rids.dtype != FERRY_DTYPE_I32 && rids.dtype != FERRY_DTYPE_I64)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "ferry_gather: argument 'ids' is %s; ids are i32 or "
                        "i64",
                        ferry_dtype_name(rids.dtype));
  if (rids.ndim != 1 || (rids.shape[0] > 1 && rids.strides[0] != 1))
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "ferry_gather: argument 'ids' must be 1-D and "
                        "contiguous (ndim %d)",
                        rids.ndim);
  if ((uint64_t)rids.shape[0] < n)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_gather: argument 'n' is %llu but 'ids' holds "
                        "%lld",
                        (unsigned long long)n, (long long)rids.shape[0]);
  bool convert =
      rout.dtype == FERRY_DTYPE_F32 &&
      (table->dtype == FERRY_DTYPE_F16 || table->dtype == FERRY_DTYPE_BF16);
  if (rout.dtype != table->dtype && !convert)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "ferry_gather: argument 'out' is %s but the table is "
                        "%s (out is the table's dtype, or f32 for f16/bf16)",
                        ferry_dtype_name(rout.dtype),
                        ferry_dtype_name(table->dtype));
  if (rout.ndim != 2 || (uint64_t)rout.shape[1] != table->cols)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "ferry_gather: argument 'out' must be 2-D with %llu "
                        "columns (ndim %d, shape[1] %lld)",
                        (unsigned long long)table->cols, rout.ndim,
                        rout.ndim >= 2 ? (long long)rout.shape[1] : -1LL);
  if ((uint64_t)rout.shape[0] < n)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_gather: argument 'n' is %llu but 'out' has %lld "
                        "rows",
                        (unsigned long long)n, (long long)rout.shape[0]);
  if ((rout.shape[0] > 1 && (uint64_t)rout.strides[0] != table->cols) ||
      (table->cols > 1 && rout.strides[1] != 1))
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "ferry_gather: argument 'out' must be compact "
                        "row-major");
  bool staged = table->path == FERRY_GATHER_PATH_STAGED;
  if (!staged) {
    if (!device_visible(ctx, &rids))
      return ferry__error(FERRY_ERR_MISMATCH,
                          "ferry_gather: argument 'ids' is host memory the "
                          "%s device cannot read; use a device or pinned "
                          "host buffer",
                          ctx->plugin->name);
    if (!device_visible(ctx, &rout))
      return ferry__error(FERRY_ERR_MISMATCH,
                          "ferry_gather: argument 'out' is host memory the "
                          "%s device cannot write; use a device or pinned "
                          "host buffer",
                          ctx->plugin->name);
    if (ctx->be->op_gather == NULL)
      return ferry__error(FERRY_ERR_UNSUPPORTED,
                          "ferry_gather: backend '%s' lacks gather",
                          ctx->plugin->name);
  }
  st = ferry__context_check(ctx);
  if (st != FERRY_OK || n == 0)
    return st;
  ferry__staged_lane *flags = NULL;
  if (!staged && (strcmp(ctx->plugin->name, "cuda") == 0 ||
                  strcmp(ctx->plugin->name, "hip") == 0)) {
    /* Their kernels flag bad ids in device memory (see backend.h). */
    st = ferry__table_lane(table, stream, false, true, &flags);
    if (st != FERRY_OK)
      return st;
  }
  ferry_be_launch l;
  st = ferry__stream_launch(stream, "gather", &l);
  if (st != FERRY_OK)
    return st;
  if (staged)
    return ferry__table_gather_staged(table, stream, &l, ids, &rids, n, out,
                                      &rout);
  ferry_be_gather g;
  memset(&g, 0, sizeof g);
  g.struct_size = sizeof g;
  g.num_pieces = table->num_pieces;
  g.pieces = table->refs;
  g.piece_rows = table->piece_rows;
  g.rows = table->rows;
  g.cols = table->cols;
  g.dtype = table->dtype;
  g.ids = &rids;
  g.n = n;
  g.out = &rout;
  g.method = o.method == FERRY_GATHER_METHOD_DEFAULT
                 ? FERRY_GATHER_METHOD_ALIGNED
                 : (int)o.method;
  g.max_blocks = o.max_blocks;
  if (flags != NULL) {
    g.flag_device = &flags->flag_device_ref;
    g.flag_host = &flags->flag_host_ref;
  }
  ferry__clear_error();
  st = ctx->be->op_gather(stream->impl, &l, &g);
  if (st != FERRY_OK && ferry_last_error()[0] == '\0')
    ferry__error(st, "ferry_gather: backend '%s' failed to enqueue",
                 ctx->plugin->name);
  return st;
}
