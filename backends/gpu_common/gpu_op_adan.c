/* adan_step on CUDA and HIP (kernels/adan.cuh): at most three launches on
 * the stream, whatever the number of tensors: the reduction over the chunk
 * table (with clipping or the finite check), the one-thread scalar pass,
 * and the update over the chunk table. The chunk table (device memory,
 * built by the core when the tensors' addresses change) holds every
 * tensor's pieces by address, so the step never waits for the host. */
#include "gpu_internal.h"
#include "kernels/adan_params.cuh"

#include <stddef.h>
#include <string.h>

/* The kernels read backend.h's structs through adan_params.cuh's mirror. */
_Static_assert(sizeof(ferry_gpu_adan_chunk) == sizeof(ferry_be_adan_chunk),
               "chunk layout");
_Static_assert(offsetof(ferry_gpu_adan_chunk, count) ==
                       offsetof(ferry_be_adan_chunk, count) &&
                   offsetof(ferry_gpu_adan_chunk, group) ==
                       offsetof(ferry_be_adan_chunk, group) &&
                   offsetof(ferry_gpu_adan_chunk, grad_dtype) ==
                       offsetof(ferry_be_adan_chunk, grad_dtype),
               "chunk fields");
_Static_assert(offsetof(ferry_be_adan_control, groups) ==
                       FERRY_GPU_ADAN_CTL_GROUP(0) * 4 &&
                   sizeof(ferry_be_adan_group_ctl) == 32 &&
                   offsetof(ferry_be_adan_control, partial_sum) ==
                       FERRY_GPU_ADAN_CTL_SUMS * 4 &&
                   offsetof(ferry_be_adan_control, partial_bad) ==
                       FERRY_GPU_ADAN_CTL_BAD * 4,
               "control layout");
_Static_assert(FERRY_GPU_ADAN_GROUPS == FERRY_BE_ADAN_MAX_GROUPS &&
                   FERRY_GPU_ADAN_PARTIALS == FERRY_BE_ADAN_PARTIALS,
               "limits");

/* Blocks of the update: enough to fill any current GPU several times over;
 * past it the blocks loop over the chunks. */
#define ADAN_UPDATE_MAX_GRID 8192u

static ferry_status device_operand(ferry_be_stream *s, const ferry_be_memref *m,
                                   const char *what, uint64_t i) {
  gpuMemoryKind kind = GPU_MEMORY_PAGEABLE;
  ferry_status st = ferry_gpu_memref_kind(s->ctx, m, &kind);
  if (st != FERRY_OK)
    return st;
  if (kind == GPU_MEMORY_PAGEABLE || ferry_gpu_memref_addr(m) == NULL)
    return ferry_gpu_host->set_error(
        FERRY_ERR_INVALID_ARGUMENT,
        FERRY_GPU_NAME " adan_step: the %s of tensor %llu is pageable host "
                       "memory; the kernels need device or pinned host memory",
        what, (unsigned long long)i);
  return FERRY_OK;
}

ferry_status ferry_gpu_op_adan_step(ferry_be_stream *s,
                                    const ferry_be_launch *l,
                                    const ferry_be_adan_step *step) {
  (void)l;
  const ferry_be_adan_hyper *h = &step->hyper;
  if (step->chunk_count == 0 || ferry_gpu_memref_addr(&step->chunks) == NULL ||
      ferry_gpu_memref_addr(&step->control) == NULL)
    return ferry_gpu_host->set_error(FERRY_ERR_INTERNAL, FERRY_GPU_NAME
                                     " adan_step: no chunk table or control "
                                     "block on the device");
  ferry_gpu_scope scope;
  ferry_status st = ferry_gpu_enter(s->ctx, "adan_step", &scope);
  if (st != FERRY_OK)
    return st;
  for (uint64_t i = 0; i < step->tensor_count && st == FERRY_OK; i++) {
    st = device_operand(s, &step->tensors[i].param, "parameters", i);
    if (st == FERRY_OK)
      st = device_operand(s, &step->tensors[i].grad, "gradients", i);
  }
  if (st != FERRY_OK) {
    ferry_gpu_leave(&scope);
    return st;
  }

  void *chunks = ferry_gpu_memref_addr(&step->chunks);
  void *ctl = ferry_gpu_memref_addr(&step->control);
  uint64_t nchunks = step->chunk_count;
  const bool reduce =
      (h->flags & (FERRY_BE_ADAN_CLIP | FERRY_BE_ADAN_CHECK_FINITE)) != 0;
  uint32_t nparts = 0;
  if (reduce) {
    /* The grid depends on the chunk count only: a deterministic sum. */
    nparts = nchunks < FERRY_GPU_ADAN_PARTIALS ? (uint32_t)nchunks
                                               : FERRY_GPU_ADAN_PARTIALS;
    void *args[] = {&chunks, &nchunks, &ctl};
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_adan_reduce, nparts,
                          FERRY_GPU_ADAN_BLOCK, 0, args);
  }
  ferry_gpu_adan_hyper hy;
  memset(&hy, 0, sizeof hy);
  hy.beta1 = h->beta1;
  hy.beta2 = h->beta2;
  hy.beta3 = h->beta3;
  hy.eps = h->eps;
  hy.max_grad_norm = h->max_grad_norm;
  hy.flags = h->flags;
  hy.groups = h->group_count;
  for (uint32_t g = 0; g < h->group_count && g < FERRY_GPU_ADAN_GROUPS; g++) {
    hy.lr[g] = h->lr[g];
    hy.weight_decay[g] = h->weight_decay[g];
  }
  if (st == FERRY_OK) {
    void *args[] = {&ctl, &hy, &nparts};
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_adan_scalars, 1, 32, 0, args);
  }
  /* 1 - beta rounded from double (1 - (float)0.98 is off by 1e-6). */
  ferry_gpu_adan_coef k = {(float)h->beta1, (float)(1.0 - h->beta1),
                           (float)h->beta2, (float)(1.0 - h->beta2),
                           (float)h->beta3, (float)(1.0 - h->beta3),
                           (float)h->eps,   h->flags};
  if (st == FERRY_OK) {
    uint32_t grid = nchunks < ADAN_UPDATE_MAX_GRID ? (uint32_t)nchunks
                                                   : ADAN_UPDATE_MAX_GRID;
    void *args[] = {&chunks, &nchunks, &ctl, &k};
    st = ferry_gpu_launch(s, FERRY_GPU_KERNEL_adan_update, grid,
                          FERRY_GPU_ADAN_BLOCK, 0, args);
  }
  ferry_gpu_leave(&scope);
  return st;
}
