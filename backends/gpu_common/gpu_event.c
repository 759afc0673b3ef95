/* Events: created with default flags, so that they can be timed. */
#include "gpu_internal.h"

ferry_status ferry_gpu_event_create(ferry_be_context *ctx,
                                    ferry_be_event **out) {
  if (ctx == NULL || out == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER, FERRY_GPU_NAME
                                     " event_create: 'ctx' or 'out' is NULL");
  ferry_be_event *ev = ferry_gpu_host->alloc(sizeof *ev, 0);
  if (ev == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_OUT_OF_MEMORY, FERRY_GPU_NAME
                                     " event_create: out of host memory");
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(ctx, "event_create", &scope);
  if (st != FERRY_OK) {
    ferry_gpu_host->free(ev);
    return st;
  }
  gpuError_t e = gpuEventCreateWithFlags(&ev->event, gpuEventDefault);
  ferry_gpu_leave(&scope);
  if (e != gpuSuccess) {
    ferry_gpu_host->free(ev);
    return ferry_gpu_fail(ctx, e, "event_create: %sEventCreateWithFlags",
                          FERRY_GPU_NAME);
  }
  ev->ctx = ctx;
  *out = ev;
  return FERRY_OK;
}

void ferry_gpu_event_destroy(ferry_be_event *ev, uint32_t flags) {
  if (ev == NULL)
    return;
  if (!(flags & FERRY_BE_DESTROY_FORKED)) {
    /* An event may be destroyed while its work is queued: the runtime
     * frees it once it has completed. */
    ferry_gpu_scope scope;
    if (ferry_gpu_enter(ev->ctx, "event_destroy", &scope) == FERRY_OK) {
      if (gpuEventDestroy(ev->event) != gpuSuccess)
        (void)gpuGetLastError();
      ferry_gpu_leave(&scope);
    }
  }
  ferry_gpu_host->free(ev);
}

ferry_status ferry_gpu_event_record(ferry_be_event *ev, ferry_be_stream *s) {
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(ev->ctx, "event_record", &scope);
  if (st != FERRY_OK)
    return st;
  gpuError_t e = gpuEventRecord(ev->event, s->stream);
  ferry_gpu_leave(&scope);
  if (e != gpuSuccess)
    return ferry_gpu_fail(ev->ctx, e, "event_record: %sEventRecord",
                          FERRY_GPU_NAME);
  return FERRY_OK;
}

ferry_status ferry_gpu_event_synchronize(ferry_be_event *ev) {
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(ev->ctx, "event_synchronize", &scope);
  if (st != FERRY_OK)
    return st;
  gpuError_t e = gpuEventSynchronize(ev->event);
  ferry_gpu_leave(&scope);
  if (e != gpuSuccess)
    return ferry_gpu_fail(ev->ctx, e, "event_synchronize: %sEventSynchronize",
                          FERRY_GPU_NAME);
  return FERRY_OK;
}

ferry_status ferry_gpu_event_query(ferry_be_event *ev) {
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(ev->ctx, "event_query", &scope);
  if (st != FERRY_OK)
    return st;
  gpuError_t e = gpuEventQuery(ev->event);
  ferry_gpu_leave(&scope);
  if (e == gpuErrorNotReady) {
    (void)gpuGetLastError();
    return ferry_gpu_host->set_error(FERRY_ERR_NOT_READY, FERRY_GPU_NAME
                                     " event_query: the captured work is "
                                     "still running");
  }
  if (e != gpuSuccess)
    return ferry_gpu_fail(ev->ctx, e, "event_query: %sEventQuery",
                          FERRY_GPU_NAME);
  return FERRY_OK;
}

ferry_status ferry_gpu_event_elapsed_ms(ferry_be_event *start,
                                        ferry_be_event *end, double *out) {
  if (out == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER, FERRY_GPU_NAME
                                     " event_elapsed_ms: 'out' is NULL");
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(start->ctx, "event_elapsed_ms", &scope);
  if (st != FERRY_OK)
    return st;
  float ms = 0.0f;
  gpuError_t e = gpuEventElapsedTime(&ms, start->event, end->event);
  ferry_gpu_leave(&scope);
  if (e == gpuErrorNotReady) {
    (void)gpuGetLastError();
    return ferry_gpu_host->set_error(FERRY_ERR_NOT_READY, FERRY_GPU_NAME
                                     " event_elapsed_ms: an event has not "
                                     "completed yet");
  }
  if (e != gpuSuccess)
    return ferry_gpu_fail(start->ctx, e,
                          "event_elapsed_ms: %sEventElapsedTime (were both "
                          "events recorded?)",
                          FERRY_GPU_NAME);
  *out = (double)ms;
  return FERRY_OK;
}

ferry_status ferry_gpu_event_native(ferry_be_event *ev, void **out) {
  if (out == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER, FERRY_GPU_NAME
                                     " event_native: 'out' is NULL");
  *out = (void *)ev->event;
  return FERRY_OK;
}
