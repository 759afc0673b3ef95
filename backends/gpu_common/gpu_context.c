/* Contexts: one device, used through its primary context (the one the
 * runtime API and every framework in the process share), with ferry's
 * kernels loaded for it. */
#include "gpu_internal.h"

#include <string.h>

ferry_status ferry_gpu_context_create(const ferry_be_context_params *params,
                                      ferry_be_context **out) {
  if (params == NULL || out == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER, FERRY_GPU_NAME
                                     " context_create: 'params' or 'out' is "
                                     "NULL");
  int n = 0;
  ferry_status st = ferry_gpu_device_count(&n);
  if (st != FERRY_OK)
    return st;
  if (params->device_index < 0 || params->device_index >= n)
    return ferry_gpu_host->set_error(
        FERRY_ERR_OUT_OF_RANGE,
        FERRY_GPU_NAME " context_create: device %d does not exist (the "
                       "runtime reports %d)",
        params->device_index, n);
  ferry_be_context *ctx = ferry_gpu_host->alloc(sizeof *ctx, 0);
  if (ctx == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_OUT_OF_MEMORY, FERRY_GPU_NAME
                                     " context_create: out of host memory");
  memset(ctx, 0, sizeof *ctx);
  ctx->device = params->device_index;
  ctx->cookie = params->context_cookie;

  ferry_gpu_scope scope;
  st = ferry_gpu_enter_new(ctx, &scope);
  if (st != FERRY_OK) {
    ferry_gpu_host->free(ctx);
    return st;
  }
  st = ferry_gpu_kernels_load(ctx);
  ferry_gpu_leave(&scope);
  if (st != FERRY_OK) {
    ferry_gpu_host->free(ctx);
    return st;
  }
  pthread_mutex_init(&ctx->lock, NULL);
  pthread_cond_init(&ctx->released, NULL);
  *out = ctx;
  return FERRY_OK;
}

void ferry_gpu_context_destroy(ferry_be_context *ctx, uint32_t flags) {
  if (ctx == NULL)
    return;
  if (flags & FERRY_BE_DESTROY_FORKED) {
    /* A CUDA or HIP context does not survive fork(): touch no runtime state
     * and no lock another thread may have held; free memory only. */
    ferry_gpu_streams_forget(ctx);
    ferry_gpu_host->free(ctx);
    return;
  }
  ferry_gpu_scope scope;
  bool entered = ferry_gpu_enter(ctx, "context_destroy", &scope) == FERRY_OK;
  /* Wait for the device, so that every queued release has run. A runtime
   * that is unloading (at exit) or a device gone runs no more callbacks:
   * then only what is left here can be freed. */
  gpuError_t e = entered ? gpuDeviceSynchronize() : gpuSuccess;
  ferry_status st = ferry_gpu_status_of(e);
  bool wait = entered && st != FERRY_ERR_NO_DEVICE;
  ferry_gpu_streams_teardown(ctx, wait);
  if (entered) {
    ferry_gpu_kernels_unload(ctx);
    ferry_gpu_leave(&scope);
  }
  if (!wait)
    return; /* streams may still point at ctx: leave it (process teardown) */
  pthread_cond_destroy(&ctx->released);
  pthread_mutex_destroy(&ctx->lock);
  ferry_gpu_host->free(ctx);
}

/* Every stream of the context, its wrapped ones included, is a stream of the
 * device: waiting for the device covers them all (as cudaFree does). */
ferry_status ferry_gpu_context_synchronize(ferry_be_context *ctx) {
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(ctx, "context_synchronize", &scope);
  if (st != FERRY_OK)
    return st;
  gpuError_t e = gpuDeviceSynchronize();
  ferry_gpu_leave(&scope);
  if (e != gpuSuccess)
    return ferry_gpu_fail(ctx, e, "context_synchronize: %sDeviceSynchronize",
                          FERRY_GPU_NAME);
  return FERRY_OK;
}

/* The device runs the work; the plugin keeps no host worker threads. */
int ferry_gpu_context_num_threads(ferry_be_context *ctx) {
  (void)ctx;
  return 0;
}
