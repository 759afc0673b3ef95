#include "host_copy.h"

#include "timing.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct host_copy_team {
  int threads;
  pthread_mutex_t lock;
  pthread_cond_t work; /* helpers: a new generation or stopping */
  pthread_cond_t done; /* the caller: pending reached 0 */
  unsigned long generation;
  int pending; /* helpers still copying this generation */
  int stopping;
  pthread_t *helpers;
  int started; /* helpers running */
  char *dst;
  const char *src;
  size_t bytes;
};

typedef struct {
  host_copy_team *team;
  int index;
} helper_arg;

/* Thread `index`'s slice, cut at 4 KiB so no two threads share a page. */
static void copy_slice(host_copy_team *t, int index) {
  size_t pages = (t->bytes + 4095) / 4096;
  size_t begin = pages * (size_t)index / (size_t)t->threads * 4096;
  size_t end = pages * (size_t)(index + 1) / (size_t)t->threads * 4096;
  if (end > t->bytes)
    end = t->bytes;
  if (begin < end)
    memcpy(t->dst + begin, t->src + begin, end - begin);
}

static void *helper_main(void *p) {
  helper_arg *a = p;
  host_copy_team *t = a->team;
  int index = a->index;
  free(a);
  unsigned long seen = 0;
  pthread_mutex_lock(&t->lock);
  for (;;) {
    while (t->generation == seen && !t->stopping)
      pthread_cond_wait(&t->work, &t->lock);
    if (t->stopping)
      break;
    seen = t->generation;
    pthread_mutex_unlock(&t->lock);
    copy_slice(t, index);
    pthread_mutex_lock(&t->lock);
    if (--t->pending == 0)
      pthread_cond_signal(&t->done);
  }
  pthread_mutex_unlock(&t->lock);
  return NULL;
}

/* Parses an hwloc list string ("0-3,8,10-11") into `set`. */
static int parse_cpuset(const char *text, cpu_set_t *set) {
  CPU_ZERO(set);
  const char *p = text;
  while (*p) {
    char *end;
    long lo = strtol(p, &end, 10), hi = lo;
    if (end == p || lo < 0)
      return -1;
    p = end;
    if (*p == '-') {
      hi = strtol(p + 1, &end, 10);
      if (end == p + 1 || hi < lo)
        return -1;
      p = end;
    }
    for (long c = lo; c <= hi && c < CPU_SETSIZE; c++)
      CPU_SET((int)c, set);
    if (*p == ',')
      p++;
    else if (*p != '\0')
      return -1;
  }
  return 0;
}

host_copy_team *host_copy_team_start(int threads, const char *cpuset) {
  if (threads < 1) {
    fprintf(stderr, "ferry-bench: %d copy threads: must be >= 1\n", threads);
    return NULL;
  }
  host_copy_team *t = calloc(1, sizeof *t);
  if (t == NULL)
    return NULL;
  t->threads = threads;
  t->helpers = calloc((size_t)threads, sizeof *t->helpers);
  if (t->helpers == NULL) {
    free(t);
    return NULL;
  }
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->work, NULL);
  pthread_cond_init(&t->done, NULL);

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  cpu_set_t set;
  if (cpuset != NULL && cpuset[0] != '\0') {
    if (parse_cpuset(cpuset, &set) != 0) {
      fprintf(stderr, "ferry-bench: cannot parse the cpuset '%s'\n", cpuset);
      pthread_attr_destroy(&attr);
      host_copy_team_stop(t);
      return NULL;
    }
    pthread_attr_setaffinity_np(&attr, sizeof set, &set);
  }
  for (int i = 1; i < threads; i++) {
    helper_arg *a = malloc(sizeof *a);
    int rc = a == NULL ? ENOMEM : 0;
    if (a != NULL) {
      a->team = t;
      a->index = i;
      rc = pthread_create(&t->helpers[i], &attr, helper_main, a);
      if (rc != 0)
        free(a);
    }
    if (rc != 0) {
      fprintf(stderr, "ferry-bench: starting copy thread %d: %s\n", i,
              strerror(rc));
      pthread_attr_destroy(&attr);
      host_copy_team_stop(t);
      return NULL;
    }
    t->started++;
  }
  pthread_attr_destroy(&attr);
  return t;
}

double host_copy_team_run(host_copy_team *t, void *dst, const void *src,
                          size_t bytes) {
  double t0 = bench_now();
  pthread_mutex_lock(&t->lock);
  t->dst = dst;
  t->src = src;
  t->bytes = bytes;
  t->pending = t->threads - 1;
  t->generation++;
  pthread_cond_broadcast(&t->work);
  pthread_mutex_unlock(&t->lock);
  copy_slice(t, 0);
  pthread_mutex_lock(&t->lock);
  while (t->pending > 0)
    pthread_cond_wait(&t->done, &t->lock);
  pthread_mutex_unlock(&t->lock);
  return bench_now() - t0;
}

void host_copy_team_stop(host_copy_team *t) {
  if (t == NULL)
    return;
  pthread_mutex_lock(&t->lock);
  t->stopping = 1;
  pthread_cond_broadcast(&t->work);
  pthread_mutex_unlock(&t->lock);
  for (int i = 1; i <= t->started; i++)
    pthread_join(t->helpers[i], NULL);
  pthread_cond_destroy(&t->done);
  pthread_cond_destroy(&t->work);
  pthread_mutex_destroy(&t->lock);
  free(t->helpers);
  free(t);
}

int host_copy_cpu_count(const char *cpuset) {
  if (cpuset == NULL || cpuset[0] == '\0') {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
  }
  cpu_set_t set;
  return parse_cpuset(cpuset, &set) == 0 ? CPU_COUNT(&set) : 0;
}
