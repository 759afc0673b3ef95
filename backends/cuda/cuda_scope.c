/* The caller's current device, kept across every cuda call.
 *
 * The runtime's cudaGetDevice answers 0 on a thread that never used CUDA,
 * and restoring that with cudaSetDevice(0) would create device 0's primary
 * context (hundreds of MB of its memory) in every thread that only ever
 * used another GPU through ferry. So the state saved is the driver's
 * current context, which may be "none", and the device is made current by
 * binding its primary context directly. The runtime uses whatever context
 * is current, and the driver functions come from the runtime's entry-point
 * query, so the plugin still links no libcuda. */
#include "gpu_internal.h"

#include <pthread.h>
#include <string.h>

typedef CUresult(CUDAAPI *ctx_get_fn)(CUcontext *);
typedef CUresult(CUDAAPI *ctx_set_fn)(CUcontext);

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static ctx_get_fn ctx_get;
static ctx_set_fn ctx_set;
static gpuError_t resolve_error = cudaSuccess;

static void *entry_point(const char *symbol) {
  void *fn = NULL;
  enum cudaDriverEntryPointQueryResult found;
#if CUDART_VERSION >= 12050
  gpuError_t e = cudaGetDriverEntryPointByVersion(symbol, &fn, 4000,
                                                  cudaEnableDefault, &found);
#else
  gpuError_t e =
      cudaGetDriverEntryPoint(symbol, &fn, cudaEnableDefault, &found);
#endif
  if (e != cudaSuccess) {
    resolve_error = e;
    return NULL;
  }
  if (found != cudaDriverEntryPointSuccess) {
    resolve_error = cudaErrorSymbolNotFound;
    return NULL;
  }
  return fn;
}

static void resolve(void) {
  /* ISO C has no conversion from void * to a function pointer; POSIX
   * guarantees the representation, so copy the bits. */
  void *g = entry_point("cuCtxGetCurrent");
  void *s = g ? entry_point("cuCtxSetCurrent") : NULL;
  if (g == NULL || s == NULL)
    return;
  memcpy(&ctx_get, &g, sizeof ctx_get);
  memcpy(&ctx_set, &s, sizeof ctx_set);
}

static ferry_status check_thread(const char *what) {
  if (ferry_gpu_in_callback)
    return ferry_gpu_host->set_error(
        FERRY_ERR_UNSUPPORTED,
        "cuda %s: called from a host function, which runs on the CUDA "
        "runtime's callback thread where CUDA calls are not allowed",
        what);
  pthread_once(&resolve_once, resolve);
  if (ctx_get == NULL || ctx_set == NULL)
    return ferry_gpu_fail(NULL, resolve_error,
                          "%s: looking up cuCtxGetCurrent/cuCtxSetCurrent in "
                          "the driver",
                          what);
  return FERRY_OK;
}

static ferry_status driver_fail(CUresult r, const char *call,
                                const char *what) {
  return ferry_gpu_host->set_error(
      r == CUDA_ERROR_DEINITIALIZED || r == CUDA_ERROR_NOT_INITIALIZED
          ? FERRY_ERR_NO_DEVICE
          : FERRY_ERR_BACKEND,
      "cuda %s: %s failed with CUresult %d", what, call, (int)r);
}

ferry_status ferry_gpu_enter(ferry_be_context *ctx, const char *what,
                             ferry_gpu_scope *scope) {
  scope->switched = false;
  scope->prev_ctx = NULL;
  ferry_status st = check_thread(what);
  if (st != FERRY_OK)
    return st;
  CUcontext cur = NULL;
  CUresult r = ctx_get(&cur);
  if (r != CUDA_SUCCESS)
    return driver_fail(r, "cuCtxGetCurrent", what);
  if (cur == (CUcontext)ctx->native_ctx)
    return FERRY_OK;
  r = ctx_set((CUcontext)ctx->native_ctx);
  if (r != CUDA_SUCCESS)
    return driver_fail(r, "cuCtxSetCurrent", what);
  scope->prev_ctx = cur;
  scope->switched = true;
  return FERRY_OK;
}

void ferry_gpu_leave(ferry_gpu_scope *scope) {
  if (scope->switched)
    (void)ctx_set((CUcontext)scope->prev_ctx);
  scope->switched = false;
}

ferry_status ferry_gpu_enter_new(ferry_be_context *ctx,
                                 ferry_gpu_scope *scope) {
  scope->switched = false;
  scope->prev_ctx = NULL;
  ferry_status st = check_thread("context_create");
  if (st != FERRY_OK)
    return st;
  CUcontext cur = NULL;
  CUresult r = ctx_get(&cur);
  if (r != CUDA_SUCCESS)
    return driver_fail(r, "cuCtxGetCurrent", "context_create");
  /* cudaSetDevice creates the device's primary context (shared with every
   * other user of the runtime in this process) and makes it current. */
  gpuError_t e = cudaSetDevice(ctx->device);
  if (e != cudaSuccess) {
    (void)ctx_set(cur);
    return ferry_gpu_fail(NULL, e, "cudaSetDevice(%d)", ctx->device);
  }
  CUcontext primary = NULL;
  r = ctx_get(&primary);
  if (r != CUDA_SUCCESS || primary == NULL) {
    (void)ctx_set(cur);
    return driver_fail(r, "cuCtxGetCurrent after cudaSetDevice",
                       "context_create");
  }
  ctx->native_ctx = primary;
  scope->prev_ctx = cur;
  scope->switched = true;
  return FERRY_OK;
}
