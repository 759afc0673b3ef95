/* host_fn: the caller's function in stream order, on the runtime's
 * callback thread (where it must not call ferry's GPU functions: the
 * runtime forbids its own calls there, and ferry refuses them). */
#include "gpu_internal.h"

#include <stdio.h>
#include <string.h>

static ferry_status run_call(ferry_gpu_closure *c, char *msg, size_t n) {
  ferry_status st = c->u.call.fn(c->u.call.user);
  if (st != FERRY_OK)
    snprintf(msg, n, "the host function returned %s",
             ferry_gpu_status_name(st));
  return st;
}

ferry_status ferry_gpu_op_host_fn(ferry_be_stream *s, const ferry_be_launch *l,
                                  ferry_host_fn fn, void *user) {
  if (fn == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_NULL_POINTER,
                                     FERRY_GPU_NAME " host_fn: 'fn' is NULL");
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "host_fn", &scope);
  if (st != FERRY_OK)
    return st;
  ferry_gpu_closure c;
  memset(&c, 0, sizeof c);
  c.run = run_call;
  c.op = "host_fn";
  c.u.call.fn = fn;
  c.u.call.user = user;
  st = ferry_gpu_enqueue_host(s, l, &c);
  ferry_gpu_leave(&scope);
  return st;
}
