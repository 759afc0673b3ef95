/* Private declarations of graphs and sampling, shared by core/graph.c,
 * edgelist.c, rmat.c, linqs.c and sampler.c (and the minibatch loader,
 * which recycles minibatches). Nothing here is API. */
#ifndef FERRY_CORE_GRAPH_INTERNAL_H
#define FERRY_CORE_GRAPH_INTERNAL_H

#include "internal.h"

#include <ferry/graph.h>

struct ferry_graph {
  ferry_context *ctx;
  int64_t num_nodes;
  int64_t num_edges;
  int64_t max_degree;
  ferry_dtype id_dtype;
  ferry_memory_space placement;
  ferry_buffer *offsets; /* int64 [num_nodes + 1] */
  ferry_buffer *cols;    /* id_dtype [num_edges] */
};

/* The options a caller passed (NULL: defaults), checked: struct_size,
 * placement, id dtype. `func` names the public call in messages. */
ferry_status ferry__graph_options(const char *func,
                                  const ferry_graph_options *in,
                                  ferry_graph_options *out);

/* A graph under construction: host arrays the builder fills (the final
 * pinned buffers themselves, or staging memory for a device copy). */
typedef struct ferry__graph_build {
  ferry_graph *g;
  int64_t *offsets; /* num_nodes + 1 */
  void *cols;       /* id_dtype, num_edges */
  void *staging;    /* malloc'd staging for device placement, or NULL */
} ferry__graph_build;

ferry_status ferry__graph_begin(ferry_context *ctx,
                                const ferry_graph_options *opts,
                                int64_t num_nodes, int64_t num_edges,
                                ferry__graph_build *b);
/* Computes the maximum degree (checked < 2^32) and copies to the device
 * when placed there. On failure the graph is freed. */
ferry_status ferry__graph_end(ferry__graph_build *b, ferry_graph **out);
void ferry__graph_abort(ferry__graph_build *b);

static inline void ferry__col_set(void *cols, ferry_dtype dt, int64_t i,
                                  int64_t v) {
  if (dt == FERRY_DTYPE_I32)
    ((int32_t *)cols)[i] = (int32_t)v;
  else
    ((int64_t *)cols)[i] = v;
}
static inline int64_t ferry__col_get(const void *cols, ferry_dtype dt,
                                     int64_t i) {
  return dt == FERRY_DTYPE_I32 ? (int64_t)((const int32_t *)cols)[i]
                               : ((const int64_t *)cols)[i];
}

/* Builds a CSR from an edge list (int64 ids already checked to lie in
 * [0, num_nodes)) following opts' symmetrize / self-loop / duplicate
 * flags. `progress` may be NULL. */
ferry_status ferry__graph_from_edges(ferry_context *ctx,
                                     const ferry_graph_options *opts,
                                     const char *func, int64_t num_nodes,
                                     const int64_t *src, const int64_t *dst,
                                     int64_t num_edges,
                                     ferry_progress_fn progress, void *user,
                                     ferry_graph **out);

/* Hands a minibatch back to its sampler, whose next ferry_sample calls
 * reuse its buffers (ferry_minibatch_destroy frees them, which on some
 * backends waits for all queued work). Only for a minibatch that no queued
 * work reads any more, as the loader knows from its events. */
void ferry__minibatch_recycle(ferry_minibatch *mb);

#endif /* FERRY_CORE_GRAPH_INTERNAL_H */
