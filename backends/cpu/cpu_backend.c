/* The cpu backend's table, entry function, init/fini and its one device.
 *
 * Built into libferry (the core calls ferry_backend_cpu_entry directly) and,
 * for the ABI tests only, as a MODULE plugin (FERRY_CPU_MODULE) whose sole
 * export is the entry function. */
#include "cpu_internal.h"

#include <string.h>
#include <unistd.h>

const ferry_host_api *ferry_cpu_host = NULL;

/* Below every device backend: the cpu is what runs when nothing else can. */
#define FERRY_CPU_PRIORITY (-1000)

static ferry_status cpu_init(const ferry_host_api *host) {
  if (host == NULL)
    return FERRY_ERR_PLUGIN_REJECTED; /* nobody to tell why */
  /* set_error sits in the part of the table every version has. */
  if (host->abi_major != FERRY_BACKEND_ABI_MAJOR ||
      host->struct_size < sizeof(ferry_host_api))
    return host->set_error(FERRY_ERR_PLUGIN_REJECTED,
                           "cpu init: host services are ABI %u with %u bytes; "
                           "the cpu backend needs ABI %u with %zu bytes",
                           host->abi_major, host->struct_size,
                           FERRY_BACKEND_ABI_MAJOR, sizeof(ferry_host_api));
  ferry_cpu_host = host;
  return FERRY_OK;
}

static void cpu_fini(void) {
  /* Contexts are gone by now (the core destroys them first); nothing the
   * backend owns outlives them. */
}

static ferry_status cpu_device_count(int *out) {
  if (out == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_NULL_POINTER,
                                     "cpu device_count: 'out' is NULL");
  *out = 1;
  return FERRY_OK;
}

static uint64_t physical_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0)
    return 0;
  return (uint64_t)pages * (uint64_t)page;
}

static ferry_status cpu_device_info(int device, ferry_device_info *out) {
  if (out == NULL)
    return ferry_cpu_host->set_error(FERRY_ERR_NULL_POINTER,
                                     "cpu device_info: 'out' is NULL");
  if (device != 0)
    return ferry_cpu_host->set_error(
        FERRY_ERR_OUT_OF_RANGE,
        "cpu device_info: device %d does not exist (the cpu backend has one "
        "device, 0)",
        device);
  if (out->struct_size < offsetof(ferry_device_info, name))
    return ferry_cpu_host->set_error(
        FERRY_ERR_STRUCT_SIZE,
        "cpu device_info: out->struct_size %zu is too small", out->struct_size);
  ferry_device_info d;
  memset(&d, 0, sizeof d);
  d.struct_size = out->struct_size;
  strcpy(d.name, "cpu");
  d.total_memory = physical_memory();
  d.capability_major = 0;
  d.capability_minor = 0;
  d.base_address_align = 128;
  d.host_unified_memory = 1;
  d.usable = 1;
  /* Only the fields the caller's struct covers are written. */
  size_t n = out->struct_size < sizeof d ? out->struct_size : sizeof d;
  memcpy(out, &d, n);
  return FERRY_OK;
}

const char *ferry_cpu_status_name(ferry_status status) {
  switch (status) {
#define CPU_STATUS(s)                                                          \
  case s:                                                                      \
    return #s;
    CPU_STATUS(FERRY_OK)
    CPU_STATUS(FERRY_ERR_INVALID_ARGUMENT)
    CPU_STATUS(FERRY_ERR_NULL_POINTER)
    CPU_STATUS(FERRY_ERR_STRUCT_SIZE)
    CPU_STATUS(FERRY_ERR_OUT_OF_RANGE)
    CPU_STATUS(FERRY_ERR_MISMATCH)
    CPU_STATUS(FERRY_ERR_BAD_FORMAT)
    CPU_STATUS(FERRY_ERR_UNSUPPORTED)
    CPU_STATUS(FERRY_ERR_NO_BACKEND)
    CPU_STATUS(FERRY_ERR_NO_DEVICE)
    CPU_STATUS(FERRY_ERR_PLUGIN_REJECTED)
    CPU_STATUS(FERRY_ERR_DEVICE_TOO_OLD)
    CPU_STATUS(FERRY_ERR_OUT_OF_MEMORY)
    CPU_STATUS(FERRY_ERR_OUT_OF_DEVICE_MEMORY)
    CPU_STATUS(FERRY_ERR_IO)
    CPU_STATUS(FERRY_ERR_NOT_READY)
    CPU_STATUS(FERRY_ERR_CONTEXT_LOST)
    CPU_STATUS(FERRY_ERR_FORKED)
    CPU_STATUS(FERRY_ERR_BACKEND)
    CPU_STATUS(FERRY_ERR_BUSY)
    CPU_STATUS(FERRY_ERR_INTERNAL)
#undef CPU_STATUS
  }
  return "an unknown ferry_status";
}

/* Op slots are filled by name: an op whose ferry_cpu_op_<name> is defined in
 * some file of backends/cpu/ gets its slot; the others resolve to NULL (weak,
 * hidden: settled when the library is linked, never by the dynamic loader)
 * and the core answers FERRY_ERR_UNSUPPORTED for them. */
#define CPU_OP_WEAK(name, params)                                              \
  extern ferry_status ferry_cpu_op_##name params                               \
      __attribute__((weak, visibility("hidden")));
FERRY_BACKEND_OPS(CPU_OP_WEAK)
#undef CPU_OP_WEAK

#define CPU_OP_SLOT(name, params) .op_##name = ferry_cpu_op_##name,

static const ferry_backend cpu_backend = {
    .abi_major = FERRY_BACKEND_ABI_MAJOR,
    .abi_minor = FERRY_BACKEND_ABI_MINOR,
    .struct_size = sizeof(ferry_backend),
    .flags = FERRY_BACKEND_FLAG_HOST_UNIFIED,
    .name = "cpu",
    .priority = FERRY_CPU_PRIORITY,
    .min_capability_major = 0,
    .min_capability_minor = 0,
    .init = cpu_init,
    .fini = cpu_fini,
    .device_count = cpu_device_count,
    .device_info = cpu_device_info,
    .context_create = ferry_cpu_context_create,
    .context_destroy = ferry_cpu_context_destroy,
    .buffer_alloc = ferry_cpu_buffer_alloc,
    .buffer_free = ferry_cpu_buffer_free,
    /* cpu memory is host memory already: nothing to register. */
    .host_register = NULL,
    .host_unregister = NULL,
    .stream_create = ferry_cpu_stream_create,
    /* No native streams or events exist on the cpu. */
    .stream_wrap = NULL,
    .stream_destroy = ferry_cpu_stream_destroy,
    .stream_synchronize = ferry_cpu_stream_synchronize,
    .stream_query = ferry_cpu_stream_query,
    .stream_wait_event = ferry_cpu_stream_wait_event,
    .stream_native = NULL,
    .event_create = ferry_cpu_event_create,
    .event_destroy = ferry_cpu_event_destroy,
    .event_record = ferry_cpu_event_record,
    .event_synchronize = ferry_cpu_event_synchronize,
    .event_query = ferry_cpu_event_query,
    .event_elapsed_ms = ferry_cpu_event_elapsed_ms,
    .event_native = NULL,
    .context_synchronize = ferry_cpu_context_synchronize,
    .context_num_threads = ferry_cpu_context_num_threads,
    FERRY_BACKEND_OPS(CPU_OP_SLOT)};

#undef CPU_OP_SLOT

/* The table is returned whatever the host's major: the core compares majors
 * and rejects a mismatch with a message naming both. */
#ifdef FERRY_CPU_MODULE
FERRY_BACKEND_EXPORT
#endif
const ferry_backend *ferry_backend_cpu_entry(uint32_t host_abi_major) {
  (void)host_abi_major;
  return &cpu_backend;
}
