/* op_gather on the cpu: the pool copies rows (cpu_gather_rows.h: prefetch
 * a few KB ahead, streaming stores for outputs far larger than the LLC),
 * each chunk a contiguous run of ids. Bad ids: an atomic min of the first
 * bad position, deferred as FERRY_ERR_OUT_OF_RANGE once every chunk ran. */
#include "cpu_gather_rows.h"
#include "cpu_internal.h"

#include <stdatomic.h>
#include <string.h>

/* Bytes a chunk moves: 1/64 of the output, between 64 KB (amortises the
 * claim) and 1 MB (each chunk start stalls once while its first prefetches
 * are in flight). Depends on n only, never on the thread count. */
#define CHUNK_MIN_BYTES (64u << 10)
#define CHUNK_MAX_BYTES (1u << 20)

typedef struct gather_args {
  ferry_gather_rows rows;
  char *out;
  uint64_t n;
  _Atomic uint64_t first_bad;
} gather_args;

static void note_bad(gather_args *a, uint64_t i) {
  uint64_t cur = atomic_load_explicit(&a->first_bad, memory_order_relaxed);
  while (i < cur && !atomic_compare_exchange_weak_explicit(
                        &a->first_bad, &cur, i, memory_order_relaxed,
                        memory_order_relaxed)) {
  }
}

static void gather_range(void *arg, uint64_t begin, uint64_t end) {
  gather_args *a = arg;
  uint64_t bad = ferry_gather_rows_run(&a->rows, begin, end,
                                       a->out + begin * a->rows.out_row_bytes);
  if (bad != UINT64_MAX)
    note_bad(a, bad);
}

static void run_gather(const ferry_cpu_task *task, void *args) {
  gather_args *a = args;
  uint64_t orow = a->rows.out_row_bytes;
  uint64_t bytes = CHUNK_MIN_BYTES;
  if (a->n * orow / 64 > bytes)
    bytes = a->n * orow / 64;
  if (bytes > CHUNK_MAX_BYTES)
    bytes = CHUNK_MAX_BYTES;
  uint64_t chunk = bytes / orow;
  if (chunk < 16)
    chunk = 16;
  ferry_cpu_parallel_for(ferry_cpu_task_context(task), a->n, chunk,
                         gather_range, a);
  uint64_t bad = atomic_load(&a->first_bad);
  if (bad != UINT64_MAX)
    ferry_cpu_task_fail(task, FERRY_ERR_OUT_OF_RANGE,
                        "gather: ids[%llu] = %lld is outside the table's %llu "
                        "rows (its out row was zero-filled)",
                        (unsigned long long)bad,
                        (long long)ferry_gather_rows_id(&a->rows, bad),
                        (unsigned long long)a->rows.rows);
}

ferry_status ferry_cpu_op_gather(ferry_be_stream *s, const ferry_be_launch *l,
                                 const ferry_be_gather *g) {
  if (g == NULL || g->ids == NULL || g->out == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_NULL_POINTER,
                                     "cpu gather: NULL parameters");
  if (g->n == 0)
    return FERRY_OK;
  gather_args a;
  memset(&a, 0, sizeof a);
  ferry_gather_rows *r = &a.rows;
  r->pieces = g->pieces;
  r->num_pieces = g->num_pieces;
  r->piece_rows = g->piece_rows ? g->piece_rows : 1;
  r->rows = g->num_pieces ? g->rows : 0;
  r->cols = g->cols;
  r->dtype = g->dtype;
  r->out_dtype = g->out->dtype;
  r->row_bytes = g->cols * (g->dtype == FERRY_DTYPE_F32 ? 4u : 2u);
  r->out_row_bytes = g->cols * (r->out_dtype == FERRY_DTYPE_F32 ? 4u : 2u);
  r->ids = ferry_cpu_memref_addr(&g->ids->mem);
  r->ids64 = g->ids->dtype == FERRY_DTYPE_I64;
  a.out = ferry_cpu_memref_addr(&g->out->mem);
  a.n = g->n;
  if (r->ids == NULL || a.out == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                                     "cpu gather: '%s' has no host address",
                                     r->ids == NULL ? "ids" : "out");
  ferry_gather_rows_plan(r, a.n * r->out_row_bytes);
  atomic_init(&a.first_bad, UINT64_MAX);
  return ferry_cpu_enqueue(s, l, run_gather, &a, sizeof a, NULL);
}
