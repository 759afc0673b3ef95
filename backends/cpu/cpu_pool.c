/* The context's worker pool and parallel_for. No OpenMP: its runtime cannot
 * be bound per context, does not survive fork() and would add a dependency
 * to the plugin.
 *
 * A parallel_for posts a job (on the caller's stack) to the pool's list,
 * wakes the helpers, and then claims chunks itself like any helper; chunks
 * are claimed with one atomic increment, so the lock is taken only to enter
 * and leave a job. The caller returns once the chunks are exhausted and no
 * helper is still inside the job. Because the caller always works on its own
 * job, nested or concurrent parallel_for calls (from several streams' tasks)
 * finish even when every helper is busy elsewhere. */
#include "cpu_internal.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>

struct ferry_cpu_job {
  ferry_cpu_range_fn fn;
  void *arg;
  uint64_t n;
  uint64_t chunk;
  uint64_t nchunks;
  atomic_uint_fast64_t next; /* next chunk to claim; may run past nchunks */
  int active;                /* helpers inside the job (pool lock) */
  bool listed;               /* in pool->jobs (pool lock) */
  ferry_cpu_job *next_job;
};

static void run_chunks(ferry_cpu_job *job) {
  for (;;) {
    uint64_t c = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
    if (c >= job->nchunks)
      return;
    uint64_t begin = c * job->chunk;
    uint64_t end = job->n - begin < job->chunk ? job->n : begin + job->chunk;
    job->fn(job->arg, begin, end);
  }
}

/* Pool lock held. */
static void unlist(ferry_cpu_pool *pool, ferry_cpu_job *job) {
  if (!job->listed)
    return;
  for (ferry_cpu_job **p = &pool->jobs; *p; p = &(*p)->next_job) {
    if (*p == job) {
      *p = job->next_job;
      break;
    }
  }
  job->listed = false;
}

static void *helper_main(void *arg) {
  ferry_cpu_pool *pool = arg;
  pthread_mutex_lock(&pool->lock);
  for (;;) {
    while (!pool->stopping && pool->jobs == NULL)
      pthread_cond_wait(&pool->work, &pool->lock);
    if (pool->jobs == NULL)
      break; /* stopping, and nothing left to help with */
    ferry_cpu_job *job = pool->jobs;
    job->active++;
    pthread_mutex_unlock(&pool->lock);
    run_chunks(job);
    pthread_mutex_lock(&pool->lock);
    /* Claims are exhausted (run_chunks returned): stop others entering. */
    unlist(pool, job);
    if (--job->active == 0)
      pthread_cond_broadcast(&pool->left);
  }
  pthread_mutex_unlock(&pool->lock);
  return NULL;
}

int ferry_cpu_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg,
                           const cpu_set_t *cpus, size_t setsize) {
  pthread_attr_t attr;
  int err = pthread_attr_init(&attr);
  if (err != 0)
    return err;
  err = pthread_attr_setaffinity_np(&attr, setsize, cpus);
  sigset_t all, old;
  sigfillset(&all);
  /* The new thread inherits the creator's mask: block everything for it,
   * then restore the creator's. */
  if (err == 0)
    err = pthread_sigmask(SIG_SETMASK, &all, &old);
  if (err == 0) {
    err = pthread_create(thread, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  pthread_attr_destroy(&attr);
  return err;
}

ferry_status ferry_cpu_pool_start(ferry_cpu_pool *pool, int helpers,
                                  const cpu_set_t *cpus, size_t setsize) {
  pool->jobs = NULL;
  pool->stopping = false;
  pool->helpers = 0;
  pool->threads = NULL;
  pthread_mutex_init(&pool->lock, NULL);
  pthread_cond_init(&pool->work, NULL);
  pthread_cond_init(&pool->left, NULL);
  if (helpers <= 0)
    return FERRY_OK;
  pool->threads =
      ferry_cpu_host->alloc((uint64_t)helpers * sizeof(pthread_t), 0);
  if (pool->threads == NULL) {
    ferry_cpu_pool_stop(pool);
    return ferry_cpu_host->set_error(
        FERRY_ERR_OUT_OF_MEMORY,
        "cpu context_create: no memory for %d worker thread handles", helpers);
  }
  for (int i = 0; i < helpers; i++) {
    int err = ferry_cpu_thread_start(&pool->threads[i], helper_main, pool, cpus,
                                     setsize);
    if (err != 0) {
      ferry_cpu_pool_stop(pool);
      char why[128];
      return ferry_cpu_host->set_error(
          FERRY_ERR_OUT_OF_MEMORY,
          "cpu context_create: could not start worker thread %d of %d: %s",
          i + 1, helpers, strerror_r(err, why, sizeof why));
    }
    pool->helpers++;
  }
  return FERRY_OK;
}

void ferry_cpu_pool_stop(ferry_cpu_pool *pool) {
  pthread_mutex_lock(&pool->lock);
  pool->stopping = true;
  pthread_cond_broadcast(&pool->work);
  pthread_mutex_unlock(&pool->lock);
  for (int i = 0; i < pool->helpers; i++)
    pthread_join(pool->threads[i], NULL);
  ferry_cpu_host->free(pool->threads);
  pool->threads = NULL;
  pool->helpers = 0;
  pthread_cond_destroy(&pool->left);
  pthread_cond_destroy(&pool->work);
  pthread_mutex_destroy(&pool->lock);
}

void ferry_cpu_pool_forget(ferry_cpu_pool *pool) {
  /* The mutex may have been held by a thread that no longer exists: it is
   * neither locked nor destroyed, only its memory goes with the context. */
  ferry_cpu_host->free(pool->threads);
  pool->threads = NULL;
  pool->helpers = 0;
}

int ferry_cpu_num_threads(const ferry_be_context *ctx) {
  return ctx->num_threads;
}

int ferry_cpu_context_num_threads(ferry_be_context *ctx) {
  return ferry_cpu_num_threads(ctx);
}

void ferry_cpu_parallel_for(ferry_be_context *ctx, uint64_t n, uint64_t chunk,
                            ferry_cpu_range_fn fn, void *arg) {
  if (n == 0)
    return;
  if (chunk == 0) {
    /* A few chunks per thread evens out uneven chunk costs. */
    uint64_t parts = 4 * (uint64_t)ctx->num_threads;
    chunk = (n + parts - 1) / parts;
  }
  ferry_cpu_pool_run(&ctx->pool, n, chunk, fn, arg);
}

void ferry_cpu_pool_run(ferry_cpu_pool *pool, uint64_t n, uint64_t chunk,
                        ferry_cpu_range_fn fn, void *arg) {
  if (n == 0)
    return;
  if (chunk == 0)
    chunk = 1;
  uint64_t nchunks = n / chunk + (n % chunk != 0);
  if (nchunks == 1 || pool->helpers == 0) {
    for (uint64_t begin = 0; begin < n; begin += chunk)
      fn(arg, begin, n - begin < chunk ? n : begin + chunk);
    return;
  }
  ferry_cpu_job job = {.fn = fn,
                       .arg = arg,
                       .n = n,
                       .chunk = chunk,
                       .nchunks = nchunks,
                       .active = 0,
                       .listed = true,
                       .next_job = NULL};
  atomic_init(&job.next, 0);
  pthread_mutex_lock(&pool->lock);
  ferry_cpu_job **tail = &pool->jobs;
  while (*tail)
    tail = &(*tail)->next_job;
  *tail = &job;
  /* More helpers than chunks beyond the caller's would only spin out. */
  if (nchunks - 1 >= (uint64_t)pool->helpers)
    pthread_cond_broadcast(&pool->work);
  else
    for (uint64_t i = 0; i < nchunks - 1; i++)
      pthread_cond_signal(&pool->work);
  pthread_mutex_unlock(&pool->lock);

  run_chunks(&job);

  pthread_mutex_lock(&pool->lock);
  unlist(pool, &job);
  while (job.active > 0)
    pthread_cond_wait(&pool->left, &pool->lock);
  pthread_mutex_unlock(&pool->lock);
}
