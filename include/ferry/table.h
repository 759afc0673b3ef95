/*
 * ferry: Feature tables and zero-copy gather (see docs/table.md).
 *
 * A table is rows x cols of f32, f16 or bf16, row-major and compact, made in
 * one of three ways (the caller's host memory wrapped in place, a NumPy .npy
 * file, or allocated NUMA-bound and filled through ferry_table_write), placed
 * where its gathers read it (the placement), and read by ferry_gather: one
 * row per id, asynchronously on a stream.
 *
 * Included by <ferry/ferry.h>; may also be included on its own.
 */
#ifndef FERRY_TABLE_H
#define FERRY_TABLE_H

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_table ferry_table;

/* Where a table lives and how gathers read it. On the cpu backend every
 * placement is a direct host gather by the worker pool. */
typedef enum ferry_table_placement {
  /* DEVICE when the table fits in device memory with room to spare, else
   * ZEROCOPY. Resolved at creation: info never reports AUTO. */
  FERRY_PLACEMENT_AUTO = 0,
  /* Pinned (registered) host memory, NUMA-bound next to the device, read
   * directly by the device's threads. */
  FERRY_PLACEMENT_ZEROCOPY = 1,
  /* Copied into device memory (the all-in-GPU baseline). */
  FERRY_PLACEMENT_DEVICE = 2,
  /* Host memory; host threads gather rows into pinned staging buffers that
   * are copied to the device asynchronously (the conventional baseline). */
  FERRY_PLACEMENT_STAGED = 3
} ferry_table_placement;

/* How a backend actually gathers from a table (ferry_table_info.path). */
typedef enum ferry_gather_path {
  FERRY_GATHER_PATH_HOST = 1,     /* host threads copy rows (cpu) */
  FERRY_GATHER_PATH_ZEROCOPY = 2, /* device threads read host memory */
  FERRY_GATHER_PATH_DEVICE = 3,   /* device threads read device memory */
  FERRY_GATHER_PATH_STAGED = 4    /* host gather + async copies */
} ferry_gather_path;

/* Progress of a long creation (.npy read, registration): bytes done of
 * total. Called from the creating thread; must not call ferry. */
typedef void (*ferry_table_progress_fn)(uint64_t done, uint64_t total,
                                        void *user);

typedef struct ferry_table_options {
  size_t struct_size;
  ferry_table_placement placement;
  /* ferry_table_from_npy: the file's '<u2' data is bf16 bit patterns (NumPy
   * has no bfloat16). Without it a '<u2' file is refused. */
  int npy_u2_is_bf16;
  ferry_table_progress_fn progress; /* may be NULL */
  void *progress_user;
} ferry_table_options;
#define FERRY_TABLE_OPTIONS_INIT                                               \
  {                                                                            \
    .struct_size = sizeof(ferry_table_options),                                \
    .placement = FERRY_PLACEMENT_AUTO, .npy_u2_is_bf16 = 0, .progress = NULL,  \
    .progress_user = NULL                                                      \
  }

/* Allocate a rows x cols table of `dtype` (F32, F16 or BF16), NUMA-bound
 * next to the context's device; contents undefined until written with
 * ferry_table_write. opts may be NULL (defaults). rows may be 0; cols may
 * not. */
FERRY_API ferry_status ferry_table_create(ferry_context *ctx, uint64_t rows,
                                          uint64_t cols, ferry_dtype dtype,
                                          const ferry_table_options *opts,
                                          ferry_table **out);

/* Wrap the caller's host memory (rows x cols of dtype, row-major, compact)
 * in place: ZEROCOPY registers it for device access (memory already pinned
 * by someone else is used as is), DEVICE copies it into device memory (the
 * caller's memory is no longer read after creation returns), STAGED and the
 * cpu backend read it as is. The memory stays the caller's and must outlive
 * the table. */
FERRY_API ferry_status ferry_table_wrap_host(ferry_context *ctx, void *ptr,
                                             uint64_t rows, uint64_t cols,
                                             ferry_dtype dtype,
                                             const ferry_table_options *opts,
                                             ferry_table **out);

/* Load a NumPy .npy file: 2-D, C order, dtype '<f4', '<f2', or '<u2' with
 * opts->npy_u2_is_bf16 (bf16). The cpu backend and the STAGED placement map
 * the file; DEVICE copies it to the device; ZEROCOPY reads it with chunked
 * pread into NUMA-bound memory. opts->progress reports the bytes read.
 * Malformed files fail with FERRY_ERR_BAD_FORMAT naming the problem, a file
 * that cannot be read with FERRY_ERR_IO. */
FERRY_API ferry_status ferry_table_from_npy(ferry_context *ctx,
                                            const char *path,
                                            const ferry_table_options *opts,
                                            ferry_table **out);

/* Copy rows [first_row, first_row + num_rows) in from / out to host memory
 * (compact rows of the table's dtype). Synchronous. Writing a table made from
 * a file or from the caller's memory is refused (FERRY_ERR_INVALID_ARGUMENT);
 * write the caller's memory directly instead. */
FERRY_API ferry_status ferry_table_write(ferry_table *table, uint64_t first_row,
                                         uint64_t num_rows, const void *src);
FERRY_API ferry_status ferry_table_read(const ferry_table *table,
                                        uint64_t first_row, uint64_t num_rows,
                                        void *dst);

/* Waits for the context's queued work (gathers from this table included),
 * then releases the table. NULL is accepted. */
FERRY_API void ferry_table_destroy(ferry_table *table);

typedef struct ferry_table_info {
  size_t struct_size;
  uint64_t rows;
  uint64_t cols;
  ferry_dtype dtype;
  uint64_t row_bytes;              /* cols * dtype size */
  ferry_table_placement placement; /* as resolved (never AUTO) */
  ferry_gather_path path;          /* what this backend's gathers do */
  int wrapped;                     /* the caller's memory */
  int file_mapped;                 /* memory-mapped from a .npy file */
  /* Host memory ferry allocated, confirmed bound to these NUMA nodes (hwloc
   * list of OS indices). 0 for device, wrapped or file-mapped memory, or when
   * the binding could not be confirmed. */
  int numa_bound;
  char numa_nodes[256];
  uint32_t pieces; /* backend buffers the table is split across (>= 1) */
  /* Host address of row 0 where the table is in host memory, else NULL. */
  const void *host_pointer;
  /* Host threads a gather uses: the cpu pool's (HOST), the context's gather
   * pool bound to its cpuset (STAGED), 0 where device threads gather. Added
   * after host_pointer: an older, shorter struct_size gets the fields it
   * has room for. */
  int host_threads;
} ferry_table_info;
#define FERRY_TABLE_INFO_INIT                                                  \
  { .struct_size = sizeof(ferry_table_info) }
FERRY_API ferry_status ferry_table_get_info(const ferry_table *table,
                                            ferry_table_info *out);

/* Which device kernel a gather uses (ignored by host gathers). */
typedef enum ferry_gather_method {
  FERRY_GATHER_METHOD_DEFAULT = 0, /* the backend's best (ALIGNED) */
  /* A warp (sub-warp) per row, every read of a 128 B-aligned span. */
  FERRY_GATHER_METHOD_ALIGNED = 1,
  /* Element per thread from the row's start, unaligned (the ablation). */
  FERRY_GATHER_METHOD_NAIVE = 2
} ferry_gather_method;

typedef struct ferry_gather_options {
  size_t struct_size;
  ferry_gather_method method;
  /* Upper bound on the device grid (blocks / work-groups), so that a gather
   * leaves compute units to concurrent training kernels. 0: no cap. */
  uint32_t max_blocks;
} ferry_gather_options;
#define FERRY_GATHER_OPTIONS_INIT                                              \
  {                                                                            \
    .struct_size = sizeof(ferry_gather_options),                               \
    .method = FERRY_GATHER_METHOD_DEFAULT, .max_blocks = 0                     \
  }

/* out[i, :] = table[ids[i], :] for i in [0, n), asynchronously on `stream`.
 *   ids: 1-D I32 or I64, contiguous, shape[0] >= n; host or device memory
 *        the backend can read (cpu: host; GPU: device or pinned host).
 *   out: 2-D, compact, shape (>= n, cols), dtype the table's or F32 (f16 and
 *        bf16 rows are then converted to f32); cpu: host memory; GPU:
 *        device or pinned host memory.
 * n = 0 is a no-op. An id outside [0, rows) is never read: its out row is
 * zero-filled and FERRY_ERR_OUT_OF_RANGE, with the first bad position, comes
 * back through the stream's deferred errors. opts may be NULL. */
FERRY_API ferry_status ferry_gather(ferry_table *table, const ferry_tensor *ids,
                                    uint64_t n, const ferry_tensor *out,
                                    ferry_stream *stream,
                                    const ferry_gather_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_TABLE_H */
