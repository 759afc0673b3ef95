/* op_gather on CUDA and HIP (kernels/gather.cuh): the table's pieces are
 * registered host memory read through its device address (ZEROCOPY) or
 * device memory (DEVICE); one launch per piece (one in practice: CUDA and
 * HIP address a whole registration). Bad ids: the core hands each (table,
 * stream) an 8-byte device flag and an 8-byte pinned host slot; the flag is
 * reset, min'd by the kernel, copied to the slot, and a host function in
 * stream order turns a position into the deferred FERRY_ERR_OUT_OF_RANGE. */
#include "gpu_internal.h"

#include <stdio.h>
#include <string.h>

#define BLOCK 256u
#define MAX_GRID (1u << 20)

/* u.copy carries the check: dst = the host slot, size = the table's rows. */
static ferry_status check_flag(ferry_gpu_closure *c, char *msg, size_t n) {
  uint64_t bad = *(volatile uint64_t *)c->u.copy.dst;
  if (bad == UINT64_MAX)
    return FERRY_OK;
  snprintf(msg, n,
           "gather: ids[%llu] is outside the table's %llu rows (its out row "
           "was zero-filled)",
           (unsigned long long)bad, (unsigned long long)c->u.copy.size);
  return FERRY_ERR_OUT_OF_RANGE;
}

/* Lanes per row: enough 16 B lanes to cover the row from the 128 B boundary
 * below it in one pass, at least one 128 B line (8 lanes); 0 (the whole
 * warp or wavefront) past 32 lanes. */
static int lanes_for(uint64_t row_bytes) {
  uint64_t need = (row_bytes + 112u + 15u) / 16u;
  int w = 8;
  while ((uint64_t)w < need && w < 32)
    w *= 2;
  return (uint64_t)w < need ? 0 : w;
}

ferry_status ferry_gpu_op_gather(ferry_be_stream *s, const ferry_be_launch *l,
                                 const ferry_be_gather *g) {
  if (g->n == 0)
    return FERRY_OK;
  if (g->flag_device == NULL || g->flag_host == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_INTERNAL, FERRY_GPU_NAME
                                     " gather: no bad-id flag given");
  const void *ids = ferry_gpu_memref_addr(&g->ids->mem);
  unsigned char *out = ferry_gpu_memref_addr(&g->out->mem);
  unsigned long long *flag = ferry_gpu_memref_addr(g->flag_device);
  void *slot_dev = ferry_gpu_memref_addr(g->flag_host);
  if (ids == NULL || out == NULL || flag == NULL || slot_dev == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_INVALID_ARGUMENT, FERRY_GPU_NAME
                                     " gather: an operand has no device "
                                     "address");
  void *slot_host = NULL;
  ferry_status st = ferry_gpu_memref_host(s->ctx, g->flag_host, &slot_host);
  if (st != FERRY_OK)
    return st;
  uint64_t es = g->dtype == FERRY_DTYPE_F32 ? 4u : 2u;
  uint64_t row_bytes = g->cols * es;
  uint64_t out_row_bytes =
      g->cols * (g->out->dtype == FERRY_DTYPE_F32 ? 4u : 2u);
  int kind = g->out->dtype == g->dtype     ? 0
             : g->dtype == FERRY_DTYPE_F16 ? 1
                                           : 2;
  int width = lanes_for(row_bytes);
  uint64_t lanes = width ? (uint64_t)width : 64u;
  uint64_t blocks = (g->n * lanes + BLOCK - 1) / BLOCK;
  if (blocks > MAX_GRID)
    blocks = MAX_GRID;
  if (g->max_blocks > 0 && blocks > g->max_blocks)
    blocks = g->max_blocks;
  int k = g->method == 2 /* FERRY_GATHER_METHOD_NAIVE */
              ? FERRY_GPU_KERNEL_gather_naive
              : FERRY_GPU_KERNEL_gather_aligned;

  ferry_gpu_scope scope;
  st = ferry_gpu_enter(s->ctx, "gather", &scope);
  if (st != FERRY_OK)
    return st;
  gpuError_t e = gpuMemsetAsync(flag, 0xff, 8, s->stream);
  if (e != gpuSuccess) {
    ferry_gpu_leave(&scope);
    return ferry_gpu_fail(s->ctx, e, "gather #%llu: resetting the flag",
                          (unsigned long long)l->seq);
  }
  uint64_t rows = g->rows, n = g->n;
  int ids64 = g->ids->dtype == FERRY_DTYPE_I64;
  uint32_t launches = g->num_pieces ? g->num_pieces : 1;
  for (uint32_t p = 0; p < launches && st == FERRY_OK; p++) {
    uint64_t lo = (uint64_t)p * g->piece_rows;
    uint64_t hi = g->num_pieces ? lo + g->piece_rows : 0;
    const unsigned char *table =
        g->num_pieces ? ferry_gpu_memref_addr(&g->pieces[p]) : NULL;
    int first = p == 0;
    void *args[] = {&table, &lo,    &hi,    &rows, &row_bytes,
                    &ids,   &ids64, &n,     &out,  &out_row_bytes,
                    &kind,  &width, &first, &flag};
    st = ferry_gpu_launch(s, k, (uint32_t)blocks, BLOCK, 0, args);
  }
  if (st == FERRY_OK) {
    e = gpuMemcpyAsync(slot_dev, flag, 8, gpuMemcpyDefault, s->stream);
    if (e != gpuSuccess)
      st = ferry_gpu_fail(s->ctx, e, "gather #%llu: reading the flag",
                          (unsigned long long)l->seq);
  }
  ferry_gpu_leave(&scope);
  if (st != FERRY_OK)
    return st;
  ferry_gpu_closure c;
  memset(&c, 0, sizeof c);
  c.run = check_flag;
  c.op = "gather";
  c.u.copy.dst = slot_host;
  c.u.copy.size = g->rows;
  return ferry_gpu_enqueue_host(s, l, &c);
}
