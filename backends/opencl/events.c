/* Events: the marker of the last record on a stream.
 *
 * A record enqueues a marker (it completes once everything queued before it
 * on the in-order queue has) and keeps its cl_event, releasing the previous
 * one. Timings are the markers' CL_PROFILING_COMMAND_END stamps, so both
 * streams' queues need CL_QUEUE_PROFILING_ENABLE (ferry's own queues have
 * it; a wrapped queue may not). event_native hands out the last marker (NULL
 * with FERRY_OK when the event was never recorded); it stays owned by the
 * event and valid until the next record or the event's destruction. */
#include "internal.h"

#include <stdlib.h>

cl_event ocl_event_acquire(ferry_be_event *e) {
  pthread_mutex_lock(&e->lock);
  cl_event ev = e->ev;
  if (ev && clRetainEvent(ev) != CL_SUCCESS)
    ev = NULL;
  pthread_mutex_unlock(&e->lock);
  return ev;
}

ferry_status ocl_event_create(ferry_be_context *ctx, ferry_be_event **out) {
  ferry_be_event *e = calloc(1, sizeof *e);
  if (e == NULL)
    return ocl_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                               "opencl event: out of host memory");
  e->ctx = ctx;
  pthread_mutex_init(&e->lock, NULL);
  ocl_context_adopt(ctx, &ctx->events, &e->link);
  *out = e;
  return FERRY_OK;
}

void ocl_event_free(ferry_be_event *e, uint32_t flags) {
  if (!(flags & FERRY_BE_DESTROY_FORKED)) {
    if (e->ev)
      clReleaseEvent(e->ev);
    pthread_mutex_destroy(&e->lock);
  }
  free(e);
}

void ocl_event_destroy(ferry_be_event *e, uint32_t flags) {
  if (e == NULL)
    return;
  ocl_context_drop(e->ctx, &e->link, flags);
  ocl_event_free(e, flags);
}

ferry_status ocl_event_record(ferry_be_event *e, ferry_be_stream *s) {
  cl_event ev = NULL;
  cl_int err = clEnqueueMarkerWithWaitList(s->queue, 0, NULL, &ev);
  if (err != CL_SUCCESS) {
    if (ocl_error_is_fatal(err))
      ocl_host->context_lost(e->ctx->cookie, FERRY_ERR_CONTEXT_LOST,
                             "clEnqueueMarkerWithWaitList: %s (%d)",
                             ocl_error_name(err), (int)err);
    return ocl_fail("event record: clEnqueueMarkerWithWaitList", err);
  }
  ocl_stream_note(s, ev);
  /* Other streams may wait on it: it must reach the device. */
  clFlush(s->queue);
  pthread_mutex_lock(&e->lock);
  cl_event old = e->ev;
  e->ev = ev;
  pthread_mutex_unlock(&e->lock);
  if (old)
    clReleaseEvent(old);
  return FERRY_OK;
}

/* The marker's execution status (CL_COMPLETE, a positive state, or the
 * negative error of a failed command before it). */
static ferry_status status_of(cl_event ev, cl_int *out) {
  cl_int err = clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS,
                              sizeof *out, out, NULL);
  if (err != CL_SUCCESS)
    return ocl_fail("clGetEventInfo(CL_EVENT_COMMAND_EXECUTION_STATUS)", err);
  return FERRY_OK;
}

static ferry_status failed(cl_int status) {
  return ocl_host->set_error(ocl_status(status),
                             "the work the event captured failed: %s (%d)",
                             ocl_error_name(status), (int)status);
}

ferry_status ocl_event_synchronize(ferry_be_event *e) {
  cl_event ev = ocl_event_acquire(e);
  if (ev == NULL)
    return FERRY_OK; /* never recorded: complete */
  /* clWaitForEvents fails for a marker whose work failed; the status below
   * says how. */
  clWaitForEvents(1, &ev);
  cl_int status = CL_COMPLETE;
  ferry_status st = status_of(ev, &status);
  clReleaseEvent(ev);
  if (st != FERRY_OK)
    return st;
  return status < 0 ? failed(status) : FERRY_OK;
}

ferry_status ocl_event_query(ferry_be_event *e) {
  cl_event ev = ocl_event_acquire(e);
  if (ev == NULL)
    return FERRY_OK;
  cl_int status = CL_COMPLETE;
  ferry_status st = status_of(ev, &status);
  clReleaseEvent(ev);
  if (st != FERRY_OK)
    return st;
  if (status < 0)
    return failed(status);
  if (status != CL_COMPLETE)
    return ocl_host->set_error(FERRY_ERR_NOT_READY,
                               "opencl event: the captured work is still "
                               "running");
  return FERRY_OK;
}

/* The end stamp of a complete marker. */
static ferry_status stamp(cl_event ev, const char *arg, cl_ulong *out) {
  cl_int status = CL_COMPLETE;
  ferry_status st = status_of(ev, &status);
  if (st != FERRY_OK)
    return st;
  if (status < 0)
    return failed(status);
  if (status != CL_COMPLETE)
    return ocl_host->set_error(FERRY_ERR_NOT_READY,
                               "event_elapsed_ms: event '%s' has not "
                               "completed yet",
                               arg);
  cl_int err = clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END,
                                       sizeof *out, out, NULL);
  if (err == CL_PROFILING_INFO_NOT_AVAILABLE) {
    cl_command_queue q = NULL;
    cl_command_queue_properties props = 0;
    if (clGetEventInfo(ev, CL_EVENT_COMMAND_QUEUE, sizeof q, &q, NULL) ==
            CL_SUCCESS &&
        q != NULL &&
        clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES, sizeof props, &props,
                              NULL) == CL_SUCCESS &&
        !(props & CL_QUEUE_PROFILING_ENABLE))
      return ocl_host->set_error(
          FERRY_ERR_UNSUPPORTED,
          "event_elapsed_ms: event '%s' was recorded on a wrapped queue "
          "made without CL_QUEUE_PROFILING_ENABLE, so it has no timings",
          arg);
  }
  if (err != CL_SUCCESS)
    return ocl_fail("clGetEventProfilingInfo(CL_PROFILING_COMMAND_END)", err);
  return FERRY_OK;
}

ferry_status ocl_event_elapsed_ms(ferry_be_event *start, ferry_be_event *end,
                                  double *out) {
  cl_event a = ocl_event_acquire(start);
  cl_event b = ocl_event_acquire(end);
  ferry_status st = FERRY_OK;
  cl_ulong ta = 0, tb = 0;
  if (a == NULL || b == NULL)
    st = ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                             "event_elapsed_ms: event '%s' was never recorded",
                             a == NULL ? "start" : "end");
  if (st == FERRY_OK)
    st = stamp(a, "start", &ta);
  if (st == FERRY_OK)
    st = stamp(b, "end", &tb);
  if (a)
    clReleaseEvent(a);
  if (b)
    clReleaseEvent(b);
  if (st != FERRY_OK)
    return st;
  /* Nanoseconds of one device clock; end may precede start. */
  *out = tb >= ta ? (double)(tb - ta) / 1e6 : -(double)(ta - tb) / 1e6;
  return FERRY_OK;
}

ferry_status ocl_event_native(ferry_be_event *e, void **out) {
  pthread_mutex_lock(&e->lock);
  *out = e->ev;
  pthread_mutex_unlock(&e->lock);
  return FERRY_OK;
}
