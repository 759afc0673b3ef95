/* The GPU backends next to the vendor's own runtime, as a framework uses
 * them: streams the runtime made, wrapped by ferry; memory the runtime
 * pinned, wrapped by ferry; the caller's current device left alone; ferry's
 * native handles usable by the runtime. Built once per vendor (FERRY_GPU_CUDA
 * or FERRY_GPU_HIP, the names of backends/gpu_common/gpu_vendor.h) and
 * linked with that vendor's runtime. */
#include "gpu_vendor.h"
#include "harness.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(FERRY_GPU_CUDA)
#define gpuHostAllocPinned(p, n)                                               \
  cudaHostAlloc((p), (n), cudaHostAllocMapped | cudaHostAllocPortable)
#define gpuFreeHost cudaFreeHost
#define gpuStreamPerThread cudaStreamPerThread
#define gpuMemoryTypeDevice cudaMemoryTypeDevice
static bool device_memory(const void *p) {
  struct cudaPointerAttributes a;
  return cudaPointerGetAttributes(&a, p) == cudaSuccess &&
         a.type == cudaMemoryTypeDevice;
}
#else
#define gpuHostAllocPinned(p, n)                                               \
  hipHostMalloc((p), (n), hipHostMallocMapped | hipHostMallocPortable)
#define gpuFreeHost hipHostFree
#define gpuStreamPerThread hipStreamPerThread
static bool device_memory(const void *p) {
  hipPointerAttribute_t a;
#if HIP_VERSION_MAJOR >= 6
  return hipPointerGetAttributes(&a, p) == hipSuccess &&
         a.type == hipMemoryTypeDevice;
#else
  return hipPointerGetAttributes(&a, p) == hipSuccess &&
         a.memoryType == hipMemoryTypeDevice;
#endif
}
#endif

#define GPU_OK(call)                                                           \
  do {                                                                         \
    gpuError_t gpu_ok_e_ = (call);                                             \
    cr_assert_eq(gpu_ok_e_, gpuSuccess, "%s -> %s", #call,                     \
                 gpuGetErrorName(gpu_ok_e_));                                  \
  } while (0)

static ferry_buffer *buffer(ferry_context *ctx, ferry_memory_space space,
                            uint64_t size) {
  ferry_buffer *b = NULL;
  FERRY_OK_(ferry_buffer_create(ctx, space, size, &b));
  return b;
}

static ferry_buffer_info info_of(const ferry_buffer *b) {
  ferry_buffer_info info = FERRY_BUFFER_INFO_INIT;
  FERRY_OK_(ferry_buffer_get_info(b, &info));
  return info;
}

static void expect_value(const unsigned char *got, int value, uint64_t n,
                         const char *what) {
  for (uint64_t i = 0; i < n; i++)
    if (got[i] != (unsigned char)value)
      cr_assert_fail("%s: byte %llu of %llu is 0x%02x, expected 0x%02x", what,
                     (unsigned long long)i, (unsigned long long)n, got[i],
                     value);
}

/* ferry's ops and the runtime's on one stream keep one order; the stream
 * outlives ferry's wrapper. */
Test(gpu_native, wrap_runtime_stream) {
  ferry_context *ctx = ferry_test_context();
  gpuStream_t native = NULL;
  GPU_OK(gpuStreamCreateWithFlags(&native, gpuStreamNonBlocking));
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_wrap_native(ctx, (void *)native, &s));
  const uint64_t n = 1048583, half = n / 2;
  ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  ferry_buffer *p = buffer(ctx, FERRY_MEMORY_PINNED_HOST, n);
  ferry_buffer_info di = info_of(d), pi = info_of(p);
  cr_assert(device_memory(di.device_pointer),
            "the runtime does not see a device buffer as device memory");
  ferry_test_poison(pi.host_pointer, n);
  for (int round = 0; round < 4; round++) {
    FERRY_OK_(ferry_buffer_fill_async(s, d, 0, 0x10 + round, n));
    GPU_OK(
        gpuMemsetAsync(di.device_pointer, 0x20 + round, (size_t)half, native));
    FERRY_OK_(ferry_buffer_copy_async(s, p, 0, d, 0, n));
    FERRY_OK_(ferry_stream_synchronize(s));
    expect_value(pi.host_pointer, 0x20 + round, half, "runtime's memset");
    expect_value((unsigned char *)pi.host_pointer + half, 0x10 + round,
                 n - half, "ferry's fill");
  }
  ferry_stream_destroy(s);
  GPU_OK(gpuStreamQuery(native)); /* still a valid stream */
  GPU_OK(gpuStreamDestroy(native));
  ferry_buffer_destroy(d);
  ferry_buffer_destroy(p);
  ferry_context_destroy(ctx);
}

/* The per-thread default stream's handle is a valid native stream. */
Test(gpu_native, wrap_per_thread_default_stream) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_wrap_native(ctx, (void *)gpuStreamPerThread, &s));
  const uint64_t n = 65537;
  ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  ferry_buffer *p = buffer(ctx, FERRY_MEMORY_PINNED_HOST, n);
  ferry_buffer_info pi = info_of(p);
  ferry_test_poison(pi.host_pointer, n);
  FERRY_OK_(ferry_buffer_fill_async(s, d, 0, 0x31, n));
  FERRY_OK_(ferry_buffer_copy_async(s, p, 0, d, 0, n));
  FERRY_OK_(ferry_stream_synchronize(s));
  expect_value(pi.host_pointer, 0x31, n, "work on the per-thread stream");
  ferry_stream_destroy(s);
  ferry_buffer_destroy(d);
  ferry_buffer_destroy(p);
  ferry_context_destroy(ctx);
}

/* Memory the runtime pinned (a framework's pinned tensor) is used in place
 * and stays pinned after ferry lets go of it. */
Test(gpu_native, runtime_pinned_memory) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  const uint64_t n = 1048583;
  void *pinned = NULL;
  GPU_OK(gpuHostAllocPinned(&pinned, (size_t)n));
  void *expected = NULL;
  GPU_OK(gpuHostGetDevicePointer(&expected, pinned, 0));
  ferry_buffer *w = NULL;
  FERRY_OK_(ferry_buffer_wrap_host(ctx, pinned, n, &w));
  cr_assert_eq(info_of(w).device_pointer, expected);
  ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  FERRY_OK_(ferry_buffer_fill_async(s, d, 0, 0x5E, n));
  ferry_test_poison(pinned, n);
  FERRY_OK_(ferry_buffer_copy_async(s, w, 0, d, 0, n));
  FERRY_OK_(ferry_stream_synchronize(s));
  expect_value(pinned, 0x5E, n, "runtime-pinned memory");
  ferry_buffer_destroy(w);
  void *still = NULL;
  GPU_OK(gpuHostGetDevicePointer(&still, pinned, 0));
  cr_assert_eq(still, expected, "ferry unregistered memory it did not own");
  GPU_OK(gpuFreeHost(pinned));
  ferry_buffer_destroy(d);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* A range that only partly overlaps someone else's registration is
 * refused, and their registration is left as it was. */
Test(gpu_native, partial_registration_refused) {
  ferry_context *ctx = ferry_test_context();
  long page = sysconf(_SC_PAGESIZE);
  const size_t n = (size_t)page * 8;
  unsigned char *mem = aligned_alloc((size_t)page, n);
  cr_assert_not_null(mem);
  unsigned char *middle = mem + 3 * page;
  GPU_OK(gpuHostRegister(middle, (size_t)page * 2, gpuHostRegisterMapped));
  ferry_buffer *w = NULL;
  ferry_status st = ferry_buffer_wrap_host(ctx, mem, n, &w);
  cr_assert_neq(st, FERRY_OK, "a partly registered range was accepted");
  cr_assert_null(w);
  void *d = NULL;
  GPU_OK(gpuHostGetDevicePointer(&d, middle, 0));
  GPU_OK(gpuHostUnregister(middle));
  free(mem);
  ferry_context_destroy(ctx);
}

/* ferry's bus id is the runtime's, in ferry's lowercase form. */
Test(gpu_native, bus_id_matches_runtime) {
  ferry_context *ctx = ferry_test_context();
  ferry_context_info info = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &info));
  char runtime[64] = "";
  GPU_OK(gpuDeviceGetPCIBusId(runtime, (int)sizeof runtime, info.device_index));
  for (char *c = runtime; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  cr_assert_str_eq(info.device.pci_bus_id, runtime);
  ferry_context_destroy(ctx);
}

/* ferry's native handles are the runtime's objects. */
Test(gpu_native, native_handles_usable) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  ferry_event *e = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  FERRY_OK_(ferry_event_create(ctx, &e));
  void *ns = NULL, *ne = NULL;
  FERRY_OK_(ferry_stream_native_handle(s, &ns));
  FERRY_OK_(ferry_event_native_handle(e, &ne));
  const uint64_t n = 4097;
  ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  ferry_buffer_info di = info_of(d);
  GPU_OK(gpuMemsetAsync(di.device_pointer, 0x44, (size_t)n, (gpuStream_t)ns));
  GPU_OK(gpuEventRecord((gpuEvent_t)ne, (gpuStream_t)ns));
  FERRY_OK_(ferry_event_synchronize(e));
  GPU_OK(gpuEventQuery((gpuEvent_t)ne));
  GPU_OK(gpuStreamQuery((gpuStream_t)ns));
  unsigned char got[4097];
  ferry_test_poison(got, n);
  FERRY_OK_(ferry_buffer_read_async(s, d, 0, got, n));
  FERRY_OK_(ferry_stream_synchronize(s));
  expect_value(got, 0x44, n, "the runtime's memset on ferry's stream");
  ferry_buffer_destroy(d);
  ferry_event_destroy(e);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* Some ferry work on the device; no assertion, so that threads may run it
 * (a failed assertion ends the test from the main thread only). */
static bool ferry_work(ferry_context *ctx) {
  ferry_stream *s = NULL;
  ferry_buffer *d = NULL;
  unsigned char host[4099];
  ferry_test_poison(host, sizeof host);
  bool ok = ferry_stream_create(ctx, &s) == FERRY_OK &&
            ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, sizeof host, &d) ==
                FERRY_OK &&
            ferry_buffer_fill_async(s, d, 0, 3, sizeof host) == FERRY_OK &&
            ferry_buffer_read_async(s, d, 0, host, sizeof host) == FERRY_OK &&
            ferry_stream_synchronize(s) == FERRY_OK;
  for (size_t i = 0; ok && i < sizeof host; i++)
    ok = host[i] == 3;
  ferry_buffer_destroy(d);
  ferry_stream_destroy(s);
  return ok;
}

/* The caller's current device is what it was after every ferry call. */
Test(gpu_native, current_device_kept) {
  int count = 0;
  GPU_OK(gpuGetDeviceCount(&count));
  int mine = count - 1; /* the last device: not the default 0 if there are
                           several */
  GPU_OK(gpuSetDevice(mine));
  ferry_context *ctx = ferry_test_context();
  int before = -1, after = -1;
  GPU_OK(gpuGetDevice(&before));
  cr_assert(ferry_work(ctx), "ferry work failed: %s", ferry_last_error());
  GPU_OK(gpuGetDevice(&after));
  cr_assert_eq(after, before, "ferry left device %d current, not %d", after,
               before);
  ferry_context_destroy(ctx);
}

#if defined(FERRY_GPU_CUDA)
/* A thread that never used CUDA has no current context after calling
 * ferry: ferry must not leave one behind (restoring "device 0" would create
 * device 0's primary context in every such thread). */
typedef CUresult(CUDAAPI *ctx_get_fn)(CUcontext *);

typedef struct fresh {
  ferry_context *ctx;
  ctx_get_fn get;
  bool ok;
  CUresult before_r, after_r;
  CUcontext before, after;
} fresh;

static void *fresh_thread(void *arg) {
  fresh *f = arg;
  f->before_r = f->get(&f->before);
  f->ok = ferry_work(f->ctx);
  f->after_r = f->get(&f->after);
  return NULL;
}

Test(gpu_native, no_context_left_in_fresh_threads) {
  ferry_context *ctx = ferry_test_context();
  void *sym = NULL;
  enum cudaDriverEntryPointQueryResult found;
#if CUDART_VERSION >= 12050
  GPU_OK(cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &sym, 4000,
                                          cudaEnableDefault, &found));
#else
  GPU_OK(cudaGetDriverEntryPoint("cuCtxGetCurrent", &sym, cudaEnableDefault,
                                 &found));
#endif
  cr_assert_eq(found, cudaDriverEntryPointSuccess);
  fresh f;
  memset(&f, 0, sizeof f);
  f.ctx = ctx;
  memcpy(&f.get, &sym, sizeof f.get);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, fresh_thread, &f), 0);
  pthread_join(t, NULL);
  cr_assert(f.ok, "ferry work failed in the thread");
  cr_assert_eq(f.before_r, CUDA_SUCCESS);
  cr_assert_eq(f.after_r, CUDA_SUCCESS);
  cr_assert_null(f.before, "a fresh thread already had a context");
  cr_assert_null(f.after, "ferry left a context current in a fresh thread");
  ferry_context_destroy(ctx);
}
#endif
