/* Internals of the cuda and hip plugins, shared by their files.
 *
 * Every slot that touches the runtime brackets its work with
 * ferry_gpu_enter/ferry_gpu_leave: the context's device is made current on
 * entry and the caller's previous state restored on exit, so a caller (say
 * PyTorch on another GPU) never finds its current device changed.
 *
 * Writing a GPU op:
 *   1. The op is declared in FERRY_BACKEND_OPS (include/ferry/backend.h).
 *   2. Define `ferry_gpu_op_<name>` with that parameter list in a file of its
 *      own here (gpu_op_<name>.c). The table (gpu_backend.c) picks it up by
 *      name; an op without a definition keeps a NULL slot, which the core
 *      reports as FERRY_ERR_UNSUPPORTED.
 *   3. Its kernels go in kernels/ (one .cuh each, included by
 *      kernels/ferry_kernels.cuh) with their names in kernels/kernel_names.h;
 *      launch them with ferry_gpu_launch().
 *   4. Report launch failures with ferry_gpu_fail(); faults of a running
 *      kernel are sticky and surface at the next synchronize as a lost
 *      context (see gpu_error.c). */
#ifndef FERRY_GPU_INTERNAL_H
#define FERRY_GPU_INTERNAL_H

#include "gpu_vendor.h"
#include "kernels/kernel_names.h"

#include <ferry/backend.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The host services given to init(); valid until fini(). */
extern const ferry_host_api *ferry_gpu_host;

/* The entry function, ferry_backend_cuda_entry or ferry_backend_hip_entry. */
FERRY_BACKEND_EXPORT const ferry_backend *FERRY_GPU_ENTRY(uint32_t abi_major);

/* "FERRY_ERR_NULL_POINTER", ... (plugins cannot call ferry_status_string). */
const char *ferry_gpu_status_name(ferry_status status);

/* Every op slot's implementation, declared from the X-macro. */
#define FERRY_GPU_OP_DECLARE(name, params)                                     \
  ferry_status ferry_gpu_op_##name params;
FERRY_BACKEND_OPS(FERRY_GPU_OP_DECLARE)
#undef FERRY_GPU_OP_DECLARE

/* ---- kernels (gpu_kernels.c) --------------------------------------------- */

enum {
#define FERRY_GPU_KERNEL_ENUM(name) FERRY_GPU_KERNEL_##name,
  FERRY_GPU_KERNELS(FERRY_GPU_KERNEL_ENUM)
#undef FERRY_GPU_KERNEL_ENUM
      FERRY_GPU_KERNEL_COUNT
};

/* ---- objects ------------------------------------------------------------- */

struct ferry_be_context {
  int device;
  void *cookie;       /* for host->context_lost */
  void *native_ctx;   /* CUDA: the device's primary context (see scope) */
  gpuModule_t module; /* ferry's kernels, loaded for this device */
  gpuKernel_t kernels[FERRY_GPU_KERNEL_COUNT];
  pthread_mutex_t lock;     /* guards `streams` */
  pthread_cond_t released;  /* a stream left `streams` */
  ferry_be_stream *streams; /* every stream not yet released */
};

/* A host function queued on a stream (user host_fn, or a fill/copy of
 * pageable host memory that must run in stream order). */
typedef struct ferry_gpu_closure ferry_gpu_closure;
typedef ferry_status (*ferry_gpu_closure_fn)(ferry_gpu_closure *c, char *msg,
                                             size_t msg_size);
struct ferry_gpu_closure {
  ferry_gpu_closure *prev, *next; /* the stream's pending list */
  ferry_be_stream *stream;
  ferry_gpu_closure_fn run;
  uint64_t seq;
  const char *op; /* a static string */
  bool running;
  union {
    struct {
      ferry_host_fn fn;
      void *user;
    } call;
    struct {
      void *dst;
      int value;
      uint64_t size;
    } fill;
    struct {
      void *dst;
      const void *src;
      uint64_t size;
    } copy;
  } u;
};

struct ferry_be_stream {
  ferry_be_context *ctx;
  gpuStream_t stream;
  void *cookie; /* for host->defer_error and host->stream_released */
  bool owned;   /* created by ferry (destroyed with it), not wrapped */
  /* Lifetime: the stream is released (host->stream_released, then freed)
   * once it was destroyed and nothing queued refers to it any more. */
  pthread_mutex_t lock;
  ferry_gpu_closure *pending; /* queued host functions not finished */
  int outstanding;            /* pending closures + a queued release */
  bool destroyed;
  bool released;
  ferry_be_stream *prev, *next; /* ctx->streams, under ctx->lock */
};

struct ferry_be_event {
  ferry_be_context *ctx;
  gpuEvent_t event;
};

/* Memory the plugin handed out: device memory, or host memory it registered
 * (in one piece or several: see gpu_register.c). */
struct ferry_be_buffer {
  void *ptr;    /* device memory, or the registered host range's start */
  void *device; /* the device address of ptr */
  uint64_t size;
  uint64_t chunk;  /* registration: bytes per chunk, 0 when in one piece */
  uint32_t chunks; /* registration: pieces registered */
};

/* ---- runtime errors (gpu_error.c) ---------------------------------------- */

/* The ferry status for a runtime error (without side effects). */
ferry_status ferry_gpu_status_of(gpuError_t err);
/* True for errors that leave the device context unusable (a faulting
 * kernel, an uncorrectable ECC error): every later call fails with them. */
bool ferry_gpu_error_is_sticky(gpuError_t err);
/* Report a failed runtime call: sets the thread's message ("<what>:
 * cudaErrorX: text"), marks the context lost for a sticky error, clears the
 * runtime's last error and returns the ferry status. `ctx` may be NULL. */
ferry_status ferry_gpu_fail(ferry_be_context *ctx, gpuError_t err,
                            const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with the status chosen by the caller (e.g. host memory that
 * could not be pinned is FERRY_ERR_OUT_OF_MEMORY, not device memory). */
ferry_status ferry_gpu_fail_as(ferry_be_context *ctx, ferry_status status,
                               gpuError_t err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "cudaErrorX: text" for messages. */
void ferry_gpu_describe(gpuError_t err, char *buf, size_t size);

/* ---- current device (one file per vendor: cuda_scope.c, hip_scope.c) ----- */

typedef struct ferry_gpu_scope {
  void *prev_ctx; /* CUDA: the caller's current context (may be NULL) */
  int prev_device;
  bool switched;
} ferry_gpu_scope;

/* Make the context's device current for this thread, remembering the
 * caller's state. Fails (with the message set) on a runtime thread running
 * a host function, where the runtime forbids its own calls. */
ferry_status ferry_gpu_enter(ferry_be_context *ctx, const char *what,
                             ferry_gpu_scope *scope);
/* Restore what ferry_gpu_enter found. */
void ferry_gpu_leave(ferry_gpu_scope *scope);
/* Context creation: make `device` current (creating its primary context)
 * and fill ctx->native_ctx; the caller's state is kept in `scope`. */
ferry_status ferry_gpu_enter_new(ferry_be_context *ctx, ferry_gpu_scope *scope);
/* True while this thread runs a host function for a GPU stream. */
extern _Thread_local bool ferry_gpu_in_callback;

/* ---- architectures (one file per vendor: cuda_arch.c, hip_arch.c) -------- */

/* Fill capability, usable and reason from the device's properties: whether
 * the plugin's kernels were built for this device. */
void ferry_gpu_arch_judge(const gpuDeviceProp_t *prop, ferry_device_info *out);

/* ---- slots --------------------------------------------------------------- */

ferry_status ferry_gpu_device_count(int *out);
ferry_status ferry_gpu_device_info(int device, ferry_device_info *out);

ferry_status ferry_gpu_context_create(const ferry_be_context_params *params,
                                      ferry_be_context **out);
void ferry_gpu_context_destroy(ferry_be_context *ctx, uint32_t flags);
ferry_status ferry_gpu_context_synchronize(ferry_be_context *ctx);
int ferry_gpu_context_num_threads(ferry_be_context *ctx);

ferry_status ferry_gpu_buffer_alloc(ferry_be_context *ctx,
                                    ferry_memory_space space, uint64_t size,
                                    ferry_be_buffer **out, void **host_ptr,
                                    void **device_ptr, void **native);
void ferry_gpu_buffer_free(ferry_be_context *ctx, ferry_be_buffer *buf,
                           uint32_t flags);
ferry_status ferry_gpu_host_register(ferry_be_context *ctx, void *ptr,
                                     uint64_t size, ferry_be_buffer **out,
                                     void **device_ptr, int *owned);
void ferry_gpu_host_unregister(ferry_be_context *ctx, ferry_be_buffer *buf,
                               void *ptr, int owned, uint32_t flags);

ferry_status ferry_gpu_stream_create(ferry_be_context *ctx, void *cookie,
                                     ferry_be_stream **out);
ferry_status ferry_gpu_stream_wrap(ferry_be_context *ctx, void *native,
                                   void *cookie, ferry_be_stream **out);
void ferry_gpu_stream_destroy(ferry_be_stream *s, uint32_t flags);
ferry_status ferry_gpu_stream_synchronize(ferry_be_stream *s);
ferry_status ferry_gpu_stream_query(ferry_be_stream *s);
ferry_status ferry_gpu_stream_wait_event(ferry_be_stream *s, ferry_be_event *e);
ferry_status ferry_gpu_stream_native(ferry_be_stream *s, void **out);
/* Free the memory of every stream of a context in a fork()ed child. */
void ferry_gpu_streams_forget(ferry_be_context *ctx);
/* Destroy the streams the caller left and wait until all are released. */
void ferry_gpu_streams_teardown(ferry_be_context *ctx, bool wait);

ferry_status ferry_gpu_event_create(ferry_be_context *ctx,
                                    ferry_be_event **out);
void ferry_gpu_event_destroy(ferry_be_event *e, uint32_t flags);
ferry_status ferry_gpu_event_record(ferry_be_event *e, ferry_be_stream *s);
ferry_status ferry_gpu_event_synchronize(ferry_be_event *e);
ferry_status ferry_gpu_event_query(ferry_be_event *e);
ferry_status ferry_gpu_event_elapsed_ms(ferry_be_event *start,
                                        ferry_be_event *end, double *out);
ferry_status ferry_gpu_event_native(ferry_be_event *e, void **out);

/* ---- host functions in stream order (gpu_callback.c) --------------------- */

/* Queue `proto` (run and u filled in; the rest is set here) to run on the
 * runtime's callback thread once the stream's earlier work is done. A
 * failure status of run() becomes the stream's deferred error for the op. */
ferry_status ferry_gpu_enqueue_host(ferry_be_stream *s,
                                    const ferry_be_launch *launch,
                                    const ferry_gpu_closure *proto);
/* Queue the stream's release behind its work (stream_destroy). */
void ferry_gpu_stream_release_later(ferry_be_stream *s);
/* Give up closures that will never run (the context failed), then release
 * the stream if nothing else refers to it. Call with s->lock held; returns
 * true when the caller must call ferry_gpu_stream_release(s) after
 * unlocking. */
bool ferry_gpu_stream_sweep_locked(ferry_be_stream *s, bool never_run);
/* Call host->stream_released, unlink the stream from its context and free
 * it. */
void ferry_gpu_stream_release(ferry_be_stream *s);

/* ---- kernels (gpu_kernels.c) --------------------------------------------- */

/* Load ferry's kernels for the current device (context creation). */
ferry_status ferry_gpu_kernels_load(ferry_be_context *ctx);
void ferry_gpu_kernels_unload(ferry_be_context *ctx);
/* Launch kernel `k` on a 1-D grid. */
ferry_status ferry_gpu_launch(ferry_be_stream *s, int k, uint32_t grid,
                              uint32_t block, uint32_t shared_bytes,
                              void **args);

/* ---- operands (gpu_memref.c) --------------------------------------------- */

/* What an operand is to the runtime: device (or managed) memory, registered
 * host memory, or pageable host memory. */
ferry_status ferry_gpu_memref_kind(ferry_be_context *ctx,
                                   const ferry_be_memref *m,
                                   gpuMemoryKind *kind);
/* The host address of a host operand (pageable, or registered, whose memref
 * holds its device address). */
ferry_status ferry_gpu_memref_host(ferry_be_context *ctx,
                                   const ferry_be_memref *m, void **out);

/* The address a memref designates (device, mapped pinned, or host). */
static inline void *ferry_gpu_memref_addr(const ferry_be_memref *m) {
  return m->ptr ? (char *)m->ptr + m->offset : NULL;
}

#endif /* FERRY_GPU_INTERNAL_H */
