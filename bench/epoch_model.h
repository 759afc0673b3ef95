/* The end-to-end epoch's stand-in for a model: the FLOPs of a GraphSAGE
 * forward + backward on a minibatch's blocks, the rate that turns them into
 * seconds, and the busy period that occupies the compute stream for them
 * (bench/epoch.c; docs/benchmarks.md, "epoch"). */
#ifndef FERRY_BENCH_EPOCH_MODEL_H
#define FERRY_BENCH_EPOCH_MODEL_H

#include <ferry/ferry.h>
#include <stdint.h>

/* The model: GraphSAGE (mean aggregator, separate self and neighbour
 * weights, as DGL's SAGEConv), one layer per block. dims[l] -> dims[l + 1]
 * for block l. */
#define EPOCH_MODEL_LAYERS 3
#define EPOCH_MODEL_HIDDEN 256
#define EPOCH_MODEL_CLASSES 172 /* ogbn-papers100M's */

typedef struct epoch_block_shape {
  int64_t num_dst, num_src, num_edges;
} epoch_block_shape;

/* FLOPs of one forward + backward over `layers` blocks, input width `in`:
 *   forward, block l:   mean aggregation e*f_in, two GEMMs 2*2*d*f_in*f_out
 *   backward, block l:  aggregation e*f_in again, dW of both GEMMs (same
 *                       FLOPs as forward), dX of both except for block 0
 *                       (the input features need no gradient).
 * Activations, loss and LayerNorm are left out (LayerNorm runs for real). */
double epoch_model_flops(const epoch_block_shape *blocks, int layers,
                         int64_t in);

/* The number of parameters and the tensors' shapes: params_out (may be
 * NULL) receives up to max shapes as {rows, cols} (cols 0: a vector of
 * `rows`). Returns the tensor count. The order: per layer W_self, W_neigh,
 * bias, then for hidden layers LayerNorm gamma and beta. */
int epoch_model_params(int64_t in, int64_t shapes[][2], int max,
                       int64_t *total);

/* FLOP/s of a plain C single-threaded GEMM-like loop (f32, i-k-j order,
 * 192 x 192 matrices): the best of five trials, `seconds` in all. */
double epoch_model_measure_flops(double seconds);

/* A host function for ferry_stream_enqueue_host_fn: spins until
 * *(double *)user seconds have passed (the compute stream is busy for that
 * long, as it would be running the model's kernels). */
ferry_status epoch_model_busy(void *user);

#endif
