/* The caller's current device, kept across every hip call.
 *
 * HIP initialises every device when the runtime starts, so the current
 * device is only a per-thread index: save it, set ours, set it back. */
#include "gpu_internal.h"

static ferry_status check_thread(const char *what) {
  if (ferry_gpu_in_callback)
    return ferry_gpu_host->set_error(
        FERRY_ERR_UNSUPPORTED,
        "hip %s: called from a host function, which runs on the HIP "
        "runtime's callback thread where HIP calls are not allowed",
        what);
  return FERRY_OK;
}

static ferry_status switch_to(int device, const char *what,
                              ferry_gpu_scope *scope) {
  scope->switched = false;
  scope->prev_ctx = NULL;
  ferry_status st = check_thread(what);
  if (st != FERRY_OK)
    return st;
  int cur = 0;
  gpuError_t e = hipGetDevice(&cur);
  if (e != hipSuccess)
    return ferry_gpu_fail(NULL, e, "%s: hipGetDevice", what);
  if (cur == device)
    return FERRY_OK;
  e = hipSetDevice(device);
  if (e != hipSuccess)
    return ferry_gpu_fail(NULL, e, "%s: hipSetDevice(%d)", what, device);
  scope->prev_device = cur;
  scope->switched = true;
  return FERRY_OK;
}

ferry_status ferry_gpu_enter(ferry_be_context *ctx, const char *what,
                             ferry_gpu_scope *scope) {
  return switch_to(ctx->device, what, scope);
}

void ferry_gpu_leave(ferry_gpu_scope *scope) {
  if (scope->switched)
    (void)hipSetDevice(scope->prev_device);
  scope->switched = false;
}

ferry_status ferry_gpu_enter_new(ferry_be_context *ctx,
                                 ferry_gpu_scope *scope) {
  ctx->native_ctx = NULL;
  return switch_to(ctx->device, "context_create", scope);
}
