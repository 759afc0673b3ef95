/* The backend table and entry function of the cuda and hip plugins (the
 * same source, compiled once per vendor: see gpu_vendor.h). */
#include "gpu_internal.h"

#include <string.h>

const ferry_host_api *ferry_gpu_host = NULL;

/* Above the cpu (and OpenCL, which may drive the same GPU less directly). */
#define FERRY_GPU_PRIORITY 100

static ferry_status gpu_init(const ferry_host_api *host) {
  /* Without a usable host table there is no way to report anything. */
  if (host == NULL || host->abi_major != FERRY_BACKEND_ABI_MAJOR ||
      host->struct_size < sizeof(ferry_host_api))
    return FERRY_ERR_PLUGIN_REJECTED;
  ferry_gpu_host = host;
  return FERRY_OK;
}

static void gpu_fini(void) {
  /* Contexts are gone by now (the core destroys them first); the runtime
   * tears itself down at exit. */
}

const char *ferry_gpu_status_name(ferry_status status) {
  switch (status) {
#define GPU_STATUS(s)                                                          \
  case s:                                                                      \
    return #s;
    GPU_STATUS(FERRY_OK)
    GPU_STATUS(FERRY_ERR_INVALID_ARGUMENT)
    GPU_STATUS(FERRY_ERR_NULL_POINTER)
    GPU_STATUS(FERRY_ERR_STRUCT_SIZE)
    GPU_STATUS(FERRY_ERR_OUT_OF_RANGE)
    GPU_STATUS(FERRY_ERR_MISMATCH)
    GPU_STATUS(FERRY_ERR_BAD_FORMAT)
    GPU_STATUS(FERRY_ERR_UNSUPPORTED)
    GPU_STATUS(FERRY_ERR_NO_BACKEND)
    GPU_STATUS(FERRY_ERR_NO_DEVICE)
    GPU_STATUS(FERRY_ERR_PLUGIN_REJECTED)
    GPU_STATUS(FERRY_ERR_DEVICE_TOO_OLD)
    GPU_STATUS(FERRY_ERR_OUT_OF_MEMORY)
    GPU_STATUS(FERRY_ERR_OUT_OF_DEVICE_MEMORY)
    GPU_STATUS(FERRY_ERR_IO)
    GPU_STATUS(FERRY_ERR_NOT_READY)
    GPU_STATUS(FERRY_ERR_CONTEXT_LOST)
    GPU_STATUS(FERRY_ERR_FORKED)
    GPU_STATUS(FERRY_ERR_BACKEND)
    GPU_STATUS(FERRY_ERR_BUSY)
    GPU_STATUS(FERRY_ERR_INTERNAL)
#undef GPU_STATUS
  }
  return "an unknown ferry_status";
}

/* Op slots are filled by name: an op whose ferry_gpu_op_<name> is defined in
 * some gpu_op_<name>.c gets its slot; the others resolve to NULL (weak and
 * hidden, settled when the plugin is linked) and the core answers
 * FERRY_ERR_UNSUPPORTED for them. */
#define GPU_OP_WEAK(name, params)                                              \
  extern ferry_status ferry_gpu_op_##name params                               \
      __attribute__((weak, visibility("hidden")));
FERRY_BACKEND_OPS(GPU_OP_WEAK)
#undef GPU_OP_WEAK

#define GPU_OP_SLOT(name, params) .op_##name = ferry_gpu_op_##name,

/* The oldest device the built kernels run on, from the build's architecture
 * list (FERRY_CUDA_ARCHITECTURES / FERRY_HIP_TARGETS, see GpuPlugin.cmake). */
#ifndef FERRY_GPU_MIN_CAP_MAJOR
#error "the build passes FERRY_GPU_MIN_CAP_MAJOR/MINOR"
#endif

static const ferry_backend gpu_backend = {
    .abi_major = FERRY_BACKEND_ABI_MAJOR,
    .abi_minor = FERRY_BACKEND_ABI_MINOR,
    .struct_size = sizeof(ferry_backend),
    .flags = FERRY_BACKEND_FLAG_NATIVE_STREAMS,
    .name = FERRY_GPU_NAME,
    .priority = FERRY_GPU_PRIORITY,
    .min_capability_major = FERRY_GPU_MIN_CAP_MAJOR,
    .min_capability_minor = FERRY_GPU_MIN_CAP_MINOR,
    .init = gpu_init,
    .fini = gpu_fini,
    .device_count = ferry_gpu_device_count,
    .device_info = ferry_gpu_device_info,
    .context_create = ferry_gpu_context_create,
    .context_destroy = ferry_gpu_context_destroy,
    .buffer_alloc = ferry_gpu_buffer_alloc,
    .buffer_free = ferry_gpu_buffer_free,
    .host_register = ferry_gpu_host_register,
    .host_unregister = ferry_gpu_host_unregister,
    .stream_create = ferry_gpu_stream_create,
    .stream_wrap = ferry_gpu_stream_wrap,
    .stream_destroy = ferry_gpu_stream_destroy,
    .stream_synchronize = ferry_gpu_stream_synchronize,
    .stream_query = ferry_gpu_stream_query,
    .stream_wait_event = ferry_gpu_stream_wait_event,
    .stream_native = ferry_gpu_stream_native,
    .event_create = ferry_gpu_event_create,
    .event_destroy = ferry_gpu_event_destroy,
    .event_record = ferry_gpu_event_record,
    .event_synchronize = ferry_gpu_event_synchronize,
    .event_query = ferry_gpu_event_query,
    .event_elapsed_ms = ferry_gpu_event_elapsed_ms,
    .event_native = ferry_gpu_event_native,
    .context_synchronize = ferry_gpu_context_synchronize,
    .context_num_threads = ferry_gpu_context_num_threads,
    FERRY_BACKEND_OPS(GPU_OP_SLOT)};

#undef GPU_OP_SLOT

/* The table is returned whatever the host's major: the core compares majors
 * and rejects a mismatch with a message naming both. Nothing here touches
 * the runtime, so loading the plugin costs no driver initialisation. */
const ferry_backend *FERRY_GPU_ENTRY(uint32_t host_abi_major) {
  (void)host_abi_major;
  return &gpu_backend;
}
