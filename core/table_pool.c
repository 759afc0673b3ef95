/* The host threads of the STAGED path: one pool per context, bound to the
 * context's cpuset (the cores of the device's NUMA node, where the table's
 * memory is), shared by the context's STAGED tables and released with the
 * last of them.
 *
 * A run posts a job, wakes the helpers and claims chunks itself (it is the
 * backend's callback thread, whose affinity the pool leaves alone), so a
 * run always finishes even when every helper is busy with another stream's
 * job. Chunks are claimed with one atomic increment; the lock is taken only
 * to enter and leave a job. The pool has one thread fewer than the cpuset
 * has cores: the callback thread is the last one. */
#include "table_internal.h"

#include <hwloc.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct pool_job {
  ferry__range_fn fn;
  void *arg;
  uint64_t n, chunk, nchunks;
  atomic_uint_fast64_t next; /* next chunk to claim; may run past nchunks */
  int active;                /* helpers inside (pool lock) */
  bool listed;               /* in pool->jobs (pool lock) */
  struct pool_job *next_job;
} pool_job;

struct ferry__gather_pool {
  struct ferry__gather_pool *next; /* registry */
  const ferry_context *ctx;
  int refs; /* registry lock */
  int threads;
  pthread_mutex_t lock;
  pthread_cond_t work, left;
  pool_job *jobs;
  bool stopping;
  int helpers;
  pthread_t *helper;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static ferry__gather_pool *registry;

static void run_chunks(pool_job *job) {
  for (;;) {
    uint64_t c = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
    if (c >= job->nchunks)
      return;
    uint64_t begin = c * job->chunk;
    uint64_t end = job->n - begin < job->chunk ? job->n : begin + job->chunk;
    job->fn(job->arg, begin, end);
  }
}

static void unlist(ferry__gather_pool *p, pool_job *job) {
  if (!job->listed)
    return;
  for (pool_job **it = &p->jobs; *it; it = &(*it)->next_job)
    if (*it == job) {
      *it = job->next_job;
      break;
    }
  job->listed = false;
}

static void *helper_main(void *arg) {
  ferry__gather_pool *p = arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->stopping && p->jobs == NULL)
      pthread_cond_wait(&p->work, &p->lock);
    if (p->jobs == NULL)
      break;
    pool_job *job = p->jobs;
    job->active++;
    pthread_mutex_unlock(&p->lock);
    run_chunks(job);
    pthread_mutex_lock(&p->lock);
    unlist(p, job);
    if (--job->active == 0)
      pthread_cond_broadcast(&p->left);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static void pool_stop(ferry__gather_pool *p) {
  pthread_mutex_lock(&p->lock);
  p->stopping = true;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->helpers; i++)
    pthread_join(p->helper[i], NULL);
  pthread_cond_destroy(&p->left);
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->lock);
  free(p->helper);
  free(p);
}

/* CPUs of an hwloc list string into `set` (all online CPUs for ""). */
static int cpuset_parse(const char *list, cpu_set_t *set) {
  CPU_ZERO(set);
  if (list == NULL || list[0] == '\0') {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long c = 0; c < n && c < CPU_SETSIZE; c++)
      CPU_SET((int)c, set);
    return n > 0 ? (int)n : 1;
  }
  hwloc_bitmap_t b = hwloc_bitmap_alloc();
  if (b == NULL || hwloc_bitmap_list_sscanf(b, list) != 0) {
    hwloc_bitmap_free(b);
    return 0;
  }
  int cpu;
  hwloc_bitmap_foreach_begin(cpu, b) {
    if (cpu < CPU_SETSIZE)
      CPU_SET(cpu, set);
  }
  hwloc_bitmap_foreach_end();
  hwloc_bitmap_free(b);
  return CPU_COUNT(set);
}

static ferry_status pool_start(const ferry_context *ctx,
                               ferry__gather_pool **out) {
  cpu_set_t set;
  int cpus = cpuset_parse(ctx->choice.cpuset, &set);
  bool bind = cpus > 0 && ctx->choice.cpuset[0] != '\0';
  if (cpus < 1)
    cpus = 1;
  ferry__gather_pool *p = calloc(1, sizeof *p);
  if (p == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_table: out of host memory");
  p->ctx = ctx;
  p->threads = cpus;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->left, NULL);
  if (cpus > 1) {
    p->helper = calloc((size_t)cpus - 1, sizeof *p->helper);
    if (p->helper == NULL) {
      pool_stop(p);
      return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                          "ferry_table: out of host memory");
    }
  }
  for (int i = 0; i < cpus - 1; i++) {
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (err == 0 && bind)
      err = pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    /* Signals belong to the application's threads: block all in helpers. */
    sigset_t all, old;
    sigfillset(&all);
    if (err == 0)
      err = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (err == 0) {
      err = pthread_create(&p->helper[i], &attr, helper_main, p);
      pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_attr_destroy(&attr);
    if (err != 0) {
      pool_stop(p);
      return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                          "ferry_table: could not start STAGED gather thread "
                          "%d of %d: %s",
                          i + 1, cpus - 1, strerror(err));
    }
    p->helpers++;
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
  if (last)
    pool_stop(p);
}

int ferry__gather_pool_threads(const ferry__gather_pool *p) {
  return p ? p->threads : 1;
}

void ferry__gather_pool_run(ferry__gather_pool *p, uint64_t n, uint64_t chunk,
                            ferry__range_fn fn, void *arg) {
  if (n == 0)
    return;
  if (chunk == 0)
    chunk = 1;
  uint64_t nchunks = n / chunk + (n % chunk != 0);
  if (p == NULL || p->helpers == 0 || nchunks == 1) {
    for (uint64_t b = 0; b < n; b += chunk)
      fn(arg, b, n - b < chunk ? n : b + chunk);
    return;
  }
  pool_job job = {.fn = fn,
                  .arg = arg,
                  .n = n,
                  .chunk = chunk,
                  .nchunks = nchunks,
                  .active = 0,
                  .listed = true,
                  .next_job = NULL};
  atomic_init(&job.next, 0);
  pthread_mutex_lock(&p->lock);
  pool_job **tail = &p->jobs;
  while (*tail)
    tail = &(*tail)->next_job;
  *tail = &job;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->lock);
  run_chunks(&job);
  pthread_mutex_lock(&p->lock);
  unlist(p, &job);
  while (job.active > 0)
    pthread_cond_wait(&p->left, &p->lock);
  pthread_mutex_unlock(&p->lock);
}
