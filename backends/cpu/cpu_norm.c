/* norm_forward and norm_backward on the cpu: LayerNorm and RMSNorm over the
 * rows of a matrix, rows split across the context's pool.
 *
 * The row kernels (statistics, outputs, numerics) are in cpu_norm_rows.h,
 * compiled at 4 lanes (cpu_norm_sse.c), 8 (cpu_norm_avx2.c, for CPUs with
 * AVX2) and 16 (cpu_norm_avx512.c), all giving the same bits; this file
 * holds the ops, the tasks and the split of the work.
 *
 * Determinism of dgamma/dbeta. Rows are cut into chunks whose size depends
 * only on rows (at most CPU_NORM_CHUNK_ROWS); each chunk sums its rows in
 * order in f32 into partials of its own, and a second pass adds each
 * column's partials in chunk order in f64. ferry_cpu_parallel_for's chunk
 * boundaries do not depend on the thread count, so neither does the result:
 * bit-identical across runs and pool sizes. No atomics. */
#include "cpu_half.h"
#include "cpu_norm.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Elements a forward claim covers at least (amortises the claim). */
#define CPU_NORM_CLAIM_ELEMS 16384

typedef cpu_norm_fwd_args fwd_args;
typedef cpu_norm_bwd_args bwd_args;

/* The row kernels this CPU runs best (the same bits whichever). The
 * environment variable FERRY_CPU_NORM_ISA ("sse", "avx2") caps the choice,
 * so that tests can check that every build gives the same bits. */
static const cpu_norm_kernels *kernels(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const char *cap = getenv("FERRY_CPU_NORM_ISA");
  int most = 2;
  if (cap != NULL && strcmp(cap, "sse") == 0)
    most = 0;
  else if (cap != NULL && strcmp(cap, "avx2") == 0)
    most = 1;
  if (most >= 2 && cpu_norm_kernels_avx512 != NULL &&
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return cpu_norm_kernels_avx512;
  if (most >= 1 && cpu_norm_kernels_avx2 != NULL &&
      __builtin_cpu_supports("avx2"))
    return cpu_norm_kernels_avx2;
#endif
  return &cpu_norm_kernels_sse;
}

/* The last-level cache's bytes (sysconf, once; 32 MiB where unknown). */
static int64_t llc_bytes(void) {
  static _Atomic int64_t cached;
  int64_t v = atomic_load_explicit(&cached, memory_order_relaxed);
  if (v > 0)
    return v;
  v = 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
  v = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (v <= 0)
    v = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
  if (v <= 0)
    v = (int64_t)32 << 20;
  atomic_store_explicit(&cached, v, memory_order_relaxed);
  return v;
}

/* Non-temporal stores for the output when the call's data (read and
 * written) exceeds the last-level cache: by the time a consumer reads the
 * output, its start would have been evicted anyway, and a normal store
 * first reads each line it writes (a third of a forward's traffic). */
static int use_nt(int64_t rows, int64_t cols, size_t es, int tensors) {
  /* FERRY_CPU_NORM_NT=0 or 1 decides instead (tests: both paths, same
   * bits). */
  const char *force = getenv("FERRY_CPU_NORM_NT");
  if (force != NULL && (strcmp(force, "0") == 0 || strcmp(force, "1") == 0))
    return force[0] == '1';
  return (double)rows * (double)cols * (double)es * tensors >=
         (double)llc_bytes();
}

/* Rows ahead to prefetch: the row about 4 KiB ahead of the current one. */
static int64_t prefetch_rows(int64_t cols, size_t es) {
  int64_t r = 4096 / (cols * (int64_t)es);
  return r < 1 ? 1 : r;
}

static ferry_cpu_range_fn pick(const ferry_cpu_range_fn *fns, ferry_dtype dt) {
  return dt == FERRY_DTYPE_F32    ? fns[0]
         : dt == FERRY_DTYPE_BF16 ? fns[1]
                                  : fns[2];
}

static float ld_param(const void *p, int64_t i, ferry_dtype dt) {
  if (dt == FERRY_DTYPE_F32)
    return ((const float *)p)[i];
  if (dt == FERRY_DTYPE_BF16)
    return ferry_bf16_to_f32(((const uint16_t *)p)[i]);
  return ferry_f16_to_f32(((const uint16_t *)p)[i]);
}

/* ---- forward ------------------------------------------------------------- */

/* An f32 copy of a parameter vector (or `fill` where absent) in `scratch`,
 * unless it already is f32. */
static const float *params_f32(const void *p, ferry_dtype dt, int64_t n,
                               float fill, float *scratch) {
  if (p != NULL && dt == FERRY_DTYPE_F32)
    return p;
  for (int64_t i = 0; i < n; i++)
    scratch[i] = p ? ld_param(p, i, dt) : fill;
  return scratch;
}

static uint64_t claim_rows(int64_t cols) {
  uint64_t c = CPU_NORM_CLAIM_ELEMS / (uint64_t)cols;
  return c ? c : 1;
}

static void run_forward(const ferry_cpu_task *task, void *args) {
  fwd_args *a = args;
  float *scratch = malloc((size_t)a->cols * 2 * sizeof(float));
  if (scratch == NULL) {
    ferry_cpu_task_fail(task, FERRY_ERR_OUT_OF_MEMORY,
                        "cpu norm_forward: no memory for %lld f32 parameters",
                        (long long)a->cols * 2);
    return;
  }
  a->g = params_f32(a->gamma, a->gamma_dt, a->cols, 1.0f, scratch);
  a->b = params_f32(a->beta, a->beta_dt, a->cols, 0.0f, scratch + a->cols);
  size_t es = a->dt == FERRY_DTYPE_F32 ? 4 : 2;
  a->nt = use_nt(a->rows, a->cols, es, 2);
  a->pf_rows = prefetch_rows(a->cols, es);
  ferry_cpu_parallel_for(ferry_cpu_task_context(task), (uint64_t)a->rows,
                         claim_rows(a->cols), pick(kernels()->fwd, a->dt), a);
  free(scratch);
}

/* An operand's host address (NULL for an absent operand). Both ops take
 * every operand in one run of calls: the first failure is kept in *st and
 * the calls after it do nothing, so its message names that operand. */
static void *host_addr(const ferry_be_tensor *t, const char *arg,
                       const char *op, ferry_status *st) {
  if (*st != FERRY_OK || t == NULL)
    return NULL;
  void *p = ferry_cpu_memref_addr(&t->mem);
  if (p == NULL)
    *st = ferry_cpu_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                                    "cpu %s: argument '%s' has no host "
                                    "address",
                                    op, arg);
  return p;
}

/* A parameter's dtype; an absent one counts as f32 (params_f32 fills it). */
static ferry_dtype param_dtype(const ferry_be_tensor *t) {
  return t ? t->dtype : FERRY_DTYPE_F32;
}

ferry_status ferry_cpu_op_norm_forward(
    ferry_be_stream *s, const ferry_be_launch *l, int kind, float eps,
    const ferry_be_tensor *x, const ferry_be_tensor *gamma,
    const ferry_be_tensor *beta, const ferry_be_tensor *y,
    const ferry_be_tensor *mean, const ferry_be_tensor *rstd) {
  fwd_args a;
  memset(&a, 0, sizeof a);
  ferry_status st = FERRY_OK;
  a.x = host_addr(x, "x", l->op, &st);
  a.y = host_addr(y, "y", l->op, &st);
  a.gamma = host_addr(gamma, "gamma", l->op, &st);
  a.beta = host_addr(beta, "beta", l->op, &st);
  a.mean = host_addr(mean, "mean", l->op, &st);
  a.rstd = host_addr(rstd, "rstd", l->op, &st);
  if (st != FERRY_OK)
    return st;
  a.kind = kind;
  a.eps = eps;
  a.dt = x->dtype;
  a.rows = x->shape[0];
  a.cols = x->shape[1];
  a.x_ld = x->strides[0];
  a.y_ld = y->strides[0];
  a.gamma_dt = param_dtype(gamma);
  a.beta_dt = param_dtype(beta);
  return ferry_cpu_enqueue(s, l, run_forward, &a, sizeof a, NULL);
}

/* ---- backward ------------------------------------------------------------ */

/* Rows per dgamma/dbeta chunk: CPU_NORM_CHUNK_ROWS (partials, written
 * then read, are then ~1-2% of the data's traffic), fewer for small row counts
 * so that a few hundred rows still make 16 chunks. A function of rows only,
 * never of the threads. */
static int64_t bwd_chunk_rows(int64_t rows) {
  int64_t per = (rows + 15) / 16;
  if (per > CPU_NORM_CHUNK_ROWS)
    per = CPU_NORM_CHUNK_ROWS;
  return per < 1 ? 1 : per;
}

static void run_backward(const ferry_cpu_task *task, void *args) {
  bwd_args *a = args;
  int64_t n = a->cols;
  float *gscratch = NULL;
  int partials = a->dgamma != NULL || a->dbeta != NULL;
  a->chunk_rows = bwd_chunk_rows(a->rows);
  a->chunks = (a->rows + a->chunk_rows - 1) / a->chunk_rows;
  uint64_t cells = (uint64_t)a->chunks * (uint64_t)n;
  int need_g = a->gamma == NULL || a->gamma_dt != FERRY_DTYPE_F32;
  if (need_g)
    gscratch = malloc((size_t)n * sizeof(float));
  if (a->dgamma)
    a->part_g = malloc(cells * sizeof(float));
  if (a->dbeta)
    a->part_b = malloc(cells * sizeof(float));
  if ((need_g && gscratch == NULL) || (a->dgamma && a->part_g == NULL) ||
      (a->dbeta && a->part_b == NULL)) {
    ferry_cpu_task_fail(task, FERRY_ERR_OUT_OF_MEMORY,
                        "cpu norm_backward: no memory for the dgamma/dbeta "
                        "partials (%llu cells)",
                        (unsigned long long)cells);
    goto done;
  }
  a->g = params_f32(a->gamma, a->gamma_dt, n, 1.0f, gscratch);
  size_t es = a->dt == FERRY_DTYPE_F32 ? 4 : 2;
  a->nt = use_nt(a->rows, n, es, 3);
  a->pf_rows = prefetch_rows(n, es);
  /* Several chunks a claim where they are small (the partials are per
   * chunk, so the claim size does not change the result). */
  uint64_t per = CPU_NORM_CLAIM_ELEMS / (uint64_t)(a->chunk_rows * n);
  ferry_be_context *ctx = ferry_cpu_task_context(task);
  ferry_cpu_parallel_for(ctx, (uint64_t)a->chunks, per ? per : 1,
                         pick(kernels()->bwd, a->dt), a);
  if (partials)
    ferry_cpu_parallel_for(ctx, (uint64_t)n, CPU_NORM_FINAL_COLS,
                           kernels()->final, a);
done:
  free(gscratch);
  free(a->part_g);
  free(a->part_b);
}

ferry_status ferry_cpu_op_norm_backward(
    ferry_be_stream *s, const ferry_be_launch *l, int kind, uint32_t flags,
    const ferry_be_tensor *dy, const ferry_be_tensor *x,
    const ferry_be_tensor *gamma, const ferry_be_tensor *mean,
    const ferry_be_tensor *rstd, const ferry_be_tensor *dx,
    const ferry_be_tensor *dgamma, const ferry_be_tensor *dbeta) {
  bwd_args a;
  memset(&a, 0, sizeof a);
  ferry_status st = FERRY_OK;
  a.dy = host_addr(dy, "dy", l->op, &st);
  a.x = host_addr(x, "x", l->op, &st);
  a.gamma = host_addr(gamma, "gamma", l->op, &st);
  a.mean = host_addr(mean, "mean", l->op, &st);
  a.rstd = host_addr(rstd, "rstd", l->op, &st);
  a.dx = host_addr(dx, "dx", l->op, &st);
  a.dgamma = host_addr(dgamma, "dgamma", l->op, &st);
  a.dbeta = host_addr(dbeta, "dbeta", l->op, &st);
  if (st != FERRY_OK)
    return st;
  a.kind = kind;
  a.flags = flags;
  a.dt = x->dtype;
  a.rows = x->shape[0];
  a.cols = x->shape[1];
  a.dy_ld = dy->strides[0];
  a.x_ld = x->strides[0];
  a.dx_ld = dx->strides[0];
  a.gamma_dt = param_dtype(gamma);
  a.dgamma_dt = param_dtype(dgamma);
  a.dbeta_dt = param_dtype(dbeta);
  return ferry_cpu_enqueue(s, l, run_backward, &a, sizeof a, NULL);
}
