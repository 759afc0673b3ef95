/* cpu contexts: where the threads run, how many, and teardown. */
#include "cpu_cpuset.h"
#include "cpu_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* More threads than this is a mistake, not a request: refuse it before
 * trying to start them one by one. */
#define CPU_MAX_THREADS 4096

/* The calling thread's affinity in a set sized for this machine: a fixed
 * cpu_set_t holds 1024 CPUs and the kernel refuses a smaller set than its
 * own (EINVAL), so grow until it fits. */
static ferry_status caller_affinity(cpu_set_t **out, size_t *out_size) {
  for (size_t ncpus = 1024; ncpus <= ((size_t)1 << 20); ncpus *= 2) {
    size_t size = CPU_ALLOC_SIZE(ncpus);
    cpu_set_t *set = ferry_cpu_host->alloc(size, 0);
    if (set == NULL)
      return ferry_cpu_host->set_error(
          FERRY_ERR_OUT_OF_MEMORY,
          "cpu context_create: no memory for a cpu set of %zu bytes", size);
    CPU_ZERO_S(size, set);
    int err = pthread_getaffinity_np(pthread_self(), size, set);
    if (err == 0) {
      *out = set;
      *out_size = size;
      return FERRY_OK;
    }
    ferry_cpu_host->free(set);
    if (err != EINVAL) {
      char why[128];
      return ferry_cpu_host->set_error(
          FERRY_ERR_BACKEND,
          "cpu context_create: cannot read the thread's CPU affinity: %s",
          strerror_r(err, why, sizeof why));
    }
  }
  return ferry_cpu_host->set_error(
      FERRY_ERR_BACKEND,
      "cpu context_create: the kernel's CPU affinity mask is larger than 2^20 "
      "CPUs");
}

/* Restrict `cpus` to the hwloc list. The list comes from the topology the
 * core chose the device on, which may name CPUs this process may not use
 * (a container's cgroup cpuset, a taskset'd launcher, an XML topology in
 * tests). Threads cannot be bound to nothing and the cpu backend is the
 * last resort when no GPU is usable, so an empty intersection falls back to
 * every CPU the process may use instead of failing; the trace says so. */
static ferry_status apply_cpuset(cpu_set_t *cpus, size_t size,
                                 const char *list) {
  if (*list == '\0')
    return FERRY_OK;
  cpu_set_t *narrowed = ferry_cpu_host->alloc(size, 0);
  if (narrowed == NULL)
    return ferry_cpu_host->set_error(
        FERRY_ERR_OUT_OF_MEMORY,
        "cpu context_create: no memory for a cpu set of %zu bytes", size);
  memcpy(narrowed, cpus, size);
  ferry_cpu_cpuset_restrict(narrowed, size, list);
  if (CPU_COUNT_S(size, narrowed) > 0)
    memcpy(cpus, narrowed, size);
  else
    ferry_cpu_host->trace("cpu",
                          "cpuset \"%s\" shares no CPU with the process's "
                          "affinity; using the process's CPUs",
                          list);
  ferry_cpu_host->free(narrowed);
  return FERRY_OK;
}

/* FERRY_CPU_SYNC, read when the context is created (not once per process:
 * the plugin is initialised when the loader first runs, and a program, or
 * a test, sets it just before creating the context it wants synchronous). */
static bool sync_requested(void) {
  const char *v = getenv("FERRY_CPU_SYNC");
  return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

ferry_status ferry_cpu_context_create(const ferry_be_context_params *params,
                                      ferry_be_context **out) {
  if (params == NULL || out == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_NULL_POINTER,
                                     "cpu context_create: '%s' is NULL",
                                     params == NULL ? "params" : "out");
  if (params->struct_size < sizeof(ferry_be_context_params))
    return ferry_cpu_host->set_error(
        FERRY_ERR_STRUCT_SIZE,
        "cpu context_create: params->struct_size %u is smaller than %zu",
        params->struct_size, sizeof(ferry_be_context_params));
  if (params->device_index != 0)
    return ferry_cpu_host->set_error(
        FERRY_ERR_OUT_OF_RANGE,
        "cpu context_create: params->device_index %d does not exist (the cpu "
        "backend has one device, 0)",
        params->device_index);
  if (params->num_threads < 0 || params->num_threads > CPU_MAX_THREADS)
    return ferry_cpu_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        "cpu context_create: params->num_threads %d is outside 0..%d",
        params->num_threads, CPU_MAX_THREADS);
  const char *list = params->cpuset != NULL ? params->cpuset : "";
  size_t bad = 0;
  if (ferry_cpu_cpuset_check(list, &bad) != 0)
    return ferry_cpu_host->set_error(
        FERRY_ERR_BAD_FORMAT,
        "cpu context_create: params->cpuset \"%s\" is not an hwloc list such "
        "as \"0-7,16\" (at offset %zu)",
        list, bad);

  cpu_set_t *cpus = NULL;
  size_t cpus_size = 0;
  ferry_status st = caller_affinity(&cpus, &cpus_size);
  if (st != FERRY_OK)
    return st;
  st = apply_cpuset(cpus, cpus_size, list);
  if (st != FERRY_OK) {
    ferry_cpu_host->free(cpus);
    return st;
  }
  int threads = params->num_threads;
  if (threads == 0)
    threads = CPU_COUNT_S(cpus_size, cpus);
  if (threads < 1) /* an empty affinity mask cannot be read back; be safe */
    threads = 1;

  ferry_be_context *ctx = ferry_cpu_host->alloc(sizeof *ctx, 0);
  if (ctx == NULL) {
    ferry_cpu_host->free(cpus);
    return ferry_cpu_host->set_error(
        FERRY_ERR_OUT_OF_MEMORY, "cpu context_create: no memory for a context");
  }
  memset(ctx, 0, sizeof *ctx);
  ctx->cookie = params->context_cookie;
  ctx->num_threads = threads;
  ctx->sync = sync_requested();
  ctx->cpus = cpus;
  ctx->cpus_size = cpus_size;
  ctx->streams = NULL;
  pthread_mutex_init(&ctx->lock, NULL);
  pthread_cond_init(&ctx->stream_exited, NULL);
  pthread_mutex_init(&ctx->fence_lock, NULL);
  pthread_cond_init(&ctx->fence_done, NULL);
  /* The thread calling parallel_for is the last of num_threads. */
  st = ferry_cpu_pool_start(&ctx->pool, threads - 1, cpus, cpus_size);
  if (st != FERRY_OK) {
    pthread_cond_destroy(&ctx->fence_done);
    pthread_mutex_destroy(&ctx->fence_lock);
    pthread_cond_destroy(&ctx->stream_exited);
    pthread_mutex_destroy(&ctx->lock);
    ferry_cpu_host->free(cpus);
    ferry_cpu_host->free(ctx);
    return st;
  }
  ferry_cpu_host->trace("cpu",
                        "context: num_threads %d on %d CPUs (cpuset \"%s\")%s",
                        threads, CPU_COUNT_S(cpus_size, cpus), list,
                        ctx->sync ? ", synchronous (FERRY_CPU_SYNC)" : "");
  *out = ctx;
  return FERRY_OK;
}

void ferry_cpu_context_destroy(ferry_be_context *ctx, uint32_t flags) {
  if (ctx == NULL)
    return;
  bool forked = (flags & FERRY_BE_DESTROY_FORKED) != 0;
  ferry_cpu_streams_teardown(ctx, forked);
  if (forked) {
    /* No thread of the parent exists here and its locks may be held for
     * ever: free memory, touch nothing else. */
    ferry_cpu_pool_forget(&ctx->pool);
  } else {
    ferry_cpu_pool_stop(&ctx->pool);
    pthread_cond_destroy(&ctx->fence_done);
    pthread_mutex_destroy(&ctx->fence_lock);
    pthread_cond_destroy(&ctx->stream_exited);
    pthread_mutex_destroy(&ctx->lock);
  }
  ferry_cpu_host->free(ctx->cpus);
  ferry_cpu_host->free(ctx);
}
