/* Private declarations shared by the core's files. Nothing here is API. */
#ifndef FERRY_CORE_INTERNAL_H
#define FERRY_CORE_INTERNAL_H

#include <ferry/backend.h>
#include <ferry/ferry.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

/* ---- errors (error.c) ---------------------------------------------------- */

/* Set the thread's error (status + formatted message); returns `status`. */
ferry_status ferry__error(ferry_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
ferry_status ferry__verror(ferry_status status, const char *fmt, va_list ap);
/* Set the thread's error as a deferred one (with op and sequence). */
ferry_status ferry__error_deferred(ferry_status status, const char *op,
                                   uint64_t seq, const char *message);
void ferry__clear_error(void);

/* An output struct's struct_size must lie in [min, max] (from the first
 * version's size to this build's); otherwise FERRY_ERR_STRUCT_SIZE, naming
 * the INIT macro the caller should use. FERRY_OK when it does. */
ferry_status ferry__check_struct_size(const char *func, size_t given,
                                      size_t min, size_t max, const char *init);

/* Argument checks that set a message naming the argument. */
#define FERRY_CHECK_NULL(arg)                                                  \
  do {                                                                         \
    if ((arg) == NULL)                                                         \
      return ferry__error(FERRY_ERR_NULL_POINTER, "%s: argument '%s' is NULL", \
                          __func__, #arg);                                     \
  } while (0)

/* ---- process (process.c) ------------------------------------------------- */

/* Every public call begins with this: records the pid at first use, clears
 * the thread's error, and fails with FERRY_ERR_FORKED in a fork()ed child. */
ferry_status ferry__enter(const char *func);
#define FERRY_ENTER()                                                          \
  do {                                                                         \
    ferry_status ferry_enter_st_ = ferry__enter(__func__);                     \
    if (ferry_enter_st_ != FERRY_OK)                                           \
      return ferry_enter_st_;                                                  \
  } while (0)
/* True in a fork()ed child of the process that first used ferry. */
bool ferry__forked(void);
/* Trace line to stderr when FERRY_TRACE=1 (the library's only output). */
void ferry__trace(const char *who, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* secure_getenv where available. */
const char *ferry__getenv(const char *name);

/* ---- host services for plugins (host_api.c) ------------------------------ */

const ferry_host_api *ferry__host_api(void);

/* ---- plugins (loader.c) -------------------------------------------------- */

typedef struct ferry__plugin {
  char name[FERRY_NAME_MAX];
  char path[512];          /* file, or "(built in)" */
  const ferry_backend *be; /* NULL when rejected; else &table */
  /* The plugin's table widened to this core's: slots beyond the plugin's
   * struct_size (an older minor version) are NULL. */
  ferry_backend table;
  void *dl;            /* dlopen handle, NULL for built in */
  bool initialised;    /* init() succeeded */
  int device_count;    /* devices reported (usable or not) */
  ferry_status status; /* why unavailable (FERRY_OK when available) */
  char reason[FERRY_REASON_MAX];
} ferry__plugin;

/* All plugins found (including rejected ones), discovered once. */
void ferry__plugins(ferry__plugin **list, int *count);
/* The available plugin named `name`, or NULL with the status in *status, the
 * thread's error message, and (when `reason` is not NULL) the bare reason,
 * which stays valid for the process. */
const ferry__plugin *ferry__plugin_get(const char *name, ferry_status *status,
                                       const char **reason);
/* Device info from a plugin, with capability checked against its minimum. */
ferry_status ferry__plugin_device_info(const ferry__plugin *p, int device,
                                       ferry_device_info *out);

/* The built-in cpu backend's entry (backends/cpu). */
const ferry_backend *ferry_backend_cpu_entry(uint32_t host_abi_major);

/* ---- selection (select.c) ------------------------------------------------ */

typedef struct ferry__choice {
  const ferry__plugin *plugin;
  int device;
  char cpuset[256];  /* hwloc list string for the worker pool, "" = any */
  char nodeset[256]; /* hwloc list string of NUMA OS indices, "" = any */
} ferry__choice;

/* Resolve a backend request (the options' string, else FERRY_BACKEND, else
 * "auto") and a device index into a plugin and device. */
ferry_status ferry__choose(const char *request, int device_index,
                           ferry__choice *out);

/* ---- objects ------------------------------------------------------------- */

/* Where a stream's deferred errors collect. Shared by the core stream, the
 * backend (until stream_released) and events recorded on the stream. */
typedef struct ferry__sink {
  atomic_int refs;
  pthread_mutex_t lock;
  ferry_context *ctx;
  bool has_error;
  ferry_status status;
  uint64_t seq;
  char op[32];
  char message[512];
} ferry__sink;

ferry__sink *ferry__sink_create(ferry_context *ctx);
void ferry__sink_retain(ferry__sink *s);
void ferry__sink_release(ferry__sink *s);
/* Take the first deferred error (FERRY_OK if none), setting the thread's
 * error info to it. */
ferry_status ferry__sink_take(ferry__sink *s);

struct ferry_context {
  const ferry_backend *be;
  const ferry__plugin *plugin;
  ferry_be_context *impl;
  int device;
  ferry_device_info device_info;
  int num_threads;
  ferry__choice choice;
  pthread_mutex_t lock;
  atomic_int lost; /* nonzero: lost_status */
  ferry_status lost_status;
  char lost_message[512];
  /* The first deferred error of a stream destroyed before it was collected. */
  bool orphan_has_error;
  ferry_status orphan_status;
  uint64_t orphan_seq;
  char orphan_op[32];
  char orphan_message[512];
  /* Core streams and events the caller has not destroyed yet (under lock):
   * ferry_context_destroy frees what is left. */
  struct ferry_stream *streams;
  struct ferry_event *events;
};

/* Link/unlink core objects in their context's lists (takes ctx->lock). */
void ferry__context_add_stream(ferry_context *ctx, struct ferry_stream *s);
void ferry__context_remove_stream(ferry_context *ctx, struct ferry_stream *s);
void ferry__context_add_event(ferry_context *ctx, struct ferry_event *e);
void ferry__context_remove_event(ferry_context *ctx, struct ferry_event *e);
/* Free a stream's / event's core part after its backend part is gone. */
void ferry__stream_free(struct ferry_stream *s, bool forked);
void ferry__event_free(struct ferry_event *e, bool forked);

/* Check the context is usable (not lost); sets the error. */
ferry_status ferry__context_check(const ferry_context *ctx);

struct ferry_buffer {
  ferry_context *ctx;
  ferry_be_buffer *impl; /* NULL for imported foreign memory */
  ferry_memory_space space;
  uint64_t size;
  void *host_ptr;
  void *device_ptr;
  void *native;
  atomic_int refs;
  /* Host memory the core allocated (a ferry__host_mem, see host_memory.h). */
  void *host_mem;
  /* Registration with the backend (pinned host memory). */
  bool registered;
  int reg_owned;
  /* Imported (DLPack) or wrapped memory: called when the last ref goes. */
  void (*release)(void *arg);
  void *release_arg;
};

void ferry__buffer_retain(ferry_buffer *b);
/* Resolve a byte range of a buffer for the backend, checking that it lies
 * within the buffer and that the buffer belongs to `ctx`. */
ferry_status ferry__buffer_memref(ferry_context *ctx, const char *arg,
                                  const ferry_buffer *buf, uint64_t offset,
                                  uint64_t size, ferry_be_memref *out);
/* A buffer object around memory the core does not own (DLPack import). */
ferry_status ferry__buffer_foreign(ferry_context *ctx, ferry_memory_space space,
                                   void *host_ptr, void *device_ptr,
                                   uint64_t size, void (*release)(void *),
                                   void *release_arg, ferry_buffer **out);

struct ferry_stream {
  ferry_context *ctx;
  struct ferry_stream *prev, *next; /* the context's list */
  ferry_be_stream *impl;
  ferry__sink *sink;
  uint64_t next_seq; /* one thread at a time uses a stream */
};

struct ferry_event {
  ferry_context *ctx;
  struct ferry_event *prev, *next; /* the context's list */
  ferry_be_event *impl;
  pthread_mutex_t lock;
  ferry__sink *recorded; /* sink of the stream last recorded on, or NULL */
};

/* Assign the next sequence number of `stream` to an op named `op` (after
 * checking the context is not lost). */
ferry_status ferry__stream_launch(ferry_stream *stream, const char *op,
                                  ferry_be_launch *out);

/* Validate a tensor argument and resolve it for the backend: its buffer (if
 * any) belongs to `ctx`, its dtype/shape/strides are sane, and the viewed
 * range lies within the buffer. `arg` names it in messages. */
ferry_status ferry__tensor_resolve(ferry_context *ctx, const char *arg,
                                   const ferry_tensor *t, ferry_be_tensor *out);

#endif /* FERRY_CORE_INTERNAL_H */
