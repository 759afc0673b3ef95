/*
 * The ferry plugin ABI, versioned apart from the API.
 *
 * A backend is one entry function returning a table:
 *
 *   const ferry_backend *ferry_backend_<name>_entry(uint32_t host_abi_major);
 *
 * The table begins with a frozen prefix (abi_major .. flags) that never
 * changes; fields after it are only ever appended within one major version,
 * and struct_size tells the core how far the plugin's table reaches. The core
 * rejects a wrong major, a struct_size shorter than ABI 1.0's table, or flags
 * it does not know. A NULL op slot means "unsupported": the core returns
 * FERRY_ERR_UNSUPPORTED for it without calling the plugin.
 *
 * The core hands the plugin a ferry_host_api (errors, logging, allocation,
 * deferred errors) in init(); plugins never resolve core symbols, so they
 * load with RTLD_LOCAL and carry no link dependency on libferry.
 *
 * Threading: every slot may be called from several threads at once, except
 * that one backend stream is used by one thread at a time and an object is
 * not used while it is being destroyed. Slots never print, abort or exit; a
 * failing slot sets the thread's message through host->set_error.
 */
#ifndef FERRY_BACKEND_H
#define FERRY_BACKEND_H

#include <stdarg.h>
#include <stdint.h>

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_BACKEND_ABI_MAJOR 1u
/* 1.0: memory ops (copy, fill, host_fn). 1.1: the op areas (gather, sample,
 * norm, adan). */
#define FERRY_BACKEND_ABI_MINOR 1u

/* Flags in the frozen prefix. Unknown bits make the core reject the plugin. */
enum {
  /* The device's memory is host memory (cpu; OpenCL on PoCL or an APU). */
  FERRY_BACKEND_FLAG_HOST_UNIFIED = 1u << 0,
  /* Backend streams can wrap a framework's native stream. */
  FERRY_BACKEND_FLAG_NATIVE_STREAMS = 1u << 1,
  FERRY_BACKEND_FLAGS_KNOWN = (1u << 2) - 1u
};

/* Flags for the destroy slots. */
enum {
  /* Called in a fork()ed child: touch no driver and no thread; free only
   * host memory the plugin itself allocated. */
  FERRY_BE_DESTROY_FORKED = 1u << 0
};

/* Plugin-defined objects: each plugin defines these structs privately. */
typedef struct ferry_be_context ferry_be_context;
typedef struct ferry_be_buffer ferry_be_buffer;
typedef struct ferry_be_stream ferry_be_stream;
typedef struct ferry_be_event ferry_be_event;

/* Services the core gives a plugin. Any function may be called from any
 * thread, including the plugin's own worker threads. */
typedef struct ferry_host_api {
  uint32_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t reserved;
  /* Set the calling thread's error message; returns `status`. */
  ferry_status (*set_error)(ferry_status status, const char *fmt, ...);
  /* Trace line (printed only with FERRY_TRACE=1). */
  void (*trace)(const char *backend, const char *fmt, ...);
  /* Host allocation; alignment a power of two (0: malloc's). */
  void *(*alloc)(uint64_t size, uint64_t alignment);
  void (*free)(void *ptr);
  /* Record an asynchronous error of op `seq` on the stream whose cookie the
   * core passed to stream_create/stream_wrap. The first one since the last
   * synchronize/query is what the core returns to the caller. */
  void (*defer_error)(void *stream_cookie, uint64_t seq, const char *op,
                      ferry_status status, const char *fmt, ...);
  /* Mark the context whose cookie the core passed to context_create as lost
   * (a device fault): every later call on it fails with `status`. */
  void (*context_lost)(void *context_cookie, ferry_status status,
                       const char *fmt, ...);
  /* The backend is done with a stream cookie: its stream's queued work has
   * finished and it will call defer_error with this cookie no more. Called
   * exactly once per stream_create/stream_wrap that succeeded, from any
   * thread, possibly after stream_destroy returned. */
  void (*stream_released)(void *stream_cookie);
} ferry_host_api;

/* Where an op's operand lives, resolved by the core from a ferry_buffer or a
 * caller's host pointer. The operand's address is base + offset where base is
 * `ptr`; `buffer` is NULL for plain host memory of the caller. */
typedef struct ferry_be_memref {
  ferry_be_buffer *buffer; /* the plugin's buffer, or NULL */
  void *ptr; /* host or device address of the buffer's start; NULL where the
                backend has none (OpenCL device buffers) */
  uint64_t offset;
  ferry_memory_space space;
} ferry_be_memref;

/* A tensor operand: a memref plus the view (strides in elements, never 0 for
 * a dimension of extent > 1: the core fills compact strides). */
typedef struct ferry_be_tensor {
  ferry_be_memref mem;
  ferry_dtype dtype;
  int32_t ndim;
  int64_t shape[FERRY_MAX_DIMS];
  int64_t strides[FERRY_MAX_DIMS];
} ferry_be_tensor;

/* What identifies one enqueued op: its stream's sequence number and name,
 * for deferred errors. */
typedef struct ferry_be_launch {
  uint64_t seq;
  const char *op;
} ferry_be_launch;

/* Parameters of a backend context. */
typedef struct ferry_be_context_params {
  uint32_t struct_size;
  int device_index;
  int num_threads; /* worker threads (0: backend's choice) */
  /* hwloc cpuset for worker threads, as hwloc's list string ("0-7,16"), or
   * "" for no binding. */
  const char *cpuset;
  void *context_cookie; /* for host->context_lost */
} ferry_be_context_params;

/* Ops on streams, declared once. X(name, parameter list after the stream and
 * launch). Each becomes a table slot
 *   ferry_status (*op_<name>)(ferry_be_stream *, const ferry_be_launch *, ...)
 * and a core wrapper that returns FERRY_ERR_UNSUPPORTED when it is NULL.
 * New ops are appended (ABI minor bump); never reorder. One list per area of
 * the API, concatenated in a fixed order below. */
#define FERRY_BACKEND_OPS_MEMORY(X)                                            \
  X(copy,                                                                      \
    (ferry_be_stream * s, const ferry_be_launch *l,                            \
     const ferry_be_memref *dst, const ferry_be_memref *src, uint64_t size))   \
  X(fill, (ferry_be_stream * s, const ferry_be_launch *l,                      \
           const ferry_be_memref *dst, int value, uint64_t size))              \
  X(host_fn, (ferry_be_stream * s, const ferry_be_launch *l, ferry_host_fn fn, \
              void *user))

/* Feature-table gathers (include/ferry/table.h). One call gathers n rows of
 * a table that may be split across several backend buffers (an OpenCL
 * device's maximum allocation): piece p holds rows [p * piece_rows,
 * min(rows, (p + 1) * piece_rows)), each piece compact and row-major. ids
 * is 1-D I32/I64, contiguous; out is 2-D compact (>= n, cols) of the table's
 * dtype, or F32 for an f16/bf16 table (converted). An id outside [0, rows)
 * zero-fills its out row and the backend defers FERRY_ERR_OUT_OF_RANGE with
 * the first bad position. method: a ferry_gather_method (never DEFAULT);
 * max_blocks: the grid cap (0: none). The core has checked every shape. */
typedef struct ferry_be_gather {
  uint32_t struct_size;
  uint32_t num_pieces;
  const ferry_be_memref *pieces;
  uint64_t piece_rows;
  uint64_t rows;
  uint64_t cols;
  ferry_dtype dtype;
  const ferry_be_tensor *ids;
  uint64_t n;
  const ferry_be_tensor *out;
  int method;
  uint32_t max_blocks;
  /* For backends whose kernels report bad ids through memory (cuda, hip):
   * 8 bytes of device memory and 8 of pinned host memory private to this
   * table and stream, or NULL (cpu, opencl). */
  const ferry_be_memref *flag_device;
  const ferry_be_memref *flag_host;
} ferry_be_gather;
#define FERRY_BACKEND_OPS_GATHER(X)                                            \
  X(gather,                                                                    \
    (ferry_be_stream * s, const ferry_be_launch *l, const ferry_be_gather *g))

/* Graph sampling (include/ferry/graph.h). One layer of a minibatch is three
 * ops, in stream order: sample_count writes the CSC offsets (int64, n + 1,
 * offsets[0] = 0) of the frontier's sampled edges; sample_pick writes each
 * frontier node's sampled neighbors (int64 global ids) at those offsets;
 * sample_relabel numbers frontier + neighbors by first occurrence. Every
 * backend must produce the same values element for element: the per-node
 * draws are core/philox.h's ferry_sample_positions. The frontier (int64, n
 * distinct ids < num_nodes) and every output are memory of the sampler's
 * context. Structs are valid during the call only. */
typedef struct ferry_be_csr {
  ferry_be_memref offsets; /* int64 [num_nodes + 1] */
  ferry_be_memref cols;    /* col_dtype [num_edges] */
  ferry_dtype col_dtype;   /* FERRY_DTYPE_I32 or FERRY_DTYPE_I64 */
  int64_t num_nodes;
  int64_t num_edges;
} ferry_be_csr;
typedef struct ferry_be_sample_layer {
  uint64_t seed;
  uint32_t batch_id;
  uint32_t layer;
  int64_t fanout; /* -1: every neighbor */
  int32_t replace;
} ferry_be_sample_layer;
/* sample_relabel's scratch (`scratch_bytes` bytes): at least room for
 * `table_slots` (a power of two >= 2 (n + e)) hash slots of two int64 (key,
 * first position), then n + e + 1 int64. On backends flagged HOST_UNIFIED
 * it also holds at least 4 * num_nodes bytes (room for a dense map). The
 * core zero-fills it when it allocates it; between relabels of one sampler
 * stream it keeps what the backend's last relabel left there. */
#define FERRY_BE_SAMPLE_SCRATCH_BYTES(slots, n_total)                          \
  ((uint64_t)(slots)*16u + ((uint64_t)(n_total) + 1u) * 8u)
#define FERRY_BACKEND_OPS_SAMPLE(X)                                            \
  X(sample_count,                                                              \
    (ferry_be_stream * s, const ferry_be_launch *l, const ferry_be_csr *g,     \
     const ferry_be_sample_layer *p, const ferry_be_memref *frontier,          \
     uint64_t n, const ferry_be_memref *offsets_out))                          \
  X(sample_pick,                                                               \
    (ferry_be_stream * s, const ferry_be_launch *l, const ferry_be_csr *g,     \
     const ferry_be_sample_layer *p, const ferry_be_memref *frontier,          \
     uint64_t n, const ferry_be_memref *offsets, const ferry_be_memref *out))  \
  X(sample_relabel,                                                            \
    (ferry_be_stream * s, const ferry_be_launch *l,                            \
     const ferry_be_memref *frontier, uint64_t n, const ferry_be_memref *nbrs, \
     uint64_t e, int64_t num_nodes, const ferry_be_memref *scratch,            \
     uint64_t scratch_bytes, uint64_t table_slots,                             \
     const ferry_be_memref *src_out, const ferry_be_memref *local_out,         \
     const ferry_be_memref *num_src_out))

/* LayerNorm and RMSNorm (include/ferry/norm.h). The core has checked
 * everything ferry_norm_forward/backward document: rows > 0 and cols > 0;
 * x/y/dy/dx 2-D of one dtype (f32, f16, bf16) with strides[1] == 1 and
 * strides[0] >= cols; gamma/beta/dgamma/dbeta 1-D of cols contiguous
 * elements, f32 or x's dtype; mean/rstd 1-D f32 of rows contiguous
 * elements. Optional operands are NULL. kind is a ferry_norm_kind; flags are
 * FERRY_NORM_* (FERRY_NORM_ACCUMULATE). */
#define FERRY_BACKEND_OPS_NORM(X)                                              \
  X(norm_forward,                                                              \
    (ferry_be_stream * s, const ferry_be_launch *l, int kind, float eps,       \
     const ferry_be_tensor *x, const ferry_be_tensor *gamma,                   \
     const ferry_be_tensor *beta, const ferry_be_tensor *y,                    \
     const ferry_be_tensor *mean, const ferry_be_tensor *rstd))                \
  X(norm_backward,                                                             \
    (ferry_be_stream * s, const ferry_be_launch *l, int kind, uint32_t flags,  \
     const ferry_be_tensor *dy, const ferry_be_tensor *x,                      \
     const ferry_be_tensor *gamma, const ferry_be_tensor *mean,                \
     const ferry_be_tensor *rstd, const ferry_be_tensor *dx,                   \
     const ferry_be_tensor *dgamma, const ferry_be_tensor *dbeta))

/* The Adan optimizer (include/ferry/adan.h). One op runs a whole step: the
 * gradient reduction when clipping or the finite check asks for it, the
 * per-group scalars (counter, bias corrections, clip coefficient) computed
 * on the device from the control block, then the fused update. */
#define FERRY_BE_ADAN_MAX_GROUPS 64
/* Per-block partial sums a GPU-style reduction may leave in the control
 * block; the scalar pass adds them in index order (deterministic). */
#define FERRY_BE_ADAN_PARTIALS 1024
/* Elements per entry of the device chunk table (a multiple of 64): one
 * GPU block of 256 threads each, 512 blocks for 1M parameters. */
#define FERRY_BE_ADAN_CHUNK 2048

enum {
  FERRY_BE_ADAN_NO_PROX = 1u << 0,
  FERRY_BE_ADAN_CLIP = 1u << 1,         /* max_grad_norm > 0 */
  FERRY_BE_ADAN_CHECK_FINITE = 1u << 2, /* skip on Inf/NaN gradients */
  FERRY_BE_ADAN_MASTER = 1u << 3        /* state holds f32 master weights */
};

/* One group's device-side scalars. step and master_ready persist; the rest
 * is what the scalar pass derived for the current step. */
typedef struct ferry_be_adan_group_ctl {
  uint32_t step;         /* k: steps taken */
  uint32_t master_ready; /* master weights hold the parameters */
  uint32_t use_master;   /* this step reads the master weights */
  uint32_t reserved;
  float s1;           /* lr / (1 - b1^k) */
  float s2;           /* lr b2 / (1 - b2^k) */
  float inv_sqrt_bc3; /* 1 / sqrt(1 - b3^k) */
  float decay;        /* 1 / (1 + lr wd), or 1 - lr wd with no_prox */
} ferry_be_adan_group_ctl;

/* The control block, in device memory, zeroed at creation. */
typedef struct ferry_be_adan_control {
  uint32_t skipped; /* the last step found a non-finite gradient */
  float clip;       /* the last step's clip coefficient */
  uint32_t reserved[2];
  ferry_be_adan_group_ctl groups[FERRY_BE_ADAN_MAX_GROUPS];
  float partial_sum[FERRY_BE_ADAN_PARTIALS];    /* of g^2 */
  uint32_t partial_bad[FERRY_BE_ADAN_PARTIALS]; /* a non-finite g */
} ferry_be_adan_control;

/* Hyper-parameters of one step (small enough to pass to a kernel). In
 * double: 1 - beta^k from an f32 beta would be off by ~1e-6 relative. */
typedef struct ferry_be_adan_hyper {
  double beta1, beta2, beta3, eps, max_grad_norm;
  uint32_t flags; /* FERRY_BE_ADAN_* */
  uint32_t group_count;
  double lr[FERRY_BE_ADAN_MAX_GROUPS];
  double weight_decay[FERRY_BE_ADAN_MAX_GROUPS];
} ferry_be_adan_hyper;

/* One tensor of a step. The state vectors of its group are `stride`
 * elements apart: m at state, then v, n, the previous gradient and (with
 * FERRY_BE_ADAN_MASTER) the f32 master weights. */
typedef struct ferry_be_adan_tensor {
  ferry_be_memref param, grad;
  ferry_be_memref state; /* the tensor's first m element */
  uint64_t stride;       /* elements between state vectors */
  uint64_t length;       /* elements, > 0 */
  uint32_t group;
  ferry_dtype param_dtype; /* f32, f16, bf16 */
  ferry_dtype grad_dtype;  /* f32 or param_dtype */
} ferry_be_adan_tensor;

/* The device chunk table's entry: up to FERRY_BE_ADAN_CHUNK elements of one
 * tensor, by address (memref ptr + offset), for kernels that walk every
 * tensor in one launch. */
typedef struct ferry_be_adan_chunk {
  uint64_t param, grad, state; /* addresses of the chunk's first elements */
  uint64_t stride;             /* elements between state vectors */
  uint32_t count;              /* elements, 1..FERRY_BE_ADAN_CHUNK */
  uint16_t group;
  uint8_t param_dtype, grad_dtype; /* ferry_dtype values */
} ferry_be_adan_chunk;

typedef struct ferry_be_adan_step {
  uint32_t struct_size;
  ferry_be_adan_hyper hyper;
  ferry_be_memref control; /* a ferry_be_adan_control */
  /* Valid during the call only: copy what queued work needs. */
  const ferry_be_adan_tensor *tensors;
  uint64_t tensor_count;
  /* The same tensors cut into chunks, in device memory, valid until the
   * step has run. */
  ferry_be_memref chunks;
  uint64_t chunk_count;
} ferry_be_adan_step;

#define FERRY_BACKEND_OPS_ADAN(X)                                              \
  X(adan_step, (ferry_be_stream * s, const ferry_be_launch *l,                 \
                const ferry_be_adan_step *step))

#define FERRY_BACKEND_OPS(X)                                                   \
  FERRY_BACKEND_OPS_MEMORY(X)                                                  \
  FERRY_BACKEND_OPS_GATHER(X)                                                  \
  FERRY_BACKEND_OPS_SAMPLE(X)                                                  \
  FERRY_BACKEND_OPS_NORM(X)                                                    \
  FERRY_BACKEND_OPS_ADAN(X)

#define FERRY_BE_OP_SLOT(name, params) ferry_status(*op_##name) params;

typedef struct ferry_backend {
  /* --- frozen prefix: identical in every ABI version --- */
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size; /* sizeof the plugin's table */
  uint32_t flags;       /* FERRY_BACKEND_FLAG_* */
  const char *name;     /* "cpu", "cuda", ... */
  int32_t priority;     /* higher wins among equal candidates */
  /* The oldest device capability the plugin's code runs on; devices below it
   * are reported unusable with the reason. */
  uint32_t min_capability_major;
  uint32_t min_capability_minor;

  /* --- ABI 1.0 --- */
  /* Called once after the checks. A failure (e.g. no driver) keeps the
   * plugin listed as unavailable with the message it set. */
  ferry_status (*init)(const ferry_host_api *host);
  void (*fini)(void);
  ferry_status (*device_count)(int *out);
  ferry_status (*device_info)(int device, ferry_device_info *out);

  ferry_status (*context_create)(const ferry_be_context_params *params,
                                 ferry_be_context **out);
  void (*context_destroy)(ferry_be_context *ctx, uint32_t flags);

  /* Device memory (FERRY_MEMORY_DEVICE only: host and pinned host memory is
   * allocated by the core, NUMA-bound next to the device, and registered
   * through host_register). *host_ptr / *device_ptr receive the buffer's
   * addresses (NULL where none exists); *native the backend object (cl_mem)
   * or NULL. size may be 0. */
  ferry_status (*buffer_alloc)(ferry_be_context *ctx, ferry_memory_space space,
                               uint64_t size, ferry_be_buffer **out,
                               void **host_ptr, void **device_ptr,
                               void **native);
  /* Frees after any queued work of the context that may use it. */
  void (*buffer_free)(ferry_be_context *ctx, ferry_be_buffer *buf,
                      uint32_t flags);
  /* Register host memory for device access (page-locked and mapped). *out
   * receives a backend handle for ops on it (e.g. a cl_mem made with
   * CL_MEM_USE_HOST_PTR), or NULL; *device_ptr the address kernels use (NULL
   * where none). Memory someone else already registered is used as is:
   * *owned = 0, and unregister then leaves it registered. NULL slot: host
   * memory is device-visible as it is (cpu). size > 0. */
  ferry_status (*host_register)(ferry_be_context *ctx, void *ptr, uint64_t size,
                                ferry_be_buffer **out, void **device_ptr,
                                int *owned);
  void (*host_unregister)(ferry_be_context *ctx, ferry_be_buffer *buf,
                          void *ptr, int owned, uint32_t flags);

  /* Streams. `cookie` identifies the core stream for host->defer_error. */
  ferry_status (*stream_create)(ferry_be_context *ctx, void *cookie,
                                ferry_be_stream **out);
  ferry_status (*stream_wrap)(ferry_be_context *ctx, void *native, void *cookie,
                              ferry_be_stream **out);
  /* Returns at once; queued work completes first, then resources go. */
  void (*stream_destroy)(ferry_be_stream *s, uint32_t flags);
  ferry_status (*stream_synchronize)(ferry_be_stream *s);
  /* FERRY_OK when idle, FERRY_ERR_NOT_READY when busy. */
  ferry_status (*stream_query)(ferry_be_stream *s);
  ferry_status (*stream_wait_event)(ferry_be_stream *s, ferry_be_event *e);
  ferry_status (*stream_native)(ferry_be_stream *s, void **out);

  ferry_status (*event_create)(ferry_be_context *ctx, ferry_be_event **out);
  void (*event_destroy)(ferry_be_event *e, uint32_t flags);
  ferry_status (*event_record)(ferry_be_event *e, ferry_be_stream *s);
  ferry_status (*event_synchronize)(ferry_be_event *e);
  ferry_status (*event_query)(ferry_be_event *e);
  ferry_status (*event_elapsed_ms)(ferry_be_event *start, ferry_be_event *end,
                                   double *out);
  ferry_status (*event_native)(ferry_be_event *e, void **out);

  /* Waits until every stream of the context is idle. */
  ferry_status (*context_synchronize)(ferry_be_context *ctx);
  /* Worker threads the context runs host work on (0 where none). */
  int (*context_num_threads)(ferry_be_context *ctx);

  /* Ops (ABI 1.0 set). */
  FERRY_BACKEND_OPS(FERRY_BE_OP_SLOT)
} ferry_backend;

/* The frozen prefix's size. */
#define FERRY_BACKEND_PREFIX_SIZE offsetof(ferry_backend, init)
/* ABI 1.0's table ends after op_host_fn: a shorter table is rejected. A
 * longer one from an older minor version is accepted; the core treats the
 * slots beyond its struct_size as NULL (unsupported). */
#define FERRY_BACKEND_SIZE_1_0                                                 \
  (offsetof(ferry_backend, op_host_fn) + sizeof(ferry_status(*)(void)))

/* The entry point's type. */
typedef const ferry_backend *(*ferry_backend_entry_fn)(uint32_t host_abi_major);

/* Plugins export their entry with this (default visibility, C linkage). */
#if defined(__GNUC__)
#define FERRY_BACKEND_EXPORT __attribute__((visibility("default"))) extern
#else
#define FERRY_BACKEND_EXPORT extern
#endif

#ifdef __cplusplus
}
#endif

#endif /* FERRY_BACKEND_H */
