/* Private declarations shared by the opencl plugin's files. */
#ifndef FERRY_OPENCL_INTERNAL_H
#define FERRY_OPENCL_INTERNAL_H

#include "errors.h"
#include "program.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- devices (devices.c) --------------------------------------------------
 */

/* One device of one platform, as init found it. */
typedef struct ocl_device {
  cl_platform_id platform;
  cl_device_id id;
  ferry_device_info info;
  uint64_t max_alloc; /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
} ocl_device;

/* Device `index` (over all platforms), or NULL when out of range. */
const ocl_device *ocl_device_get(int index);

ferry_status ocl_init(const ferry_host_api *host);
void ocl_fini(void);
ferry_status ocl_device_count(int *out);
ferry_status ocl_device_info(int device, ferry_device_info *out);

/* ---- contexts (context.c) -------------------------------------------------
 */

/* Intrusive list links: the context owns every stream, event and buffer made
 * on it until destroyed, and frees those the caller leaves behind. */
typedef struct ocl_link {
  struct ocl_link *prev, *next;
} ocl_link;

struct ferry_be_context {
  cl_context cl;
  const ocl_device *dev;
  void *cookie; /* for host->context_lost */
  pthread_mutex_t lock;
  pthread_cond_t stream_released; /* a destroyed stream finished releasing */
  ocl_link streams, events, buffers;
  ocl_program_cache programs;
};

/* Add `node` to one of the context's lists / take it off again. Without the
 * lock in a fork()ed child, where only this thread exists. */
void ocl_context_adopt(ferry_be_context *ctx, ocl_link *list, ocl_link *node);
void ocl_context_drop(ferry_be_context *ctx, ocl_link *node, uint32_t flags);
/* Free streams whose release has finished (joins their worker threads). */
void ocl_context_reap(ferry_be_context *ctx);

ferry_status ocl_context_create(const ferry_be_context_params *params,
                                ferry_be_context **out);
void ocl_context_destroy(ferry_be_context *ctx, uint32_t flags);
ferry_status ocl_context_synchronize(ferry_be_context *ctx);

/* ---- buffers (buffers.c) --------------------------------------------------
 */

struct ferry_be_buffer {
  ocl_link link; /* first: the context's list casts back */
  cl_mem mem;
};

ferry_status ocl_buffer_alloc(ferry_be_context *ctx, ferry_memory_space space,
                              uint64_t size, ferry_be_buffer **out,
                              void **host_ptr, void **device_ptr,
                              void **native);
void ocl_buffer_free(ferry_be_context *ctx, ferry_be_buffer *buf,
                     uint32_t flags);
ferry_status ocl_host_register(ferry_be_context *ctx, void *ptr, uint64_t size,
                               ferry_be_buffer **out, void **device_ptr,
                               int *owned);
void ocl_host_unregister(ferry_be_context *ctx, ferry_be_buffer *buf, void *ptr,
                         int owned, uint32_t flags);

/* ---- streams (streams.c) --------------------------------------------------
 */

/* Host work run in stream order on the stream's worker thread. */
typedef enum ocl_task_kind {
  OCL_TASK_HOST_FN, /* the caller's function */
  OCL_TASK_COPY,    /* memmove between host addresses */
  OCL_TASK_FILL,    /* memset of host memory */
  OCL_TASK_RELEASE  /* the stream was destroyed and its work is done */
} ocl_task_kind;

typedef struct ocl_task {
  struct ocl_task *next;
  struct ferry_be_stream *stream;
  ocl_task_kind kind;
  uint64_t seq;
  char op[32];
  ferry_host_fn fn;
  void *user;
  void *dst;
  const void *src;
  int value;
  uint64_t size;
  cl_event marker; /* completes once the work before the task is done */
  cl_event gate;   /* user event the work after the task waits for */
} ocl_task;

typedef enum ocl_stream_state {
  OCL_STREAM_LIVE,
  OCL_STREAM_RELEASING, /* destroyed; its queued work is still running */
  OCL_STREAM_RELEASED   /* queue released, cookie handed back: reapable */
} ocl_stream_state;

struct ferry_be_stream {
  ocl_link link; /* first: the context's list casts back */
  ferry_be_context *ctx;
  cl_command_queue queue;
  void *cookie;
  /* The last command ferry enqueued (retained), for stream_query. Touched
   * only by the thread using the stream. */
  cl_event last;
  /* Guarded by ctx->lock. */
  ocl_stream_state state;
  int refs; /* context_synchronize calls looking at it: not reapable */
  /* Guarded by `lock`. */
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int inflight; /* command watches and host tasks not yet finished */
  ocl_task *head, *tail;
  bool has_worker, worker_exit;
  pthread_t worker;
};

ferry_status ocl_stream_create(ferry_be_context *ctx, void *cookie,
                               ferry_be_stream **out);
ferry_status ocl_stream_wrap(ferry_be_context *ctx, void *native, void *cookie,
                             ferry_be_stream **out);
void ocl_stream_destroy(ferry_be_stream *s, uint32_t flags);
ferry_status ocl_stream_synchronize(ferry_be_stream *s);
ferry_status ocl_stream_query(ferry_be_stream *s);
ferry_status ocl_stream_wait_event(ferry_be_stream *s, ferry_be_event *e);
ferry_status ocl_stream_native(ferry_be_stream *s, void **out);

/* Wait until every command and host task queued so far has finished and
 * reported its errors. */
ferry_status ocl_stream_finish(ferry_be_stream *s);
/* Wait until `inflight` reaches zero. */
void ocl_stream_wait_idle(ferry_be_stream *s);
/* A stream the caller never destroyed, at context destruction: finish its
 * work, release it and free it. */
void ocl_stream_teardown(ferry_be_stream *s);
/* Free a released stream (joins its worker). Forked: frees memory only. */
void ocl_stream_free(ferry_be_stream *s, uint32_t flags);

/* Note `ev` (retained here, not taken) as the stream's last command. */
void ocl_stream_note(ferry_be_stream *s, cl_event ev);

/* Run `t` (not RELEASE) in stream order. Takes `t` on success; on failure
 * the caller still owns it. */
ferry_status ocl_stream_host_task(ferry_be_stream *s, ocl_task *t);

/* Watching one enqueued command for an asynchronous failure, which becomes
 * the stream's deferred error for the op. Made before the command is
 * enqueued (so that running out of memory leaves nothing enqueued), then
 * started with its event or cancelled. */
typedef struct ocl_watch ocl_watch;
ferry_status ocl_watch_new(ferry_be_stream *s, const ferry_be_launch *l,
                           ocl_watch **out);
/* Takes the event; never fails (without a callback it waits here). */
void ocl_watch_start(ocl_watch *w, cl_event ev);
void ocl_watch_cancel(ocl_watch *w);

/* Report a command's negative execution status: a deferred error of the op,
 * and a lost context when the status means the device is gone. */
void ocl_report_command_error(ferry_be_stream *s, uint64_t seq, const char *op,
                              cl_int status);

/* ---- events (events.c) ----------------------------------------------------
 */

struct ferry_be_event {
  ocl_link link; /* first: the context's list casts back */
  ferry_be_context *ctx;
  pthread_mutex_t lock;
  cl_event ev; /* marker of the last record, or NULL */
};

/* The event's marker, retained, or NULL when never recorded. */
cl_event ocl_event_acquire(ferry_be_event *e);

ferry_status ocl_event_create(ferry_be_context *ctx, ferry_be_event **out);
void ocl_event_destroy(ferry_be_event *e, uint32_t flags);
ferry_status ocl_event_record(ferry_be_event *e, ferry_be_stream *s);
ferry_status ocl_event_synchronize(ferry_be_event *e);
ferry_status ocl_event_query(ferry_be_event *e);
ferry_status ocl_event_elapsed_ms(ferry_be_event *start, ferry_be_event *end,
                                  double *out);
ferry_status ocl_event_native(ferry_be_event *e, void **out);
/* Free an event at context destruction. */
void ocl_event_free(ferry_be_event *e, uint32_t flags);

/* ---- ops (ops.c) ----------------------------------------------------------
 */

ferry_status ocl_op_copy(ferry_be_stream *s, const ferry_be_launch *l,
                         const ferry_be_memref *dst, const ferry_be_memref *src,
                         uint64_t size);
ferry_status ocl_op_fill(ferry_be_stream *s, const ferry_be_launch *l,
                         const ferry_be_memref *dst, int value, uint64_t size);
ferry_status ocl_op_host_fn(ferry_be_stream *s, const ferry_be_launch *l,
                            ferry_host_fn fn, void *user);

#endif /* FERRY_OPENCL_INTERNAL_H */
