/* Graphs: a CSR in two buffers of the graph's context (int64 row offsets,
 * int32 or int64 column ids), in pinned host memory placed next to the
 * device (the device reads it in place) or copied to device memory. Every
 * builder fills host arrays, then ferry__graph_end checks degrees and moves
 * them where they belong. */
#include "graph_internal.h"

#include <stdlib.h>
#include <string.h>

ferry_status ferry__graph_options(const char *func,
                                  const ferry_graph_options *in,
                                  ferry_graph_options *out) {
  ferry_graph_options d = FERRY_GRAPH_OPTIONS_INIT;
  if (in != NULL) {
    if (in->struct_size != sizeof(ferry_graph_options))
      return ferry__error(FERRY_ERR_STRUCT_SIZE,
                          "%s: opts->struct_size is %zu, expected %zu; use "
                          "FERRY_GRAPH_OPTIONS_INIT",
                          func, in->struct_size, sizeof(ferry_graph_options));
    d = *in;
  }
  if (d.placement != FERRY_MEMORY_PINNED_HOST &&
      d.placement != FERRY_MEMORY_DEVICE)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: opts->placement is %d; a graph lives in "
                        "FERRY_MEMORY_PINNED_HOST or FERRY_MEMORY_DEVICE",
                        func, (int)d.placement);
  if (d.id_dtype != FERRY_DTYPE_I32 && d.id_dtype != FERRY_DTYPE_I64)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: opts->id_dtype is %s; column ids are i32 or i64",
                        func, ferry_dtype_name(d.id_dtype));
  *out = d;
  return FERRY_OK;
}

static void graph_free(ferry_graph *g) {
  if (g == NULL)
    return;
  ferry_buffer_destroy(g->offsets);
  ferry_buffer_destroy(g->cols);
  free(g);
}

static void *buffer_host(ferry_buffer *b) {
  return b->host_ptr;
}

ferry_status ferry__graph_begin(ferry_context *ctx,
                                const ferry_graph_options *opts,
                                int64_t num_nodes, int64_t num_edges,
                                ferry__graph_build *b) {
  memset(b, 0, sizeof *b);
  if (opts->id_dtype == FERRY_DTYPE_I32 && num_nodes > INT32_MAX)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "graph: %lld nodes do not fit int32 ids; use "
                        "opts->id_dtype = FERRY_DTYPE_I64",
                        (long long)num_nodes);
  ferry_graph *g = calloc(1, sizeof *g);
  if (g == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "graph: out of host memory");
  g->ctx = ctx;
  g->num_nodes = num_nodes;
  g->num_edges = num_edges;
  g->id_dtype = opts->id_dtype;
  g->placement = opts->placement;
  uint64_t ob = (uint64_t)(num_nodes + 1) * 8u;
  uint64_t cb = (uint64_t)num_edges * ferry_dtype_size(opts->id_dtype);
  ferry_status st = ferry_buffer_create(ctx, opts->placement, ob, &g->offsets);
  if (st == FERRY_OK)
    st = ferry_buffer_create(ctx, opts->placement, cb, &g->cols);
  if (st != FERRY_OK) {
    graph_free(g);
    return st;
  }
  b->g = g;
  if (opts->placement == FERRY_MEMORY_PINNED_HOST) {
    b->offsets = buffer_host(g->offsets);
    b->cols = buffer_host(g->cols);
  } else {
    b->staging = malloc(ob + cb + 8);
    if (b->staging == NULL) {
      graph_free(g);
      b->g = NULL;
      return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                          "graph: out of host memory staging %llu bytes",
                          (unsigned long long)(ob + cb));
    }
    b->offsets = b->staging;
    b->cols = (char *)b->staging + ob;
  }
  return FERRY_OK;
}

void ferry__graph_abort(ferry__graph_build *b) {
  graph_free(b->g);
  free(b->staging);
  memset(b, 0, sizeof *b);
}

static ferry_status upload(ferry_graph *g, const ferry__graph_build *b) {
  ferry_stream *s = NULL;
  ferry_status st = ferry_stream_create(g->ctx, &s);
  if (st != FERRY_OK)
    return st;
  st = ferry_buffer_write_async(s, g->offsets, 0, b->offsets,
                                (uint64_t)(g->num_nodes + 1) * 8u);
  if (st == FERRY_OK && g->num_edges > 0)
    st = ferry_buffer_write_async(s, g->cols, 0, b->cols,
                                  (uint64_t)g->num_edges *
                                      ferry_dtype_size(g->id_dtype));
  ferry_status sync = ferry_stream_synchronize(s);
  if (st == FERRY_OK)
    st = sync;
  ferry_stream_destroy(s);
  return st;
}

ferry_status ferry__graph_end(ferry__graph_build *b, ferry_graph **out) {
  ferry_graph *g = b->g;
  int64_t maxd = 0;
  for (int64_t v = 0; v < g->num_nodes; v++) {
    int64_t d = b->offsets[v + 1] - b->offsets[v];
    if (d > maxd)
      maxd = d;
  }
  if (maxd >= ((int64_t)1 << 32)) {
    ferry__graph_abort(b);
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "graph: a node has %lld neighbors; the sampler "
                        "handles degrees below 2^32",
                        (long long)maxd);
  }
  g->max_degree = maxd;
  if (b->staging) {
    ferry_status st = upload(g, b);
    if (st != FERRY_OK) {
      ferry__graph_abort(b);
      return st;
    }
    free(b->staging);
  }
  memset(b, 0, sizeof *b);
  *out = g;
  return FERRY_OK;
}

ferry_status ferry_graph_create_csr(ferry_context *ctx,
                                    const ferry_graph_options *opts,
                                    int64_t num_nodes, const int64_t *offsets,
                                    const void *cols, ferry_dtype col_dtype,
                                    ferry_graph **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(offsets);
  FERRY_CHECK_NULL(out);
  ferry_graph_options o;
  ferry_status st = ferry__graph_options(__func__, opts, &o);
  if (st != FERRY_OK)
    return st;
  if (num_nodes < 0)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument 'num_nodes' is %lld (negative)", __func__,
                        (long long)num_nodes);
  if (col_dtype != FERRY_DTYPE_I32 && col_dtype != FERRY_DTYPE_I64)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument 'col_dtype' is %s; column ids are i32 "
                        "or i64",
                        __func__, ferry_dtype_name(col_dtype));
  if (offsets[0] != 0)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: offsets[0] is %lld, not 0", __func__,
                        (long long)offsets[0]);
  for (int64_t v = 0; v < num_nodes; v++)
    if (offsets[v + 1] < offsets[v])
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "%s: offsets are not monotone: offsets[%lld] = %lld "
                          "< offsets[%lld] = %lld",
                          __func__, (long long)(v + 1),
                          (long long)offsets[v + 1], (long long)v,
                          (long long)offsets[v]);
  int64_t ne = offsets[num_nodes];
  if (ne > 0 && cols == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER,
                        "%s: argument 'cols' is NULL with %lld edges", __func__,
                        (long long)ne);
  for (int64_t i = 0; i < ne; i++) {
    int64_t c = ferry__col_get(cols, col_dtype, i);
    if (c < 0 || c >= num_nodes)
      return ferry__error(
          FERRY_ERR_OUT_OF_RANGE, "%s: cols[%lld] = %lld is outside [0, %lld)",
          __func__, (long long)i, (long long)c, (long long)num_nodes);
  }
  o.id_dtype = col_dtype;
  if (o.wrap) {
    if (o.placement != FERRY_MEMORY_PINNED_HOST)
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "%s: opts->wrap needs FERRY_MEMORY_PINNED_HOST "
                          "placement",
                          __func__);
    ferry_graph *g = calloc(1, sizeof *g);
    if (g == NULL)
      return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                          __func__);
    g->ctx = ctx;
    g->num_nodes = num_nodes;
    g->num_edges = ne;
    g->id_dtype = col_dtype;
    g->placement = FERRY_MEMORY_PINNED_HOST;
    uint64_t cb = (uint64_t)ne * ferry_dtype_size(col_dtype);
    static int64_t no_edges; /* a valid address for an empty cols array */
    st = ferry_buffer_wrap_host(ctx, (void *)offsets,
                                (uint64_t)(num_nodes + 1) * 8u, &g->offsets);
    if (st == FERRY_OK)
      st = ferry_buffer_wrap_host(ctx, cols ? (void *)cols : &no_edges, cb,
                                  &g->cols);
    if (st != FERRY_OK) {
      graph_free(g);
      return st;
    }
    for (int64_t v = 0; v < num_nodes; v++)
      if (offsets[v + 1] - offsets[v] > g->max_degree)
        g->max_degree = offsets[v + 1] - offsets[v];
    if (g->max_degree >= ((int64_t)1 << 32)) {
      long long maxd = (long long)g->max_degree;
      graph_free(g);
      return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                          "%s: a node has %lld neighbors; the sampler handles "
                          "degrees below 2^32",
                          __func__, maxd);
    }
    *out = g;
    return FERRY_OK;
  }
  ferry__graph_build b;
  st = ferry__graph_begin(ctx, &o, num_nodes, ne, &b);
  if (st != FERRY_OK)
    return st;
  memcpy(b.offsets, offsets, (size_t)(num_nodes + 1) * 8u);
  if (ne > 0)
    memcpy(b.cols, cols, (size_t)ne * ferry_dtype_size(col_dtype));
  return ferry__graph_end(&b, out);
}

void ferry_graph_destroy(ferry_graph *graph) {
  graph_free(graph);
}

ferry_status ferry_graph_get_info(const ferry_graph *graph,
                                  ferry_graph_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(graph);
  FERRY_CHECK_NULL(out);
  ferry_status st = ferry__check_struct_size(
      __func__, out->struct_size, sizeof(ferry_graph_info),
      sizeof(ferry_graph_info), "FERRY_GRAPH_INFO_INIT");
  if (st != FERRY_OK)
    return st;
  ferry_graph_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.num_nodes = graph->num_nodes;
  info.num_edges = graph->num_edges;
  info.max_degree = graph->max_degree;
  info.id_dtype = graph->id_dtype;
  info.placement = graph->placement;
  int64_t shape = graph->num_nodes + 1;
  st = ferry_tensor_make(graph->offsets, 0, FERRY_DTYPE_I64, 1, &shape,
                         &info.offsets);
  shape = graph->num_edges;
  if (st == FERRY_OK)
    st = ferry_tensor_make(graph->cols, 0, graph->id_dtype, 1, &shape,
                           &info.cols);
  if (st != FERRY_OK)
    return st;
  *out = info;
  return FERRY_OK;
}
