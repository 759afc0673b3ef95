/* The minibatch loader's public calls: creation and destruction, epochs, and
 * the consumer's side (next, release). The producer thread is in
 * batch_loader_producer.c. */
#include "batch_loader_internal.h"
#include "graph_internal.h"
#include "table_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOADER_MAX_DEPTH 64

static ferry_status check_options(const ferry_loader_options *in,
                                  ferry_loader_options *o) {
  ferry_loader_options d = FERRY_LOADER_OPTIONS_INIT;
  *o = d;
  size_t min =
      offsetof(ferry_loader_options, batch_size) + sizeof in->batch_size;
  if (in->struct_size < min || in->struct_size > sizeof *o)
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "ferry_loader_create: opts->struct_size is %zu; use "
                        "FERRY_LOADER_OPTIONS_INIT",
                        in->struct_size);
  memcpy(o, in, in->struct_size);
  o->struct_size = sizeof *o;
  if (o->batch_size < 1)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "ferry_loader_create: opts->batch_size is %lld; at "
                        "least 1",
                        (long long)o->batch_size);
  if ((int)o->order < FERRY_LOADER_ORDER_SHUFFLE ||
      (int)o->order > FERRY_LOADER_ORDER_SELECTOR)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "ferry_loader_create: opts->order is %d, not a "
                        "ferry_loader_order",
                        (int)o->order);
  if (o->order == FERRY_LOADER_ORDER_SELECTOR && o->selector == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER,
                        "ferry_loader_create: opts->selector is NULL but "
                        "opts->order is FERRY_LOADER_ORDER_SELECTOR");
  if (o->depth == 0)
    o->depth = 2;
  if (o->depth < 1 || o->depth > LOADER_MAX_DEPTH)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "ferry_loader_create: opts->depth is %d; use 1..%d "
                        "(0: 2)",
                        o->depth, LOADER_MAX_DEPTH);
  return FERRY_OK;
}

static ferry_status check_gather_options(const ferry_gather_options *in,
                                         ferry_gather_options *o) {
  ferry_gather_options d = FERRY_GATHER_OPTIONS_INIT;
  *o = d;
  if (in == NULL)
    return FERRY_OK;
  if (in->struct_size <
          offsetof(ferry_gather_options, method) + sizeof in->method ||
      in->struct_size > sizeof *o)
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "ferry_loader_create: opts->gather->struct_size is "
                        "%zu; use FERRY_GATHER_OPTIONS_INIT",
                        in->struct_size);
  memcpy(o, in, in->struct_size);
  o->struct_size = sizeof *o;
  return FERRY_OK;
}

/* Frees what creation made; the producer thread must be gone. */
static void loader_free(ferry_loader *L) {
  if (L->slots) {
    for (int i = 0; i < L->depth; i++) {
      ferry_batch *b = &L->slots[i];
      ferry_minibatch_destroy(b->mb);
      ferry_buffer_destroy(b->features);
      ferry_buffer_destroy(b->host_ids);
      ferry_event_destroy(b->ready);
      ferry_event_destroy(b->release);
    }
  }
  ferry_stream_destroy(L->stream);
  free(L->slots);
  free(L->free_slots);
  free(L->ready_q);
  free(L->seeds);
  free(L->epoch_seeds);
  free(L);
}

ferry_status ferry_loader_create(ferry_graph *graph, ferry_table *table,
                                 ferry_sampler *sampler, const int64_t *seeds,
                                 int64_t num_seeds,
                                 const ferry_loader_options *opts,
                                 ferry_loader **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(graph);
  FERRY_CHECK_NULL(table);
  FERRY_CHECK_NULL(sampler);
  FERRY_CHECK_NULL(opts);
  FERRY_CHECK_NULL(out);
  if (num_seeds < 0)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument 'num_seeds' is %lld (negative)", __func__,
                        (long long)num_seeds);
  if (num_seeds > 0 && seeds == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER,
                        "%s: argument 'seeds' is NULL but num_seeds is %lld",
                        __func__, (long long)num_seeds);
  ferry_loader_options o;
  ferry_gather_options g;
  ferry_status st = check_options(opts, &o);
  if (st == FERRY_OK &&
      o.struct_size >= offsetof(ferry_loader_options, gather) + sizeof o.gather)
    st = check_gather_options(o.gather, &g);
  if (st != FERRY_OK)
    return st;
  o.gather = NULL; /* copied into g */
  if (graph->ctx != table->ctx)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "%s: 'graph' and 'table' belong to different "
                        "contexts",
                        __func__);
  ferry_dtype dt =
      o.feature_dtype == FERRY_DTYPE_INVALID ? table->dtype : o.feature_dtype;
  if (dt != table->dtype &&
      !(dt == FERRY_DTYPE_F32 &&
        (table->dtype == FERRY_DTYPE_F16 || table->dtype == FERRY_DTYPE_BF16)))
    return ferry__error(FERRY_ERR_MISMATCH,
                        "%s: opts->feature_dtype is %s but the table is %s "
                        "(use the table's dtype, or f32 for f16/bf16)",
                        __func__, ferry_dtype_name(dt),
                        ferry_dtype_name(table->dtype));
  ferry_sampler_info si = FERRY_SAMPLER_INFO_INIT;
  st = ferry_sampler_get_info(sampler, &si);
  if (st != FERRY_OK)
    return st;
  if (si.graph != graph)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "%s: 'sampler' samples another graph than 'graph' "
                        "(one of %lld nodes and %lld edges, against %lld and "
                        "%lld); create it with ferry_sampler_create(graph, "
                        "...)",
                        __func__, (long long)si.num_nodes,
                        (long long)si.num_edges, (long long)graph->num_nodes,
                        (long long)graph->num_edges);
  for (int64_t i = 0; i < num_seeds; i++)
    if (seeds[i] < 0 || seeds[i] >= graph->num_nodes)
      return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                          "%s: seeds[%lld] = %lld is outside the graph's "
                          "[0, %lld)",
                          __func__, (long long)i, (long long)seeds[i],
                          (long long)graph->num_nodes);
  int64_t nb = num_seeds / o.batch_size;
  if (!o.drop_last && num_seeds % o.batch_size != 0)
    nb++;
  int64_t k = 1;
  if (o.order == FERRY_LOADER_ORDER_SELECTOR) {
    /* Its batch ids index the loader's slices: both must count alike, or
     * ids past the last slice fail mid-epoch and slices past the selector's
     * last id are never trained. */
    ferry_selector_info sel = FERRY_SELECTOR_INFO_INIT;
    st = ferry_selector_get_info(o.selector, &sel);
    if (st != FERRY_OK)
      return st;
    if (sel.num_batches != nb)
      return ferry__error(FERRY_ERR_MISMATCH,
                          "%s: opts->selector has num_batches = %lld but the "
                          "loader makes %lld batches (%lld seeds, batch_size "
                          "%lld, drop_last %d); create the selector with "
                          "num_batches = %lld",
                          __func__, (long long)sel.num_batches, (long long)nb,
                          (long long)num_seeds, (long long)o.batch_size,
                          o.drop_last, (long long)nb);
    k = sel.round_size;
  }

  ferry_loader *L = calloc(1, sizeof *L);
  if (L == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        __func__);
  L->ctx = graph->ctx;
  L->graph = graph;
  L->table = table;
  L->sampler = sampler;
  L->opts = o;
  L->gather = g;
  L->num_seeds = num_seeds;
  L->num_batches = nb;
  L->dtype = dt;
  L->cols = table->cols;
  L->elem_size = ferry_dtype_size(dt);
  L->depth = o.depth;
  L->selector_k = k;
  size_t sb = (size_t)(num_seeds > 0 ? num_seeds : 1) * sizeof(int64_t);
  L->seeds = malloc(sb);
  L->epoch_seeds = malloc(sb);
  L->slots = calloc((size_t)L->depth, sizeof *L->slots);
  L->free_slots = calloc((size_t)L->depth, sizeof(int));
  L->ready_q = calloc((size_t)L->depth, sizeof(int));
  if (!L->seeds || !L->epoch_seeds || !L->slots || !L->free_slots ||
      !L->ready_q) {
    loader_free(L);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        __func__);
  }
  if (num_seeds > 0)
    memcpy(L->seeds, seeds, (size_t)num_seeds * sizeof *seeds);
  st = ferry_stream_create(L->ctx, &L->stream);
  for (int i = 0; i < L->depth && st == FERRY_OK; i++) {
    ferry_batch *b = &L->slots[i];
    b->loader = L;
    b->index = i;
    b->state = SLOT_FREE;
    L->free_slots[L->n_free++] = L->depth - 1 - i;
    st = ferry_event_create(L->ctx, &b->ready);
    if (st == FERRY_OK)
      st = ferry_event_create(L->ctx, &b->release);
  }
  if (st != FERRY_OK) {
    loader_free(L);
    return st;
  }
  pthread_mutex_init(&L->lock, NULL);
  pthread_cond_init(&L->wake_producer, NULL);
  pthread_cond_init(&L->wake_consumer, NULL);
  if (pthread_create(&L->thread, NULL, ferry__batch_loader_main, L) != 0) {
    pthread_cond_destroy(&L->wake_producer);
    pthread_cond_destroy(&L->wake_consumer);
    pthread_mutex_destroy(&L->lock);
    loader_free(L);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "%s: cannot start the loader's thread", __func__);
  }
  L->thread_started = true;
  *out = L;
  return FERRY_OK;
}

/* Stops the epoch in progress: waits until the producer is not filling a
 * slot and returns the prepared batches to the free list (under lock). */
static void cancel_locked(ferry_loader *L) {
  L->running = false;
  L->generation++;
  while (L->filling)
    pthread_cond_wait(&L->wake_consumer, &L->lock);
  for (; L->q_len > 0; L->q_len--) {
    int i = L->ready_q[L->q_head];
    L->q_head = (L->q_head + 1) % L->depth;
    L->slots[i].state = SLOT_FREE;
    L->free_slots[L->n_free++] = i;
  }
  L->q_head = 0;
}

void ferry_loader_destroy(ferry_loader *loader) {
  if (loader == NULL)
    return;
  ferry_loader *L = loader;
  if (ferry__forked()) {
    /* The thread is not in this process, its lock may be held: free the
     * memory only (every destroy below is fork-aware). */
    loader_free(L);
    return;
  }
  pthread_mutex_lock(&L->lock);
  cancel_locked(L);
  L->quit = true;
  pthread_cond_broadcast(&L->wake_producer);
  pthread_mutex_unlock(&L->lock);
  if (L->thread_started)
    pthread_join(L->thread, NULL);
  /* Released batches may still be read by the consumer's queued work: the
   * stream waits for it before their memory goes. */
  for (int i = 0; i < L->depth; i++)
    if (L->slots[i].release_pending)
      (void)ferry_stream_wait_event(L->stream, L->slots[i].release);
  (void)ferry_stream_synchronize(L->stream);
  pthread_cond_destroy(&L->wake_producer);
  pthread_cond_destroy(&L->wake_consumer);
  pthread_mutex_destroy(&L->lock);
  loader_free(L);
  ferry__clear_error();
}

/* splitmix64: the shuffle's generator (a pure function of its seed). */
static uint64_t mix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* A uniform integer in [0, n): draws in the last partial run of n values
 * are rejected, so there is no modulo bias. */
static uint64_t below(uint64_t *s, uint64_t n) {
  uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
  do
    x = mix(s);
  while (x >= lim);
  return x % n;
}

/* This epoch's seed order: Fisher-Yates over the caller's list, seeded by
 * (opts.seed, epoch). */
static void shuffle(ferry_loader *L, uint64_t epoch) {
  memcpy(L->epoch_seeds, L->seeds, (size_t)L->num_seeds * sizeof *L->seeds);
  uint64_t s = L->opts.seed ^ (epoch * 0xD1B54A32D192ED03ull);
  (void)mix(&s);
  for (int64_t i = L->num_seeds - 1; i > 0; i--) {
    int64_t j = (int64_t)below(&s, (uint64_t)i + 1);
    int64_t t = L->epoch_seeds[i];
    L->epoch_seeds[i] = L->epoch_seeds[j];
    L->epoch_seeds[j] = t;
  }
}

ferry_status ferry_loader_start_epoch(ferry_loader *loader, uint64_t epoch) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(loader);
  ferry_loader *L = loader;
  pthread_mutex_lock(&L->lock);
  if (L->n_held > 0) {
    int held = L->n_held;
    pthread_mutex_unlock(&L->lock);
    return ferry__error(FERRY_ERR_BUSY,
                        "%s: %d batch(es) of the previous epoch are still "
                        "held; release them first",
                        __func__, held);
  }
  cancel_locked(L);
  if (L->opts.order == FERRY_LOADER_ORDER_SHUFFLE)
    shuffle(L, epoch);
  L->epoch = epoch;
  L->next_step = 0;
  L->running = true;
  pthread_cond_broadcast(&L->wake_producer);
  pthread_mutex_unlock(&L->lock);
  return FERRY_OK;
}

/* Strips ferry__error_deferred's prefix so that re-raising does not repeat
 * it. */
static const char *bare_message(const char *m) {
  static const char prefix[] = "deferred error from op '";
  if (strncmp(m, prefix, sizeof prefix - 1) != 0)
    return m;
  const char *p = strstr(m, "): ");
  return p ? p + 3 : m;
}

ferry_status ferry_loader_next(ferry_loader *loader, ferry_stream *compute,
                               ferry_batch **out, int *done) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(loader);
  FERRY_CHECK_NULL(out);
  FERRY_CHECK_NULL(done);
  ferry_loader *L = loader;
  if (compute != NULL && compute->ctx != L->ctx)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "%s: 'compute' belongs to another context than the "
                        "loader's",
                        __func__);
  pthread_mutex_lock(&L->lock);
  while (L->q_len == 0 && L->running) {
    if (L->n_held == L->depth) {
      pthread_mutex_unlock(&L->lock);
      return ferry__error(FERRY_ERR_BUSY,
                          "%s: the caller holds all %d batches in flight "
                          "(opts.depth); release one first",
                          __func__, L->depth);
    }
    if (L->waiting_round && L->n_held > 0) {
      int held = L->n_held;
      pthread_mutex_unlock(&L->lock);
      return ferry__error(FERRY_ERR_BUSY,
                          "%s: a selector round begins and the caller holds "
                          "%d batch(es); report their losses and release "
                          "them first",
                          __func__, held);
    }
    pthread_cond_wait(&L->wake_consumer, &L->lock);
  }
  if (L->q_len == 0) {
    pthread_mutex_unlock(&L->lock);
    *out = NULL;
    *done = 1;
    return FERRY_OK;
  }
  ferry_batch *b = &L->slots[L->ready_q[L->q_head]];
  L->q_head = (L->q_head + 1) % L->depth;
  L->q_len--;
  if (b->status != FERRY_OK) {
    ferry_status st = b->status;
    char op[32], msg[1024];
    uint64_t seq = b->seq;
    snprintf(op, sizeof op, "%s", b->op);
    snprintf(msg, sizeof msg, "%s", bare_message(b->message));
    b->status = FERRY_OK;
    b->state = SLOT_FREE;
    L->free_slots[L->n_free++] = b->index;
    pthread_cond_broadcast(&L->wake_producer);
    pthread_mutex_unlock(&L->lock);
    if (op[0])
      return ferry__error_deferred(st, op, seq, msg);
    return ferry__error(st, "%s", msg);
  }
  b->state = SLOT_HELD;
  L->n_held++;
  pthread_mutex_unlock(&L->lock);
  if (compute != NULL) {
    ferry_status st = ferry_stream_wait_event(compute, b->ready);
    if (st != FERRY_OK) {
      (void)ferry_loader_release(L, b, NULL);
      return st;
    }
  }
  *out = b;
  *done = 0;
  return FERRY_OK;
}

ferry_status ferry_loader_release(ferry_loader *loader, ferry_batch *batch,
                                  ferry_stream *compute) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(loader);
  FERRY_CHECK_NULL(batch);
  ferry_loader *L = loader;
  if (batch->loader != L)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "%s: 'batch' comes from another loader", __func__);
  if (compute != NULL && compute->ctx != L->ctx)
    return ferry__error(FERRY_ERR_MISMATCH,
                        "%s: 'compute' belongs to another context than the "
                        "loader's",
                        __func__);
  pthread_mutex_lock(&L->lock);
  if (batch->state != SLOT_HELD) {
    pthread_mutex_unlock(&L->lock);
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: 'batch' is not held (released twice?)", __func__);
  }
  ferry_status st = FERRY_OK;
  if (compute != NULL) {
    /* Recorded under the lock: the producer reads release_pending only
     * after taking the slot under the same lock. */
    st = ferry_event_record(batch->release, compute);
    batch->release_pending = st == FERRY_OK;
  }
  batch->state = SLOT_FREE;
  L->n_held--;
  L->free_slots[L->n_free++] = batch->index;
  pthread_cond_broadcast(&L->wake_producer);
  pthread_mutex_unlock(&L->lock);
  return st;
}

ferry_status ferry_loader_get_info(const ferry_loader *loader,
                                   ferry_loader_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(loader);
  FERRY_CHECK_NULL(out);
  if (out->struct_size < sizeof *out)
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "%s: out->struct_size is %zu; use "
                        "FERRY_LOADER_INFO_INIT",
                        __func__, out->struct_size);
  out->num_seeds = loader->num_seeds;
  out->batch_size = loader->opts.batch_size;
  out->num_batches = loader->num_batches;
  out->depth = loader->depth;
  out->order = loader->opts.order;
  out->feature_dtype = loader->dtype;
  out->feature_cols = loader->cols;
  return FERRY_OK;
}

ferry_status ferry_batch_get_info(const ferry_batch *batch,
                                  ferry_batch_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(batch);
  FERRY_CHECK_NULL(out);
  if (out->struct_size < sizeof *out)
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "%s: out->struct_size is %zu; use "
                        "FERRY_BATCH_INFO_INIT",
                        __func__, out->struct_size);
  *out = batch->info;
  return FERRY_OK;
}
