/*
 * ferry: the minibatch loader (see docs/loader.md).
 *
 * A loader joins a graph's sampler and a feature table: it cuts a list of
 * seed nodes into batches, and on a thread of its own samples each batch's
 * blocks (ferry_sample) and gathers its input features (ferry_gather, on the
 * loader's own stream) while the caller trains on earlier batches. At most
 * `depth` batches are in flight. Each batch carries an event: the caller's
 * compute stream waits for the batch it takes and for nothing later.
 *
 *   ferry_loader_start_epoch(loader, epoch);
 *   for (;;) {
 *     ferry_batch *b; int done;
 *     if (ferry_loader_next(loader, compute, &b, &done) != FERRY_OK) ...;
 *     if (done) break;
 *     ... enqueue the model's work on `compute`, reading the batch ...
 *     ferry_loader_release(loader, b, compute);
 *   }
 *
 * Included by <ferry/ferry.h>; may also be included on its own.
 */
#ifndef FERRY_LOADER_H
#define FERRY_LOADER_H

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_loader ferry_loader;
typedef struct ferry_batch ferry_batch;

/* The order in which an epoch visits the batches. */
typedef enum ferry_loader_order {
  /* The seeds are shuffled, then cut into consecutive batches. The
   * permutation is a pure function of (opts.seed, epoch). */
  FERRY_LOADER_ORDER_SHUFFLE = 0,
  /* The seeds as given, cut into consecutive batches, in order. */
  FERRY_LOADER_ORDER_FIXED = 1,
  /* Batches are the fixed consecutive slices of the seeds (as FIXED), in the
   * order a hard-batch selector (opts.selector) hands them out. */
  FERRY_LOADER_ORDER_SELECTOR = 2
} ferry_loader_order;

typedef struct ferry_loader_options {
  size_t struct_size;
  int64_t batch_size; /* seeds per batch, >= 1 */
  ferry_loader_order order;
  uint64_t seed; /* SHUFFLE: with the epoch, seeds the permutation */
  /* SELECTOR: the selector, made with num_batches equal to this loader's
   * number of batches. The caller reports each batch's loss with
   * ferry_selector_report before releasing the batch; the loader does not
   * read ahead across a round boundary, so every round is chosen from the
   * losses of all batches trained before it. It must outlive the loader. */
  ferry_selector *selector;
  int depth;     /* batches in flight (prepared or held), 1..64; 0: 2 */
  int drop_last; /* drop the last batch when it is short */
  /* The features' dtype: FERRY_DTYPE_INVALID for the table's, or F32 (f16
   * and bf16 tables are then converted). */
  ferry_dtype feature_dtype;
  /* Passed to every gather (NULL: defaults); copied at creation. */
  const ferry_gather_options *gather;
} ferry_loader_options;
#define FERRY_LOADER_OPTIONS_INIT                                              \
  {                                                                            \
    .struct_size = sizeof(ferry_loader_options), .batch_size = 0,              \
    .order = FERRY_LOADER_ORDER_SHUFFLE, .seed = 0, .selector = NULL,          \
    .depth = 0, .drop_last = 0, .feature_dtype = FERRY_DTYPE_INVALID,          \
    .gather = NULL                                                             \
  }

/* A loader over `graph` (whose blocks `sampler` samples) and `table` (one row
 * per node of the graph; a table with fewer rows fails the gathers of the
 * batches that reach past it, see ferry_loader_next). The three belong to one
 * context and must outlive the loader. seeds: num_seeds node ids (host
 * memory, copied). No work starts before ferry_loader_start_epoch. */
FERRY_API ferry_status ferry_loader_create(
    ferry_graph *graph, ferry_table *table, ferry_sampler *sampler,
    const int64_t *seeds, int64_t num_seeds, const ferry_loader_options *opts,
    ferry_loader **out);

/* Cancels what is left of the running epoch (batches prepared and not taken
 * are dropped), joins the loader's thread, waits for the device work that
 * released batches were used by, and frees everything. Batches still held
 * are freed too: the caller must be done with them. NULL is accepted. */
FERRY_API void ferry_loader_destroy(ferry_loader *loader);

/* Starts epoch `epoch`, cancelling the rest of the previous one. Every batch
 * of the previous epoch must have been released (FERRY_ERR_BUSY otherwise).
 * The batches' sampling ids are epoch * num_batches + step (mod 2^32), so
 * an epoch's blocks are a pure function of (loader, epoch). */
FERRY_API ferry_status ferry_loader_start_epoch(ferry_loader *loader,
                                                uint64_t epoch);

/* The next batch of the epoch, waiting until it is prepared: *done = 1 and
 * *out = NULL at the end of the epoch (or before the first start_epoch).
 * Work enqueued on `compute` afterwards waits for the batch's gather (and
 * for nothing later); NULL: the caller reads the batch without a stream.
 * An error inside the pipeline (the sampler failing, a gather's deferred
 * FERRY_ERR_OUT_OF_RANGE for an id beyond the table) is returned here, with
 * its message, in place of the batch it spoiled; the epoch then ends.
 * FERRY_ERR_BUSY when the caller already holds `depth` batches. The loader
 * is used by one consumer thread at a time. */
FERRY_API ferry_status ferry_loader_next(ferry_loader *loader,
                                         ferry_stream *compute,
                                         ferry_batch **out, int *done);

/* Hands a batch back. The loader refills its slot only after the work
 * enqueued on `compute` so far (an event recorded on it) has run; NULL: the
 * batch is no longer used by queued work. */
FERRY_API ferry_status ferry_loader_release(ferry_loader *loader,
                                            ferry_batch *batch,
                                            ferry_stream *compute);

typedef struct ferry_loader_info {
  size_t struct_size;
  int64_t num_seeds;
  int64_t batch_size;
  int64_t num_batches; /* batches of an epoch (SELECTOR: of its slices) */
  int depth;
  ferry_loader_order order;
  ferry_dtype feature_dtype; /* as resolved */
  uint64_t feature_cols;
} ferry_loader_info;
#define FERRY_LOADER_INFO_INIT                                                 \
  { .struct_size = sizeof(ferry_loader_info) }
FERRY_API ferry_status ferry_loader_get_info(const ferry_loader *loader,
                                             ferry_loader_info *out);

/* What a batch holds. Everything stays valid until the batch is released. */
typedef struct ferry_batch_info {
  size_t struct_size;
  /* The batch's index: its slice of the seeds for FIXED and SELECTOR (the
   * selector's batch id), its position in the epoch for SHUFFLE. */
  int64_t id;
  int64_t step;         /* position in the epoch, 0.. */
  uint64_t epoch;       /* as given to ferry_loader_start_epoch */
  uint32_t sample_id;   /* the batch_id given to ferry_sample */
  const int64_t *seeds; /* num_seeds seed ids (host), as cut from the list */
  int64_t num_seeds;
  const ferry_minibatch *minibatch; /* the blocks (ferry_minibatch_block) */
  /* [num_input_nodes, cols] features of block 0's source nodes, on the
   * device (host memory on cpu), compact, feature_dtype. */
  ferry_tensor features;
  int64_t num_input_nodes;
} ferry_batch_info;
#define FERRY_BATCH_INFO_INIT                                                  \
  { .struct_size = sizeof(ferry_batch_info) }
FERRY_API ferry_status ferry_batch_get_info(const ferry_batch *batch,
                                            ferry_batch_info *out);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_LOADER_H */
