/* The sampler's ops on the cpu backend: sample_count and sample_pick split
 * the frontier over the pool in fixed chunks (a node's result depends only
 * on the node, so any thread count gives the same bytes); sample_relabel is
 * one ordered pass with an open-addressing hash table, which is what makes
 * first-occurrence numbering deterministic. */
#include "cpu_internal.h"

#include "../../core/philox.h"

#include <string.h>

/* Nodes per claim: enough work to amortise the claim, small enough to
 * balance skewed degrees. */
#define CPU_SAMPLE_CHUNK 64

typedef struct sample_args {
  const int64_t *offsets; /* the graph's row offsets */
  const void *cols;
  ferry_dtype col_dtype;
  int64_t num_nodes;
  ferry_be_sample_layer p;
  const int64_t *frontier;
  uint64_t n;
  int64_t *edge_offsets; /* count: written; pick: read */
  int64_t *out;          /* pick: neighbors */
  int64_t first_bad;     /* a frontier position with a bad id, or -1 */
} sample_args;

static ferry_status args_from(const ferry_be_csr *g,
                              const ferry_be_sample_layer *p,
                              const ferry_be_memref *frontier, uint64_t n,
                              const char *op, sample_args *a) {
  memset(a, 0, sizeof *a);
  a->offsets = ferry_cpu_memref_addr(&g->offsets);
  a->cols = ferry_cpu_memref_addr(&g->cols);
  a->col_dtype = g->col_dtype;
  a->num_nodes = g->num_nodes;
  a->p = *p;
  a->frontier = ferry_cpu_memref_addr(frontier);
  a->n = n;
  a->first_bad = -1;
  if (a->offsets == NULL || (n > 0 && a->frontier == NULL) ||
      (g->num_edges > 0 && a->cols == NULL))
    return ferry_cpu_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                                     "cpu %s: an operand has no host address",
                                     op);
  return FERRY_OK;
}

static void count_range(void *arg, uint64_t begin, uint64_t end) {
  sample_args *a = arg;
  for (uint64_t i = begin; i < end; i++) {
    int64_t v = a->frontier[i];
    int64_t c = 0;
    if (v < 0 || v >= a->num_nodes) {
      /* Reported after the loop; the slot counts no edges. */
      __atomic_store_n(&a->first_bad, (int64_t)i, __ATOMIC_RELAXED);
    } else {
      int64_t deg = a->offsets[v + 1] - a->offsets[v];
      c = ferry_sample_count(deg, a->p.fanout, a->p.replace);
    }
    a->edge_offsets[i + 1] = c;
  }
}

static void run_count(const ferry_cpu_task *task, void *args) {
  sample_args *a = args;
  ferry_cpu_parallel_for(ferry_cpu_task_context(task), a->n, CPU_SAMPLE_CHUNK,
                         count_range, a);
  a->edge_offsets[0] = 0;
  for (uint64_t i = 0; i < a->n; i++)
    a->edge_offsets[i + 1] += a->edge_offsets[i];
  if (a->first_bad >= 0)
    ferry_cpu_task_fail(task, FERRY_ERR_OUT_OF_RANGE,
                        "sample_count: frontier node at position %lld is "
                        "outside [0, %lld)",
                        (long long)a->first_bad, (long long)a->num_nodes);
}

ferry_status
ferry_cpu_op_sample_count(ferry_be_stream *s, const ferry_be_launch *l,
                          const ferry_be_csr *g, const ferry_be_sample_layer *p,
                          const ferry_be_memref *frontier, uint64_t n,
                          const ferry_be_memref *offsets_out) {
  sample_args a;
  ferry_status st = args_from(g, p, frontier, n, "sample_count", &a);
  if (st != FERRY_OK)
    return st;
  a.edge_offsets = ferry_cpu_memref_addr(offsets_out);
  if (a.edge_offsets == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                                     "cpu sample_count: 'offsets_out' has no "
                                     "host address");
  return ferry_cpu_enqueue(s, l, run_count, &a, sizeof a, NULL);
}

/* Node i's sampled row positions, written where its neighbor ids go; 0
 * when the node contributes nothing. */
static int64_t pick_positions(const sample_args *a, uint64_t i, int64_t *row) {
  int64_t v = a->frontier[i];
  int64_t k = a->edge_offsets[i + 1] - a->edge_offsets[i];
  if (k == 0 || v < 0 || v >= a->num_nodes)
    return 0;
  *row = a->offsets[v];
  int64_t deg = a->offsets[v + 1] - *row;
  ferry_sample_positions(a->p.seed, a->p.batch_id, a->p.layer, (uint64_t)v, deg,
                         a->p.fanout, a->p.replace,
                         a->out + a->edge_offsets[i]);
  return k;
}

static void prefetch_cols(const sample_args *a, const int64_t *o, int64_t k,
                          int64_t row) {
  size_t w = a->col_dtype == FERRY_DTYPE_I32 ? 4 : 8;
  for (int64_t j = 0; j < k; j++)
    __builtin_prefetch((const char *)a->cols + (size_t)(row + o[j]) * w);
}

static void map_cols(const sample_args *a, int64_t *o, int64_t k, int64_t row) {
  if (a->col_dtype == FERRY_DTYPE_I32) {
    const int32_t *c = (const int32_t *)a->cols + row;
    for (int64_t j = 0; j < k; j++)
      o[j] = c[o[j]];
  } else {
    const int64_t *c = (const int64_t *)a->cols + row;
    for (int64_t j = 0; j < k; j++)
      o[j] = c[o[j]];
  }
}

/* Software-pipelined by one node: node i's column reads (random, mostly
 * cache misses) are prefetched while its successor's draws are computed,
 * and only then mapped, so the misses of a node overlap work instead of
 * stalling it. */
static void pick_range(void *arg, uint64_t begin, uint64_t end) {
  const sample_args *a = arg;
  int64_t prev_k = 0, prev_row = 0;
  int64_t *prev_o = NULL;
  for (uint64_t i = begin; i < end; i++) {
    int64_t row = 0;
    int64_t k = pick_positions(a, i, &row);
    int64_t *o = a->out + a->edge_offsets[i];
    if (k > 0)
      prefetch_cols(a, o, k, row);
    if (prev_k > 0)
      map_cols(a, prev_o, prev_k, prev_row);
    prev_k = k;
    prev_row = row;
    prev_o = o;
  }
  if (prev_k > 0)
    map_cols(a, prev_o, prev_k, prev_row);
}

static void run_pick(const ferry_cpu_task *task, void *args) {
  sample_args *a = args;
  ferry_cpu_parallel_for(ferry_cpu_task_context(task), a->n, CPU_SAMPLE_CHUNK,
                         pick_range, a);
}

ferry_status ferry_cpu_op_sample_pick(
    ferry_be_stream *s, const ferry_be_launch *l, const ferry_be_csr *g,
    const ferry_be_sample_layer *p, const ferry_be_memref *frontier, uint64_t n,
    const ferry_be_memref *offsets, const ferry_be_memref *out) {
  sample_args a;
  ferry_status st = args_from(g, p, frontier, n, "sample_pick", &a);
  if (st != FERRY_OK)
    return st;
  a.edge_offsets = ferry_cpu_memref_addr(offsets);
  a.out = ferry_cpu_memref_addr(out);
  if (a.edge_offsets == NULL || a.out == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                                     "cpu sample_pick: an output has no host "
                                     "address");
  return ferry_cpu_enqueue(s, l, run_pick, &a, sizeof a, NULL);
}

typedef struct relabel_args {
  const int64_t *frontier;
  uint64_t n;
  const int64_t *nbrs;
  uint64_t e;
  int64_t num_nodes;
  void *scratch;
  uint64_t scratch_bytes;
  uint64_t slots;
  int64_t *src_out, *local_out, *num_src_out;
} relabel_args;

/* A 64-bit finaliser (splitmix64's): ids of one neighborhood are often
 * close together, and linear probing needs them spread. */
static inline uint64_t id_hash(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* The local id of `key` in the hash table, inserting it as `*next` when
 * new. */
static inline int64_t hash_one(const relabel_args *a, int64_t *table,
                               int64_t key, int64_t *next) {
  uint64_t mask = a->slots - 1;
  uint64_t h = id_hash((uint64_t)key) & mask;
  for (;;) {
    int64_t *slot = table + 2 * h;
    if (slot[0] == key)
      return slot[1];
    if (slot[0] == -1) {
      slot[0] = key;
      slot[1] = *next;
      a->src_out[*next] = key;
      return (*next)++;
    }
    h = (h + 1) & mask;
  }
}

/* The dense map: map[v] = local id + 1, 0 for "not seen". The scratch is
 * zero when the core allocates it, and every relabel clears the entries it
 * set before it returns, so it is zero again for the next one. */
static inline int64_t dense_one(const relabel_args *a, uint32_t *map,
                                int64_t key, int64_t *next) {
  uint32_t id = map[key];
  if (id != 0)
    return (int64_t)id - 1;
  map[key] = (uint32_t)(*next + 1);
  a->src_out[*next] = key;
  return (*next)++;
}

static void run_relabel(const ferry_cpu_task *task, void *args) {
  (void)task;
  relabel_args *a = args;
  int64_t next = 0;
  uint64_t total = a->n + a->e;
  if (a->scratch_bytes >= (uint64_t)a->num_nodes * 4u && total < UINT32_MAX) {
    /* Direct indexing: no hashing, no probing, no table to clear. */
    uint32_t *map = a->scratch;
    for (uint64_t i = 0; i < a->n; i++)
      (void)dense_one(a, map, a->frontier[i], &next);
    for (uint64_t j = 0; j < a->e; j++)
      a->local_out[j] = dense_one(a, map, a->nbrs[j], &next);
    for (int64_t i = 0; i < next; i++)
      map[a->src_out[i]] = 0;
  } else {
    int64_t *table = a->scratch;
    memset(table, 0xFF, (size_t)a->slots * 16u);
    for (uint64_t i = 0; i < a->n; i++)
      (void)hash_one(a, table, a->frontier[i], &next);
    for (uint64_t j = 0; j < a->e; j++)
      a->local_out[j] = hash_one(a, table, a->nbrs[j], &next);
    /* Leave the scratch zero, as the dense path expects it. */
    memset(table, 0, (size_t)a->slots * 16u);
  }
  *a->num_src_out = next;
}

ferry_status ferry_cpu_op_sample_relabel(
    ferry_be_stream *s, const ferry_be_launch *l,
    const ferry_be_memref *frontier, uint64_t n, const ferry_be_memref *nbrs,
    uint64_t e, int64_t num_nodes, const ferry_be_memref *scratch,
    uint64_t scratch_bytes, uint64_t table_slots,
    const ferry_be_memref *src_out, const ferry_be_memref *local_out,
    const ferry_be_memref *num_src_out) {
  relabel_args a = {
      .frontier = ferry_cpu_memref_addr(frontier),
      .n = n,
      .nbrs = ferry_cpu_memref_addr(nbrs),
      .e = e,
      .num_nodes = num_nodes,
      .scratch = ferry_cpu_memref_addr(scratch),
      .scratch_bytes = scratch_bytes,
      .slots = table_slots,
      .src_out = ferry_cpu_memref_addr(src_out),
      .local_out = ferry_cpu_memref_addr(local_out),
      .num_src_out = ferry_cpu_memref_addr(num_src_out),
  };
  if ((n > 0 && a.frontier == NULL) || (e > 0 && a.nbrs == NULL) ||
      a.scratch == NULL || a.src_out == NULL || a.num_src_out == NULL ||
      (e > 0 && a.local_out == NULL))
    return ferry_cpu_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                                     "cpu sample_relabel: an operand has no "
                                     "host address");
  if (table_slots == 0 || (table_slots & (table_slots - 1)) != 0 ||
      table_slots < 2 * (n + e) ||
      scratch_bytes < FERRY_BE_SAMPLE_SCRATCH_BYTES(table_slots, n + e))
    return ferry_cpu_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        "cpu sample_relabel: table_slots %llu is not a power of two >= "
        "2 * (n + e) that the scratch holds",
        (unsigned long long)table_slots);
  return ferry_cpu_enqueue(s, l, run_relabel, &a, sizeof a, NULL);
}
