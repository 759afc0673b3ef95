/* Feature tables: creation (allocated or the caller's memory), placement,
 * row reads and writes, info and destruction. The .npy way in is
 * table_npy.c; gathers are table_gather.c and table_staged.c. */
#include "table_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

const char *ferry__placement_name(ferry_table_placement p) {
  switch (p) {
  case FERRY_PLACEMENT_AUTO:
    return "auto";
  case FERRY_PLACEMENT_ZEROCOPY:
    return "zerocopy";
  case FERRY_PLACEMENT_DEVICE:
    return "device";
  case FERRY_PLACEMENT_STAGED:
    return "staged";
  }
  return "unknown";
}

static bool is_cpu(const ferry_context *ctx) {
  return strcmp(ctx->plugin->name, "cpu") == 0;
}

/* Zero-copy is real where the device reads host memory through its own
 * addresses (CUDA, HIP) or shares it (PoCL, APUs). An OpenCL device with
 * memory of its own would keep a shadow copy: staged is the honest path. */
static bool zerocopy_real(const ferry_context *ctx) {
  return strcmp(ctx->plugin->name, "opencl") != 0 ||
         ctx->device_info.host_unified_memory != 0;
}

/* The largest piece a backend buffer may hold: OpenCL devices cap one
 * allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE, in device_info.max_alloc_bytes;
 * PoCL: 4 GiB); a plugin that does not report it gets 1 GiB, below every
 * device's limit we know of. CUDA and HIP register host memory of any size
 * and a DEVICE table larger than device memory fails anyway: no limit.
 * FERRY_TABLE_PIECE_BYTES overrides it (the tests split small tables to
 * exercise the multi-piece path). */
static uint64_t piece_limit(const ferry_context *ctx) {
  const char *e = ferry__getenv("FERRY_TABLE_PIECE_BYTES");
  if (e != NULL && *e != '\0') {
    char *end = NULL;
    unsigned long long v = strtoull(e, &end, 10);
    if (end != NULL && *end == '\0' && v > 0)
      return (uint64_t)v;
  }
  if (strcmp(ctx->plugin->name, "opencl") == 0)
    return ctx->device_info.max_alloc_bytes != 0
               ? ctx->device_info.max_alloc_bytes
               : UINT64_C(1) << 30;
  return UINT64_MAX;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b) {
  while (b != 0) {
    uint64_t r = a % b;
    a = b;
    b = r;
  }
  return a;
}

/* Rows per piece: whole rows, and a multiple of 4 KiB in bytes so that every
 * piece starts page-aligned (CL_MEM_USE_HOST_PTR wants the device's base
 * alignment, at most a page). */
static void plan_pieces(ferry_table *t) {
  uint64_t limit = piece_limit(t->ctx);
  if (t->rows == 0) {
    t->num_pieces = 0;
    t->piece_rows = 1;
    return;
  }
  if (t->bytes <= limit) {
    t->num_pieces = 1;
    t->piece_rows = t->rows;
    return;
  }
  uint64_t unit_rows = 4096 / gcd_u64(4096, t->row_bytes);
  uint64_t unit_bytes = unit_rows * t->row_bytes;
  uint64_t units = limit / unit_bytes;
  t->piece_rows = (units ? units : 1) * unit_rows;
  t->num_pieces = (uint32_t)((t->rows + t->piece_rows - 1) / t->piece_rows);
}

static uint64_t piece_len(const ferry_table *t, uint32_t p) {
  uint64_t first = (uint64_t)p * t->piece_rows;
  uint64_t n =
      t->rows - first < t->piece_rows ? t->rows - first : t->piece_rows;
  return n * t->row_bytes;
}

ferry_status ferry__table_check_options(const char *func,
                                        const ferry_table_options *opts,
                                        ferry_table_options *o) {
  ferry_table_options d = FERRY_TABLE_OPTIONS_INIT;
  *o = d;
  if (opts == NULL)
    return FERRY_OK;
  if (opts->struct_size <
          offsetof(ferry_table_options, placement) + sizeof opts->placement ||
      opts->struct_size > sizeof(ferry_table_options))
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "%s: opts->struct_size is %zu; use "
                        "FERRY_TABLE_OPTIONS_INIT",
                        func, opts->struct_size);
  memcpy(o, opts, opts->struct_size);
  o->struct_size = sizeof *o;
  if ((int)o->placement < FERRY_PLACEMENT_AUTO ||
      (int)o->placement > FERRY_PLACEMENT_STAGED)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: opts->placement is %d, not a "
                        "ferry_table_placement",
                        func, (int)o->placement);
  return FERRY_OK;
}

ferry_status ferry__table_new(const char *func, ferry_context *ctx,
                              uint64_t rows, uint64_t cols, ferry_dtype dtype,
                              const ferry_table_options *o, ferry_table **out) {
  if (dtype != FERRY_DTYPE_F32 && dtype != FERRY_DTYPE_F16 &&
      dtype != FERRY_DTYPE_BF16)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument 'dtype' is %s; a table holds f32, f16 "
                        "or bf16",
                        func, ferry_dtype_name(dtype));
  if (cols == 0)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument 'cols' is 0; a row needs at least one "
                        "column",
                        func);
  uint64_t row_bytes, bytes;
  if (__builtin_mul_overflow(cols, (uint64_t)ferry_dtype_size(dtype),
                             &row_bytes) ||
      __builtin_mul_overflow(rows, row_bytes, &bytes) ||
      bytes > (UINT64_C(1) << 62))
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "%s: %llu rows x %llu cols of %s is more memory than "
                        "any machine has",
                        func, (unsigned long long)rows,
                        (unsigned long long)cols, ferry_dtype_name(dtype));
  ferry_status st = ferry__context_check(ctx);
  if (st != FERRY_OK)
    return st;
  ferry_table *t = calloc(1, sizeof *t);
  if (t == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        func);
  t->ctx = ctx;
  t->rows = rows;
  t->cols = cols;
  t->dtype = dtype;
  t->row_bytes = row_bytes;
  t->bytes = bytes;
  pthread_mutex_init(&t->lock, NULL);
  ferry_table_placement p = o->placement;
  if (p == FERRY_PLACEMENT_AUTO) {
    /* Room to spare: training needs the rest of device memory. */
    p = !is_cpu(ctx) && bytes <= ctx->device_info.total_memory / 2
            ? FERRY_PLACEMENT_DEVICE
            : FERRY_PLACEMENT_ZEROCOPY;
  }
  t->placement = p;
  if (is_cpu(ctx))
    t->path = FERRY_GATHER_PATH_HOST;
  else if (p == FERRY_PLACEMENT_DEVICE)
    t->path = FERRY_GATHER_PATH_DEVICE;
  else if (p == FERRY_PLACEMENT_ZEROCOPY && zerocopy_real(ctx))
    t->path = FERRY_GATHER_PATH_ZEROCOPY;
  else
    t->path = FERRY_GATHER_PATH_STAGED;
  if (t->path == FERRY_GATHER_PATH_STAGED) {
    /* All cores of the device's NUMA node gather for STAGED. */
    st = ferry__gather_pool_acquire(ctx, &t->pool);
    if (st != FERRY_OK) {
      pthread_mutex_destroy(&t->lock);
      free(t);
      return st;
    }
  }
  plan_pieces(t);
  *out = t;
  return FERRY_OK;
}

/* Pieces over host memory at t->host: registered with the backend for the
 * ZEROCOPY path, plain memrefs for the host paths. */
ferry_status ferry__table_place_host(ferry_table *t) {
  if (t->num_pieces == 0)
    return FERRY_OK;
  t->refs = calloc(t->num_pieces, sizeof *t->refs);
  if (t->refs == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "table: out of host memory");
  uint64_t stride = t->piece_rows * t->row_bytes;
  if (t->path != FERRY_GATHER_PATH_ZEROCOPY) {
    for (uint32_t p = 0; p < t->num_pieces; p++) {
      t->refs[p].buffer = NULL;
      t->refs[p].ptr = t->host;
      t->refs[p].offset = (uint64_t)p * stride;
      t->refs[p].space = FERRY_MEMORY_HOST;
    }
    return FERRY_OK;
  }
  t->pieces = calloc(t->num_pieces, sizeof *t->pieces);
  if (t->pieces == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "table: out of host memory");
  for (uint32_t p = 0; p < t->num_pieces; p++) {
    uint64_t len = piece_len(t, p);
    ferry_status st = ferry__buffer_foreign(
        t->ctx, FERRY_MEMORY_PINNED_HOST, t->host + (uint64_t)p * stride, NULL,
        len, NULL, NULL, &t->pieces[p]);
    if (st == FERRY_OK)
      st = ferry__buffer_memref(t->ctx, "table", t->pieces[p], 0, len,
                                &t->refs[p]);
    if (st != FERRY_OK)
      return st;
  }
  return FERRY_OK;
}

ferry_status ferry__table_place_device(ferry_table *t) {
  if (t->num_pieces == 0)
    return FERRY_OK;
  t->refs = calloc(t->num_pieces, sizeof *t->refs);
  t->pieces = calloc(t->num_pieces, sizeof *t->pieces);
  if (t->refs == NULL || t->pieces == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "table: out of host memory");
  for (uint32_t p = 0; p < t->num_pieces; p++) {
    uint64_t len = piece_len(t, p);
    ferry_status st =
        ferry_buffer_create(t->ctx, FERRY_MEMORY_DEVICE, len, &t->pieces[p]);
    if (st == FERRY_OK)
      st = ferry__buffer_memref(t->ctx, "table", t->pieces[p], 0, len,
                                &t->refs[p]);
    if (st != FERRY_OK)
      return st;
  }
  return FERRY_OK;
}

/* Copy rows between host memory and DEVICE pieces, synchronously, a piece
 * range at a time. to_device: src is host memory; else dst is. */
ferry_status ferry__table_device_copy(ferry_table *t, uint64_t first_row,
                                      uint64_t num_rows, void *host,
                                      bool to_device,
                                      ferry_table_progress_fn progress,
                                      void *user) {
  if (num_rows == 0)
    return FERRY_OK;
  ferry_stream *s = NULL;
  ferry_status st = ferry_stream_create(t->ctx, &s);
  if (st != FERRY_OK)
    return st;
  /* Bounded chunks: progress is reported, and a failure leaves no more
   * than one chunk in flight. */
  const uint64_t chunk = UINT64_C(64) << 20;
  uint64_t done = 0, total = num_rows * t->row_bytes;
  uint64_t row = first_row, end = first_row + num_rows;
  while (st == FERRY_OK && row < end) {
    uint32_t p = (uint32_t)(row / t->piece_rows);
    uint64_t in_piece = row - (uint64_t)p * t->piece_rows;
    uint64_t piece_end = (uint64_t)(p + 1) * t->piece_rows;
    uint64_t stop = piece_end < end ? piece_end : end;
    uint64_t max_rows = chunk / t->row_bytes ? chunk / t->row_bytes : 1;
    if (stop - row > max_rows)
      stop = row + max_rows;
    uint64_t len = (stop - row) * t->row_bytes;
    char *h = (char *)host + (row - first_row) * t->row_bytes;
    st = to_device ? ferry_buffer_write_async(s, t->pieces[p],
                                              in_piece * t->row_bytes, h, len)
                   : ferry_buffer_read_async(s, t->pieces[p],
                                             in_piece * t->row_bytes, h, len);
    if (st == FERRY_OK)
      st = ferry_stream_synchronize(s);
    done += len;
    row = stop;
    if (st == FERRY_OK && progress != NULL)
      progress(done, total, user);
  }
  if (st != FERRY_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ferry_last_error());
    ferry_stream_synchronize(s);
    ferry_stream_destroy(s);
    return ferry__error(st, "table: copying rows %s the device: %s",
                        to_device ? "to" : "from", msg);
  }
  ferry_stream_destroy(s);
  return FERRY_OK;
}

void ferry_table_destroy(ferry_table *table) {
  if (table == NULL)
    return;
  ferry_table *t = table;
  bool forked = ferry__forked();
  /* Queued gathers may still read the table: wait for the context, like a
   * buffer does (not in a forked child, where the device is unreachable). */
  if (!forked && t->ctx->be->context_synchronize)
    t->ctx->be->context_synchronize(t->ctx->impl);
  ferry__table_staged_free(t);
  ferry__gather_pool_release(t->pool);
  if (t->pieces != NULL)
    for (uint32_t p = 0; p < t->num_pieces; p++)
      ferry_buffer_destroy(t->pieces[p]);
  free(t->pieces);
  free(t->refs);
  if (t->has_host_mem)
    ferry__host_free(&t->host_mem);
  if (t->map != NULL)
    munmap(t->map, (size_t)t->map_len);
  pthread_mutex_destroy(&t->lock);
  free(t);
  ferry__clear_error();
}

/* Allocate NUMA-bound host memory for t and place it. */
static ferry_status alloc_host(ferry_table *t) {
  ferry_status st = ferry__host_alloc(t->ctx, t->bytes, &t->host_mem);
  if (st != FERRY_OK)
    return st;
  t->has_host_mem = true;
  t->host = t->host_mem.ptr;
  /* Before first touch: huge pages where the kernel offers them (THP in
   * "madvise" mode). Random rows miss the TLB on nearly every row with 4 KiB
   * pages; measured on the 2-core VM, 512 B rows gather ~25% faster. Only
   * advice: a failure changes nothing. */
  if (t->bytes >= (UINT64_C(2) << 20))
    (void)madvise(t->host, (size_t)t->bytes, MADV_HUGEPAGE);
  return FERRY_OK;
}

ferry_status ferry__table_alloc_host(ferry_table *t) {
  return alloc_host(t);
}

ferry_status ferry_table_create(ferry_context *ctx, uint64_t rows,
                                uint64_t cols, ferry_dtype dtype,
                                const ferry_table_options *opts,
                                ferry_table **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(out);
  ferry_table_options o;
  ferry_status st = ferry__table_check_options(__func__, opts, &o);
  if (st != FERRY_OK)
    return st;
  ferry_table *t = NULL;
  st = ferry__table_new(__func__, ctx, rows, cols, dtype, &o, &t);
  if (st != FERRY_OK)
    return st;
  t->writable = true;
  if (t->path == FERRY_GATHER_PATH_DEVICE)
    st = ferry__table_place_device(t);
  else {
    st = alloc_host(t);
    if (st == FERRY_OK)
      st = ferry__table_place_host(t);
  }
  if (st != FERRY_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ferry_last_error());
    ferry_table_destroy(t);
    return ferry__error(st, "%s: %s", __func__, msg);
  }
  *out = t;
  return FERRY_OK;
}

ferry_status ferry_table_wrap_host(ferry_context *ctx, void *ptr, uint64_t rows,
                                   uint64_t cols, ferry_dtype dtype,
                                   const ferry_table_options *opts,
                                   ferry_table **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(ptr);
  FERRY_CHECK_NULL(out);
  ferry_table_options o;
  ferry_status st = ferry__table_check_options(__func__, opts, &o);
  if (st != FERRY_OK)
    return st;
  ferry_table *t = NULL;
  st = ferry__table_new(__func__, ctx, rows, cols, dtype, &o, &t);
  if (st != FERRY_OK)
    return st;
  if (t->path == FERRY_GATHER_PATH_DEVICE) {
    st = ferry__table_place_device(t);
    if (st == FERRY_OK)
      st = ferry__table_device_copy(t, 0, rows, ptr, true, o.progress,
                                    o.progress_user);
  } else {
    t->wrapped = true;
    t->host = ptr;
    st = ferry__table_place_host(t);
  }
  if (st != FERRY_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ferry_last_error());
    ferry_table_destroy(t);
    return ferry__error(st, "%s: %s", __func__, msg);
  }
  *out = t;
  return FERRY_OK;
}

static ferry_status check_rows(const char *func, const ferry_table *t,
                               uint64_t first_row, uint64_t num_rows) {
  if (first_row > t->rows || num_rows > t->rows - first_row)
    return ferry__error(
        FERRY_ERR_OUT_OF_RANGE,
        "%s: rows [%llu, %llu + %llu) lie outside the table's "
        "%llu rows",
        func, (unsigned long long)first_row, (unsigned long long)first_row,
        (unsigned long long)num_rows, (unsigned long long)t->rows);
  return FERRY_OK;
}

ferry_status ferry_table_write(ferry_table *table, uint64_t first_row,
                               uint64_t num_rows, const void *src) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(table);
  if (src == NULL && num_rows > 0)
    return ferry__error(FERRY_ERR_NULL_POINTER, "%s: argument 'src' is NULL",
                        __func__);
  if (!table->writable)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: the table was made from %s; only tables made by "
                        "ferry_table_create are written through ferry",
                        __func__,
                        table->file_mapped ? "a file" : "the caller's memory");
  ferry_status st = check_rows(__func__, table, first_row, num_rows);
  if (st != FERRY_OK)
    return st;
  st = ferry__context_check(table->ctx);
  if (st != FERRY_OK)
    return st;
  if (num_rows == 0)
    return FERRY_OK;
  if (table->host == NULL)
    return ferry__table_device_copy(table, first_row, num_rows, (void *)src,
                                    true, NULL, NULL);
  /* Gathers queued earlier may still read these rows. */
  if (table->ctx->be->context_synchronize)
    table->ctx->be->context_synchronize(table->ctx->impl);
  memcpy(table->host + first_row * table->row_bytes, src,
         num_rows * table->row_bytes);
  return FERRY_OK;
}

ferry_status ferry_table_read(const ferry_table *table, uint64_t first_row,
                              uint64_t num_rows, void *dst) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(table);
  if (dst == NULL && num_rows > 0)
    return ferry__error(FERRY_ERR_NULL_POINTER, "%s: argument 'dst' is NULL",
                        __func__);
  ferry_status st = check_rows(__func__, table, first_row, num_rows);
  if (st != FERRY_OK)
    return st;
  if (num_rows == 0)
    return FERRY_OK;
  if (table->host == NULL)
    return ferry__table_device_copy((ferry_table *)table, first_row, num_rows,
                                    dst, false, NULL, NULL);
  memcpy(dst, table->host + first_row * table->row_bytes,
         num_rows * table->row_bytes);
  return FERRY_OK;
}

ferry_status ferry_table_get_info(const ferry_table *table,
                                  ferry_table_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(table);
  FERRY_CHECK_NULL(out);
  /* Callers built before host_threads existed pass the shorter size. */
  ferry_status st = ferry__check_struct_size(
      __func__, out->struct_size, offsetof(ferry_table_info, host_threads),
      sizeof(ferry_table_info), "FERRY_TABLE_INFO_INIT");
  if (st != FERRY_OK)
    return st;
  ferry_table_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.rows = table->rows;
  info.cols = table->cols;
  info.dtype = table->dtype;
  info.row_bytes = table->row_bytes;
  info.placement = table->placement;
  info.path = table->path;
  info.wrapped = table->wrapped;
  info.file_mapped = table->file_mapped;
  if (table->has_host_mem) {
    info.numa_bound = table->host_mem.bound;
    snprintf(info.numa_nodes, sizeof info.numa_nodes, "%s",
             table->host_mem.nodeset);
  }
  info.pieces = table->num_pieces ? table->num_pieces : 1;
  info.host_pointer = table->host;
  if (table->path == FERRY_GATHER_PATH_HOST)
    info.host_threads =
        table->ctx->num_threads > 0 ? table->ctx->num_threads : 1;
  else if (table->path == FERRY_GATHER_PATH_STAGED)
    info.host_threads = ferry__gather_pool_threads(table->pool);
  size_t size = out->struct_size;
  info.struct_size = size;
  memcpy(out, &info, size);
  return FERRY_OK;
}
