/* norm_forward and norm_backward on CUDA and HIP (kernels/norm.cuh).
 *
 * Operands must be device memory or registered (pinned, mapped) host
 * memory: a kernel cannot read pageable host memory. Rows of at most
 * NORM_WARP_COLS columns go to the sub-warp kernels (256-thread blocks),
 * longer rows to the block-per-row kernels (256 threads, 512 from 8192
 * columns). Grids are capped and the kernels loop over rows, so any row
 * count works. dgamma/dbeta partials live in a stream-ordered workspace
 * (cudaMallocAsync / hipMallocAsync) freed behind the kernels. */
#include "gpu_internal.h"
#include "kernels/norm_params.cuh"

#include <string.h>

#if defined(FERRY_GPU_CUDA)
#define norm_malloc_async cudaMallocAsync
#define norm_free_async cudaFreeAsync
#else
#define norm_malloc_async hipMallocAsync
#define norm_free_async hipFreeAsync
#endif

#define NORM_WARP_COLS 1024 /* FERRY_NORM_WARP_COLS in norm.cuh */
#define NORM_BLOCK 256
#define NORM_MAX_GRID 65535u /* the kernels loop past it */
#define NORM_CHUNKS 512
#define NORM_PARTIAL_FLOATS ((uint64_t)64 << 20)

/* The device address of an operand (NULL for an absent one); pageable host
 * memory is refused. */
static ferry_status operand(ferry_be_stream *s, const ferry_be_tensor *t,
                            const char *arg, const char *op, void **out) {
  *out = NULL;
  if (t == NULL)
    return FERRY_OK;
  gpuMemoryKind kind = GPU_MEMORY_PAGEABLE;
  ferry_status st = ferry_gpu_memref_kind(s->ctx, &t->mem, &kind);
  if (st != FERRY_OK)
    return st;
  if (kind == GPU_MEMORY_PAGEABLE)
    return ferry_gpu_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        FERRY_GPU_NAME " %s: argument '%s' is pageable host memory; the "
                       "kernels need device or pinned host memory",
        op, arg);
  *out = ferry_gpu_memref_addr(&t->mem);
  if (*out == NULL)
    return ferry_gpu_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        FERRY_GPU_NAME " %s: argument '%s' has no address", op, arg);
  return FERRY_OK;
}

/* Threads of the sub-warp kernels' rows (as the device chooses them, for a
 * 32-lane warp) only size the grid: the kernels loop over rows. */
static uint32_t warp_grid(int64_t rows, int64_t cols) {
  int64_t lanes = 1;
  while (lanes < 32 && lanes * 8 < cols)
    lanes *= 2;
  int64_t rows_per_block = NORM_BLOCK / lanes;
  int64_t g = (rows + rows_per_block - 1) / rows_per_block;
  return g > (int64_t)NORM_MAX_GRID ? NORM_MAX_GRID : (uint32_t)(g ? g : 1);
}

static uint32_t block_threads(int64_t cols) {
  return cols >= 8192 ? 2 * NORM_BLOCK : NORM_BLOCK;
}

static uint32_t row_grid(int64_t rows) {
  return rows > (int64_t)NORM_MAX_GRID ? NORM_MAX_GRID : (uint32_t)rows;
}

/* One float per warp of the block (at least 32 lanes a warp). */
static uint32_t block_shared(uint32_t threads) {
  return (threads / 32u) * (uint32_t)sizeof(float);
}

ferry_status ferry_gpu_op_norm_forward(
    ferry_be_stream *s, const ferry_be_launch *l, int kind, float eps,
    const ferry_be_tensor *x, const ferry_be_tensor *gamma,
    const ferry_be_tensor *beta, const ferry_be_tensor *y,
    const ferry_be_tensor *mean, const ferry_be_tensor *rstd) {
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "norm_forward", &scope);
  if (st != FERRY_OK)
    return st;
  ferry_norm_fwd_params p;
  memset(&p, 0, sizeof p);
  void *px, *py, *pg, *pb, *pm, *pr;
  if ((st = operand(s, x, "x", l->op, &px)) != FERRY_OK ||
      (st = operand(s, y, "y", l->op, &py)) != FERRY_OK ||
      (st = operand(s, gamma, "gamma", l->op, &pg)) != FERRY_OK ||
      (st = operand(s, beta, "beta", l->op, &pb)) != FERRY_OK ||
      (st = operand(s, mean, "mean", l->op, &pm)) != FERRY_OK ||
      (st = operand(s, rstd, "rstd", l->op, &pr)) != FERRY_OK) {
    ferry_gpu_leave(&scope);
    return st;
  }
  p.x = px;
  p.y = py;
  p.gamma = pg;
  p.beta = pb;
  p.mean = pm;
  p.rstd = pr;
  p.rows = x->shape[0];
  p.cols = x->shape[1];
  p.x_ld = x->strides[0];
  p.y_ld = y->strides[0];
  p.kind = kind;
  p.dt = (int32_t)x->dtype;
  p.gamma_dt = gamma ? (int32_t)gamma->dtype : FERRY_NORM_DT_F32;
  p.beta_dt = beta ? (int32_t)beta->dtype : FERRY_NORM_DT_F32;
  p.eps = eps;
  void *args[] = {&p};
  if (p.cols <= NORM_WARP_COLS) {
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_norm_fwd_warp,
                          warp_grid(p.rows, p.cols), NORM_BLOCK, 0, args);
  } else {
    uint32_t t = block_threads(p.cols);
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_norm_fwd_block, row_grid(p.rows),
                          t, block_shared(t), args);
  }
  ferry_gpu_leave(&scope);
  return st;
}

ferry_status ferry_gpu_op_norm_backward(
    ferry_be_stream *s, const ferry_be_launch *l, int kind, uint32_t flags,
    const ferry_be_tensor *dy, const ferry_be_tensor *x,
    const ferry_be_tensor *gamma, const ferry_be_tensor *mean,
    const ferry_be_tensor *rstd, const ferry_be_tensor *dx,
    const ferry_be_tensor *dgamma, const ferry_be_tensor *dbeta) {
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "norm_backward", &scope);
  if (st != FERRY_OK)
    return st;
  ferry_norm_bwd_params p;
  memset(&p, 0, sizeof p);
  void *pdy, *px, *pg, *pm, *pr, *pdx, *pdg, *pdb;
  if ((st = operand(s, dy, "dy", l->op, &pdy)) != FERRY_OK ||
      (st = operand(s, x, "x", l->op, &px)) != FERRY_OK ||
      (st = operand(s, gamma, "gamma", l->op, &pg)) != FERRY_OK ||
      (st = operand(s, mean, "mean", l->op, &pm)) != FERRY_OK ||
      (st = operand(s, rstd, "rstd", l->op, &pr)) != FERRY_OK ||
      (st = operand(s, dx, "dx", l->op, &pdx)) != FERRY_OK ||
      (st = operand(s, dgamma, "dgamma", l->op, &pdg)) != FERRY_OK ||
      (st = operand(s, dbeta, "dbeta", l->op, &pdb)) != FERRY_OK) {
    ferry_gpu_leave(&scope);
    return st;
  }
  p.dy = pdy;
  p.x = px;
  p.gamma = pg;
  p.mean = pm;
  p.rstd = pr;
  p.dx = pdx;
  p.dgamma = pdg;
  p.dbeta = pdb;
  p.rows = x->shape[0];
  p.cols = x->shape[1];
  p.dy_ld = dy->strides[0];
  p.x_ld = x->strides[0];
  p.dx_ld = dx->strides[0];
  p.kind = kind;
  p.dt = (int32_t)x->dtype;
  p.gamma_dt = gamma ? (int32_t)gamma->dtype : FERRY_NORM_DT_F32;
  p.dgamma_dt = dgamma ? (int32_t)dgamma->dtype : FERRY_NORM_DT_F32;
  p.dbeta_dt = dbeta ? (int32_t)dbeta->dtype : FERRY_NORM_DT_F32;
  p.accumulate = (flags & FERRY_NORM_ACCUMULATE) != 0;
  int partials = dgamma != NULL || dbeta != NULL;
  /* The workspace first: failing to get it leaves nothing launched. */
  void *work = NULL;
  if (partials) {
    p.chunk_rows = (p.rows + NORM_CHUNKS - 1) / NORM_CHUNKS;
    int64_t max_chunks = (int64_t)(NORM_PARTIAL_FLOATS / 2) / p.cols;
    if (max_chunks < 1)
      max_chunks = 1;
    if (p.chunk_rows < (p.rows + max_chunks - 1) / max_chunks)
      p.chunk_rows = (p.rows + max_chunks - 1) / max_chunks;
    p.chunks = (p.rows + p.chunk_rows - 1) / p.chunk_rows;
    p.col_tiles = (p.cols + NORM_BLOCK - 1) / NORM_BLOCK;
    size_t bytes = (size_t)(p.chunks * p.cols) * 2 * sizeof(float);
    gpuError_t e = norm_malloc_async(&work, bytes, s->stream);
    if (e != gpuSuccess) {
      ferry_gpu_leave(&scope);
      return ferry_gpu_fail(s->ctx, e,
                            "norm_backward #%llu: %zu bytes of dgamma/dbeta "
                            "partials",
                            (unsigned long long)l->seq, bytes);
    }
    p.part_g = dgamma ? (float *)work : NULL;
    p.part_b = dbeta ? (float *)work + p.chunks * p.cols : NULL;
  }
  void *args[] = {&p};
  if (p.cols <= NORM_WARP_COLS) {
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_norm_bwd_dx_warp,
                          warp_grid(p.rows, p.cols), NORM_BLOCK, 0, args);
  } else {
    uint32_t t = block_threads(p.cols);
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_norm_bwd_dx_block,
                          row_grid(p.rows), t, block_shared(t), args);
  }
  if (st == FERRY_OK && partials) {
    int64_t blocks = p.col_tiles * p.chunks;
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_norm_bwd_partial,
                          blocks > (int64_t)NORM_MAX_GRID ? NORM_MAX_GRID
                                                          : (uint32_t)blocks,
                          NORM_BLOCK, 0, args);
    if (st == FERRY_OK)
      st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_norm_bwd_final,
                            (uint32_t)p.col_tiles < NORM_MAX_GRID
                                ? (uint32_t)p.col_tiles
                                : NORM_MAX_GRID,
                            NORM_BLOCK, 0, args);
  }
  if (work != NULL) {
    gpuError_t e = norm_free_async(work, s->stream);
    if (e != gpuSuccess && st == FERRY_OK)
      st = ferry_gpu_fail(s->ctx, e,
                          "norm_backward #%llu: freeing the "
                          "partials",
                          (unsigned long long)l->seq);
  }
  ferry_gpu_leave(&scope);
  return st;
}
