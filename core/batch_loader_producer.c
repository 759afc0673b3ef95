/* The loader's producer thread: per step, take a free slot, sample the
 * batch (ferry_sample, synchronous), gather its features on the loader's
 * stream after the slot's last consumer is done with it, wait for the gather
 * (so its deferred errors belong to this batch), and queue the slot for the
 * consumer. The stream is used by this thread only. */
#include "batch_loader_internal.h"
#include "graph_internal.h"

#include <stdio.h>
#include <string.h>

void ferry__batch_slot_fail(ferry_batch *slot, ferry_status st) {
  ferry_error_info ei = FERRY_ERROR_INFO_INIT;
  slot->status = st;
  slot->op[0] = '\0';
  slot->seq = 0;
  snprintf(slot->message, sizeof slot->message, "%s", ferry_status_string(st));
  if (ferry_last_error_info(&ei) == FERRY_OK && ei.status == st) {
    snprintf(slot->op, sizeof slot->op, "%s", ei.op ? ei.op : "");
    slot->seq = ei.sequence;
    if (ei.message && ei.message[0])
      snprintf(slot->message, sizeof slot->message, "%s", ei.message);
  }
}

/* FERRY_OK, or the loader's message for a selector id it cannot map. */
static ferry_status selector_batch(ferry_loader *L, int64_t *id, int *done) {
  ferry_status st = ferry_selector_next(L->opts.selector, id, done);
  if (st != FERRY_OK || *done)
    return st;
  if (*id < 0 || *id >= L->num_batches)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_loader: the selector handed out batch %lld "
                        "but the loader has %lld batches; create the "
                        "selector with num_batches = %lld",
                        (long long)*id, (long long)L->num_batches,
                        (long long)L->num_batches);
  return FERRY_OK;
}

/* Makes the slot's features buffer hold `need` bytes. Called after the
 * stream waits for the slot's last consumer, so the old buffer is freed only
 * once nothing reads it. */
static ferry_status grow_features(ferry_loader *L, ferry_batch *slot,
                                  uint64_t need) {
  if (slot->features != NULL && slot->features_bytes >= need)
    return FERRY_OK;
  ferry_status st = ferry_stream_synchronize(L->stream);
  if (st != FERRY_OK)
    return st;
  ferry_buffer_destroy(slot->features);
  slot->features = NULL;
  slot->features_bytes = 0;
  /* Grow by half again, so that batches of slowly rising size do not
   * reallocate every time. */
  uint64_t cap = need + need / 2;
  if (cap < 4096)
    cap = 4096;
  st = ferry_buffer_create(L->ctx, FERRY_MEMORY_DEVICE, cap, &slot->features);
  if (st == FERRY_OK)
    slot->features_bytes = cap;
  return st;
}

/* The ids a gather from the loader's table reads. A STAGED table gathers on
 * the host, which cannot read a device's ids (OpenCL device buffers, discrete
 * GPUs): they are copied into the slot's pinned buffer on the loader's stream
 * first, in order before the gather. Other tables read the minibatch's ids
 * where they are. */
static ferry_status gather_ids(ferry_loader *L, ferry_batch *slot,
                               ferry_tensor *ids, int64_t m) {
  ferry_table_info ti = FERRY_TABLE_INFO_INIT;
  ferry_status st = ferry_table_get_info(L->table, &ti);
  if (st != FERRY_OK || ti.path != FERRY_GATHER_PATH_STAGED ||
      ids->buffer == NULL || m == 0)
    return st;
  ferry_buffer_info bi = FERRY_BUFFER_INFO_INIT;
  st = ferry_buffer_get_info(ids->buffer, &bi);
  if (st != FERRY_OK || bi.host_pointer != NULL)
    return st;
  uint64_t bytes = (uint64_t)m * ferry_dtype_size(ids->dtype);
  if (slot->host_ids == NULL || slot->host_ids_bytes < bytes) {
    if ((st = ferry_stream_synchronize(L->stream)) != FERRY_OK)
      return st;
    ferry_buffer_destroy(slot->host_ids);
    slot->host_ids = NULL;
    slot->host_ids_bytes = 0;
    uint64_t cap = bytes + bytes / 2;
    st = ferry_buffer_create(L->ctx, FERRY_MEMORY_PINNED_HOST, cap,
                             &slot->host_ids);
    if (st != FERRY_OK)
      return st;
    slot->host_ids_bytes = cap;
  }
  st = ferry_buffer_copy_async(L->stream, slot->host_ids, 0, ids->buffer,
                               ids->byte_offset, bytes);
  if (st != FERRY_OK)
    return st;
  int64_t shape[1] = {m};
  return ferry_tensor_make(slot->host_ids, 0, ids->dtype, 1, shape, ids);
}

/* Fills `slot` with step `step` of the epoch. *end: the selector has no more
 * steps (the slot is untouched). */
static ferry_status fill(ferry_loader *L, ferry_batch *slot, uint64_t epoch,
                         int64_t step, bool *end) {
  int64_t id = step;
  const int64_t *seeds;
  *end = false;
  if (L->opts.order == FERRY_LOADER_ORDER_SELECTOR) {
    int done = 0;
    ferry_status st = selector_batch(L, &id, &done);
    if (st != FERRY_OK) {
      ferry__batch_slot_fail(slot, st);
      return st;
    }
    if (done) {
      *end = true;
      return FERRY_OK;
    }
  }
  seeds = (L->opts.order == FERRY_LOADER_ORDER_SHUFFLE ? L->epoch_seeds
                                                       : L->seeds) +
          id * L->opts.batch_size;
  int64_t n = L->num_seeds - id * L->opts.batch_size;
  if (n > L->opts.batch_size)
    n = L->opts.batch_size;
  uint32_t sample_id =
      (uint32_t)(epoch * (uint64_t)L->num_batches + (uint64_t)step);

  ferry_minibatch *mb = NULL;
  ferry_status st = ferry_sample(L->sampler, seeds, n, sample_id, &mb);
  ferry_tensor ids, out;
  int64_t m = 0;
  if (st == FERRY_OK)
    st = ferry_minibatch_input_nodes(mb, &ids);
  if (st == FERRY_OK) {
    m = ids.shape[0];
    /* The consumer's work on the slot's last batch comes first. */
    if (slot->release_pending) {
      st = ferry_stream_wait_event(L->stream, slot->release);
      slot->release_pending = false;
    }
  }
  if (st == FERRY_OK)
    st = grow_features(L, slot, (uint64_t)m * L->cols * L->elem_size);
  if (st == FERRY_OK) {
    int64_t shape[2] = {m, (int64_t)L->cols};
    st = ferry_tensor_make(slot->features, 0, L->dtype, 2, shape, &out);
  }
  if (st == FERRY_OK)
    st = gather_ids(L, slot, &ids, m);
  if (st == FERRY_OK)
    st = ferry_gather(L->table, &ids, (uint64_t)m, &out, L->stream, &L->gather);
  if (st == FERRY_OK)
    st = ferry_event_record(slot->ready, L->stream);
  /* Waiting here makes a gather's deferred error (a bad id) this batch's,
   * and tells when the slot's previous minibatch is no longer read. */
  if (st == FERRY_OK)
    st = ferry_event_synchronize(slot->ready);
  if (st != FERRY_OK) {
    ferry__batch_slot_fail(slot, st);
    /* Nothing queued may still use the new minibatch. */
    (void)ferry_stream_synchronize(L->stream);
    ferry__minibatch_recycle(mb);
    return st;
  }
  /* Handed back to the sampler, not destroyed: freeing would wait for all
   * queued work (the caller's compute on the cpu backend), and the events
   * above already tell that nothing reads it any more. */
  ferry__minibatch_recycle(slot->mb);
  slot->mb = mb;
  ferry_batch_info *bi = &slot->info;
  memset(bi, 0, sizeof *bi);
  bi->struct_size = sizeof *bi;
  bi->id = id;
  bi->step = step;
  bi->epoch = epoch;
  bi->sample_id = sample_id;
  bi->seeds = seeds;
  bi->num_seeds = n;
  bi->minibatch = mb;
  bi->features = out;
  bi->num_input_nodes = m;
  slot->status = FERRY_OK;
  return FERRY_OK;
}

/* A selector round starts at this step: the loader reads no further ahead
 * until the consumer has released (and so reported) every batch before it.
 * Rounds: the first pass of num_batches steps, then rounds of k. */
static bool round_start(const ferry_loader *L) {
  int64_t s = L->selector_steps, b = L->num_batches;
  return s >= b && (s - b) % L->selector_k == 0;
}

void *ferry__batch_loader_main(void *arg) {
  ferry_loader *L = arg;
  pthread_mutex_lock(&L->lock);
  for (;;) {
    if (L->quit)
      break;
    bool selector = L->opts.order == FERRY_LOADER_ORDER_SELECTOR;
    if (L->running && L->next_step >= L->num_batches) {
      L->running = false;
      pthread_cond_broadcast(&L->wake_consumer);
      continue;
    }
    bool round_wait =
        L->running && selector && round_start(L) && L->n_free < L->depth;
    if (round_wait != L->waiting_round) {
      L->waiting_round = round_wait;
      pthread_cond_broadcast(&L->wake_consumer);
    }
    if (!L->running || L->n_free == 0 || round_wait) {
      pthread_cond_wait(&L->wake_producer, &L->lock);
      continue;
    }
    ferry_batch *slot = &L->slots[L->free_slots[--L->n_free]];
    slot->state = SLOT_FILLING;
    int64_t step = L->next_step++;
    uint64_t gen = L->generation, epoch = L->epoch;
    L->filling = true;
    pthread_mutex_unlock(&L->lock);

    bool end = false;
    ferry_status st = fill(L, slot, epoch, step, &end);

    pthread_mutex_lock(&L->lock);
    L->filling = false;
    if (selector && !end)
      L->selector_steps++;
    if (gen != L->generation || !L->running || end) {
      /* Cancelled meanwhile, or the selector is done: drop it. */
      slot->state = SLOT_FREE;
      L->free_slots[L->n_free++] = slot->index;
      if (end && gen == L->generation)
        L->running = false;
    } else {
      slot->state = SLOT_READY;
      L->ready_q[(L->q_head + L->q_len) % L->depth] = slot->index;
      L->q_len++;
      if (st != FERRY_OK)
        L->running = false; /* the error ends the epoch */
    }
    pthread_cond_broadcast(&L->wake_consumer);
  }
  pthread_mutex_unlock(&L->lock);
  return NULL;
}
