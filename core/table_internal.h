/* Private declarations of the feature table (core/table*.c, core/npy.c).
 * Nothing here is API. */
#ifndef FERRY_CORE_TABLE_INTERNAL_H
#define FERRY_CORE_TABLE_INTERNAL_H

#include "host_memory.h"
#include "internal.h"

#include <ferry/table.h>

/* Per-stream state of the STAGED path: two pinned staging buffers filled
 * in turn by host functions on the caller's stream and copied to the
 * device on a copy stream of their own, so the host gather of one chunk
 * overlaps the copy of the previous one. Keyed by the caller's stream's
 * sink, which outlives every op queued on the stream. */
typedef struct ferry__staged_lane {
  struct ferry__staged_lane *next;
  const void *key;
  ferry_stream *copy_stream;
  ferry_buffer *staging[2];
  ferry_event *host_done[2]; /* staging[k] written (caller's stream) */
  ferry_event *copy_done[2]; /* staging[k] copied out (copy stream) */
  uint64_t chunks;           /* chunks issued so far (slot = chunks % 2) */
  /* Bad-id flags of device kernels (cuda, hip): device and pinned host. */
  ferry_buffer *flag_device, *flag_host;
  ferry_be_memref flag_device_ref, flag_host_ref;
} ferry__staged_lane;

/* The STAGED path's host threads (table_pool.c): one pool per context,
 * bound to its cpuset, shared by its STAGED tables. */
typedef struct ferry__gather_pool ferry__gather_pool;
typedef void (*ferry__range_fn)(void *arg, uint64_t begin, uint64_t end);
/* The context's pool, started on first use; one reference per call. */
ferry_status ferry__gather_pool_acquire(const ferry_context *ctx,
                                        ferry__gather_pool **out);
/* Drop a reference; the last one joins the threads (none may be running a
 * job). NULL is accepted; a no-op in a fork()ed child. */
void ferry__gather_pool_release(ferry__gather_pool *p);
/* Threads a run uses, the calling thread included (>= 1). */
int ferry__gather_pool_threads(const ferry__gather_pool *p);
/* fn over [0, n) in chunks of `chunk`, on the pool and the calling thread;
 * returns when every chunk has run. p may be NULL (the caller alone). */
void ferry__gather_pool_run(ferry__gather_pool *p, uint64_t n, uint64_t chunk,
                            ferry__range_fn fn, void *arg);

struct ferry_table {
  ferry_context *ctx;
  uint64_t rows, cols;
  ferry_dtype dtype;
  uint64_t row_bytes, bytes;
  ferry_table_placement placement;
  ferry_gather_path path;
  bool wrapped, file_mapped, writable;
  /* Host memory: allocated (host_mem.ptr), the caller's, or a file map. */
  ferry__host_mem host_mem;
  bool has_host_mem;
  void *map;
  uint64_t map_len;
  char *host; /* row 0 in host memory, or NULL (DEVICE on a GPU) */
  /* Backend pieces (ZEROCOPY registrations or DEVICE buffers; none on the
   * cpu backend and for STAGED, whose memrefs point at `host`). */
  uint32_t num_pieces;
  uint64_t piece_rows;
  ferry_buffer **pieces;
  ferry_be_memref *refs;
  /* STAGED: lanes per stream, created on a stream's first gather. */
  pthread_mutex_t lock;
  ferry__staged_lane *lanes;
  uint64_t staging_bytes;
  /* STAGED: the context's host gather threads. */
  ferry__gather_pool *pool;
};

/* ---- creation (table.c) ------------------------------------------------- */

const char *ferry__placement_name(ferry_table_placement p);
/* A table object with its placement, path and pieces planned; no memory. */
ferry_status ferry__table_new(const char *func, ferry_context *ctx,
                              uint64_t rows, uint64_t cols, ferry_dtype dtype,
                              const ferry_table_options *o, ferry_table **out);
/* NUMA-bound host memory for the whole table at t->host. */
ferry_status ferry__table_alloc_host(ferry_table *t);
/* Pieces over t->host (registered for ZEROCOPY), or device pieces. */
ferry_status ferry__table_place_host(ferry_table *t);
ferry_status ferry__table_place_device(ferry_table *t);
/* Synchronous copy of rows between host memory and DEVICE pieces. */
ferry_status ferry__table_device_copy(ferry_table *t, uint64_t first_row,
                                      uint64_t num_rows, void *host,
                                      bool to_device,
                                      ferry_table_progress_fn progress,
                                      void *user);
ferry_status ferry__table_check_options(const char *func,
                                        const ferry_table_options *opts,
                                        ferry_table_options *o);

/* ---- .npy headers (npy.c) ------------------------------------------------ */

typedef struct ferry__npy_header {
  uint64_t rows, cols;
  ferry_dtype dtype;
  uint64_t data_offset; /* bytes from the file's start to the data */
} ferry__npy_header;

/* Parse the header at the start of `buf` (`len` bytes read from a file of
 * `file_size` bytes). Sets the error (BAD_FORMAT naming the problem). */
ferry_status ferry__npy_parse(const char *buf, uint64_t len, uint64_t file_size,
                              bool u2_is_bf16, ferry__npy_header *out);

/* ---- gathers (table_gather.c, table_staged.c) ---------------------------- */

/* Enqueue the STAGED path of one checked gather. */
ferry_status ferry__table_gather_staged(ferry_table *t, ferry_stream *stream,
                                        const ferry_be_launch *l,
                                        const ferry_tensor *ids,
                                        const ferry_be_tensor *rids, uint64_t n,
                                        const ferry_tensor *out,
                                        const ferry_be_tensor *rout);
/* The stream's lane of `t`, made on first use: with staging buffers when
 * `staging`, with bad-id flags when `flags`. */
ferry_status ferry__table_lane(ferry_table *t, ferry_stream *stream,
                               bool staging, bool flags,
                               ferry__staged_lane **out);
/* Free every lane (the context's work is finished). */
void ferry__table_staged_free(ferry_table *t);

#endif /* FERRY_CORE_TABLE_INTERNAL_H */
