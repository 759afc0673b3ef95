/* An emulated CUDA runtime, for testing the cuda plugin without a GPU.
 *
 * The cuda plugin's host code (backends/gpu_common, backends/cuda) is
 * compiled unchanged and linked against this file instead of cudart; its
 * kernels are compiled for the CPU (emu_kernels.cpp). The result is
 * libferry-cuda.so in the build's emulator folder, which only tests labelled
 * "emu" load (FERRY_PLUGIN_PATH): it is never installed, never found by an
 * application, and `ctest -L cuda` still needs a real GPU.
 *
 * What it models (each a documented behaviour of the CUDA runtime that the
 * plugin relies on):
 *   - one device, compute capability 9.0, with a memory budget
 *     (FERRY_EMU_MEMORY bytes, default 4 GiB) so that exhaustion is testable;
 *     FERRY_EMU_DEVICES=0 gives the no-device path;
 *   - device memory from the host heap, 256-byte aligned and filled with a
 *     poison byte (device memory starts undefined);
 *   - host registration with overlap detection; registered memory is mapped
 *     at the same address (unified addressing);
 *   - streams as FIFO queues, each drained by its own host thread: kernels,
 *     copies, fills, event records, waits on events, host functions and
 *     callbacks run in stream order; streams run concurrently;
 *   - events with generations (a query sees the latest record);
 *   - sticky errors: a kernel that cannot finish (emu_kernels.cpp detects
 *     barriers and shuffles that not every thread reaches) fails with
 *     cudaErrorLaunchFailure, and every later call returns it, as a faulted
 *     CUDA context does; its message names the kernel and the cause;
 *   - after fork(), every call in the child fails with
 *     cudaErrorInitializationError.
 * What it does not: memory faults in kernels are real faults of the test
 * process (or AddressSanitizer reports in the sanitizer build), timing is
 * the CPU's, and the legacy default stream does not synchronise with other
 * streams (the plugin uses non-blocking streams only). */
#include "emu.h"

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- state ---------------------------------------------------------------
 * One lock guards everything below; one condition variable is broadcast on
 * any progress (an op enqueued or finished). Kernels, copies and host
 * functions run without the lock. */

typedef enum op_kind {
  OP_KERNEL,
  OP_COPY,
  OP_FILL,
  OP_RECORD,
  OP_WAIT,
  OP_HOST_FN,
  OP_CALLBACK,
  OP_FREE,
  OP_STOP
} op_kind;

typedef struct op {
  op_kind kind;
  struct op *next;
  union {
    struct {
      const ferry_emu_kernel *k;
      void *packed;
      uint32_t grid, block, shared;
    } kernel;
    struct {
      void *dst;
      const void *src;
      size_t n;
    } copy;
    struct {
      void *dst;
      int value;
      size_t n;
    } fill;
    struct {
      cudaEvent_t event;
      uint64_t gen;
    } event;
    struct {
      cudaHostFn_t fn;
      void *user;
    } host;
    struct {
      cudaStreamCallback_t fn;
      void *user;
    } callback;
    struct {
      void *ptr;
    } free;
  } u;
} op;

struct CUstream_st {
  op *head, *tail;
  uint64_t enqueued, completed;
  pthread_t worker;
  struct CUstream_st *prev, *next; /* every live stream */
};

struct CUevent_st {
  unsigned flags;
  int refs;           /* the caller's, and one per queued op naming it */
  uint64_t recorded;  /* records made */
  uint64_t completed; /* the latest record reached */
  struct timespec when;
};

struct CUctx_st {
  int device;
};
struct CUlib_st {
  int loaded;
};

typedef struct range {
  char *ptr;
  size_t size;
} range;

typedef struct range_list {
  range *items;
  size_t count, cap;
} range_list;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  struct CUstream_st *streams;
  struct CUstream_st *legacy; /* the NULL stream, made on first use */
  range_list allocs;          /* device memory */
  range_list registered;      /* registered host memory */
  size_t used;
  cudaError_t sticky;
  char sticky_msg[768];
  bool forked;
} emu = {.lock = PTHREAD_MUTEX_INITIALIZER,
         .changed = PTHREAD_COND_INITIALIZER};

static struct CUctx_st primary = {0};
static struct CUlib_st library = {1};
static _Thread_local cudaError_t last_error = cudaSuccess;
static _Thread_local CUcontext current_ctx = NULL;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) {
  /* The child has none of the parent's worker threads: like CUDA, refuse
   * everything (the lock may have been held by another thread at fork). */
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  emu.lock = fresh;
  emu.forked = true;
}
static void install_atfork(void) {
  pthread_atfork(NULL, NULL, on_fork_child);
}

static size_t env_size(const char *name, size_t fallback) {
  const char *s = getenv(name);
  if (s == NULL || *s == '\0')
    return fallback;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  return (end != s && *end == '\0') ? (size_t)v : fallback;
}

static size_t memory_budget(void) {
  return env_size("FERRY_EMU_MEMORY", (size_t)4 << 30);
}

static int device_count(void) {
  return (int)env_size("FERRY_EMU_DEVICES", 1) > 0 ? 1 : 0;
}

static cudaError_t fail(cudaError_t e) {
  last_error = e;
  return e;
}

/* Unlocks emu.lock (held by the caller) and returns the sticky error, if
 * any, as the call's result: what every call that waits or checks ends
 * with. */
static cudaError_t unlock_with_sticky(void) {
  cudaError_t e = emu.sticky;
  pthread_mutex_unlock(&emu.lock);
  return e == cudaSuccess ? cudaSuccess : fail(e);
}

/* Every call starts here: refused in a forked child, and after a sticky
 * error. */
static cudaError_t enter(void) {
  pthread_once(&atfork_once, install_atfork);
  if (emu.forked)
    return fail(cudaErrorInitializationError);
  pthread_mutex_lock(&emu.lock);
  return unlock_with_sticky();
}

/* ---- address ranges ------------------------------------------------------ */

static range *range_find(range_list *l, const void *p) {
  const char *c = p;
  for (size_t i = 0; i < l->count; i++)
    if (c >= l->items[i].ptr && c < l->items[i].ptr + l->items[i].size)
      return &l->items[i];
  return NULL;
}

static bool range_overlaps(range_list *l, const void *p, size_t n) {
  const char *c = p;
  for (size_t i = 0; i < l->count; i++)
    if (c < l->items[i].ptr + l->items[i].size && l->items[i].ptr < c + n)
      return true;
  return false;
}

static bool range_add(range_list *l, void *p, size_t n) {
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    range *items = realloc(l->items, cap * sizeof *items);
    if (items == NULL)
      return false;
    l->items = items;
    l->cap = cap;
  }
  l->items[l->count++] = (range){p, n};
  return true;
}

static void range_remove(range_list *l, range *r) {
  *r = l->items[--l->count];
}

/* ---- streams ------------------------------------------------------------- */

static void record_sticky(const char *why) {
  pthread_mutex_lock(&emu.lock);
  if (emu.sticky == cudaSuccess) {
    emu.sticky = cudaErrorLaunchFailure;
    snprintf(emu.sticky_msg, sizeof emu.sticky_msg,
             "unspecified launch failure (ferry's GPU emulator: %s)", why);
  }
  pthread_mutex_unlock(&emu.lock);
}

static void free_device(void *p) {
  pthread_mutex_lock(&emu.lock);
  range *r = range_find(&emu.allocs, p);
  if (r != NULL) {
    emu.used -= r->size;
    range_remove(&emu.allocs, r);
  }
  pthread_mutex_unlock(&emu.lock);
  free(p);
}

/* Runs one op without the lock. A context with a sticky error runs no
 * more device work and no more host functions; callbacks learn the error. */
static void execute(struct CUstream_st *s, op *o, cudaError_t sticky) {
  switch (o->kind) {
  case OP_KERNEL:
    if (sticky == cudaSuccess) {
      char why[512];
      if (ferry_emu_kernel_run(o->u.kernel.k, o->u.kernel.packed,
                               o->u.kernel.grid, o->u.kernel.block,
                               o->u.kernel.shared, why, sizeof why) != 0)
        record_sticky(why);
    }
    ferry_emu_kernel_unpack_free(o->u.kernel.k, o->u.kernel.packed);
    break;
  case OP_COPY:
    if (sticky == cudaSuccess && o->u.copy.n > 0)
      memmove(o->u.copy.dst, o->u.copy.src, o->u.copy.n);
    break;
  case OP_FILL:
    if (sticky == cudaSuccess && o->u.fill.n > 0)
      memset(o->u.fill.dst, o->u.fill.value, o->u.fill.n);
    break;
  case OP_HOST_FN:
    if (sticky == cudaSuccess)
      o->u.host.fn(o->u.host.user);
    break;
  case OP_CALLBACK:
    o->u.callback.fn(s, sticky, o->u.callback.user);
    break;
  case OP_FREE:
    free_device(o->u.free.ptr);
    break;
  case OP_RECORD:
  case OP_WAIT:
  case OP_STOP:
    break;
  }
}

static void *stream_worker(void *arg) {
  struct CUstream_st *s = arg;
  pthread_mutex_lock(&emu.lock);
  for (;;) {
    op *o = s->head;
    if (o == NULL ||
        (o->kind == OP_WAIT && o->u.event.event->completed < o->u.event.gen)) {
      pthread_cond_wait(&emu.changed, &emu.lock);
      continue;
    }
    if (o->kind == OP_RECORD) {
      cudaEvent_t e = o->u.event.event;
      clock_gettime(CLOCK_MONOTONIC, &e->when);
      if (o->u.event.gen > e->completed)
        e->completed = o->u.event.gen;
    } else if (o->kind != OP_WAIT && o->kind != OP_STOP) {
      cudaError_t sticky = emu.sticky;
      pthread_mutex_unlock(&emu.lock);
      execute(s, o, sticky);
      pthread_mutex_lock(&emu.lock);
    }
    if ((o->kind == OP_RECORD || o->kind == OP_WAIT) &&
        --o->u.event.event->refs == 0)
      free(o->u.event.event);
    s->head = o->next;
    if (s->head == NULL)
      s->tail = NULL;
    s->completed++;
    bool stop = o->kind == OP_STOP;
    free(o);
    pthread_cond_broadcast(&emu.changed);
    if (stop)
      break;
  }
  if (s->prev)
    s->prev->next = s->next;
  else
    emu.streams = s->next;
  if (s->next)
    s->next->prev = s->prev;
  pthread_mutex_unlock(&emu.lock);
  free(s);
  return NULL;
}

/* A new stream with its worker; the caller holds the lock. */
static cudaError_t stream_new(struct CUstream_st **out) {
  struct CUstream_st *s = calloc(1, sizeof *s);
  if (s == NULL)
    return cudaErrorMemoryAllocation;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&s->worker, &attr, stream_worker, s);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    free(s);
    return cudaErrorMemoryAllocation;
  }
  s->next = emu.streams;
  if (emu.streams)
    emu.streams->prev = s;
  emu.streams = s;
  *out = s;
  return cudaSuccess;
}

/* Appends `proto` to the stream's queue (the NULL stream is made on first
 * use). */
static cudaError_t enqueue(cudaStream_t s, const op *proto) {
  op *o = malloc(sizeof *o);
  if (o == NULL)
    return fail(cudaErrorMemoryAllocation);
  *o = *proto;
  o->next = NULL;
  pthread_mutex_lock(&emu.lock);
  if (s == NULL) {
    if (emu.legacy == NULL) {
      cudaError_t e = stream_new(&emu.legacy);
      if (e != cudaSuccess) {
        pthread_mutex_unlock(&emu.lock);
        free(o);
        return fail(e);
      }
    }
    s = emu.legacy;
  }
  if (o->kind == OP_RECORD)
    o->u.event.gen = ++o->u.event.event->recorded;
  if (o->kind == OP_RECORD || o->kind == OP_WAIT)
    o->u.event.event->refs++;
  if (s->tail)
    s->tail->next = o;
  else
    s->head = o;
  s->tail = o;
  s->enqueued++;
  pthread_cond_broadcast(&emu.changed);
  pthread_mutex_unlock(&emu.lock);
  return cudaSuccess;
}

static bool stream_idle(const struct CUstream_st *s) {
  return s->completed == s->enqueued;
}

/* ---- errors -------------------------------------------------------------- */

cudaError_t cudaGetLastError(void) {
  cudaError_t e = last_error;
  pthread_mutex_lock(&emu.lock);
  cudaError_t sticky = emu.sticky;
  pthread_mutex_unlock(&emu.lock);
  last_error = sticky;
  return e != cudaSuccess ? e : sticky;
}

const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define EMU_NAME(x)                                                            \
  case x:                                                                      \
    return #x;
    EMU_NAME(cudaSuccess)
    EMU_NAME(cudaErrorInvalidValue)
    EMU_NAME(cudaErrorMemoryAllocation)
    EMU_NAME(cudaErrorInitializationError)
    EMU_NAME(cudaErrorNotReady)
    EMU_NAME(cudaErrorInvalidDevice)
    EMU_NAME(cudaErrorNoDevice)
    EMU_NAME(cudaErrorInvalidResourceHandle)
    EMU_NAME(cudaErrorInvalidDevicePointer)
    EMU_NAME(cudaErrorInvalidConfiguration)
    EMU_NAME(cudaErrorHostMemoryAlreadyRegistered)
    EMU_NAME(cudaErrorHostMemoryNotRegistered)
    EMU_NAME(cudaErrorLaunchFailure)
    EMU_NAME(cudaErrorSymbolNotFound)
    EMU_NAME(cudaErrorNotSupported)
#undef EMU_NAME
  default:
    return "cudaErrorUnknown";
  }
}

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
  case cudaSuccess:
    return "no error";
  case cudaErrorInvalidValue:
    return "invalid argument";
  case cudaErrorMemoryAllocation:
    return "out of memory";
  case cudaErrorInitializationError:
    return "initialization error (the emulated runtime refuses calls in a "
           "fork()ed child)";
  case cudaErrorNotReady:
    return "device not ready";
  case cudaErrorInvalidDevice:
    return "invalid device ordinal";
  case cudaErrorNoDevice:
    return "no CUDA-capable device is detected (FERRY_EMU_DEVICES=0)";
  case cudaErrorInvalidResourceHandle:
    return "invalid resource handle";
  case cudaErrorInvalidDevicePointer:
    return "invalid device pointer";
  case cudaErrorInvalidConfiguration:
    return "invalid configuration argument";
  case cudaErrorHostMemoryAlreadyRegistered:
    return "part or all of the requested memory range is already mapped";
  case cudaErrorHostMemoryNotRegistered:
    return "pointer does not correspond to a registered memory region";
  case cudaErrorLaunchFailure:
    /* Written once, before any thread can see the sticky error. */
    return emu.sticky_msg[0] ? emu.sticky_msg : "unspecified launch failure";
  case cudaErrorSymbolNotFound:
    return "named symbol not found";
  case cudaErrorNotSupported:
    return "operation not supported (by ferry's GPU emulator)";
  default:
    return "unknown error";
  }
}

/* ---- devices ------------------------------------------------------------- */

cudaError_t cudaGetDeviceCount(int *count) {
  pthread_once(&atfork_once, install_atfork);
  if (emu.forked)
    return fail(cudaErrorInitializationError);
  if (count == NULL)
    return fail(cudaErrorInvalidValue);
  *count = device_count();
  return *count > 0 ? cudaSuccess : fail(cudaErrorNoDevice);
}

static cudaError_t check_device(int device) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (device < 0 || device >= device_count())
    return fail(cudaErrorInvalidDevice);
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
  cudaError_t e = check_device(device);
  if (e != cudaSuccess)
    return e;
  if (prop == NULL)
    return fail(cudaErrorInvalidValue);
  memset(prop, 0, sizeof *prop);
  snprintf(prop->name, sizeof prop->name,
           "ferry GPU emulator (CPU, %d-lane warps)", ferry_emu_warp_size());
  prop->totalGlobalMem = memory_budget();
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 4;
  prop->warpSize = ferry_emu_warp_size();
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxGridSize[0] = 0x7fffffff;
  prop->sharedMemPerBlock = 48 << 10;
  prop->sharedMemPerBlockOptin = 48 << 10;
  prop->canMapHostMemory = 1;
  prop->unifiedAddressing = 1;
  prop->pciBusID = 0xee;
  prop->integrated = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetPCIBusId(char *bus_id, int len, int device) {
  cudaError_t e = check_device(device);
  if (e != cudaSuccess)
    return e;
  if (bus_id == NULL || len < 13)
    return fail(cudaErrorInvalidValue);
  snprintf(bus_id, (size_t)len, "0000:EE:00.0");
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v) {
  if (v == NULL)
    return fail(cudaErrorInvalidValue);
  *v = 13000;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v) {
  if (v == NULL)
    return fail(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  cudaError_t e = check_device(device);
  if (e != cudaSuccess)
    return e;
  current_ctx = &primary;
  return cudaSuccess;
}

/* The two driver calls the plugin resolves through the runtime. */
static CUresult CUDAAPI emu_ctx_get_current(CUcontext *out) {
  if (emu.forked)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (out == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *out = current_ctx;
  return CUDA_SUCCESS;
}
static CUresult CUDAAPI emu_ctx_set_current(CUcontext ctx) {
  if (emu.forked)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (ctx != NULL && ctx != &primary)
    return CUDA_ERROR_INVALID_CONTEXT;
  current_ctx = ctx;
  return CUDA_SUCCESS;
}

cudaError_t
cudaGetDriverEntryPointByVersion(const char *symbol, void **fn,
                                 unsigned int version, unsigned long long flags,
                                 enum cudaDriverEntryPointQueryResult *status) {
  (void)version;
  (void)flags;
  if (symbol == NULL || fn == NULL)
    return fail(cudaErrorInvalidValue);
  CUresult(CUDAAPI * get)(CUcontext *) = emu_ctx_get_current;
  CUresult(CUDAAPI * set)(CUcontext) = emu_ctx_set_current;
  *fn = NULL;
  if (strcmp(symbol, "cuCtxGetCurrent") == 0)
    memcpy(fn, &get, sizeof *fn);
  else if (strcmp(symbol, "cuCtxSetCurrent") == 0)
    memcpy(fn, &set, sizeof *fn);
  if (status)
    *status =
        *fn ? cudaDriverEntryPointSuccess : cudaDriverEntryPointSymbolNotFound;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  pthread_mutex_lock(&emu.lock);
  for (;;) {
    bool idle = true;
    for (struct CUstream_st *s = emu.streams; s; s = s->next)
      idle = idle && stream_idle(s);
    if (idle)
      break;
    pthread_cond_wait(&emu.changed, &emu.lock);
  }
  return unlock_with_sticky();
}

/* ---- memory -------------------------------------------------------------- */

static cudaError_t alloc_device(void **out, size_t size) {
  if (out == NULL)
    return fail(cudaErrorInvalidValue);
  *out = NULL;
  if (size == 0)
    return cudaSuccess;
  size_t rounded = (size + 255u) & ~(size_t)255u;
  pthread_mutex_lock(&emu.lock);
  bool fits = rounded >= size && emu.used + rounded <= memory_budget();
  if (fits)
    emu.used += rounded;
  pthread_mutex_unlock(&emu.lock);
  if (!fits)
    return fail(cudaErrorMemoryAllocation);
  void *p = aligned_alloc(256, rounded);
  pthread_mutex_lock(&emu.lock);
  bool ok = p != NULL && range_add(&emu.allocs, p, rounded);
  if (!ok)
    emu.used -= rounded;
  pthread_mutex_unlock(&emu.lock);
  if (!ok) {
    free(p);
    return fail(cudaErrorMemoryAllocation);
  }
  /* Device memory starts undefined: no op may rely on zeros. */
  memset(p, 0xA5, rounded);
  *out = p;
  return cudaSuccess;
}

static bool is_device_alloc(const void *p) {
  pthread_mutex_lock(&emu.lock);
  range *r = range_find(&emu.allocs, p);
  bool start = r != NULL && r->ptr == p;
  pthread_mutex_unlock(&emu.lock);
  return start;
}

cudaError_t cudaMalloc(void **out, size_t size) {
  cudaError_t e = enter();
  return e != cudaSuccess ? e : alloc_device(out, size);
}

cudaError_t cudaFree(void *p) {
  if (p == NULL)
    return cudaSuccess;
  if (!is_device_alloc(p))
    return fail(cudaErrorInvalidValue);
  /* cudaFree waits for the device first. */
  cudaError_t e = cudaDeviceSynchronize();
  free_device(p);
  return e;
}

cudaError_t cudaMallocAsync(void **out, size_t size, cudaStream_t s) {
  (void)s; /* stream order only matters for the free */
  cudaError_t e = enter();
  return e != cudaSuccess ? e : alloc_device(out, size);
}

cudaError_t cudaFreeAsync(void *p, cudaStream_t s) {
  cudaError_t e = enter();
  if (e != cudaSuccess || p == NULL)
    return e;
  if (!is_device_alloc(p))
    return fail(cudaErrorInvalidValue);
  op o = {.kind = OP_FREE, .u.free = {p}};
  return enqueue(s, &o);
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (free_bytes == NULL || total == NULL)
    return fail(cudaErrorInvalidValue);
  pthread_mutex_lock(&emu.lock);
  *total = memory_budget();
  *free_bytes = *total > emu.used ? *total - emu.used : 0;
  pthread_mutex_unlock(&emu.lock);
  return cudaSuccess;
}

cudaError_t cudaHostRegister(void *p, size_t size, unsigned int flags) {
  (void)flags;
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (p == NULL || size == 0)
    return fail(cudaErrorInvalidValue);
  /* FERRY_EMU_MAX_REGISTER: the largest single registration, as drivers
   * refuse very large ones. */
  if (size > env_size("FERRY_EMU_MAX_REGISTER", SIZE_MAX))
    return fail(cudaErrorMemoryAllocation);
  pthread_mutex_lock(&emu.lock);
  if (range_overlaps(&emu.registered, p, size)) {
    pthread_mutex_unlock(&emu.lock);
    return fail(cudaErrorHostMemoryAlreadyRegistered);
  }
  bool ok = range_add(&emu.registered, p, size);
  pthread_mutex_unlock(&emu.lock);
  return ok ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaHostUnregister(void *p) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  pthread_mutex_lock(&emu.lock);
  range *r = range_find(&emu.registered, p);
  bool ok = r != NULL && r->ptr == (char *)p;
  if (ok)
    range_remove(&emu.registered, r);
  pthread_mutex_unlock(&emu.lock);
  return ok ? cudaSuccess : fail(cudaErrorHostMemoryNotRegistered);
}

cudaError_t cudaHostGetDevicePointer(void **out, void *p, unsigned int flags) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (out == NULL || flags != 0)
    return fail(cudaErrorInvalidValue);
  pthread_mutex_lock(&emu.lock);
  bool ok = range_find(&emu.registered, p) != NULL;
  pthread_mutex_unlock(&emu.lock);
  if (!ok)
    return fail(cudaErrorInvalidValue);
  *out = p; /* unified addressing: mapped at the same address */
  return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a,
                                     const void *p) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (a == NULL)
    return fail(cudaErrorInvalidValue);
  memset(a, 0, sizeof *a);
  pthread_mutex_lock(&emu.lock);
  if (range_find(&emu.allocs, p)) {
    a->type = cudaMemoryTypeDevice;
    a->devicePointer = (void *)p;
  } else if (range_find(&emu.registered, p)) {
    a->type = cudaMemoryTypeHost;
    a->devicePointer = (void *)p;
    a->hostPointer = (void *)p;
  } else {
    a->type = cudaMemoryTypeUnregistered;
  }
  pthread_mutex_unlock(&emu.lock);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n,
                            enum cudaMemcpyKind kind, cudaStream_t s) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (kind != cudaMemcpyDefault &&
      (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice))
    return fail(cudaErrorInvalidValue);
  if (n > 0 && (dst == NULL || src == NULL))
    return fail(cudaErrorInvalidValue);
  op o = {.kind = OP_COPY, .u.copy = {dst, src, n}};
  return enqueue(s, &o);
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t s) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (n > 0 && dst == NULL)
    return fail(cudaErrorInvalidValue);
  op o = {.kind = OP_FILL, .u.fill = {dst, value, n}};
  return enqueue(s, &o);
}

/* ---- streams ------------------------------------------------------------- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *out, unsigned int flags) {
  (void)flags;
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (out == NULL)
    return fail(cudaErrorInvalidValue);
  pthread_mutex_lock(&emu.lock);
  e = stream_new(out);
  pthread_mutex_unlock(&emu.lock);
  return e == cudaSuccess ? e : fail(e);
}

/* As in CUDA: returns at once; work already queued still runs, then the
 * stream is gone. */
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  cudaError_t e = enter();
  if (e != cudaSuccess && e != cudaErrorLaunchFailure)
    return e;
  if (s == NULL)
    return fail(cudaErrorInvalidResourceHandle);
  op o = {.kind = OP_STOP};
  cudaError_t q = enqueue(s, &o);
  return q != cudaSuccess ? q : e;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  pthread_mutex_lock(&emu.lock);
  struct CUstream_st *st = s ? s : emu.legacy;
  if (st != NULL) {
    uint64_t target = st->enqueued;
    while (st->completed < target)
      pthread_cond_wait(&emu.changed, &emu.lock);
  }
  return unlock_with_sticky();
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  pthread_mutex_lock(&emu.lock);
  struct CUstream_st *st = s ? s : emu.legacy;
  bool idle = st == NULL || stream_idle(st);
  pthread_mutex_unlock(&emu.lock);
  return idle ? cudaSuccess : fail(cudaErrorNotReady);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t ev,
                                unsigned int flags) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (ev == NULL || flags != 0)
    return fail(ev == NULL ? cudaErrorInvalidResourceHandle
                           : cudaErrorInvalidValue);
  pthread_mutex_lock(&emu.lock);
  uint64_t gen = ev->recorded; /* the record made last, if any */
  pthread_mutex_unlock(&emu.lock);
  if (gen == 0)
    return cudaSuccess;
  op o = {.kind = OP_WAIT, .u.event = {ev, gen}};
  return enqueue(s, &o);
}

cudaError_t cudaStreamAddCallback(cudaStream_t s, cudaStreamCallback_t fn,
                                  void *user, unsigned int flags) {
  cudaError_t e = enter();
  if (e != cudaSuccess && e != cudaErrorLaunchFailure)
    return e;
  if (fn == NULL || flags != 0)
    return fail(cudaErrorInvalidValue);
  op o = {.kind = OP_CALLBACK, .u.callback = {fn, user}};
  cudaError_t q = enqueue(s, &o);
  return q != cudaSuccess ? q : e;
}

cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void *user) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (fn == NULL)
    return fail(cudaErrorInvalidValue);
  op o = {.kind = OP_HOST_FN, .u.host = {fn, user}};
  return enqueue(s, &o);
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s,
                                  enum cudaStreamCaptureStatus *status) {
  (void)s;
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (status == NULL)
    return fail(cudaErrorInvalidValue);
  *status = cudaStreamCaptureStatusNone;
  return cudaSuccess;
}

cudaError_t cudaStreamGetDevice(cudaStream_t s, int *device) {
  (void)s;
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (device == NULL)
    return fail(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

/* ---- events -------------------------------------------------------------- */

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *out, unsigned int flags) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (out == NULL)
    return fail(cudaErrorInvalidValue);
  cudaEvent_t ev = calloc(1, sizeof *ev);
  if (ev == NULL)
    return fail(cudaErrorMemoryAllocation);
  ev->flags = flags;
  ev->refs = 1;
  *out = ev;
  return cudaSuccess;
}

/* As in CUDA, destroying an event returns at once; records and waits still
 * queued keep it alive until they are reached. */
cudaError_t cudaEventDestroy(cudaEvent_t ev) {
  if (ev == NULL)
    return fail(cudaErrorInvalidResourceHandle);
  pthread_mutex_lock(&emu.lock);
  bool last = --ev->refs == 0;
  pthread_mutex_unlock(&emu.lock);
  if (last)
    free(ev);
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t s) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (ev == NULL)
    return fail(cudaErrorInvalidResourceHandle);
  op o = {.kind = OP_RECORD, .u.event = {ev, 0}};
  return enqueue(s, &o);
}

cudaError_t cudaEventSynchronize(cudaEvent_t ev) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (ev == NULL)
    return fail(cudaErrorInvalidResourceHandle);
  pthread_mutex_lock(&emu.lock);
  uint64_t target = ev->recorded;
  while (ev->completed < target && emu.sticky == cudaSuccess)
    pthread_cond_wait(&emu.changed, &emu.lock);
  return unlock_with_sticky();
}

cudaError_t cudaEventQuery(cudaEvent_t ev) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (ev == NULL)
    return fail(cudaErrorInvalidResourceHandle);
  pthread_mutex_lock(&emu.lock);
  bool done = ev->completed >= ev->recorded;
  pthread_mutex_unlock(&emu.lock);
  return done ? cudaSuccess : fail(cudaErrorNotReady);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (ms == NULL)
    return fail(cudaErrorInvalidValue);
  if (a == NULL || b == NULL)
    return fail(cudaErrorInvalidResourceHandle);
  pthread_mutex_lock(&emu.lock);
  bool timed = !((a->flags | b->flags) & cudaEventDisableTiming) &&
               a->recorded > 0 && b->recorded > 0;
  bool done = a->completed >= a->recorded && b->completed >= b->recorded;
  double t = (double)(b->when.tv_sec - a->when.tv_sec) * 1e3 +
             (double)(b->when.tv_nsec - a->when.tv_nsec) / 1e6;
  pthread_mutex_unlock(&emu.lock);
  if (!timed)
    return fail(cudaErrorInvalidResourceHandle);
  if (!done)
    return fail(cudaErrorNotReady);
  *ms = (float)t;
  return cudaSuccess;
}

/* ---- kernels ------------------------------------------------------------- */

cudaError_t cudaLibraryLoadData(cudaLibrary_t *lib, const void *code,
                                enum cudaJitOption *jit_options,
                                void **jit_values, unsigned int njit,
                                enum cudaLibraryOption *lib_options,
                                void **lib_values, unsigned int nlib) {
  (void)jit_options;
  (void)jit_values;
  (void)njit;
  (void)lib_options;
  (void)lib_values;
  (void)nlib;
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (lib == NULL || code == NULL)
    return fail(cudaErrorInvalidValue);
  *lib = &library; /* the kernels are compiled in (emu_kernels.cpp) */
  return cudaSuccess;
}

cudaError_t cudaLibraryUnload(cudaLibrary_t lib) {
  return lib == &library ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaLibraryGetKernel(cudaKernel_t *k, cudaLibrary_t lib,
                                 const char *name) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (k == NULL || name == NULL)
    return fail(cudaErrorInvalidValue);
  if (lib != &library)
    return fail(cudaErrorInvalidResourceHandle);
  const ferry_emu_kernel *found = ferry_emu_kernel_find(name);
  if (found == NULL)
    return fail(cudaErrorSymbolNotFound);
  *k = (cudaKernel_t)(uintptr_t)found;
  return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr,
                                  const void *fn) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (attr == NULL || fn == NULL)
    return fail(cudaErrorInvalidValue);
  memset(attr, 0, sizeof *attr);
  attr->maxThreadsPerBlock = 1024;
  attr->maxDynamicSharedSizeBytes = 48 << 10;
  return cudaSuccess;
}

cudaError_t cudaLaunchKernel(const void *fn, dim3 grid, dim3 block, void **args,
                             size_t shared, cudaStream_t s) {
  cudaError_t e = enter();
  if (e != cudaSuccess)
    return e;
  if (fn == NULL)
    return fail(cudaErrorInvalidResourceHandle);
  /* The launch limits of a CUDA device (compute capability 9.0); the
   * emulator runs 1-D launches only, which is all ferry makes. */
  if (block.x == 0 || block.x > 1024 || grid.x == 0 || grid.x > 0x7fffffffu)
    return fail(cudaErrorInvalidConfiguration);
  if (block.y != 1 || block.z != 1 || grid.y != 1 || grid.z != 1)
    return fail(cudaErrorNotSupported);
  if (shared > (48u << 10))
    return fail(cudaErrorInvalidValue);
  const ferry_emu_kernel *k = (const ferry_emu_kernel *)fn;
  void *packed = ferry_emu_kernel_pack(k, args);
  if (packed == NULL)
    return fail(cudaErrorMemoryAllocation);
  op o = {.kind = OP_KERNEL,
          .u.kernel = {k, packed, grid.x, block.x, (uint32_t)shared}};
  e = enqueue(s, &o);
  if (e != cudaSuccess)
    ferry_emu_kernel_unpack_free(k, packed);
  return e;
}
