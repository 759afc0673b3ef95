/* The Adan optimizer object, shared by core/adan*.c. Nothing here is API. */
#ifndef FERRY_CORE_ADAN_INTERNAL_H
#define FERRY_CORE_ADAN_INTERNAL_H

#include "internal.h"

#include <ferry/adan.h>

/* State vectors of a group, in arena order (ferry_adan_state values). */
#define FERRY_ADAN_VECTORS 4        /* m, v, n, g_prev */
#define FERRY_ADAN_VECTORS_MASTER 5 /* + f32 master weights */
/* Each tensor's state starts on a 64-byte boundary, so that vector loads of
 * a tensor's state are aligned wherever its parameters are. */
#define FERRY_ADAN_ALIGN 16 /* elements */
/* Where the state vectors sit modulo 4 KiB. Vectors whose addresses agree
 * in their low 12 bits (page-aligned buffers, a power-of-two tensor) make
 * the CPU's loads and stores of the six streams alias (4K aliasing, L1 set
 * conflicts): the fused step ran at half speed. The first vector starts
 * FERRY_ADAN_SKEW bytes into the arena and the stride is padded so that
 * consecutive vectors are FERRY_ADAN_STAGGER bytes apart modulo 4 KiB:
 * m, v, n, g_prev, master at 640, 1920, 3200, 384, 1664 (mod 4096), clear
 * of each other and of page-aligned parameters and gradients. */
#define FERRY_ADAN_SKEW 640     /* bytes, a multiple of 64 */
#define FERRY_ADAN_STAGGER 1280 /* bytes, a multiple of 64 */

typedef struct ferry__adan_tensor {
  uint64_t length; /* elements */
  uint64_t offset; /* first element within the group's vectors */
  ferry_dtype dtype;
  int group;
} ferry__adan_tensor;

typedef struct ferry__adan_group {
  double lr, weight_decay;
  ferry_buffer *arena; /* FERRY_ADAN_SKEW bytes, then vectors x stride f32 */
  uint64_t length;     /* elements of the group's tensors */
  uint64_t stride;     /* elements between vectors (>= length, aligned) */
  int vectors;         /* FERRY_ADAN_VECTORS or _MASTER */
  size_t first, count; /* the group's tensors in ferry_adan.tensors */
} ferry__adan_group;

struct ferry_adan {
  ferry_context *ctx;
  pthread_mutex_t lock; /* everything below */
  ferry_adan_options o;
  /* The optimizer's own stream for state set-up, checkpoints and counter
   * reads; it waits on `done` (recorded after each step on the caller's
   * stream) so it sees every step enqueued so far. */
  ferry_stream *stream;
  ferry_event *done;
  bool recorded;
  ferry_buffer *control; /* a ferry_be_adan_control */
  ferry__adan_group groups[FERRY_ADAN_MAX_GROUPS];
  int group_count;
  ferry__adan_tensor *tensors;
  size_t tensor_count;
  /* The device chunk table of the last step and the host copy it was made
   * from: rebuilt only when the tensors' addresses change. */
  ferry_buffer *table;
  ferry_be_adan_chunk *table_host;
  uint64_t table_count;
};

/* Make the optimizer's stream wait for every step enqueued so far. Call
 * with opt->lock held. */
ferry_status ferry__adan_wait_steps(ferry_adan *opt);

#endif /* FERRY_CORE_ADAN_INTERNAL_H */
