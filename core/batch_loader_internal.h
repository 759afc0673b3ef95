/* The minibatch loader's private state, shared by its files:
 * batch_loader.c (the public calls, the consumer side) and
 * batch_loader_producer.c (the thread that samples and gathers).
 * (core/loader.c is the plugin loader, unrelated.) */
#ifndef FERRY_CORE_BATCH_LOADER_INTERNAL_H
#define FERRY_CORE_BATCH_LOADER_INTERNAL_H

#include "internal.h"

#include <ferry/loader.h>

typedef enum slot_state {
  SLOT_FREE = 0, /* the producer may fill it */
  SLOT_FILLING,  /* the producer is filling it */
  SLOT_READY,    /* prepared (or failed), in the ready queue */
  SLOT_HELD      /* handed to the consumer */
} slot_state;

/* A batch slot: what one batch in flight owns. Reused from batch to batch;
 * its features buffer only grows. */
struct ferry_batch {
  ferry_loader *loader;
  int index;
  slot_state state; /* under loader->lock */
  ferry_minibatch *mb;
  ferry_buffer *features;
  uint64_t features_bytes;
  /* A STAGED table gathers on the host: the minibatch's device ids are
   * copied here (pinned host memory) first. NULL until needed. */
  ferry_buffer *host_ids;
  uint64_t host_ids_bytes;
  ferry_event *ready;   /* recorded on the loader's stream after the gather */
  ferry_event *release; /* recorded on the consumer's stream at release */
  /* release was recorded and the loader's stream has not waited on it yet
   * (written by the consumer under loader->lock, read by the producer after
   * taking the slot under the lock). */
  bool release_pending;
  ferry_batch_info info;
  /* A failed fill: the error the consumer gets in place of the batch. */
  ferry_status status;
  char op[32];
  uint64_t seq;
  char message[1024];
};

struct ferry_loader {
  ferry_context *ctx;
  ferry_graph *graph;
  ferry_table *table;
  ferry_sampler *sampler;
  ferry_loader_options opts;
  ferry_gather_options gather;
  int64_t *seeds;       /* the caller's list (copy) */
  int64_t *epoch_seeds; /* SHUFFLE: this epoch's permutation of seeds */
  int64_t num_seeds, num_batches;
  ferry_dtype dtype;
  uint64_t cols, elem_size;
  int depth;
  ferry_stream *stream; /* gathers; used by the producer thread only */
  ferry_batch *slots;

  pthread_t thread;
  bool thread_started;
  pthread_mutex_t lock;
  pthread_cond_t wake_producer, wake_consumer;
  /* Under lock. */
  bool quit;    /* destroy: the producer leaves */
  bool running; /* the producer has steps of an epoch to prepare */
  bool filling; /* the producer is outside the lock, filling a slot */
  /* The producer waits for every batch to come back before a selector
   * round. */
  bool waiting_round;
  uint64_t generation; /* bumped by start_epoch; a fill of an older one is
                          dropped */
  uint64_t epoch;
  int64_t next_step;      /* the producer's next step of the epoch */
  int64_t selector_steps; /* ferry_selector_next calls made, all epochs */
  int64_t selector_k;     /* the selector's round size */
  int *free_slots, n_free;
  int *ready_q, q_head, q_len;
  int n_held;
};

/* The producer thread (batch_loader_producer.c). */
void *ferry__batch_loader_main(void *arg);

/* Record the calling thread's last error in a slot. */
void ferry__batch_slot_fail(ferry_batch *slot, ferry_status st);

#endif /* FERRY_CORE_BATCH_LOADER_INTERNAL_H */
