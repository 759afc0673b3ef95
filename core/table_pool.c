/* The host threads of the STAGED path: one pool per context, bound to the
 * context's cpuset (the cores of the device's NUMA node, where the table's
 * memory is), shared by the context's STAGED tables and released with the
 * last of them.
 *
 * The pool is the cpu backend's (backends/cpu/cpu_pool.c, built into
 * libferry): a run posts a job, wakes the helpers and claims chunks itself
 * (it is the backend's callback thread, whose affinity the pool leaves
 * alone), so a run always finishes even when every helper is busy with
 * another stream's job. The pool has one thread fewer than the cpuset has
 * cores: the callback thread is the last one. */
#include "table_internal.h"

#include "cpu_internal.h"

#include <hwloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

struct ferry__gather_pool {
  struct ferry__gather_pool *next; /* registry */
  const ferry_context *ctx;
  int refs; /* registry lock */
  int threads;
  ferry_cpu_pool pool;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static ferry__gather_pool *registry;

/* The CPUs of an hwloc list string into `set`; for "" (no binding) or a
 * list that does not parse, the calling thread's own affinity, which is
 * what an unbound helper would inherit. Returns the CPU count (>= 1). */
static int cpuset_parse(const char *list, cpu_set_t *set) {
  CPU_ZERO(set);
  hwloc_bitmap_t b = NULL;
  if (list != NULL && list[0] != '\0') {
    b = hwloc_bitmap_alloc();
    if (b != NULL && hwloc_bitmap_list_sscanf(b, list) == 0) {
      int cpu;
      hwloc_bitmap_foreach_begin(cpu, b) {
        if (cpu < CPU_SETSIZE)
          CPU_SET(cpu, set);
      }
      hwloc_bitmap_foreach_end();
    }
    hwloc_bitmap_free(b);
  }
  if (CPU_COUNT(set) == 0 &&
      pthread_getaffinity_np(pthread_self(), sizeof *set, set) != 0) {
    CPU_ZERO(set);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, set);
  }
  return CPU_COUNT(set) > 0 ? CPU_COUNT(set) : 1;
}

static ferry_status pool_start(const ferry_context *ctx,
                               ferry__gather_pool **out) {
  /* The pool code reports through the cpu backend's host services, which
   * its init sets: make sure it ran (it is built in, so this only loads it
   * on a context of another backend). */
  ferry_status st = FERRY_OK;
  if (ferry__plugin_get("cpu", &st, NULL) == NULL)
    return st;
  cpu_set_t set;
  int cpus = cpuset_parse(ctx->choice.cpuset, &set);
  ferry__gather_pool *p = calloc(1, sizeof *p);
  if (p == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_table: out of host memory");
  p->ctx = ctx;
  p->threads = cpus;
  st = ferry_cpu_pool_start(&p->pool, cpus - 1, &set, sizeof set);
  if (st != FERRY_OK) {
    free(p);
    return ferry__error(st,
                        "ferry_table: starting the STAGED gather threads: %s",
                        ferry_last_error());
  }
  *out = p;
  return FERRY_OK;
}

ferry_status ferry__gather_pool_acquire(const ferry_context *ctx,
                                        ferry__gather_pool **out) {
  pthread_mutex_lock(&registry_lock);
  for (ferry__gather_pool *p = registry; p != NULL; p = p->next)
    if (p->ctx == ctx) {
      p->refs++;
      pthread_mutex_unlock(&registry_lock);
      *out = p;
      return FERRY_OK;
    }
  ferry__gather_pool *p = NULL;
  ferry_status st = pool_start(ctx, &p);
  if (st == FERRY_OK) {
    p->refs = 1;
    p->next = registry;
    registry = p;
    *out = p;
  }
  pthread_mutex_unlock(&registry_lock);
  return st;
}

void ferry__gather_pool_release(ferry__gather_pool *p) {
  if (p == NULL)
    return;
  /* In a fork()ed child the helpers do not exist and the registry's lock
   * may be held by a thread that does not either: leave everything. */
  if (ferry__forked())
    return;
  pthread_mutex_lock(&registry_lock);
  bool last = --p->refs == 0;
  if (last)
    for (ferry__gather_pool **it = &registry; *it; it = &(*it)->next)
      if (*it == p) {
        *it = p->next;
        break;
      }
  pthread_mutex_unlock(&registry_lock);
  if (last) {
    ferry_cpu_pool_stop(&p->pool);
    free(p);
  }
}

int ferry__gather_pool_threads(const ferry__gather_pool *p) {
  return p ? p->threads : 1;
}

void ferry__gather_pool_run(ferry__gather_pool *p, uint64_t n, uint64_t chunk,
                            ferry__range_fn fn, void *arg) {
  if (p == NULL) {
    if (chunk == 0)
      chunk = 1;
    for (uint64_t b = 0; b < n; b += chunk)
      fn(arg, b, n - b < chunk ? n : b + chunk);
    return;
  }
  ferry_cpu_pool_run(&p->pool, n, chunk, fn, arg);
}
