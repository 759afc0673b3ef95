/* ferry-bench copy: the limits every other benchmark is judged against
 * (docs/benchmarks.md).
 *
 *   host_memcpy_1thread  memcpy on one thread
 *   host_memcpy_pool     memcpy split over as many threads as the context's
 *                        worker pool, bound to its cpuset
 *   h2d, d2h, d2d        ferry_buffer_copy_async between pinned host and
 *                        device buffers, and device to device
 *   h2d_pageable,        ferry_buffer_write_async / read_async with ordinary
 *   d2h_pageable         (unpinned) host memory
 *
 * Host memory comes from ferry (FERRY_MEMORY_HOST buffers), so it sits where
 * the context's ops find theirs. Buffers are at least 4x the last-level cache
 * and two sets are rotated between repetitions, so no repetition starts with
 * its data cached. Each measurement is checked afterwards: the destination
 * must hold the source's pattern.
 *
 * A GPU's second limit, a kernel reading mapped host memory contiguously
 * with 16 B loads over a full grid, is not measured here: it needs a device
 * kernel, and the first one ferry gets is the gather's. It arrives with the
 * gather benchmark, which will measure it in the same run as the gathers it
 * judges. */
#include "bench.h"
#include "host_copy.h"
#include "timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETS 2 /* buffer sets rotated between repetitions */

typedef struct copy_run {
  const bench_config *cfg;
  const bench_target *target;
  uint64_t bytes;
  int failed; /* an error was printed */
  double best_host_gbps;
} copy_run;

/* ---- patterns ------------------------------------------------------------ */

/* Position-dependent, different for each set: a copy from the wrong offset
 * or the wrong set shows. */
static uint64_t pattern_word(uint64_t i, int set) {
  return ((i + 1) * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)(set + 1) << 56);
}

static void pattern_fill(void *p, uint64_t bytes, int set) {
  uint64_t words = bytes / 8;
  uint64_t *w = p;
  for (uint64_t i = 0; i < words; i++)
    w[i] = pattern_word(i, set);
  for (uint64_t i = words * 8; i < bytes; i++)
    ((unsigned char *)p)[i] = (unsigned char)(i ^ (uint64_t)set);
}

/* 0 when p holds set's pattern; else prints the first difference. */
static int pattern_check(const void *p, uint64_t bytes, int set,
                         const char *method) {
  uint64_t words = bytes / 8;
  const uint64_t *w = p;
  uint64_t bad = UINT64_MAX;
  for (uint64_t i = 0; i < words && bad == UINT64_MAX; i++)
    if (w[i] != pattern_word(i, set))
      bad = i * 8;
  for (uint64_t i = words * 8; i < bytes && bad == UINT64_MAX; i++)
    if (((const unsigned char *)p)[i] != (unsigned char)(i ^ (uint64_t)set))
      bad = i;
  if (bad == UINT64_MAX)
    return 0;
  fprintf(stderr,
          "ferry-bench: copy %s: the destination differs from the source at "
          "byte %llu\n",
          method, (unsigned long long)bad);
  return -1;
}

/* ---- buffers ------------------------------------------------------------- */

/* A ferry buffer and, where the host can address it, its host address. */
typedef struct side {
  ferry_buffer *buf[SETS];
  void *host[SETS];
} side;

static void side_free(side *s) {
  for (int i = 0; i < SETS; i++)
    ferry_buffer_destroy(s->buf[i]);
  memset(s, 0, sizeof *s);
}

/* 0, 1 when the backend lacks the memory space (printed as a skip), -1 on
 * an error (printed). */
static int side_alloc(copy_run *r, side *s, ferry_memory_space space,
                      const char *method) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < SETS; i++) {
    ferry_status st =
        ferry_buffer_create(r->target->ctx, space, r->bytes, &s->buf[i]);
    if (st == FERRY_ERR_UNSUPPORTED) {
      printf("skip %s copy %s: %s\n", r->target->info.backend, method,
             ferry_last_error());
      side_free(s);
      return 1;
    }
    if (st != FERRY_OK) {
      bench_fail("ferry_buffer_create", st);
      side_free(s);
      return -1;
    }
    ferry_buffer_info bi = FERRY_BUFFER_INFO_INIT;
    if ((st = ferry_buffer_get_info(s->buf[i], &bi)) != FERRY_OK) {
      bench_fail("ferry_buffer_get_info", st);
      side_free(s);
      return -1;
    }
    s->host[i] = bi.host_pointer;
  }
  return 0;
}

static bench_result *add_result(copy_run *r, bench_results *out,
                                const char *method, int threads,
                                double median_s) {
  const bench_target *t = r->target;
  bench_result *res = bench_results_add(out, "copy", t->info.backend,
                                        t->info.device.name, method);
  if (res == NULL)
    return NULL;
  bench_param_int(res, "bytes", (int64_t)r->bytes);
  bench_param_int(res, "threads", threads);
  res->reps = r->cfg->reps;
  res->median_s = median_s;
  res->gbps = (double)r->bytes / median_s / 1e9;
  res->judged = r->bytes >= 4 * r->cfg->llc_bytes;
  return res;
}

/* ---- host memcpy --------------------------------------------------------- */

typedef struct host_rep {
  side *src, *dst;
  uint64_t bytes;
  host_copy_team *team; /* NULL: one thread */
  int last_set;
} host_rep;

static int host_rep_fn(void *arg, int rep, double *seconds) {
  host_rep *h = arg;
  int set = rep % SETS;
  h->last_set = set;
  if (h->team != NULL) {
    *seconds = host_copy_team_run(h->team, h->dst->host[set], h->src->host[set],
                                  h->bytes);
  } else {
    double t0 = bench_now();
    memcpy(h->dst->host[set], h->src->host[set], h->bytes);
    *seconds = bench_now() - t0;
  }
  return 0;
}

static void host_memcpy(copy_run *r, bench_results *out) {
  side src, dst;
  int rc = side_alloc(r, &src, FERRY_MEMORY_HOST, "host_memcpy");
  if (rc != 0) {
    r->failed |= rc < 0;
    return;
  }
  if ((rc = side_alloc(r, &dst, FERRY_MEMORY_HOST, "host_memcpy")) != 0) {
    r->failed |= rc < 0;
    side_free(&src);
    return;
  }
  for (int i = 0; i < SETS; i++) {
    if (src.host[i] == NULL || dst.host[i] == NULL) {
      fprintf(stderr, "ferry-bench: a host buffer has no host pointer\n");
      r->failed = 1;
      goto done;
    }
    pattern_fill(src.host[i], r->bytes, i);
  }

  /* The context's pool; a backend without one (its host work runs on the
   * caller) is measured with every CPU it may use. */
  int pool = r->target->info.num_threads;
  if (pool < 1)
    pool = host_copy_cpu_count(r->target->info.cpuset);
  if (pool < 1)
    pool = 1;
  for (int variant = 0; variant < 2; variant++) {
    const char *method = variant ? "host_memcpy_pool" : "host_memcpy_1thread";
    host_rep h = {&src, &dst, r->bytes, NULL, 0};
    for (int i = 0; i < SETS; i++) /* the check must see this variant's copy */
      memset(dst.host[i], 0, r->bytes);
    if (variant) {
      h.team = host_copy_team_start(pool, r->target->info.cpuset);
      if (h.team == NULL) {
        r->failed = 1;
        continue;
      }
    }
    double median = 0;
    int ok =
        bench_repeat(r->cfg->warmup, r->cfg->reps, host_rep_fn, &h, &median) ==
            0 &&
        pattern_check(dst.host[h.last_set], r->bytes, h.last_set, method) == 0;
    host_copy_team_stop(h.team);
    if (!ok) {
      r->failed = 1;
      continue;
    }
    bench_result *res = add_result(r, out, method, variant ? pool : 1, median);
    if (res == NULL) {
      r->failed = 1;
      continue;
    }
    if (res->gbps > r->best_host_gbps)
      r->best_host_gbps = res->gbps;
  }
done:
  side_free(&dst);
  side_free(&src);
}

/* ---- copies through ferry ------------------------------------------------ */

typedef enum { VIA_COPY, VIA_WRITE, VIA_READ } copy_via;

typedef struct ferry_method {
  const char *name;
  ferry_memory_space src_space, dst_space;
  copy_via via; /* write/read: the host side is addressed by pointer */
} ferry_method;

static const ferry_method ferry_methods[] = {
    {"h2d", FERRY_MEMORY_PINNED_HOST, FERRY_MEMORY_DEVICE, VIA_COPY},
    {"d2h", FERRY_MEMORY_DEVICE, FERRY_MEMORY_PINNED_HOST, VIA_COPY},
    {"d2d", FERRY_MEMORY_DEVICE, FERRY_MEMORY_DEVICE, VIA_COPY},
    {"h2d_pageable", FERRY_MEMORY_HOST, FERRY_MEMORY_DEVICE, VIA_WRITE},
    {"d2h_pageable", FERRY_MEMORY_DEVICE, FERRY_MEMORY_HOST, VIA_READ},
};

typedef struct ferry_rep {
  const ferry_method *m;
  ferry_stream *stream;
  side *src, *dst;
  uint64_t bytes;
  int last_set;
} ferry_rep;

static ferry_status enqueue(const ferry_rep *f, int set) {
  switch (f->m->via) {
  case VIA_WRITE:
    return ferry_buffer_write_async(f->stream, f->dst->buf[set], 0,
                                    f->src->host[set], f->bytes);
  case VIA_READ:
    return ferry_buffer_read_async(f->stream, f->src->buf[set], 0,
                                   f->dst->host[set], f->bytes);
  case VIA_COPY:
    break;
  }
  return ferry_buffer_copy_async(f->stream, f->dst->buf[set], 0,
                                 f->src->buf[set], 0, f->bytes);
}

static int ferry_rep_fn(void *arg, int rep, double *seconds) {
  ferry_rep *f = arg;
  int set = rep % SETS;
  f->last_set = set;
  double t0 = bench_now();
  ferry_status st = enqueue(f, set);
  if (st != FERRY_OK)
    return bench_fail(f->m->name, st);
  if ((st = ferry_stream_synchronize(f->stream)) != FERRY_OK)
    return bench_fail("ferry_stream_synchronize", st);
  *seconds = bench_now() - t0;
  return 0;
}

/* Puts set's pattern into a side's buffer, staging through `staging` where
 * the host cannot address it. */
static int side_fill(ferry_stream *stream, side *s, int set, uint64_t bytes,
                     void *staging) {
  if (s->host[set] != NULL) {
    pattern_fill(s->host[set], bytes, set);
    return 0;
  }
  pattern_fill(staging, bytes, set);
  ferry_status st =
      ferry_buffer_write_async(stream, s->buf[set], 0, staging, bytes);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(stream);
  return st == FERRY_OK ? 0 : bench_fail("filling a source buffer", st);
}

/* Zeroes a side's buffer, so that the check after the measurement sees only
 * what the measured copies wrote (device memory can be handed back holding
 * an earlier method's pattern). */
static int side_clear(ferry_stream *stream, side *s, int set, uint64_t bytes,
                      void *staging) {
  if (s->host[set] != NULL) {
    memset(s->host[set], 0, bytes);
    return 0;
  }
  ferry_status st = ferry_buffer_fill_async(stream, s->buf[set], 0, 0, bytes);
  if (st == FERRY_ERR_UNSUPPORTED) {
    memset(staging, 0, bytes);
    st = ferry_buffer_write_async(stream, s->buf[set], 0, staging, bytes);
  }
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(stream);
  return st == FERRY_OK ? 0 : bench_fail("clearing a destination buffer", st);
}

static int side_check(ferry_stream *stream, side *s, int set, uint64_t bytes,
                      void *staging, const char *method) {
  const void *p = s->host[set];
  if (p == NULL) {
    memset(staging, 0, bytes);
    ferry_status st =
        ferry_buffer_read_async(stream, s->buf[set], 0, staging, bytes);
    if (st == FERRY_OK)
      st = ferry_stream_synchronize(stream);
    if (st != FERRY_OK)
      return bench_fail("reading back a copy", st);
    p = staging;
  }
  return pattern_check(p, bytes, set, method);
}

static void ferry_copy(copy_run *r, const ferry_method *m, bench_results *out) {
  side src, dst;
  int rc = side_alloc(r, &src, m->src_space, m->name);
  if (rc != 0) {
    r->failed |= rc < 0;
    return;
  }
  if ((rc = side_alloc(r, &dst, m->dst_space, m->name)) != 0) {
    r->failed |= rc < 0;
    side_free(&src);
    return;
  }
  ferry_stream *stream = NULL;
  void *staging = malloc(r->bytes);
  ferry_status st = ferry_stream_create(r->target->ctx, &stream);
  int ok = 0;
  if (staging == NULL)
    fprintf(stderr, "ferry-bench: no memory for a %llu-byte staging buffer\n",
            (unsigned long long)r->bytes);
  else if (st != FERRY_OK)
    bench_fail("ferry_stream_create", st);
  else
    ok = 1;
  if (m->via != VIA_COPY) { /* the pointer side must be host addressable */
    const side *h = m->via == VIA_WRITE ? &src : &dst;
    for (int i = 0; ok && i < SETS; i++)
      if (h->host[i] == NULL) {
        fprintf(stderr, "ferry-bench: a host buffer has no host pointer\n");
        ok = 0;
      }
  }
  for (int i = 0; ok && i < SETS; i++)
    ok = side_clear(stream, &dst, i, r->bytes, staging) == 0 &&
         side_fill(stream, &src, i, r->bytes, staging) == 0;

  ferry_rep f = {m, stream, &src, &dst, r->bytes, 0};
  double median = 0;
  if (ok)
    ok = bench_repeat(r->cfg->warmup, r->cfg->reps, ferry_rep_fn, &f,
                      &median) == 0 &&
         side_check(stream, &dst, f.last_set, r->bytes, staging, m->name) == 0;
  if (ok)
    ok = add_result(r, out, m->name, r->target->info.num_threads, median) !=
         NULL;
  r->failed |= !ok;
  ferry_stream_destroy(stream);
  free(staging);
  side_free(&dst);
  side_free(&src);
}

/* ---- the benchmark ------------------------------------------------------- */

/* Host-side copies are judged against the best host memcpy of the run. On
 * a backend whose device memory is host memory (cpu, PoCL) every ferry copy
 * is a host-side copy; on a discrete GPU the transfers are limits in their
 * own right, so they carry none. */
static void set_limits(const copy_run *r, bench_results *out, size_t first) {
  int unified = r->target->info.device.host_unified_memory != 0;
  for (size_t i = first; i < out->count; i++) {
    bench_result *res = &out->items[i];
    int host_side = strncmp(res->method, "host_memcpy", 11) == 0 || unified;
    if (host_side && r->best_host_gbps > 0) {
      res->limit_gbps = r->best_host_gbps;
      res->ratio = res->gbps / r->best_host_gbps;
    }
  }
}

int bench_copy(const bench_config *cfg, const bench_target *target,
               bench_results *out) {
  copy_run r = {cfg, target, 0, 0, 0};
  /* At least 4x the last-level cache, in whole MiB. */
  uint64_t want = cfg->quick ? 16ull << 20 : 256ull << 20;
  uint64_t floor4 = ((4 * cfg->llc_bytes + (1u << 20) - 1) >> 20) << 20;
  r.bytes = cfg->quick || want >= floor4 ? want : floor4;

  size_t first = out->count;
  host_memcpy(&r, out);
  for (size_t i = 0; i < sizeof ferry_methods / sizeof ferry_methods[0]; i++)
    ferry_copy(&r, &ferry_methods[i], out);
  set_limits(&r, out, first);
  if (!target->info.device.host_unified_memory)
    printf("note: %s: the limit of a kernel reading mapped host memory is not "
           "measured: it arrives with the gather benchmark\n",
           target->info.backend);
  return r.failed ? -1 : 0;
}
