/* The STAGED path on a GPU backend, built once in the core from existing
 * ops: a host function on the caller's stream gathers a chunk of rows into
 * one of two pinned staging buffers, an event hands the chunk to a copy
 * stream of the table's, which copies it to `out`; the next chunk's host
 * gather (into the other staging buffer) overlaps that copy. A staging
 * buffer is refilled only after the event recorded behind its last copy.
 * Finally the caller's stream waits for the copies, so work queued after the
 * gather sees `out` complete.
 *
 * The host gather is the cpu backend's row loop (cpu_gather_rows.h:
 * prefetching, streaming stores for large outputs) shared out to the
 * context's gather pool (table_pool.c): the callback thread and one thread
 * per other core of the context's cpuset, the NUMA node next to the device
 * where the table's memory is bound. Out-of-range ids are found by the host
 * function, which zero-fills the row and defers FERRY_ERR_OUT_OF_RANGE
 * under the gather's own sequence number. */
#include "table_internal.h"

#include "cpu_gather_rows.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAGING_BYTES (UINT64_C(4) << 20)
/* Output bytes a pool chunk gathers: amortises the claim, many chunks per
 * staging buffer for the pool's threads to share. */
#define POOL_CHUNK_BYTES (UINT64_C(64) << 10)

typedef struct staged_job {
  const ferry_table *table;
  const void *ids;
  ferry_dtype id_dtype;
  uint64_t begin, end; /* ids[begin..end) */
  void *dst;           /* out row of ids[begin] */
  ferry_dtype out_dtype;
  uint64_t total_bytes; /* the whole gather's output (streaming decision) */
  void *sink;
  uint64_t seq;
} staged_job;

/* One host function's rows, shared out to the pool. */
typedef struct staged_run {
  ferry_gather_rows rows;
  uint64_t begin;
  char *dst;
  _Atomic uint64_t first_bad;
} staged_run;

static void staged_range(void *arg, uint64_t b, uint64_t e) {
  staged_run *r = arg;
  uint64_t i0 = r->begin + b, i1 = r->begin + e;
  uint64_t bad = ferry_gather_rows_run(&r->rows, i0, i1,
                                       r->dst + b * r->rows.out_row_bytes);
  uint64_t cur = atomic_load_explicit(&r->first_bad, memory_order_relaxed);
  while (bad < cur && !atomic_compare_exchange_weak_explicit(
                          &r->first_bad, &cur, bad, memory_order_relaxed,
                          memory_order_relaxed)) {
  }
}

static ferry_status staged_host_fn(void *user) {
  staged_job *j = user;
  const ferry_table *t = j->table;
  staged_run r;
  memset(&r, 0, sizeof r);
  ferry_be_memref whole; /* the table's host memory as one piece */
  memset(&whole, 0, sizeof whole);
  whole.ptr = t->host;
  whole.space = FERRY_MEMORY_HOST;
  r.rows.pieces = &whole;
  r.rows.num_pieces = 1;
  r.rows.piece_rows = t->rows ? t->rows : 1;
  r.rows.rows = t->rows;
  r.rows.cols = t->cols;
  r.rows.row_bytes = t->row_bytes;
  r.rows.out_row_bytes = t->cols * ferry_dtype_size(j->out_dtype);
  r.rows.dtype = t->dtype;
  r.rows.out_dtype = j->out_dtype;
  r.rows.ids = j->ids;
  r.rows.ids64 = j->id_dtype == FERRY_DTYPE_I64;
  ferry_gather_rows_plan(&r.rows, j->total_bytes);
  r.begin = j->begin;
  r.dst = j->dst;
  atomic_init(&r.first_bad, UINT64_MAX);
  uint64_t chunk = POOL_CHUNK_BYTES / r.rows.out_row_bytes;
  if (chunk < 16)
    chunk = 16;
  ferry__gather_pool_run(t->pool, j->end - j->begin, chunk, staged_range, &r);
  uint64_t bad = atomic_load(&r.first_bad);
  if (bad != UINT64_MAX)
    ferry__host_api()->defer_error(
        j->sink, j->seq, "gather", FERRY_ERR_OUT_OF_RANGE,
        "gather: ids[%llu] = %lld is outside the table's %llu rows (its out "
        "row was zero-filled)",
        (unsigned long long)bad, (long long)ferry_gather_rows_id(&r.rows, bad),
        (unsigned long long)t->rows);
  free(j);
  return FERRY_OK;
}

static void lane_free(ferry__staged_lane *ln) {
  if (ln == NULL)
    return;
  ferry_stream_destroy(ln->copy_stream);
  for (int k = 0; k < 2; k++) {
    ferry_buffer_destroy(ln->staging[k]);
    ferry_event_destroy(ln->host_done[k]);
    ferry_event_destroy(ln->copy_done[k]);
  }
  ferry_buffer_destroy(ln->flag_device);
  ferry_buffer_destroy(ln->flag_host);
  free(ln);
}

void ferry__table_staged_free(ferry_table *t) {
  ferry__staged_lane *ln = t->lanes;
  while (ln != NULL) {
    ferry__staged_lane *next = ln->next;
    lane_free(ln);
    ln = next;
  }
  t->lanes = NULL;
}

static ferry_status lane_fill(ferry_table *t, ferry__staged_lane *ln,
                              bool staging, bool flags) {
  ferry_status st = FERRY_OK;
  if (staging && ln->copy_stream == NULL) {
    uint64_t size = t->cols * 4 > STAGING_BYTES ? t->cols * 4 : STAGING_BYTES;
    st = ferry_stream_create(t->ctx, &ln->copy_stream);
    for (int k = 0; k < 2 && st == FERRY_OK; k++) {
      st = ferry_buffer_create(t->ctx, FERRY_MEMORY_PINNED_HOST, size,
                               &ln->staging[k]);
      if (st == FERRY_OK)
        st = ferry_event_create(t->ctx, &ln->host_done[k]);
      if (st == FERRY_OK)
        st = ferry_event_create(t->ctx, &ln->copy_done[k]);
    }
  }
  if (st == FERRY_OK && flags && ln->flag_device == NULL) {
    st = ferry_buffer_create(t->ctx, FERRY_MEMORY_DEVICE, 8, &ln->flag_device);
    if (st == FERRY_OK)
      st = ferry_buffer_create(t->ctx, FERRY_MEMORY_PINNED_HOST, 8,
                               &ln->flag_host);
    if (st == FERRY_OK)
      st = ferry__buffer_memref(t->ctx, "flag", ln->flag_device, 0, 8,
                                &ln->flag_device_ref);
    if (st == FERRY_OK)
      st = ferry__buffer_memref(t->ctx, "flag", ln->flag_host, 0, 8,
                                &ln->flag_host_ref);
  }
  return st;
}

ferry_status ferry__table_lane(ferry_table *t, ferry_stream *stream,
                               bool staging, bool flags,
                               ferry__staged_lane **out) {
  /* The stream is used by one thread at a time, so its lane is too; the
   * lock guards only the list. */
  ferry__staged_lane *ln = NULL;
  pthread_mutex_lock(&t->lock);
  for (ferry__staged_lane *it = t->lanes; it != NULL; it = it->next)
    if (it->key == stream->sink)
      ln = it;
  pthread_mutex_unlock(&t->lock);
  bool fresh = ln == NULL;
  if (fresh) {
    ln = calloc(1, sizeof *ln);
    if (ln == NULL)
      return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                          "ferry_gather: out of host memory");
    ln->key = stream->sink;
  }
  ferry_status st = lane_fill(t, ln, staging, flags);
  if (st != FERRY_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ferry_last_error());
    if (fresh)
      lane_free(ln);
    return ferry__error(st, "ferry_gather: per-stream buffers: %s", msg);
  }
  if (fresh) {
    pthread_mutex_lock(&t->lock);
    ln->next = t->lanes;
    t->lanes = ln;
    pthread_mutex_unlock(&t->lock);
  }
  *out = ln;
  return FERRY_OK;
}

/* Host address of a tensor's first byte, or NULL when the host cannot
 * address it. */
static char *host_addr(const ferry_tensor *t) {
  if (t->host != NULL)
    return (char *)t->host + t->byte_offset;
  if (t->buffer->space != FERRY_MEMORY_DEVICE && t->buffer->host_ptr != NULL)
    return (char *)t->buffer->host_ptr + t->byte_offset;
  return NULL;
}

static ferry_status enqueue_job(ferry_table *t, ferry_stream *stream,
                                const ferry_be_launch *l, const staged_job *j) {
  staged_job *copy = malloc(sizeof *copy);
  if (copy == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_gather: out of host memory");
  *copy = *j;
  ferry__clear_error();
  ferry_status st =
      t->ctx->be->op_host_fn(stream->impl, l, staged_host_fn, copy);
  if (st != FERRY_OK)
    free(copy);
  return st;
}

ferry_status ferry__table_gather_staged(ferry_table *t, ferry_stream *stream,
                                        const ferry_be_launch *l,
                                        const ferry_tensor *ids,
                                        const ferry_be_tensor *rids, uint64_t n,
                                        const ferry_tensor *out,
                                        const ferry_be_tensor *rout) {
  const ferry_backend *be = t->ctx->be;
  if (be->op_host_fn == NULL || be->op_copy == NULL)
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "ferry_gather: backend '%s' lacks host functions or "
                        "copies, which a STAGED table needs",
                        t->ctx->plugin->name);
  const char *id_host = host_addr(ids);
  if (id_host == NULL)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "ferry_gather: a STAGED table gathers on the host: "
                        "argument 'ids' must be host or pinned host memory");
  uint64_t orow = t->cols * ferry_dtype_size(rout->dtype);
  staged_job j = {t,           id_host,  rids->dtype,  0,     0, NULL,
                  rout->dtype, n * orow, stream->sink, l->seq};
  char *out_host = host_addr(out);
  if (out_host != NULL) {
    /* The host can write `out` itself: no staging. */
    j.begin = 0;
    j.end = n;
    j.dst = out_host;
    return enqueue_job(t, stream, l, &j);
  }
  ferry__staged_lane *ln;
  ferry_status st = ferry__table_lane(t, stream, true, false, &ln);
  if (st != FERRY_OK)
    return st;
  uint64_t chunk = ln->staging[0]->size / orow;
  for (uint64_t b = 0; b < n && st == FERRY_OK; b += chunk) {
    uint64_t e = n - b < chunk ? n : b + chunk;
    int k = (int)(ln->chunks % 2);
    j.begin = b;
    j.end = e;
    /* ids are indexed from b; dst is the staging buffer's start. */
    j.dst = ln->staging[k]->host_ptr;
    j.ids = id_host;
    st = ferry_stream_wait_event(stream, ln->copy_done[k]);
    if (st == FERRY_OK)
      st = enqueue_job(t, stream, l, &j);
    if (st == FERRY_OK)
      st = ferry_event_record(ln->host_done[k], stream);
    if (st == FERRY_OK)
      st = ferry_stream_wait_event(ln->copy_stream, ln->host_done[k]);
    if (st == FERRY_OK)
      st = ferry_buffer_copy_async(ln->copy_stream, out->buffer,
                                   out->byte_offset + b * orow, ln->staging[k],
                                   0, (e - b) * orow);
    if (st == FERRY_OK)
      st = ferry_event_record(ln->copy_done[k], ln->copy_stream);
    ln->chunks++;
  }
  for (int k = 0; k < 2 && st == FERRY_OK; k++)
    st = ferry_stream_wait_event(stream, ln->copy_done[k]);
  return st;
}
