/* The cpu backend's internals, shared by its files and by the cpu versions of
 * ferry's ops (gather, sampler, LayerNorm, Adan, ...).
 *
 * Writing a cpu op:
 *   1. The op is declared in FERRY_BACKEND_OPS (include/ferry/backend.h).
 *   2. Define `ferry_cpu_op_<name>` with that parameter list in a file of its
 *      own under backends/cpu/. The table (cpu_backend.c) picks it up by
 *      name; an op without a definition leaves its slot NULL, which the core
 *      reports as FERRY_ERR_UNSUPPORTED. No other file needs editing.
 *   3. The op validates what the core cannot know, copies what it needs into
 *      an args struct and calls ferry_cpu_enqueue(). The task runs later on
 *      the stream's dispatcher thread (or at once under FERRY_CPU_SYNC=1);
 *      it may split work with ferry_cpu_parallel_for() and reports failures
 *      with ferry_cpu_task_fail() (a deferred error, never a print).
 *
 * Nothing here calls the core: every service goes through the
 * ferry_host_api given to init (ferry_cpu_host), so the same sources build
 * both into libferry and as the stand-alone plugin used by the ABI tests. */
#ifndef FERRY_CPU_INTERNAL_H
#define FERRY_CPU_INTERNAL_H

#include <ferry/backend.h>

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the backend (cpu_backend.c) ----------------------------------------- */

/* The host services given to init(); valid until fini(). */
extern const ferry_host_api *ferry_cpu_host;

/* The entry function (also declared by core/internal.h). */
const ferry_backend *ferry_backend_cpu_entry(uint32_t host_abi_major);

/* "FERRY_ERR_NULL_POINTER", ... for messages: the backend cannot call the
 * core's ferry_status_string(). Never NULL. */
const char *ferry_cpu_status_name(ferry_status status);

/* Every op slot's implementation, declared from the X-macro. */
#define FERRY_CPU_OP_DECLARE(name, params)                                     \
  ferry_status ferry_cpu_op_##name params;
FERRY_BACKEND_OPS(FERRY_CPU_OP_DECLARE)
#undef FERRY_CPU_OP_DECLARE

/* ---- worker pool (cpu_pool.c) -------------------------------------------- */

/* Body of a parallel loop: handles indices [begin, end). */
typedef void (*ferry_cpu_range_fn)(void *arg, uint64_t begin, uint64_t end);

typedef struct ferry_cpu_job ferry_cpu_job;

typedef struct ferry_cpu_pool {
  pthread_mutex_t lock;
  pthread_cond_t work; /* helpers wait here for a job */
  pthread_cond_t left; /* callers wait here for helpers to leave a job */
  ferry_cpu_job *jobs; /* jobs with chunks possibly unclaimed, oldest first */
  bool stopping;
  int helpers; /* threads running */
  pthread_t *threads;
} ferry_cpu_pool;

/* Start `helpers` threads bound to `cpus` (setsize bytes, CPU_ALLOC style).
 * On failure nothing is left running. */
ferry_status ferry_cpu_pool_start(ferry_cpu_pool *pool, int helpers,
                                  const cpu_set_t *cpus, size_t setsize);
/* Join the helpers (no job may be running) and free the pool's memory. */
void ferry_cpu_pool_stop(ferry_cpu_pool *pool);
/* In a fork()ed child the helpers are gone: free memory only. */
void ferry_cpu_pool_forget(ferry_cpu_pool *pool);
/* Run fn over [0, n) in chunks of `chunk` indices (0: 1) on the pool's
 * helpers and the calling thread, which always takes chunks itself (so the
 * call finishes even while every helper is busy elsewhere). Returns when
 * every chunk has run. ferry_cpu_parallel_for is this on a context's pool;
 * the core's STAGED gathers use it on a pool of their own. */
void ferry_cpu_pool_run(ferry_cpu_pool *pool, uint64_t n, uint64_t chunk,
                        ferry_cpu_range_fn fn, void *arg);

/* Start a thread bound to `cpus` with every signal blocked (signals belong
 * to the application's threads). Returns 0 or an errno value. */
int ferry_cpu_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg,
                           const cpu_set_t *cpus, size_t setsize);

/* ---- context (cpu_context.c) --------------------------------------------- */

struct ferry_be_context {
  void *cookie;     /* for host->context_lost */
  int num_threads;  /* helpers + the thread calling parallel_for */
  bool sync;        /* FERRY_CPU_SYNC: run every task at enqueue */
  cpu_set_t *cpus;  /* where the context's threads run */
  size_t cpus_size; /* bytes of `cpus` */
  ferry_cpu_pool pool;
  pthread_mutex_t lock; /* guards `streams` and the streams' list fields */
  pthread_cond_t stream_exited;
  ferry_be_stream *streams; /* every stream not yet freed, newest first */
  /* Events' fences complete under one lock per context, so that a fence
   * holds no mutex or condition variable of its own: dropping one is a
   * plain free, safe even in a fork()ed child. */
  pthread_mutex_t fence_lock;
  pthread_cond_t fence_done;
};

/* Run fn over [0, n) in chunks of `chunk` indices (0: the backend chooses)
 * on the context's pool. The calling thread takes chunks too, so a body may
 * itself call ferry_cpu_parallel_for without deadlock. Chunk boundaries
 * depend only on n and chunk, never on the thread count: a body that keeps
 * one partial result per chunk (index begin / chunk) gives the same result
 * with any number of threads. Returns when every chunk has run. */
void ferry_cpu_parallel_for(ferry_be_context *ctx, uint64_t n, uint64_t chunk,
                            ferry_cpu_range_fn fn, void *arg);

/* Threads a parallel_for of this context uses (>= 1). */
int ferry_cpu_num_threads(const ferry_be_context *ctx);

/* ---- streams and tasks (cpu_stream.c) ------------------------------------ */

typedef struct ferry_cpu_task ferry_cpu_task;

struct ferry_be_stream {
  ferry_be_context *ctx;
  void *cookie; /* for host->defer_error and host->stream_released */
  pthread_mutex_t lock;
  pthread_cond_t wake; /* dispatcher: a task arrived or the stream closes */
  pthread_cond_t idle; /* synchronizers: `finished` advanced */
  ferry_cpu_task *head, *tail;
  uint64_t submitted; /* tasks enqueued so far */
  uint64_t finished;  /* tasks run so far (in order) */
  bool closing;       /* stream_destroy was called */
  /* Under ctx->lock: */
  bool destroyed;  /* stream_destroy (or context_destroy) took it */
  bool exited;     /* the dispatcher will touch the stream no more */
  bool has_thread; /* a dispatcher thread runs (not in sync mode) */
  int holds;       /* threads waiting on it outside ctx->lock */
  pthread_t thread;
  ferry_be_stream *next;
};

/* A task's body. `args` is the task's own copy of what ferry_cpu_enqueue was
 * given; the body may modify it. */
typedef void (*ferry_cpu_task_fn)(const ferry_cpu_task *task, void *args);
/* Releases what args own (memory, references) once the task ran, or when a
 * task is dropped unrun in a fork()ed child; so it may only free memory and
 * drop references, never wait or lock. NULL when args own nothing. */
typedef void (*ferry_cpu_task_cleanup_fn)(void *args);

/* Append a task to the stream: `args_size` bytes at `args` are copied (and
 * aligned for any type). `launch` names the op for deferred errors; NULL for
 * internal tasks (sequence 0, op ""). Returns at once unless the context runs
 * in sync mode, in which case the task has run when this returns. On failure
 * nothing is enqueued and `cleanup` is not called. */
ferry_status ferry_cpu_enqueue(ferry_be_stream *s,
                               const ferry_be_launch *launch,
                               ferry_cpu_task_fn fn, const void *args,
                               size_t args_size,
                               ferry_cpu_task_cleanup_fn cleanup);

/* The same for an event's marker (internal, sequence 0): its body runs with
 * the stream's lock held, in the step that counts it finished, so it must
 * be short and take no lock but the context's fence lock. */
ferry_status ferry_cpu_enqueue_marker(ferry_be_stream *s, ferry_cpu_task_fn fn,
                                      const void *args, size_t args_size,
                                      ferry_cpu_task_cleanup_fn cleanup);

/* Report the task's failure as the stream's deferred error (op and sequence
 * of the task's launch). Later tasks still run, as in CUDA. */
void ferry_cpu_task_fail(const ferry_cpu_task *task, ferry_status status,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

ferry_be_context *ferry_cpu_task_context(const ferry_cpu_task *task);
uint64_t ferry_cpu_task_sequence(const ferry_cpu_task *task);

/* Wait for the work queued so far on every stream of the context (except
 * the calling task's own stream: its earlier work is done and its later
 * work cannot be waited for from inside it); a stream already destroyed is
 * waited for until it has been released (host->stream_released). */
void ferry_cpu_context_drain(ferry_be_context *ctx);

/* Free every stream of a context being destroyed: non-destroyed ones are
 * destroyed, all are waited for and joined. In a fork()ed child (forked)
 * nothing is waited for and no lock is taken; memory only. */
void ferry_cpu_streams_teardown(ferry_be_context *ctx, bool forked);

/* ---- operands ------------------------------------------------------------ */

/* The address a memref designates (cpu memory is host memory). */
static inline void *ferry_cpu_memref_addr(const ferry_be_memref *m) {
  return m->ptr ? (char *)m->ptr + m->offset : NULL;
}

/* ---- slots (one file each) ----------------------------------------------- */

ferry_status ferry_cpu_context_create(const ferry_be_context_params *params,
                                      ferry_be_context **out);
void ferry_cpu_context_destroy(ferry_be_context *ctx, uint32_t flags);
ferry_status ferry_cpu_context_synchronize(ferry_be_context *ctx);
int ferry_cpu_context_num_threads(ferry_be_context *ctx);

ferry_status ferry_cpu_buffer_alloc(ferry_be_context *ctx,
                                    ferry_memory_space space, uint64_t size,
                                    ferry_be_buffer **out, void **host_ptr,
                                    void **device_ptr, void **native);
void ferry_cpu_buffer_free(ferry_be_context *ctx, ferry_be_buffer *buf,
                           uint32_t flags);

ferry_status ferry_cpu_stream_create(ferry_be_context *ctx, void *cookie,
                                     ferry_be_stream **out);
void ferry_cpu_stream_destroy(ferry_be_stream *s, uint32_t flags);
ferry_status ferry_cpu_stream_synchronize(ferry_be_stream *s);
ferry_status ferry_cpu_stream_query(ferry_be_stream *s);
ferry_status ferry_cpu_stream_wait_event(ferry_be_stream *s, ferry_be_event *e);

ferry_status ferry_cpu_event_create(ferry_be_context *ctx,
                                    ferry_be_event **out);
void ferry_cpu_event_destroy(ferry_be_event *e, uint32_t flags);
ferry_status ferry_cpu_event_record(ferry_be_event *e, ferry_be_stream *s);
ferry_status ferry_cpu_event_synchronize(ferry_be_event *e);
ferry_status ferry_cpu_event_query(ferry_be_event *e);
ferry_status ferry_cpu_event_elapsed_ms(ferry_be_event *start,
                                        ferry_be_event *end, double *out);

#endif /* FERRY_CPU_INTERNAL_H */
