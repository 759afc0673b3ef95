/*
 * ferry: fast large-graph GNN training on any vendor's GPU.
 *
 * The backend-neutral public API. One umbrella header; everything here is
 * prefixed ferry_ / FERRY_. Conventions (see docs/architecture.md):
 *   - every fallible call returns ferry_status; ferry_last_error() gives the
 *     calling thread's message naming the argument and the reason;
 *   - handles are opaque; ferry_<noun>_create(..., &out) / _destroy(x), and
 *     destroy accepts NULL;
 *   - inputs first, outputs last; outputs are written only on success;
 *   - options structs begin with struct_size and have a FERRY_*_INIT macro;
 *     the library reads only the fields struct_size covers.
 */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#include <stddef.h>
#include <stdint.h>

#include <ferry/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                  */
/* ------------------------------------------------------------------------ */

/* API version as 0xMMmmpp (major, minor, patch). */
#define FERRY_API_VERSION_MAJOR 0
#define FERRY_API_VERSION_MINOR 1
#define FERRY_API_VERSION_PATCH 0
#define FERRY_API_VERSION                                                      \
  ((FERRY_API_VERSION_MAJOR << 16) | (FERRY_API_VERSION_MINOR << 8) |          \
   FERRY_API_VERSION_PATCH)

/* The version of the library actually loaded (compare with FERRY_API_VERSION
 * to detect a header/library mismatch). */
FERRY_API unsigned ferry_get_api_version(void);

/* ------------------------------------------------------------------------ */
/* Status codes: stable numbers, grouped by cause (hundreds digit).          */
/* ------------------------------------------------------------------------ */

typedef enum ferry_status {
  FERRY_OK = 0,

  /* 1xx: the caller passed something wrong. */
  FERRY_ERR_INVALID_ARGUMENT = 100, /* a value is not acceptable */
  FERRY_ERR_NULL_POINTER = 101,     /* a required pointer or handle is NULL */
  FERRY_ERR_STRUCT_SIZE = 102,  /* an options struct's struct_size is wrong */
  FERRY_ERR_OUT_OF_RANGE = 103, /* an index or size is outside its range */
  FERRY_ERR_MISMATCH = 104,     /* arguments disagree: contexts, memory spaces,
                                   dtypes, shapes */
  FERRY_ERR_BAD_FORMAT = 105,   /* a file or string is malformed */

  /* 2xx: what was asked for is not available here. */
  FERRY_ERR_UNSUPPORTED = 200,     /* the backend lacks this operation */
  FERRY_ERR_NO_BACKEND = 201,      /* the named backend is not available */
  FERRY_ERR_NO_DEVICE = 202,       /* the backend has no (usable) device */
  FERRY_ERR_PLUGIN_REJECTED = 203, /* a plugin failed the loader's checks */
  FERRY_ERR_DEVICE_TOO_OLD = 204, /* the device is below the plugin's minimum */

  /* 3xx: resources. */
  FERRY_ERR_OUT_OF_MEMORY = 300,        /* host memory */
  FERRY_ERR_OUT_OF_DEVICE_MEMORY = 301, /* device memory */
  FERRY_ERR_IO = 302,                   /* a file could not be read/written */

  /* 4xx: state and runtime. */
  FERRY_ERR_NOT_READY = 400,    /* query: work is still in flight */
  FERRY_ERR_CONTEXT_LOST = 401, /* a device fault; destroy the context */
  FERRY_ERR_FORKED = 402,       /* called in a fork()ed child */
  FERRY_ERR_BACKEND = 403,      /* the vendor runtime reported an error */
  FERRY_ERR_BUSY = 404,         /* the object is in use */
  FERRY_ERR_INTERNAL = 499      /* a bug in ferry: please report it */
} ferry_status;

/* A static English name for a status ("FERRY_ERR_NULL_POINTER"), never NULL. */
FERRY_API const char *ferry_status_string(ferry_status status);

/* The calling thread's message for the last failing ferry call: which
 * argument, what was wrong. Owned by the library; valid until the thread's
 * next ferry call. "" when the last call succeeded. */
FERRY_API const char *ferry_last_error(void);

/* Details of the calling thread's last error. For a deferred (asynchronous)
 * error returned by a synchronize/query call, op and sequence name the
 * enqueued operation that failed; otherwise op is "" and sequence 0. */
typedef struct ferry_error_info {
  size_t struct_size;
  ferry_status status;
  const char *op;    /* e.g. "copy", "gather"; owned by the library */
  uint64_t sequence; /* the op's sequence number on its stream */
  const char *message;
} ferry_error_info;
#define FERRY_ERROR_INFO_INIT                                                  \
  { .struct_size = sizeof(ferry_error_info) }
FERRY_API ferry_status ferry_last_error_info(ferry_error_info *out);

/* ------------------------------------------------------------------------ */
/* Handles                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct ferry_context ferry_context;
typedef struct ferry_buffer ferry_buffer;
typedef struct ferry_stream ferry_stream;
typedef struct ferry_event ferry_event;

/* ------------------------------------------------------------------------ */
/* Devices and backends                                                      */
/* ------------------------------------------------------------------------ */

#define FERRY_NAME_MAX 128
#define FERRY_REASON_MAX 256
#define FERRY_BUS_ID_MAX 16

/* What a backend reports of one device. */
typedef struct ferry_device_info {
  size_t struct_size;
  char name[FERRY_NAME_MAX];
  char pci_bus_id[FERRY_BUS_ID_MAX]; /* lowercase "dddd:bb:dd.f", or "" */
  uint32_t pci_vendor_id;            /* 0x10de, 0x1002, ... or 0 */
  uint64_t total_memory;             /* bytes of device memory */
  /* The device's capability in the backend's own terms: CUDA compute
   * capability, AMD gfx major/minor, OpenCL version. */
  uint32_t capability_major;
  uint32_t capability_minor;
  uint32_t base_address_align;   /* bytes a buffer's base must be aligned to */
  uint32_t host_unified_memory;  /* nonzero: device memory is host memory */
  uint32_t usable;               /* zero: see reason */
  char reason[FERRY_REASON_MAX]; /* why unusable, or "" */
  /* Largest single buffer the device allows (OpenCL's
   * CL_DEVICE_MAX_MEM_ALLOC_SIZE; CUDA/HIP: the device memory); 0 when the
   * backend sets no limit or predates the field. Appended (ABI 1.x). */
  uint64_t max_alloc_bytes;
} ferry_device_info;
#define FERRY_DEVICE_INFO_INIT                                                 \
  { .struct_size = sizeof(ferry_device_info) }

/* What the loader found for one backend (plugin or built in). */
typedef struct ferry_backend_info {
  size_t struct_size;
  char name[FERRY_NAME_MAX];
  char path[512]; /* the plugin file, or "(built in)" */
  uint32_t abi_major;
  uint32_t abi_minor;
  int available;    /* loaded, initialised, and has a usable device */
  int device_count; /* devices it reports (usable or not) */
  char reason[FERRY_REASON_MAX]; /* why unavailable, or "" */
} ferry_backend_info;
#define FERRY_BACKEND_INFO_INIT                                                \
  { .struct_size = sizeof(ferry_backend_info) }

/* Backends the loader knows of (loaded or rejected), in discovery order. */
FERRY_API ferry_status ferry_backend_count(int *out);
FERRY_API ferry_status ferry_backend_get_info(int index,
                                              ferry_backend_info *out);
/* Device `device` of the backend named `backend`. */
FERRY_API ferry_status ferry_backend_get_device_info(const char *backend,
                                                     int device,
                                                     ferry_device_info *out);

/* ------------------------------------------------------------------------ */
/* Context                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct ferry_context_options {
  size_t struct_size;
  /* NULL or "auto": topology decides. One name ("cpu", "cuda", "hip",
   * "opencl") is strict: if unavailable, creation fails with the reason. A
   * comma list ("hip,opencl,cpu") falls through in order. Precedence: this
   * field, then the FERRY_BACKEND environment variable, then the topology. */
  const char *backend;
  int device_index; /* -1: choose (lowest PCI bus id); else the backend's index
                     */
  int num_threads;  /* worker pool size; 0: the cores of the chosen cpuset */
} ferry_context_options;
#define FERRY_CONTEXT_OPTIONS_INIT                                             \
  {                                                                            \
    .struct_size = sizeof(ferry_context_options), .backend = NULL,             \
    .device_index = -1, .num_threads = 0                                       \
  }

/* opts may be NULL (all defaults). */
FERRY_API ferry_status ferry_context_create(const ferry_context_options *opts,
                                            ferry_context **out);
/* Waits for all work, then frees the context's streams, events and the
 * backend context. Buffers must be destroyed first; any left are freed. */
FERRY_API void ferry_context_destroy(ferry_context *ctx);

typedef struct ferry_context_info {
  size_t struct_size;
  char backend[FERRY_NAME_MAX]; /* the backend actually running */
  int device_index;
  ferry_device_info device;
  int num_threads; /* worker pool threads */
  int lost;        /* nonzero once a device fault has been reported */
  /* Where host memory and the worker pool are placed (hwloc list strings:
   * NUMA node OS indices and PUs), "" when unrestricted. */
  char numa_nodes[256];
  char cpuset[256];
} ferry_context_info;
#define FERRY_CONTEXT_INFO_INIT                                                \
  { .struct_size = sizeof(ferry_context_info) }
FERRY_API ferry_status ferry_context_get_info(const ferry_context *ctx,
                                              ferry_context_info *out);

/* Waits until every stream of the context is idle; returns the first deferred
 * error of a stream already destroyed, if any. */
FERRY_API ferry_status ferry_context_synchronize(ferry_context *ctx);

/* ------------------------------------------------------------------------ */
/* Memory                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum ferry_memory_space {
  FERRY_MEMORY_HOST = 1,        /* ordinary host memory */
  FERRY_MEMORY_PINNED_HOST = 2, /* page-locked, mapped for the device */
  FERRY_MEMORY_DEVICE = 3       /* the device's own memory */
} ferry_memory_space;

typedef struct ferry_buffer_info {
  size_t struct_size;
  ferry_memory_space space;
  uint64_t size; /* bytes */
  char backend[FERRY_NAME_MAX];
  int device_index;
  /* Host address of the memory, or NULL when the host cannot address it
   * (device memory of a discrete GPU). */
  void *host_pointer;
  /* Address the backend's kernels use (CUDA/HIP device pointer), or NULL
   * where the backend has no such address (OpenCL cl_mem). */
  void *device_pointer;
  /* The backend's native object (cl_mem on OpenCL), or NULL. */
  void *native_handle;
  /* Host memory allocated by ferry: confirmed bound to these NUMA nodes
   * (hwloc list of OS indices). numa_bound is 0 for device memory, memory
   * ferry did not allocate, or when the binding could not be confirmed. */
  int numa_bound;
  char numa_nodes[256];
} ferry_buffer_info;
#define FERRY_BUFFER_INFO_INIT                                                 \
  { .struct_size = sizeof(ferry_buffer_info) }

/* size may be 0 (a valid, empty buffer). */
FERRY_API ferry_status ferry_buffer_create(ferry_context *ctx,
                                           ferry_memory_space space,
                                           uint64_t size, ferry_buffer **out);
/* Wrap a caller's host memory in place (not copied) as a pinned host buffer:
 * registered with the backend for device access, unregistered again when the
 * buffer goes. Memory someone else already registered (e.g. a framework's
 * pinned tensor) is used as is and left registered. The memory stays the
 * caller's and must outlive the buffer. */
FERRY_API ferry_status ferry_buffer_wrap_host(ferry_context *ctx, void *ptr,
                                              uint64_t size,
                                              ferry_buffer **out);
/* Releases the caller's reference. Memory is freed when the last reference
 * (the caller's, or one held by an exported DLPack tensor) is gone, after the
 * context's queued work that may use it has finished. */
FERRY_API void ferry_buffer_destroy(ferry_buffer *buf);
FERRY_API ferry_status ferry_buffer_get_info(const ferry_buffer *buf,
                                             ferry_buffer_info *out);

/* Asynchronous copies, ordered on `stream`. Host memory passed in stays the
 * caller's and must stay valid until the copy has completed (synchronize the
 * stream or an event recorded after it). Ranges are bounds-checked. */
FERRY_API ferry_status ferry_buffer_copy_async(
    ferry_stream *stream, ferry_buffer *dst, uint64_t dst_offset,
    const ferry_buffer *src, uint64_t src_offset, uint64_t size);
FERRY_API ferry_status ferry_buffer_write_async(ferry_stream *stream,
                                                ferry_buffer *dst,
                                                uint64_t dst_offset,
                                                const void *src, uint64_t size);
FERRY_API ferry_status ferry_buffer_read_async(ferry_stream *stream,
                                               const ferry_buffer *src,
                                               uint64_t src_offset, void *dst,
                                               uint64_t size);
/* Sets `size` bytes to `value` (0..255). */
FERRY_API ferry_status ferry_buffer_fill_async(ferry_stream *stream,
                                               ferry_buffer *dst,
                                               uint64_t dst_offset, int value,
                                               uint64_t size);

/* ------------------------------------------------------------------------ */
/* Tensors: views shaped like DLPack's DLTensor                              */
/* ------------------------------------------------------------------------ */

typedef enum ferry_dtype {
  FERRY_DTYPE_INVALID = 0,
  FERRY_DTYPE_F32 = 1,
  FERRY_DTYPE_F16 = 2,
  FERRY_DTYPE_BF16 = 3,
  FERRY_DTYPE_F64 = 4,
  FERRY_DTYPE_I32 = 5,
  FERRY_DTYPE_I64 = 6,
  FERRY_DTYPE_U8 = 7,
  FERRY_DTYPE_U16 = 8,
  FERRY_DTYPE_U32 = 9,
  FERRY_DTYPE_U64 = 10,
  FERRY_DTYPE_I8 = 11,
  FERRY_DTYPE_I16 = 12
} ferry_dtype;

/* Bytes per element, 0 for an unknown dtype. */
FERRY_API size_t ferry_dtype_size(ferry_dtype dtype);
/* "f32", "bf16", ... or "invalid". */
FERRY_API const char *ferry_dtype_name(ferry_dtype dtype);

#define FERRY_MAX_DIMS 8

/* A view of memory. Exactly one of `buffer` and `host` is set: a ferry buffer,
 * or a caller's host pointer (which stays the caller's). Strides are in
 * elements, as in DLPack; strides[0] == 0 for every dimension with ndim > 0
 * and all strides zero means "compact row-major". */
typedef struct ferry_tensor {
  ferry_buffer *buffer;
  void *host;
  uint64_t byte_offset;
  ferry_dtype dtype;
  int32_t ndim;
  int64_t shape[FERRY_MAX_DIMS];
  int64_t strides[FERRY_MAX_DIMS];
} ferry_tensor;

/* Fill a compact row-major view of `buffer` (ndim dimensions). */
FERRY_API ferry_status ferry_tensor_make(ferry_buffer *buffer,
                                         uint64_t byte_offset,
                                         ferry_dtype dtype, int32_t ndim,
                                         const int64_t *shape,
                                         ferry_tensor *out);

/* ------------------------------------------------------------------------ */
/* DLPack (C level). The structs are DLPack's own (v1.x); include your copy  */
/* of dlpack.h to use their fields. ferry does not install a dlpack.h.       */
/* ------------------------------------------------------------------------ */

struct DLManagedTensorVersioned;
struct DLManagedTensor;

/* Export a view as a versioned DLPack tensor. The result holds a reference to
 * the buffer until its deleter is called. Host views export as kDLCPU,
 * pinned host as kDLCUDAHost/kDLROCMHost, device as kDLCUDA/kDLROCM; OpenCL
 * memory exports only where the device shares host memory (as kDLCPU). */
FERRY_API ferry_status
ferry_tensor_to_dlpack(ferry_context *ctx, const ferry_tensor *tensor,
                       struct DLManagedTensorVersioned **out);

/* Import a DLPack tensor. ferry takes ownership of `managed` on success only:
 * the returned buffer calls its deleter when destroyed. *out_tensor views the
 * imported data. The device must be this context's (kDLCPU for cpu; host
 * memory is accepted by every backend as host memory). */
FERRY_API ferry_status ferry_buffer_from_dlpack(
    ferry_context *ctx, struct DLManagedTensorVersioned *managed,
    ferry_buffer **out_buffer, ferry_tensor *out_tensor);
/* The same for the legacy (unversioned) struct, as PyTorch 1.13 exports. */
FERRY_API ferry_status ferry_buffer_from_dlpack_legacy(
    ferry_context *ctx, struct DLManagedTensor *managed,
    ferry_buffer **out_buffer, ferry_tensor *out_tensor);

/* ------------------------------------------------------------------------ */
/* Streams and events                                                        */
/* ------------------------------------------------------------------------ */

/* An in-order queue of work. A stream may be used by one thread at a time. */
FERRY_API ferry_status ferry_stream_create(ferry_context *ctx,
                                           ferry_stream **out);
/* Wrap a framework's native stream (cudaStream_t, hipStream_t,
 * cl_command_queue). ferry never destroys it. The cpu backend has no native
 * streams and returns FERRY_ERR_UNSUPPORTED. */
FERRY_API ferry_status ferry_stream_wrap_native(ferry_context *ctx,
                                                void *native,
                                                ferry_stream **out);
/* Returns at once; queued work still runs to completion, then the stream's
 * resources are released. Deferred errors not yet collected move to the
 * context (see ferry_context_synchronize). */
FERRY_API void ferry_stream_destroy(ferry_stream *stream);
/* Waits for all queued work. Returns the first deferred error since the last
 * synchronize/query on this stream (see ferry_last_error_info). */
FERRY_API ferry_status ferry_stream_synchronize(ferry_stream *stream);
/* FERRY_OK when idle, FERRY_ERR_NOT_READY while work is queued, or the first
 * deferred error since the last synchronize/query. */
FERRY_API ferry_status ferry_stream_query(ferry_stream *stream);
/* Work queued on `stream` after this call waits until `event` completes. */
FERRY_API ferry_status ferry_stream_wait_event(ferry_stream *stream,
                                               ferry_event *event);
/* A host function run in stream order once the work before it is done (like
 * cudaLaunchHostFunc). It must not call ferry on the same stream. A status
 * other than FERRY_OK becomes the stream's deferred error for this op
 * ("host_fn"); it does not stop later work. */
typedef ferry_status (*ferry_host_fn)(void *user);
FERRY_API ferry_status ferry_stream_enqueue_host_fn(ferry_stream *stream,
                                                    ferry_host_fn fn,
                                                    void *user);

/* The sequence number the next op enqueued on the stream will get (the first
 * is 1). */
FERRY_API ferry_status ferry_stream_next_sequence(const ferry_stream *stream,
                                                  uint64_t *out);
/* The native stream (cudaStream_t, hipStream_t, cl_command_queue), NULL on
 * cpu. */
FERRY_API ferry_status ferry_stream_native_handle(const ferry_stream *stream,
                                                  void **out);

FERRY_API ferry_status ferry_event_create(ferry_context *ctx,
                                          ferry_event **out);
FERRY_API void ferry_event_destroy(ferry_event *event);
/* Captures the work queued on `stream` so far. */
FERRY_API ferry_status ferry_event_record(ferry_event *event,
                                          ferry_stream *stream);
/* Waits for the captured work. Returns the first deferred error of the
 * recorded stream since its last synchronize/query. An event never recorded
 * is complete. */
FERRY_API ferry_status ferry_event_synchronize(ferry_event *event);
FERRY_API ferry_status ferry_event_query(ferry_event *event);
/* Milliseconds between two completed events. */
FERRY_API ferry_status ferry_event_elapsed_ms(ferry_event *start,
                                              ferry_event *end, double *out);
/* The native event (cudaEvent_t, hipEvent_t, cl_event of the last record),
 * NULL on cpu (FERRY_ERR_UNSUPPORTED). */
FERRY_API ferry_status ferry_event_native_handle(const ferry_event *event,
                                                 void **out);

/* Topology and backend selection (hwloc). */
#include <ferry/topology.h>
/* The ops: feature tables and gathers, graphs and sampling, normalization,
 * the optimizer. */
#include <ferry/table.h>
#include <ferry/graph.h>
#include <ferry/norm.h>
#include <ferry/adan.h>
/* The minibatch loader that joins them. */
#include <ferry/loader.h>

#ifdef __cplusplus
}
#endif

#endif /* FERRY_FERRY_H */
