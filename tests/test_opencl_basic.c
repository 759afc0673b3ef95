/* The opencl backend through the public API (PoCL here): device info against
 * the driver's own answers, buffers of awkward sizes, copies between every
 * pair of memory spaces, fills, in-order streams with host functions,
 * cross-stream event waits, event timings, wrapped native queues, deferred
 * errors and asynchronous stream destruction. */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

#include <CL/cl.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIB (1024u * 1024u)

static const uint64_t awkward_sizes[] = {0, 1, 7, 4099, 3 * MIB + 5};
#define N_SIZES (sizeof awkward_sizes / sizeof awkward_sizes[0])

static const ferry_memory_space spaces[] = {
    FERRY_MEMORY_HOST, FERRY_MEMORY_PINNED_HOST, FERRY_MEMORY_DEVICE};
static const char *const space_names[] = {"host", "pinned", "device"};

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static unsigned char *random_bytes(size_t n, uint64_t *rng) {
  unsigned char *p = malloc(n ? n : 1);
  cr_assert_not_null(p);
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)ferry_test_rand(rng);
  return p;
}

static unsigned char *poisoned(size_t n) {
  unsigned char *p = malloc(n ? n : 1);
  cr_assert_not_null(p);
  ferry_test_poison(p, n);
  return p;
}

/* Assert got[0..n) == want[0..n), naming the first differing byte. */
static void expect_bytes(const unsigned char *got, const unsigned char *want,
                         size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(got[i], want[i],
                 "%s: byte %zu of %zu is 0x%02x, expected "
                 "0x%02x",
                 what, i, n, got[i], want[i]);
}

static void expect_value(const unsigned char *got, unsigned char value,
                         size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(got[i], value,
                 "%s: byte %zu of %zu is 0x%02x, expected "
                 "0x%02x",
                 what, i, n, got[i], value);
}

static ferry_buffer *buffer(ferry_context *ctx, ferry_memory_space space,
                            uint64_t size) {
  ferry_buffer *b = NULL;
  FERRY_OK_(ferry_buffer_create(ctx, space, size, &b));
  cr_assert_not_null(b);
  return b;
}

static ferry_stream *stream(ferry_context *ctx) {
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  return s;
}

static cl_command_queue queue_of(ferry_stream *s) {
  void *q = NULL;
  FERRY_OK_(ferry_stream_native_handle(s, &q));
  cr_assert_not_null(q);
  return (cl_command_queue)q;
}

static void *host_pointer(ferry_buffer *b) {
  ferry_buffer_info info = FERRY_BUFFER_INFO_INIT;
  FERRY_OK_(ferry_buffer_get_info(b, &info));
  return info.host_pointer;
}

/* ---- device info ----------------------------------------------------------
 */

static int opencl_backend_index(void) {
  int n = 0;
  FERRY_OK_(ferry_backend_count(&n));
  for (int i = 0; i < n; i++) {
    ferry_backend_info bi = FERRY_BACKEND_INFO_INIT;
    FERRY_OK_(ferry_backend_get_info(i, &bi));
    if (strcmp(bi.name, "opencl") == 0)
      return i;
  }
  cr_assert_fail("the loader does not list the opencl backend");
  return -1;
}

/* Devices of every platform, counted the way the plugin counts them. */
static int driver_device_count(void) {
  cl_platform_id p[16];
  cl_uint np = 0;
  cr_assert_eq(clGetPlatformIDs(16, p, &np), CL_SUCCESS);
  int total = 0;
  for (cl_uint i = 0; i < np && i < 16; i++) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(p[i],
                       CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_CPU |
                           CL_DEVICE_TYPE_ACCELERATOR,
                       0, NULL, &nd) == CL_SUCCESS)
      total += (int)nd;
  }
  return total;
}

Test(opencl, device_info_matches_the_driver) {
  ferry_context *ctx = ferry_test_context();
  ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &ci));
  ferry_stream *s = stream(ctx);
  cl_device_id dev = NULL;
  cr_assert_eq(clGetCommandQueueInfo(queue_of(s), CL_QUEUE_DEVICE, sizeof dev,
                                     &dev, NULL),
               CL_SUCCESS);
  const ferry_device_info *d = &ci.device;

  char name[256] = "";
  clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL);
  size_t len = strlen(name);
  while (len > 0 && name[len - 1] == ' ')
    name[--len] = '\0';
  cr_assert_str_eq(d->name, name);

  cl_ulong mem = 0;
  clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
  cr_assert_eq(d->total_memory, mem);

  /* The driver answers in bits; ferry reports bytes. */
  cl_uint bits = 0;
  clGetDeviceInfo(dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof bits, &bits, NULL);
  cr_assert_eq(d->base_address_align, bits / 8u, "align %u B vs %u bits",
               d->base_address_align, bits);

  cl_bool unified = CL_FALSE;
  clGetDeviceInfo(dev, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified,
                  NULL);
  cr_assert_eq(d->host_unified_memory != 0, unified != CL_FALSE);

  char cver[128] = "";
  unsigned major = 0, minor = 0;
  clGetDeviceInfo(dev, CL_DEVICE_OPENCL_C_VERSION, sizeof cver, cver, NULL);
  cr_assert_eq(sscanf(cver, "OpenCL C %u.%u", &major, &minor), 2, "%s", cver);
  cr_assert_eq(d->capability_major, major);
  cr_assert_eq(d->capability_minor, minor);
  cr_assert(major > 1 || (major == 1 && minor >= 2));

  cl_uint vendor = 0;
  clGetDeviceInfo(dev, CL_DEVICE_VENDOR_ID, sizeof vendor, &vendor, NULL);
  cr_assert_eq(d->pci_vendor_id, vendor <= 0xffffu ? vendor : 0u);

  cr_assert_eq(d->usable, 1u);
  cr_assert_str_eq(d->reason, "");
  /* "" or lowercase dddd:bb:dd.f. */
  if (d->pci_bus_id[0]) {
    unsigned dom, bus, slot, fn;
    char tail;
    cr_assert_eq(sscanf(d->pci_bus_id, "%4x:%2x:%2x.%1x%c", &dom, &bus, &slot,
                        &fn, &tail),
                 4, "bus id '%s'", d->pci_bus_id);
    for (const char *c = d->pci_bus_id; *c; c++)
      cr_assert(*c < 'A' || *c > 'F', "bus id '%s' is not lowercase",
                d->pci_bus_id);
  }

  /* The loader's view agrees. */
  ferry_backend_info bi = FERRY_BACKEND_INFO_INIT;
  FERRY_OK_(ferry_backend_get_info(opencl_backend_index(), &bi));
  cr_assert(bi.available, "%s", bi.reason);
  cr_assert_eq(bi.device_count, driver_device_count());
  ferry_device_info di = FERRY_DEVICE_INFO_INIT;
  FERRY_OK_(ferry_backend_get_device_info("opencl", ci.device_index, &di));
  cr_assert_str_eq(di.name, d->name);
  FERRY_EXPECT(ferry_backend_get_device_info("opencl", bi.device_count, &di),
               FERRY_ERR_OUT_OF_RANGE);

  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* ---- buffers and copies ---------------------------------------------------
 */

Test(opencl, buffers_of_awkward_sizes_round_trip) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = stream(ctx);
  cl_context clctx = NULL;
  cr_assert_eq(clGetCommandQueueInfo(queue_of(s), CL_QUEUE_CONTEXT,
                                     sizeof clctx, &clctx, NULL),
               CL_SUCCESS);
  uint64_t rng = 1;
  for (size_t k = 0; k < N_SIZES; k++) {
    size_t n = (size_t)awkward_sizes[k];
    ferry_buffer *a = buffer(ctx, FERRY_MEMORY_DEVICE, n);
    ferry_buffer *b = buffer(ctx, FERRY_MEMORY_DEVICE, n);
    ferry_buffer *pin = buffer(ctx, FERRY_MEMORY_PINNED_HOST, n);

    ferry_buffer_info info = FERRY_BUFFER_INFO_INIT;
    FERRY_OK_(ferry_buffer_get_info(a, &info));
    cr_assert_eq(info.size, n, "a %zu-byte buffer reports %llu", n,
                 (unsigned long long)info.size);
    cr_assert_eq(info.space, FERRY_MEMORY_DEVICE);
    cr_assert_str_eq(info.backend, "opencl");
    cr_assert_null(info.host_pointer, "device memory has no host address");
    cr_assert_null(info.device_pointer, "OpenCL has no device addresses");
    cr_assert_not_null(info.native_handle, "no cl_mem for %zu bytes", n);
    size_t cl_size = 0;
    cl_context mem_ctx = NULL;
    cl_mem mem = info.native_handle;
    cr_assert_eq(
        clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof cl_size, &cl_size, NULL),
        CL_SUCCESS);
    cr_assert_geq(cl_size, n ? n : 1);
    clGetMemObjectInfo(mem, CL_MEM_CONTEXT, sizeof mem_ctx, &mem_ctx, NULL);
    cr_assert_eq(mem_ctx, clctx, "the buffer is of another cl_context");

    unsigned char *src = random_bytes(n, &rng);
    unsigned char *out = poisoned(n), *out2 = poisoned(n);
    if (n == 0) {
      /* Empty ranges are no-ops; anything more is out of range. */
      FERRY_OK_(ferry_buffer_write_async(s, a, 0, src, 0));
      FERRY_OK_(ferry_buffer_copy_async(s, b, 0, a, 0, 0));
      FERRY_EXPECT(ferry_buffer_write_async(s, a, 0, src, 1),
                   FERRY_ERR_OUT_OF_RANGE);
    } else {
      /* host -> device -> device -> pinned -> host, and device -> host. */
      FERRY_OK_(ferry_buffer_write_async(s, a, 0, src, n));
      FERRY_OK_(ferry_buffer_copy_async(s, b, 0, a, 0, n));
      FERRY_OK_(ferry_buffer_copy_async(s, pin, 0, b, 0, n));
      FERRY_OK_(ferry_buffer_read_async(s, pin, 0, out, n));
      FERRY_OK_(ferry_buffer_read_async(s, b, 0, out2, n));
      FERRY_OK_(ferry_stream_synchronize(s));
      expect_bytes(out, src, n, "device round trip through pinned");
      expect_bytes(out2, src, n, "device round trip");
      expect_bytes(host_pointer(pin), src, n, "pinned host pointer");
    }
    if (n >= 7) {
      /* Odd offsets: bytes [1, 1+m) of b get src[0, m) through a at 3. */
      size_t m = n - 5;
      ferry_test_poison(out, n);
      FERRY_OK_(ferry_buffer_write_async(s, a, 3, src, m));
      FERRY_OK_(ferry_buffer_copy_async(s, b, 1, a, 3, m));
      FERRY_OK_(ferry_buffer_read_async(s, b, 0, out, n));
      FERRY_OK_(ferry_stream_synchronize(s));
      cr_assert_eq(out[0], src[0], "byte before the copied range changed");
      expect_bytes(out + 1, src, m, "offset copy");
      expect_bytes(out + 1 + m, src + 1 + m, n - 1 - m, "bytes after it");
    }
    free(src);
    free(out);
    free(out2);
    ferry_buffer_destroy(a);
    ferry_buffer_destroy(b);
    ferry_buffer_destroy(pin);
  }
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

Test(opencl, caller_memory_is_wrapped_in_place_and_limits_are_reported) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = stream(ctx);
  cl_device_id dev = NULL;
  clGetCommandQueueInfo(queue_of(s), CL_QUEUE_DEVICE, sizeof dev, &dev, NULL);
  ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &ci));
  size_t align = ci.device.base_address_align;
  cr_assert_geq(align, 1u);

  /* Aligned caller memory is used in place: what the device writes is at
   * the caller's address, and what the caller writes reaches the device. */
  enum { N = 4099 };
  unsigned char *mem = NULL;
  cr_assert_eq(
      posix_memalign((void **)&mem, align < 4096 ? 4096 : align, N + 4096), 0);
  ferry_buffer *w = NULL, *dev_buf = buffer(ctx, FERRY_MEMORY_DEVICE, N);
  FERRY_OK_(ferry_buffer_wrap_host(ctx, mem, N, &w));
  ferry_buffer_info info = FERRY_BUFFER_INFO_INIT;
  FERRY_OK_(ferry_buffer_get_info(w, &info));
  cr_assert_eq(info.host_pointer, (void *)mem,
               "the memory was not used in "
               "place");
  cr_assert_eq(info.space, FERRY_MEMORY_PINNED_HOST);
  memset(mem, 0x66, N);
  FERRY_OK_(ferry_buffer_copy_async(s, dev_buf, 0, w, 0, N));
  FERRY_OK_(ferry_buffer_fill_async(s, w, 10, 0x99, 20));
  FERRY_OK_(ferry_stream_synchronize(s));
  expect_value(mem, 0x66, 10, "wrapped memory before the fill");
  expect_value(mem + 10, 0x99, 20, "wrapped memory filled");
  expect_value(mem + 30, 0x66, N - 30, "wrapped memory after the fill");
  unsigned char *out = poisoned(N);
  FERRY_OK_(ferry_buffer_read_async(s, dev_buf, 0, out, N));
  FERRY_OK_(ferry_stream_synchronize(s));
  expect_value(out, 0x66, N, "device copy of the caller's memory");
  ferry_buffer_destroy(w);
  expect_value(mem + 30, 0x66, N - 30, "memory after unwrapping");

  /* CL_MEM_USE_HOST_PTR needs the device's base alignment. */
  if (align > 1) {
    ferry_buffer *bad = NULL;
    FERRY_EXPECT(ferry_buffer_wrap_host(ctx, mem + 1, N, &bad),
                 FERRY_ERR_INVALID_ARGUMENT);
    FERRY_EXPECT_MESSAGE("CL_DEVICE_MEM_BASE_ADDR_ALIGN");
    cr_assert_null(bad);
  }

  /* One allocation larger than the device allows fails before trying, and
   * says which limit. */
  cl_ulong max_alloc = 0;
  clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc,
                  &max_alloc, NULL);
  cr_assert_gt(max_alloc, 0u);
  ferry_buffer *huge = NULL;
  FERRY_EXPECT(
      ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, max_alloc + 1, &huge),
      FERRY_ERR_OUT_OF_DEVICE_MEMORY);
  FERRY_EXPECT_MESSAGE("CL_DEVICE_MAX_MEM_ALLOC_SIZE");
  cr_assert_null(huge);

  free(out);
  free(mem);
  ferry_buffer_destroy(dev_buf);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

Test(opencl, copies_between_every_pair_of_memory_spaces) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = stream(ctx);
  uint64_t rng = 2;
  const size_t sizes[] = {1, 4099, 3 * MIB + 5};
  for (size_t z = 0; z < 3; z++) {
    size_t n = sizes[z];
    /* Copy m bytes from src+so to dst+do, the rest of dst keeps a fill. */
    size_t so = n > 1 ? 2 : 0, dof = n > 1 ? 5 : 0;
    size_t m = n > 1 ? n - 9 : 1;
    unsigned char *pattern = random_bytes(n, &rng);
    unsigned char *out = poisoned(n);
    for (int di = 0; di < 3; di++) {
      for (int si = 0; si < 3; si++) {
        char what[96];
        snprintf(what, sizeof what, "%s <- %s, %zu bytes", space_names[di],
                 space_names[si], m);
        ferry_buffer *src = buffer(ctx, spaces[si], n);
        ferry_buffer *dst = buffer(ctx, spaces[di], n);
        ferry_test_poison(out, n);
        FERRY_OK_(ferry_buffer_write_async(s, src, 0, pattern, n));
        FERRY_OK_(ferry_buffer_fill_async(s, dst, 0, 0x3C, n));
        FERRY_OK_(ferry_buffer_copy_async(s, dst, dof, src, so, m));
        FERRY_OK_(ferry_buffer_read_async(s, dst, 0, out, n));
        FERRY_OK_(ferry_stream_synchronize(s));
        expect_value(out, 0x3C, dof, what);
        expect_bytes(out + dof, pattern + so, m, what);
        expect_value(out + dof + m, 0x3C, n - dof - m, what);
        ferry_buffer_destroy(src);
        ferry_buffer_destroy(dst);
      }
    }
    free(pattern);
    free(out);
  }
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

Test(opencl, fills_in_every_memory_space) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = stream(ctx);
  const int values[] = {0xEE, 255, 0, 0x7F};
  for (int si = 0; si < 3; si++) {
    for (size_t k = 1; k < N_SIZES; k++) {
      size_t n = (size_t)awkward_sizes[k];
      int v = values[k % 4];
      ferry_buffer *b = buffer(ctx, spaces[si], n);
      unsigned char *out = poisoned(n);
      /* The whole buffer, then a range at an odd offset, then the last
       * byte. */
      size_t off = n / 3, len = n - off - (n > 2 ? 1 : 0);
      FERRY_OK_(ferry_buffer_fill_async(s, b, 0, 0x11, n));
      FERRY_OK_(ferry_buffer_fill_async(s, b, off, v, len));
      FERRY_OK_(ferry_buffer_fill_async(s, b, n - 1, 0x5A, 1));
      FERRY_OK_(ferry_buffer_read_async(s, b, 0, out, n));
      FERRY_OK_(ferry_stream_synchronize(s));
      char what[64];
      snprintf(what, sizeof what, "%s fill of %zu bytes", space_names[si], n);
      expect_value(out, 0x11, off, what);
      expect_value(out + off, (unsigned char)v, len - (off + len == n ? 1 : 0),
                   what);
      cr_assert_eq(out[n - 1], 0x5A, "%s: last byte", what);
      if (off + len < n - 1)
        expect_value(out + off + len, 0x11, n - 1 - off - len, what);
      free(out);
      ferry_buffer_destroy(b);
    }
  }
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* ---- ordering -------------------------------------------------------------
 */

typedef struct stage {
  unsigned char *host; /* the caller's memory the next write reads */
  size_t n;
  unsigned char value;
  int delay_ms;
  atomic_int *clock;
  int ran_at;
} stage;

/* Writes the stage's value into host memory (after a delay, to give a wrong
 * order every chance to show) and notes when it ran. */
static ferry_status write_stage(void *arg) {
  stage *st = arg;
  if (st->delay_ms)
    sleep_ms(st->delay_ms);
  memset(st->host, st->value, st->n);
  st->ran_at = atomic_fetch_add(st->clock, 1);
  return FERRY_OK;
}

Test(opencl, streams_run_in_order_with_host_functions) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = stream(ctx);
  enum { ROUNDS = 24, N = 4099 };
  ferry_buffer *dev = buffer(ctx, FERRY_MEMORY_DEVICE, N);
  ferry_buffer *pin = buffer(ctx, FERRY_MEMORY_PINNED_HOST, N);
  unsigned char *h = malloc(N);
  unsigned char *out = poisoned((size_t)ROUNDS * N);
  cr_assert_not_null(h);
  atomic_int clock = 0;
  stage stages[ROUNDS];
  uint64_t first = 0;
  FERRY_OK_(ferry_stream_next_sequence(s, &first));
  for (int r = 0; r < ROUNDS; r++) {
    stages[r] =
        (stage){h, N, (unsigned char)(r + 1), r % 4 == 0 ? 5 : 0, &clock, -1};
    /* The host function sets h; the write must read it after, and the next
     * round's host function must not overwrite h before the write read
     * it. The pinned hop adds a host-to-host copy task in the middle. */
    FERRY_OK_(ferry_stream_enqueue_host_fn(s, write_stage, &stages[r]));
    FERRY_OK_(ferry_buffer_write_async(s, dev, 0, h, N));
    FERRY_OK_(ferry_buffer_copy_async(s, pin, 0, dev, 0, N));
    FERRY_OK_(ferry_buffer_read_async(s, pin, 0, out + (size_t)r * N, N));
  }
  uint64_t next = 0;
  FERRY_OK_(ferry_stream_next_sequence(s, &next));
  cr_assert_eq(next - first, 4u * ROUNDS, "one sequence number per op");
  FERRY_OK_(ferry_stream_synchronize(s));
  FERRY_OK_(ferry_stream_query(s));
  for (int r = 0; r < ROUNDS; r++) {
    cr_assert_eq(stages[r].ran_at, r, "host function %d ran as %d", r,
                 stages[r].ran_at);
    char what[32];
    snprintf(what, sizeof what, "round %d", r);
    expect_value(out + (size_t)r * N, (unsigned char)(r + 1), N, what);
  }
  free(h);
  free(out);
  ferry_buffer_destroy(dev);
  ferry_buffer_destroy(pin);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

Test(opencl, streams_wait_for_events_of_other_streams) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *a = stream(ctx), *b = stream(ctx);
  ferry_event *e = NULL, *never = NULL;
  FERRY_OK_(ferry_event_create(ctx, &e));
  FERRY_OK_(ferry_event_create(ctx, &never));

  /* An event never recorded is complete, has no cl_event, and waiting on it
   * is a no-op. */
  FERRY_OK_(ferry_event_query(never));
  FERRY_OK_(ferry_event_synchronize(never));
  void *native = (void *)0x1;
  FERRY_OK_(ferry_event_native_handle(never, &native));
  cr_assert_null(native);
  FERRY_OK_(ferry_stream_wait_event(b, never));

  enum { N = 4099 };
  ferry_buffer *dev = buffer(ctx, FERRY_MEMORY_DEVICE, N);
  unsigned char *h = poisoned(N), *out = poisoned(N);
  atomic_int clock = 0;
  for (int round = 0; round < 3; round++) {
    unsigned char v = (unsigned char)(0x40 + round);
    stage st = {h, N, v, 150, &clock, -1};
    ferry_test_poison(out, N);
    /* a: slowly produce the data and record; b: wait, then consume. */
    FERRY_OK_(ferry_stream_enqueue_host_fn(a, write_stage, &st));
    FERRY_OK_(ferry_buffer_write_async(a, dev, 0, h, N));
    FERRY_OK_(ferry_event_record(e, a));
    FERRY_OK_(ferry_stream_wait_event(b, e));
    FERRY_OK_(ferry_buffer_read_async(b, dev, 0, out, N));
    /* The host function is still sleeping. */
    FERRY_EXPECT(ferry_event_query(e), FERRY_ERR_NOT_READY);
    FERRY_EXPECT(ferry_stream_query(a), FERRY_ERR_NOT_READY);
    FERRY_EXPECT(ferry_stream_query(b), FERRY_ERR_NOT_READY);
    FERRY_OK_(ferry_stream_synchronize(b));
    expect_value(out, v, N, "read after the other stream's event");
    FERRY_OK_(ferry_event_query(e));
    FERRY_OK_(ferry_event_synchronize(e));
    FERRY_OK_(ferry_stream_synchronize(a));
    FERRY_OK_(ferry_stream_query(a));
  }
  free(h);
  free(out);
  ferry_buffer_destroy(dev);
  ferry_event_destroy(e);
  ferry_event_destroy(never);
  ferry_stream_destroy(a);
  ferry_stream_destroy(b);
  ferry_context_destroy(ctx);
}

static ferry_status sleep_60ms(void *arg) {
  (void)arg;
  sleep_ms(60);
  return FERRY_OK;
}

Test(opencl, events_time_work_and_expose_cl_events) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = stream(ctx);
  ferry_event *start = NULL, *end = NULL, *unrecorded = NULL;
  FERRY_OK_(ferry_event_create(ctx, &start));
  FERRY_OK_(ferry_event_create(ctx, &end));
  FERRY_OK_(ferry_event_create(ctx, &unrecorded));
  double ms = -1.0;
  FERRY_EXPECT(ferry_event_elapsed_ms(start, unrecorded, &ms),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("never recorded");

  for (int round = 0; round < 2; round++) {
    FERRY_OK_(ferry_event_record(start, s));
    FERRY_OK_(ferry_stream_enqueue_host_fn(s, sleep_60ms, NULL));
    FERRY_OK_(ferry_event_record(end, s));
    FERRY_EXPECT(ferry_event_elapsed_ms(start, end, &ms), FERRY_ERR_NOT_READY);
    FERRY_OK_(ferry_event_synchronize(end));
    ms = -1.0;
    FERRY_OK_(ferry_event_elapsed_ms(start, end, &ms));
    cr_assert(ms >= 50.0 && ms < 5000.0, "60 ms of host work timed as %g ms",
              ms);
    double back = 0.0;
    FERRY_OK_(ferry_event_elapsed_ms(end, start, &back));
    cr_assert_float_eq(back, -ms, 1e-6);
  }

  /* The native handle is the last record's marker, on the stream's queue. */
  void *native = NULL;
  FERRY_OK_(ferry_event_native_handle(end, &native));
  cr_assert_not_null(native);
  cl_event ev = native;
  cl_int status = -1;
  cl_command_queue q = NULL;
  cr_assert_eq(clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS,
                              sizeof status, &status, NULL),
               CL_SUCCESS);
  cr_assert_eq(status, CL_COMPLETE);
  clGetEventInfo(ev, CL_EVENT_COMMAND_QUEUE, sizeof q, &q, NULL);
  cr_assert_eq(q, queue_of(s));
  FERRY_OK_(ferry_event_record(end, s));
  void *again = NULL;
  FERRY_OK_(ferry_event_native_handle(end, &again));
  cr_assert_neq(again, native, "a new record gives a new marker");

  ferry_event_destroy(start);
  ferry_event_destroy(end);
  ferry_event_destroy(unrecorded);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* ---- native queues --------------------------------------------------------
 */

Test(opencl, wraps_a_native_queue_and_leaves_it_to_its_owner) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *own = stream(ctx);
  cl_context clctx = NULL;
  cl_device_id dev = NULL;
  clGetCommandQueueInfo(queue_of(own), CL_QUEUE_CONTEXT, sizeof clctx, &clctx,
                        NULL);
  clGetCommandQueueInfo(queue_of(own), CL_QUEUE_DEVICE, sizeof dev, &dev, NULL);
  cl_int err = CL_SUCCESS;
  /* No profiling: a framework's queue need not have it. */
  cl_command_queue q = clCreateCommandQueue(clctx, dev, 0, &err);
  cr_assert_eq(err, CL_SUCCESS);

  ferry_stream *w = NULL;
  FERRY_OK_(ferry_stream_wrap_native(ctx, q, &w));
  void *back = NULL;
  FERRY_OK_(ferry_stream_native_handle(w, &back));
  cr_assert_eq(back, (void *)q);

  /* ferry's ops and the owner's own commands share the queue's order. */
  enum { N = 4099 };
  ferry_buffer *dev_buf = buffer(ctx, FERRY_MEMORY_DEVICE, N);
  ferry_buffer_info info = FERRY_BUFFER_INFO_INIT;
  FERRY_OK_(ferry_buffer_get_info(dev_buf, &info));
  unsigned char *mine = malloc(N), *out = poisoned(N);
  cr_assert_not_null(mine);
  memset(mine, 0x77, N);
  FERRY_OK_(ferry_buffer_fill_async(w, dev_buf, 0, 0x11, N));
  cr_assert_eq(clEnqueueWriteBuffer(q, (cl_mem)info.native_handle, CL_FALSE,
                                    100, 50, mine, 0, NULL, NULL),
               CL_SUCCESS);
  FERRY_OK_(ferry_buffer_read_async(w, dev_buf, 0, out, N));
  FERRY_OK_(ferry_stream_synchronize(w));
  expect_value(out, 0x11, 100, "before the owner's write");
  expect_value(out + 100, 0x77, 50, "the owner's write");
  expect_value(out + 150, 0x11, N - 150, "after the owner's write");

  /* No timings without CL_QUEUE_PROFILING_ENABLE, and the message says so. */
  ferry_event *e1 = NULL, *e2 = NULL;
  FERRY_OK_(ferry_event_create(ctx, &e1));
  FERRY_OK_(ferry_event_create(ctx, &e2));
  FERRY_OK_(ferry_event_record(e1, w));
  FERRY_OK_(ferry_event_record(e2, w));
  FERRY_OK_(ferry_event_synchronize(e2));
  double ms = 0;
  FERRY_EXPECT(ferry_event_elapsed_ms(e1, e2, &ms), FERRY_ERR_UNSUPPORTED);
  FERRY_EXPECT_MESSAGE("CL_QUEUE_PROFILING_ENABLE");
  ferry_event_destroy(e1);
  ferry_event_destroy(e2);

  /* Destroying the ferry stream leaves the queue to its owner: ferry drops
   * exactly its own reference. (PoCL lets a buffer hold the event of its
   * last write, and that event the queue, until the buffer goes and a
   * little after: wait for that.) */
  ferry_stream_destroy(w);
  FERRY_OK_(ferry_context_synchronize(ctx));
  ferry_buffer_destroy(dev_buf);
  cl_uint refs = 0;
  for (int i = 0; i < 200; i++) {
    cr_assert_eq(clGetCommandQueueInfo(q, CL_QUEUE_REFERENCE_COUNT, sizeof refs,
                                       &refs, NULL),
                 CL_SUCCESS, "ferry released the owner's queue");
    if (refs == 1)
      break;
    sleep_ms(10);
  }
  cr_assert_eq(refs, 1u, "ferry kept a reference to the queue: %u", refs);
  cl_event m = NULL;
  cr_assert_eq(clEnqueueMarkerWithWaitList(q, 0, NULL, &m), CL_SUCCESS);
  cr_assert_eq(clWaitForEvents(1, &m), CL_SUCCESS,
               "the owner's queue no longer works");
  clReleaseEvent(m);

  /* Queues ferry cannot use are refused with the reason. */
  cl_context other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  cr_assert_eq(err, CL_SUCCESS);
  cl_command_queue foreign = clCreateCommandQueue(other, dev, 0, &err);
  cr_assert_eq(err, CL_SUCCESS);
  ferry_stream *bad = NULL;
  FERRY_EXPECT(ferry_stream_wrap_native(ctx, foreign, &bad),
               FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("cl_context");
  cr_assert_null(bad);
  cl_command_queue ooo = clCreateCommandQueue(
      clctx, dev, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
  if (err == CL_SUCCESS) {
    FERRY_EXPECT(ferry_stream_wrap_native(ctx, ooo, &bad),
                 FERRY_ERR_INVALID_ARGUMENT);
    FERRY_EXPECT_MESSAGE("out-of-order");
    clReleaseCommandQueue(ooo);
  }
  clReleaseCommandQueue(foreign);
  clReleaseContext(other);

  free(mine);
  free(out);
  ferry_stream_destroy(own);
  ferry_context_destroy(ctx);
  clReleaseCommandQueue(q);
}

/* ---- deferred errors ------------------------------------------------------
 */

typedef struct failing {
  ferry_status status;
  atomic_int calls;
} failing;

static ferry_status fail_with(void *arg) {
  failing *f = arg;
  atomic_fetch_add(&f->calls, 1);
  return f->status;
}

static void expect_deferred(ferry_status got, ferry_status want, const char *op,
                            uint64_t seq) {
  cr_assert_eq(got, want, "got %s (%s), expected %s", ferry_status_string(got),
               ferry_last_error(), ferry_status_string(want));
  ferry_error_info ei = FERRY_ERROR_INFO_INIT;
  FERRY_OK_(ferry_last_error_info(&ei));
  cr_assert_eq(ei.status, want);
  cr_assert_str_eq(ei.op, op);
  cr_assert_eq(ei.sequence, seq, "error of op %llu, expected %llu",
               (unsigned long long)ei.sequence, (unsigned long long)seq);
}

Test(opencl, host_function_errors_are_deferred_to_synchronize) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = stream(ctx);
  enum { N = 4099 };
  ferry_buffer *dev = buffer(ctx, FERRY_MEMORY_DEVICE, N);
  unsigned char *src = poisoned(N), *out = poisoned(N);
  memset(src, 0x21, N);
  failing f1 = {FERRY_ERR_INVALID_ARGUMENT, 0}, f2 = {FERRY_ERR_IO, 0};

  uint64_t seq = 0;
  FERRY_OK_(ferry_stream_next_sequence(s, &seq));
  FERRY_OK_(ferry_buffer_fill_async(s, dev, 0, 0, N));        /* seq */
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_with, &f1)); /* seq+1 */
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_with, &f2)); /* seq+2 */
  FERRY_OK_(ferry_buffer_write_async(s, dev, 0, src, N));     /* seq+3 */
  FERRY_OK_(ferry_buffer_read_async(s, dev, 0, out, N));      /* seq+4 */
  /* The first error since the last synchronize wins; the work after the
   * failing host functions still ran. */
  expect_deferred(ferry_stream_synchronize(s), FERRY_ERR_INVALID_ARGUMENT,
                  "host_fn", seq + 1);
  cr_assert_eq(atomic_load(&f1.calls), 1);
  cr_assert_eq(atomic_load(&f2.calls), 1);
  expect_value(out, 0x21, N, "the ops after the failure");
  /* Collected once. */
  FERRY_OK_(ferry_stream_synchronize(s));
  FERRY_OK_(ferry_stream_query(s));

  /* Through an event recorded after the failure. */
  ferry_event *e = NULL;
  FERRY_OK_(ferry_event_create(ctx, &e));
  FERRY_OK_(ferry_stream_next_sequence(s, &seq));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_with, &f2));
  FERRY_OK_(ferry_event_record(e, s));
  expect_deferred(ferry_event_synchronize(e), FERRY_ERR_IO, "host_fn", seq);
  FERRY_OK_(ferry_stream_synchronize(s));

  /* A stream destroyed before collecting its error hands it to the context
   * (once no event recorded on it is left to report it). */
  ferry_event_destroy(e);
  FERRY_OK_(ferry_stream_next_sequence(s, &seq));
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, fail_with, &f1));
  ferry_stream_destroy(s);
  expect_deferred(ferry_context_synchronize(ctx), FERRY_ERR_INVALID_ARGUMENT,
                  "host_fn", seq);
  FERRY_OK_(ferry_context_synchronize(ctx));

  free(src);
  free(out);
  ferry_buffer_destroy(dev);
  ferry_context_destroy(ctx);
}

/* ---- lifetimes and threads ------------------------------------------------
 */

typedef struct slow_flag {
  int delay_ms;
  atomic_int done;
} slow_flag;

static ferry_status set_flag_later(void *arg) {
  slow_flag *f = arg;
  sleep_ms(f->delay_ms);
  atomic_store(&f->done, 1);
  return FERRY_OK;
}

Test(opencl, stream_destroy_returns_at_once_and_work_completes) {
  ferry_context *ctx = ferry_test_context();
  slow_flag f = {500, 0};
  ferry_stream *s = stream(ctx);
  FERRY_OK_(ferry_stream_enqueue_host_fn(s, set_flag_later, &f));
  double t0 = now_ms();
  ferry_stream_destroy(s);
  double took = now_ms() - t0;
  cr_assert_lt(took, 250.0, "stream_destroy waited %g ms for queued work",
               took);
  cr_assert_eq(atomic_load(&f.done), 0);
  FERRY_OK_(ferry_context_synchronize(ctx));
  cr_assert_eq(atomic_load(&f.done), 1, "queued work was dropped");

  /* A stream never destroyed, with work still queued, goes with its
   * context, after the work. */
  slow_flag g = {100, 0};
  ferry_stream *left = stream(ctx);
  FERRY_OK_(ferry_stream_enqueue_host_fn(left, set_flag_later, &g));
  ferry_context_destroy(ctx);
  cr_assert_eq(atomic_load(&g.done), 1, "context destroy dropped work");
}

typedef struct worker_arg {
  ferry_context *ctx;
  uint64_t seed;
  int failures;
} worker_arg;

static void *copy_worker(void *p) {
  worker_arg *w = p;
  ferry_stream *s = NULL;
  if (ferry_stream_create(w->ctx, &s) != FERRY_OK) {
    w->failures = -1;
    return NULL;
  }
  enum { N = 4099 };
  ferry_buffer *a = NULL, *b = NULL;
  ferry_buffer_create(w->ctx, FERRY_MEMORY_DEVICE, N, &a);
  ferry_buffer_create(w->ctx, FERRY_MEMORY_DEVICE, N, &b);
  unsigned char src[N], out[N];
  for (int round = 0; round < 40 && a && b; round++) {
    for (int i = 0; i < N; i++)
      src[i] = (unsigned char)ferry_test_rand(&w->seed);
    memset(out, 0xA5, N);
    ferry_buffer_write_async(s, a, 0, src, N);
    ferry_buffer_copy_async(s, b, 0, a, 0, N);
    ferry_buffer_read_async(s, b, 0, out, N);
    if (ferry_stream_synchronize(s) != FERRY_OK || memcmp(src, out, N) != 0)
      w->failures++;
  }
  if (!a || !b)
    w->failures = -2;
  ferry_buffer_destroy(a);
  ferry_buffer_destroy(b);
  ferry_stream_destroy(s);
  return NULL;
}

Test(opencl, threads_use_their_own_streams_of_one_context) {
  ferry_context *ctx = ferry_test_context();
  enum { THREADS = 4 };
  pthread_t t[THREADS];
  worker_arg args[THREADS];
  for (int i = 0; i < THREADS; i++) {
    args[i] = (worker_arg){ctx, (uint64_t)i + 100, 0};
    cr_assert_eq(pthread_create(&t[i], NULL, copy_worker, &args[i]), 0);
  }
  /* Meanwhile this thread synchronizes the whole context. */
  for (int i = 0; i < 10; i++)
    FERRY_OK_(ferry_context_synchronize(ctx));
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    cr_assert_eq(args[i].failures, 0, "thread %d: %d failed rounds", i,
                 args[i].failures);
  }
  FERRY_OK_(ferry_context_synchronize(ctx));
  ferry_context_destroy(ctx);
}
