/* Graph500's R-MAT generator: each edge picks one quadrant per level with
 * probabilities (a, b, c, d), resolved to 1/65536. The random bits come from
 * splitmix64 of (seed, edge index, word), 16 bits a level, so edge i is a
 * pure function of (options, i), threads may generate any range, and a
 * scale-24 graph costs 6 mixes an edge (Philox, which the sampler needs for
 * its cross-device guarantees, would cost 6 ten-round blocks). Node ids are
 * then permuted (a seeded Fisher-Yates on a Philox stream), as Graph500
 * does, so that degree does not follow id. Unlike Graph500's reference code,
 * the probabilities are not perturbed per level (docs/sampler.md). */
#include "graph_internal.h"
#include "philox.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RMAT_MAX_THREADS 16

typedef struct rmat_job {
  const ferry_rmat_options *o;
  uint32_t ta, tab, tabc; /* cumulative thresholds scaled to 2^16 */
  int64_t begin, end;
  int64_t *src, *dst;
  const int64_t *perm; /* NULL in the generation pass */
} rmat_job;

static uint32_t scaled(double p) {
  double x = p * 65536.0 + 0.5;
  if (x >= 65536.0)
    return 65536u;
  return x <= 0 ? 0 : (uint32_t)x;
}

/* splitmix64 (Steele, Lea, Flood 2014) at position `index` of the stream
 * keyed by `seed`. */
static inline uint64_t mix64(uint64_t seed, uint64_t index) {
  uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void *rmat_gen(void *arg) {
  rmat_job *j = arg;
  const int scale = j->o->scale;
  const uint64_t seed = j->o->seed;
  for (int64_t e = j->begin; e < j->end; e++) {
    int64_t u = 0, v = 0;
    uint64_t w = 0;
    for (int lvl = 0; lvl < scale; lvl++) {
      if ((lvl & 3) == 0)
        w = mix64(seed, (uint64_t)e * 8u + (uint64_t)(lvl >> 2));
      uint32_t r = (uint32_t)(w >> (16 * (lvl & 3))) & 0xFFFFu;
      int qu = r >= j->tab;                                /* c or d */
      int qv = (r >= j->ta && r < j->tab) || r >= j->tabc; /* b or d */
      u = (u << 1) | qu;
      v = (v << 1) | qv;
    }
    j->src[e] = u;
    j->dst[e] = v;
  }
  return NULL;
}

static void *rmat_permute(void *arg) {
  rmat_job *j = arg;
  for (int64_t e = j->begin; e < j->end; e++) {
    j->src[e] = j->perm[j->src[e]];
    j->dst[e] = j->perm[j->dst[e]];
  }
  return NULL;
}

static void run_threads(rmat_job *proto, int64_t n, void *(*fn)(void *)) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int t =
      cpus < 1 ? 1 : (cpus > RMAT_MAX_THREADS ? RMAT_MAX_THREADS : (int)cpus);
  rmat_job jobs[RMAT_MAX_THREADS];
  pthread_t th[RMAT_MAX_THREADS];
  bool started[RMAT_MAX_THREADS] = {false};
  for (int i = 0; i < t; i++) {
    jobs[i] = *proto;
    jobs[i].begin = n * i / t;
    jobs[i].end = n * (i + 1) / t;
    /* A thread that cannot start leaves its range to this thread. */
    started[i] = i > 0 && pthread_create(&th[i], NULL, fn, &jobs[i]) == 0;
  }
  for (int i = 0; i < t; i++)
    if (!started[i])
      fn(&jobs[i]);
  for (int i = 1; i < t; i++)
    if (started[i])
      pthread_join(th[i], NULL);
}

ferry_status ferry_graph_create_rmat(ferry_context *ctx,
                                     const ferry_graph_options *graph_opts,
                                     const ferry_rmat_options *rmat_opts,
                                     ferry_graph **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(rmat_opts);
  FERRY_CHECK_NULL(out);
  ferry_graph_options go;
  ferry_status st = ferry__graph_options(__func__, graph_opts, &go);
  if (st != FERRY_OK)
    return st;
  const ferry_rmat_options *o = rmat_opts;
  if (o->struct_size != sizeof(ferry_rmat_options))
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "%s: rmat_opts->struct_size is %zu; use "
                        "FERRY_RMAT_OPTIONS_INIT",
                        __func__, o->struct_size);
  if (o->scale < 1 || o->scale > 30)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: rmat_opts->scale is %d, outside [1, 30]", __func__,
                        o->scale);
  if (o->edge_factor < 1 || o->edge_factor > 1024)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: rmat_opts->edge_factor is %d, outside [1, 1024]",
                        __func__, o->edge_factor);
  if (!(o->a >= 0 && o->b >= 0 && o->c >= 0 && o->a + o->b + o->c <= 1.0))
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: rmat_opts a, b, c = %g, %g, %g must be >= 0 with "
                        "a + b + c <= 1",
                        __func__, o->a, o->b, o->c);
  int64_t nodes = (int64_t)1 << o->scale;
  int64_t edges = nodes * o->edge_factor;
  int64_t *src = malloc((size_t)edges * sizeof *src);
  int64_t *dst = malloc((size_t)edges * sizeof *dst);
  int64_t *perm = malloc((size_t)nodes * sizeof *perm);
  if (src == NULL || dst == NULL || perm == NULL) {
    free(src);
    free(dst);
    free(perm);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "%s: out of host memory for %lld edges", __func__,
                        (long long)edges);
  }
  rmat_job proto;
  memset(&proto, 0, sizeof proto);
  proto.o = o;
  proto.ta = scaled(o->a);
  proto.tab = scaled(o->a + o->b);
  proto.tabc = scaled(o->a + o->b + o->c);
  proto.src = src;
  proto.dst = dst;
  if (o->progress)
    o->progress(o->progress_user, "generate", 0.0);
  run_threads(&proto, edges, rmat_gen);
  if (o->progress)
    o->progress(o->progress_user, "generate", 1.0);
  /* Fisher-Yates from one Philox stream ("PERM" apart from the edges'). */
  for (int64_t i = 0; i < nodes; i++)
    perm[i] = i;
  ferry_rng r;
  ferry_rng_init(&r, o->seed, 0x5045524Du, 0xFFFFu, 0);
  for (int64_t i = nodes - 1; i > 0; i--) {
    int64_t j = (int64_t)ferry_rng_below(&r, (uint32_t)(i + 1));
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  proto.perm = perm;
  run_threads(&proto, edges, rmat_permute);
  free(perm);
  if (o->progress)
    o->progress(o->progress_user, "permute", 1.0);
  st = ferry__graph_from_edges(ctx, &go, __func__, nodes, src, dst, edges,
                               o->progress, o->progress_user, out);
  free(src);
  free(dst);
  return st;
}
