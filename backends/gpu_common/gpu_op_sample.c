/* The sampler's ops on CUDA and HIP (kernels/sample.cuh). The graph is read
 * where it lives: device memory, or pinned host memory through its mapped
 * device address (zero copy). Relabeling keeps first-occurrence order with a
 * device hash table (each key's smallest position by atomicMin) and a
 * prefix sum over first-occurrence flags; no host round trip. */
#include "gpu_internal.h"

#include <string.h>

#define SAMPLE_BLOCK 256
#define SAMPLE_SCAN_THREADS 1024 /* FERRY_SAMPLE_SCAN_THREADS */

static uint32_t grid_for(uint64_t items) {
  uint64_t g = (items + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
  return g == 0 ? 1 : (uint32_t)g;
}

static ferry_status too_big(const char *op, uint64_t items) {
  return ferry_gpu_host->set_error(FERRY_ERR_OUT_OF_RANGE,
                                   FERRY_GPU_NAME " %s: %llu items exceed one "
                                                  "launch's grid",
                                   op, (unsigned long long)items);
}

static ferry_status no_addr(const char *op) {
  return ferry_gpu_host->set_error(
      FERRY_ERR_INVALID_ARGUMENT,
      FERRY_GPU_NAME " %s: an operand has no device address", op);
}

ferry_status
ferry_gpu_op_sample_count(ferry_be_stream *s, const ferry_be_launch *l,
                          const ferry_be_csr *g, const ferry_be_sample_layer *p,
                          const ferry_be_memref *frontier, uint64_t n,
                          const ferry_be_memref *offsets_out) {
  (void)l;
  void *offs = ferry_gpu_memref_addr(&g->offsets);
  void *fr = ferry_gpu_memref_addr(frontier);
  void *out = ferry_gpu_memref_addr(offsets_out);
  if (offs == NULL || out == NULL || (n > 0 && fr == NULL))
    return no_addr("sample_count");
  if (n / SAMPLE_BLOCK >= UINT32_MAX)
    return too_big("sample_count", n);
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "sample_count", &scope);
  if (st != FERRY_OK)
    return st;
  int64_t nodes = g->num_nodes, fanout = p->fanout;
  int replace = p->replace;
  if (n > 0) {
    void *args[] = {&offs, &fr, &n, &nodes, &fanout, &replace, &out};
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_sample_count, grid_for(n),
                          SAMPLE_BLOCK, 0, args);
  }
  if (st == FERRY_OK) {
    void *args[] = {&out, &n};
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_sample_scan, 1,
                          SAMPLE_SCAN_THREADS, 0, args);
  }
  ferry_gpu_leave(&scope);
  return st;
}

ferry_status ferry_gpu_op_sample_pick(
    ferry_be_stream *s, const ferry_be_launch *l, const ferry_be_csr *g,
    const ferry_be_sample_layer *p, const ferry_be_memref *frontier, uint64_t n,
    const ferry_be_memref *offsets, const ferry_be_memref *out) {
  (void)l;
  if (n == 0)
    return FERRY_OK;
  void *offs = ferry_gpu_memref_addr(&g->offsets);
  void *cols = ferry_gpu_memref_addr(&g->cols);
  void *fr = ferry_gpu_memref_addr(frontier);
  void *eo = ferry_gpu_memref_addr(offsets);
  void *o = ferry_gpu_memref_addr(out);
  if (offs == NULL || cols == NULL || fr == NULL || eo == NULL || o == NULL)
    return no_addr("sample_pick");
  if (n / SAMPLE_BLOCK >= UINT32_MAX)
    return too_big("sample_pick", n);
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "sample_pick", &scope);
  if (st != FERRY_OK)
    return st;
  int64_t nodes = g->num_nodes, fanout = p->fanout;
  uint64_t seed = p->seed;
  uint32_t batch = p->batch_id, layer = p->layer;
  int replace = p->replace;
  void *args[] = {&offs, &cols, &fr,    &n,     &nodes,  &eo,
                  &o,    &seed, &batch, &layer, &fanout, &replace};
  st = ferry_gpu_launch(s,
                        g->col_dtype == FERRY_DTYPE_I32
                            ? FERRY_GPU_KERNEL_sample_pick_i32
                            : FERRY_GPU_KERNEL_sample_pick_i64,
                        grid_for(n), SAMPLE_BLOCK, 0, args);
  ferry_gpu_leave(&scope);
  return st;
}

ferry_status ferry_gpu_op_sample_relabel(
    ferry_be_stream *s, const ferry_be_launch *l,
    const ferry_be_memref *frontier, uint64_t n, const ferry_be_memref *nbrs,
    uint64_t e, int64_t num_nodes, const ferry_be_memref *scratch,
    uint64_t scratch_bytes, uint64_t table_slots,
    const ferry_be_memref *src_out, const ferry_be_memref *local_out,
    const ferry_be_memref *num_src_out) {
  (void)l;
  (void)num_nodes;
  void *fr = ferry_gpu_memref_addr(frontier);
  void *nb = ferry_gpu_memref_addr(nbrs);
  void *table = ferry_gpu_memref_addr(scratch);
  void *src = ferry_gpu_memref_addr(src_out);
  void *loc = ferry_gpu_memref_addr(local_out);
  void *ns = ferry_gpu_memref_addr(num_src_out);
  if (table == NULL || ns == NULL || (n > 0 && fr == NULL) ||
      (e > 0 && (nb == NULL || loc == NULL)) || (n + e > 0 && src == NULL))
    return no_addr("sample_relabel");
  if (table_slots == 0 || (table_slots & (table_slots - 1)) != 0 ||
      table_slots < 2 * (n + e) ||
      scratch_bytes < FERRY_BE_SAMPLE_SCRATCH_BYTES(table_slots, n + e))
    return ferry_gpu_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        FERRY_GPU_NAME " sample_relabel: table_slots %llu is not a power of "
                       "two >= 2 * (n + e) that the scratch holds",
        (unsigned long long)table_slots);
  uint64_t total = n + e;
  if (table_slots / SAMPLE_BLOCK >= UINT32_MAX)
    return too_big("sample_relabel", table_slots);
  /* The flags (then ids) follow the table in the scratch. */
  void *ids = (char *)table + table_slots * 16u;
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "sample_relabel", &scope);
  if (st != FERRY_OK)
    return st;
  {
    void *args[] = {&table, &table_slots};
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_sample_table_init,
                          grid_for(table_slots), SAMPLE_BLOCK, 0, args);
  }
  if (st == FERRY_OK && total > 0) {
    void *args[] = {&fr, &n, &nb, &e, &table, &table_slots};
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_sample_insert, grid_for(total),
                          SAMPLE_BLOCK, 0, args);
  }
  if (st == FERRY_OK && total > 0) {
    void *args[] = {&fr, &n, &nb, &e, &table, &table_slots, &ids};
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_sample_mark, grid_for(total),
                          SAMPLE_BLOCK, 0, args);
  }
  if (st == FERRY_OK) {
    void *args[] = {&ids, &total};
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_sample_scan, 1,
                          SAMPLE_SCAN_THREADS, 0, args);
  }
  if (st == FERRY_OK) {
    void *args[] = {&fr,          &n,   &nb,  &e,   &table,
                    &table_slots, &ids, &src, &loc, &ns};
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_sample_emit, grid_for(total),
                          SAMPLE_BLOCK, 0, args);
  }
  ferry_gpu_leave(&scope);
  return st;
}
