/* ferry's kernels: an image embedded in the plugin (a CUDA fatbin or a HIP
 * code-object bundle, see gpu_kernel_image.c), loaded for the context's
 * device when the context is created. A device the image has no code for
 * fails there, with the runtime's reason, rather than at a first launch
 * deep inside some op. */
#include "gpu_internal.h"

/* The embedded image (gpu_kernel_image.c). */
extern const unsigned char ferry_gpu_kernel_image[];

static const char *const kernel_names[FERRY_GPU_KERNEL_COUNT] = {
#define FERRY_GPU_KERNEL_NAME(name) "ferry_k_" #name,
    FERRY_GPU_KERNELS(FERRY_GPU_KERNEL_NAME)
#undef FERRY_GPU_KERNEL_NAME
};

ferry_status ferry_gpu_kernels_load(ferry_be_context *ctx) {
  gpuError_t e = gpuModuleLoadData(&ctx->module, ferry_gpu_kernel_image);
  if (e != gpuSuccess)
    return ferry_gpu_fail(ctx, e,
                          "context_create: loading ferry's kernels (built for "
                          "%s) on device %d",
                          FERRY_GPU_TARGETS, ctx->device);
  for (int k = 0; k < FERRY_GPU_KERNEL_COUNT; k++) {
    e = gpuModuleGetKernel(&ctx->kernels[k], ctx->module, kernel_names[k]);
    if (e != gpuSuccess) {
      ferry_status st = ferry_gpu_fail(
          ctx, e, "context_create: kernel %s (built for %s) on device %d",
          kernel_names[k], FERRY_GPU_TARGETS, ctx->device);
      (void)gpuModuleUnload(ctx->module);
      return st;
    }
  }
  return FERRY_OK;
}

void ferry_gpu_kernels_unload(ferry_be_context *ctx) {
  if (gpuModuleUnload(ctx->module) != gpuSuccess)
    (void)gpuGetLastError();
}

ferry_status ferry_gpu_launch(ferry_be_stream *s, int k, uint32_t grid,
                              uint32_t block, uint32_t shared_bytes,
                              void **args) {
  gpuError_t e = gpuLaunchKernel(s->ctx->kernels[k], grid, block, shared_bytes,
                                 s->stream, args);
  if (e != gpuSuccess)
    return ferry_gpu_fail(s->ctx, e, "launching %s (grid %u, block %u)",
                          kernel_names[k], grid, block);
  return FERRY_OK;
}
