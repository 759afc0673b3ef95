/* A fake backend plugin for the loader, ABI and selection tests (in the
 * spirit of the OpenCL ICD loader's test driver stub).
 *
 * Built several times under different names and with STUB_VARIANT choosing
 * one defect the loader must reject. Devices come from the environment:
 *   FERRY_STUB_DEVICES_<name> or FERRY_STUB_DEVICES =
 *     "vendor:bus_id:cap_major.cap_minor,..."
 * e.g. "10de:0000:34:00.0:9.0,10de:0000:36:00.0:7.0". Its ops are all NULL,
 * so every op dispatches to FERRY_ERR_UNSUPPORTED; it has just enough memory
 * and stream support for contexts and streams to exist. */
#include <ferry/backend.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STUB_OK 0
#define STUB_BAD_ABI 1
#define STUB_SHORT_TABLE 2
#define STUB_UNKNOWN_FLAGS 3
#define STUB_INIT_FAILS 4
#define STUB_WRONG_NAME 5
#define STUB_NULL_TABLE 6
#define STUB_ABI_1_0 7 /* a table of ABI 1.0, before the op areas */

#ifndef STUB_VARIANT
#define STUB_VARIANT STUB_OK
#endif
#ifndef STUB_NAME
#define STUB_NAME "stub"
#endif
#ifndef STUB_ENTRY
#define STUB_ENTRY ferry_backend_stub_entry
#endif

#define MAX_DEV 32

typedef struct stub_dev {
  unsigned vendor;
  char bus[FERRY_BUS_ID_MAX];
  unsigned major, minor;
} stub_dev;

static const ferry_host_api *host;
static stub_dev devs[MAX_DEV];
static int ndev;

struct ferry_be_context {
  int device;
};
struct ferry_be_buffer {
  void *mem;
};
struct ferry_be_stream {
  void *cookie;
};
struct ferry_be_event {
  int recorded;
};

static void parse_devices(void) {
  /* FERRY_STUB_DEVICES_<name> first, so one process can give the stubs
   * posing as cuda, hip and opencl different devices. */
  const char *env = getenv("FERRY_STUB_DEVICES_" STUB_NAME);
  if (env == NULL)
    env = getenv("FERRY_STUB_DEVICES");
  ndev = 0;
  if (env == NULL)
    return;
  char *copy = strdup(env), *save = NULL;
  for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL;
       tok && ndev < MAX_DEV; tok = strtok_r(NULL, ",", &save)) {
    stub_dev d = {0};
    /* vendor:dddd:bb:dd.f:major.minor */
    char bus[32];
    if (sscanf(tok, "%x:%31[0-9a-fA-F:.]", &d.vendor, bus) != 2)
      continue;
    char *last = strrchr(bus, ':');
    if (last == NULL || sscanf(last + 1, "%u.%u", &d.major, &d.minor) != 2)
      continue;
    *last = '\0';
    snprintf(d.bus, sizeof d.bus, "%.15s", bus);
    devs[ndev++] = d;
  }
  free(copy);
}

static ferry_status stub_init(const ferry_host_api *h) {
  host = h;
  if (STUB_VARIANT == STUB_INIT_FAILS)
    return h->set_error(FERRY_ERR_BACKEND, "stub: init fails on purpose");
  parse_devices();
  return FERRY_OK;
}

static void stub_fini(void) {}

static ferry_status stub_device_count(int *out) {
  *out = ndev;
  return FERRY_OK;
}

static ferry_status stub_device_info(int i, ferry_device_info *out) {
  if (i < 0 || i >= ndev)
    return host->set_error(FERRY_ERR_OUT_OF_RANGE, "stub: device %d", i);
  snprintf(out->name, sizeof out->name, "stub device %d", i);
  snprintf(out->pci_bus_id, sizeof out->pci_bus_id, "%s", devs[i].bus);
  out->pci_vendor_id = devs[i].vendor;
  out->total_memory = 1ull << 30;
  out->capability_major = devs[i].major;
  out->capability_minor = devs[i].minor;
  out->base_address_align = 128;
  out->usable = 1;
  return FERRY_OK;
}

static ferry_status stub_context_create(const ferry_be_context_params *p,
                                        ferry_be_context **out) {
  ferry_be_context *c = host->alloc(sizeof *c, 0);
  if (c == NULL)
    return host->set_error(FERRY_ERR_OUT_OF_MEMORY, "stub: context");
  c->device = p->device_index;
  *out = c;
  return FERRY_OK;
}

static void stub_context_destroy(ferry_be_context *c, uint32_t flags) {
  (void)flags;
  host->free(c);
}

static ferry_status stub_buffer_alloc(ferry_be_context *c,
                                      ferry_memory_space space, uint64_t size,
                                      ferry_be_buffer **out, void **host_ptr,
                                      void **device_ptr, void **native) {
  (void)c;
  (void)space;
  ferry_be_buffer *b = host->alloc(sizeof *b, 0);
  void *mem = b ? host->alloc(size, 128) : NULL;
  if (mem == NULL) {
    host->free(b);
    return host->set_error(FERRY_ERR_OUT_OF_DEVICE_MEMORY, "stub: buffer");
  }
  b->mem = mem;
  *out = b;
  *host_ptr = NULL;
  *device_ptr = mem;
  *native = NULL;
  return FERRY_OK;
}

static void stub_buffer_free(ferry_be_context *c, ferry_be_buffer *b,
                             uint32_t flags) {
  (void)c;
  (void)flags;
  host->free(b->mem);
  host->free(b);
}

static ferry_status stub_stream_create(ferry_be_context *c, void *cookie,
                                       ferry_be_stream **out) {
  (void)c;
  ferry_be_stream *s = host->alloc(sizeof *s, 0);
  if (s == NULL)
    return host->set_error(FERRY_ERR_OUT_OF_MEMORY, "stub: stream");
  s->cookie = cookie;
  *out = s;
  return FERRY_OK;
}

static void stub_stream_destroy(ferry_be_stream *s, uint32_t flags) {
  if (!(flags & FERRY_BE_DESTROY_FORKED))
    host->stream_released(s->cookie);
  host->free(s);
}

static ferry_status stub_stream_idle(ferry_be_stream *s) {
  (void)s;
  return FERRY_OK;
}

static ferry_status stub_stream_wait(ferry_be_stream *s, ferry_be_event *e) {
  (void)s;
  (void)e;
  return FERRY_OK;
}

static ferry_status stub_event_create(ferry_be_context *c,
                                      ferry_be_event **out) {
  (void)c;
  ferry_be_event *e = host->alloc(sizeof *e, 0);
  if (e == NULL)
    return host->set_error(FERRY_ERR_OUT_OF_MEMORY, "stub: event");
  e->recorded = 0;
  *out = e;
  return FERRY_OK;
}

static void stub_event_destroy(ferry_be_event *e, uint32_t flags) {
  (void)flags;
  host->free(e);
}

static ferry_status stub_event_record(ferry_be_event *e, ferry_be_stream *s) {
  (void)s;
  e->recorded = 1;
  return FERRY_OK;
}

static ferry_status stub_event_idle(ferry_be_event *e) {
  (void)e;
  return FERRY_OK;
}

static ferry_status stub_context_sync(ferry_be_context *c) {
  (void)c;
  return FERRY_OK;
}

static const ferry_backend table = {
    .abi_major = STUB_VARIANT == STUB_BAD_ABI ? 99 : FERRY_BACKEND_ABI_MAJOR,
    .abi_minor = STUB_VARIANT == STUB_ABI_1_0 ? 0u : FERRY_BACKEND_ABI_MINOR,
    .struct_size =
        STUB_VARIANT == STUB_SHORT_TABLE ? (uint32_t)FERRY_BACKEND_PREFIX_SIZE
        : STUB_VARIANT == STUB_ABI_1_0   ? (uint32_t)FERRY_BACKEND_SIZE_1_0
                                         : (uint32_t)sizeof(ferry_backend),
    .flags = STUB_VARIANT == STUB_UNKNOWN_FLAGS ? 0x80000000u : 0u,
    .name = STUB_VARIANT == STUB_WRONG_NAME ? "someone-else" : STUB_NAME,
    .priority = 10,
    .min_capability_major = 7,
    .min_capability_minor = 5,
    .init = stub_init,
    .fini = stub_fini,
    .device_count = stub_device_count,
    .device_info = stub_device_info,
    .context_create = stub_context_create,
    .context_destroy = stub_context_destroy,
    .buffer_alloc = stub_buffer_alloc,
    .buffer_free = stub_buffer_free,
    .stream_create = stub_stream_create,
    .stream_destroy = stub_stream_destroy,
    .stream_synchronize = stub_stream_idle,
    .stream_query = stub_stream_idle,
    .stream_wait_event = stub_stream_wait,
    .event_create = stub_event_create,
    .event_destroy = stub_event_destroy,
    .event_record = stub_event_record,
    .event_synchronize = stub_event_idle,
    .event_query = stub_event_idle,
    .context_synchronize = stub_context_sync,
    /* every op slot stays NULL: dispatch must answer UNSUPPORTED */
};

FERRY_BACKEND_EXPORT const ferry_backend *STUB_ENTRY(uint32_t host_abi_major);
const ferry_backend *STUB_ENTRY(uint32_t host_abi_major) {
  (void)host_abi_major;
  return STUB_VARIANT == STUB_NULL_TABLE ? NULL : &table;
}
