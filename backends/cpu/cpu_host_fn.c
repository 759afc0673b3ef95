/* op_host_fn: the caller's function, run in stream order (on the stream's
 * dispatcher thread, or the caller's under FERRY_CPU_SYNC). */
#include "cpu_internal.h"

typedef struct host_fn_args {
  ferry_host_fn fn;
  void *user;
} host_fn_args;

static void run_host_fn(const ferry_cpu_task *task, void *args) {
  const host_fn_args *a = args;
  ferry_status st = a->fn(a->user);
  if (st != FERRY_OK)
    ferry_cpu_task_fail(task, st, "host function returned %s",
                        ferry_cpu_status_name(st));
}

ferry_status ferry_cpu_op_host_fn(ferry_be_stream *s, const ferry_be_launch *l,
                                  ferry_host_fn fn, void *user) {
  if (fn == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_NULL_POINTER,
                                     "cpu host_fn: 'fn' is NULL");
  host_fn_args a = {fn, user};
  return ferry_cpu_enqueue(s, l, run_host_fn, &a, sizeof a, NULL);
}
