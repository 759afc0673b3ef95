/* The opencl plugin's table. */
#include "internal.h"

/* Op slots are filled by name: an op whose ocl_op_<name> is defined in some
 * file of this plugin gets its slot; the others resolve to NULL (weak,
 * hidden: settled when the plugin is linked) and the core answers
 * FERRY_ERR_UNSUPPORTED for them. A new op is a new file, no edit here. */
#define OCL_OP_WEAK(name, params)                                              \
  extern ferry_status ocl_op_##name params                                     \
      __attribute__((weak, visibility("hidden")));
FERRY_BACKEND_OPS(OCL_OP_WEAK)
#undef OCL_OP_WEAK

#define OCL_OP_SLOT(name, params) .op_##name = ocl_op_##name,

static const ferry_backend table = {
    .abi_major = FERRY_BACKEND_ABI_MAJOR,
    .abi_minor = FERRY_BACKEND_ABI_MINOR,
    .struct_size = sizeof(ferry_backend),
    /* Not HOST_UNIFIED: that is a per-device property here (PoCL and APUs
     * have it, discrete GPUs do not), reported in each device's info. */
    .flags = FERRY_BACKEND_FLAG_NATIVE_STREAMS,
    .name = "opencl",
    /* Below the vendors' own runtimes (cuda, hip) on the same GPU. */
    .priority = 10,
    /* The kernels are OpenCL C 1.2. */
    .min_capability_major = 1,
    .min_capability_minor = 2,

    .init = ocl_init,
    .fini = ocl_fini,
    .device_count = ocl_device_count,
    .device_info = ocl_device_info,
    .context_create = ocl_context_create,
    .context_destroy = ocl_context_destroy,
    .buffer_alloc = ocl_buffer_alloc,
    .buffer_free = ocl_buffer_free,
    .host_register = ocl_host_register,
    .host_unregister = ocl_host_unregister,
    .stream_create = ocl_stream_create,
    .stream_wrap = ocl_stream_wrap,
    .stream_destroy = ocl_stream_destroy,
    .stream_synchronize = ocl_stream_synchronize,
    .stream_query = ocl_stream_query,
    .stream_wait_event = ocl_stream_wait_event,
    .stream_native = ocl_stream_native,
    .event_create = ocl_event_create,
    .event_destroy = ocl_event_destroy,
    .event_record = ocl_event_record,
    .event_synchronize = ocl_event_synchronize,
    .event_query = ocl_event_query,
    .event_elapsed_ms = ocl_event_elapsed_ms,
    .event_native = ocl_event_native,
    .context_synchronize = ocl_context_synchronize,
    /* Host work runs on one worker thread per stream, not on a pool. */
    .context_num_threads = NULL,
    FERRY_BACKEND_OPS(OCL_OP_SLOT)};
#undef OCL_OP_SLOT

FERRY_BACKEND_EXPORT const ferry_backend *
ferry_backend_opencl_entry(uint32_t host_abi_major);

const ferry_backend *ferry_backend_opencl_entry(uint32_t host_abi_major) {
  /* The core checks the major and says why it refuses a mismatch. */
  (void)host_abi_major;
  return &table;
}
