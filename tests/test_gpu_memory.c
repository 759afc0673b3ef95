/* GPU backends (cuda, hip) through the public API: device, pinned and host
 * buffers, copies between every pair of them, fills, registration of the
 * caller's memory. Run once per GPU backend; skipped (exit 77 with the
 * runtime's reason) where the backend has no device.
 *
 * Destinations are poisoned before every op and sizes are awkward (1, odd,
 * prime, not multiples of any vector width), so that a copy of the wrong
 * length or offset shows. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sizes that are 0 mod nothing in particular; the largest stays far below
 * the 256 MB a test may touch. */
static const uint64_t sizes[] = {1, 3, 17, 255, 4097, 65537, 1048583, 13631489};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static unsigned char *random_bytes(uint64_t n, uint64_t seed) {
  unsigned char *p = malloc(n ? n : 1);
  cr_assert_not_null(p);
  uint64_t s = seed;
  for (uint64_t i = 0; i < n; i++)
    p[i] = (unsigned char)ferry_test_rand(&s);
  return p;
}

static unsigned char *poisoned(uint64_t n) {
  unsigned char *p = malloc(n ? n : 1);
  cr_assert_not_null(p);
  ferry_test_poison(p, n);
  return p;
}

static void expect_bytes(const unsigned char *got, const unsigned char *want,
                         uint64_t n, const char *what) {
  for (uint64_t i = 0; i < n; i++)
    if (got[i] != want[i])
      cr_assert_fail("%s: byte %llu of %llu is 0x%02x, expected 0x%02x", what,
                     (unsigned long long)i, (unsigned long long)n, got[i],
                     want[i]);
}

static void expect_value(const unsigned char *got, int value, uint64_t n,
                         const char *what) {
  for (uint64_t i = 0; i < n; i++)
    if (got[i] != (unsigned char)value)
      cr_assert_fail("%s: byte %llu of %llu is 0x%02x, expected 0x%02x", what,
                     (unsigned long long)i, (unsigned long long)n, got[i],
                     value);
}

static ferry_buffer *buffer(ferry_context *ctx, ferry_memory_space space,
                            uint64_t size) {
  ferry_buffer *b = NULL;
  FERRY_OK_(ferry_buffer_create(ctx, space, size, &b));
  return b;
}

static ferry_buffer_info info_of(const ferry_buffer *b) {
  ferry_buffer_info info = FERRY_BUFFER_INFO_INIT;
  FERRY_OK_(ferry_buffer_get_info(b, &info));
  return info;
}

Test(gpu_memory, device_is_described) {
  ferry_context *ctx = ferry_test_context();
  ferry_context_info info = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &info));
  const ferry_device_info *d = &info.device;
  cr_assert(d->usable, "device %s is unusable: %s", d->name, d->reason);
  cr_assert_gt(strlen(d->name), 0, "the device has no name");
  cr_assert_gt(d->total_memory, 0);
  cr_assert_eq(d->base_address_align, 256);
  uint32_t vendor = strcmp(ferry_test_backend(), "cuda") == 0 ? 0x10de : 0x1002;
  cr_assert_eq(d->pci_vendor_id, vendor);
  /* "dddd:bb:dd.f", lowercase hex. */
  cr_assert_eq(strlen(d->pci_bus_id), 12, "bus id '%s'", d->pci_bus_id);
  for (int i = 0; i < 12; i++) {
    char c = d->pci_bus_id[i];
    if (i == 4 || i == 7)
      cr_assert_eq(c, ':', "bus id '%s'", d->pci_bus_id);
    else if (i == 10)
      cr_assert_eq(c, '.', "bus id '%s'", d->pci_bus_id);
    else
      cr_assert((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'),
                "bus id '%s' is not lowercase hex", d->pci_bus_id);
  }
  /* The same through the backend query. */
  ferry_device_info again = FERRY_DEVICE_INFO_INIT;
  FERRY_OK_(ferry_backend_get_device_info(ferry_test_backend(),
                                          info.device_index, &again));
  cr_assert_str_eq(again.pci_bus_id, d->pci_bus_id);
  ferry_context_destroy(ctx);
}

Test(gpu_memory, empty_buffers_own_nothing) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  ferry_memory_space spaces[] = {FERRY_MEMORY_DEVICE, FERRY_MEMORY_PINNED_HOST,
                                 FERRY_MEMORY_HOST};
  for (size_t i = 0; i < 3; i++) {
    ferry_buffer *b = buffer(ctx, spaces[i], 0);
    ferry_buffer_info bi = info_of(b);
    cr_assert_eq(bi.size, 0);
    if (spaces[i] == FERRY_MEMORY_DEVICE)
      cr_assert_null(bi.device_pointer, "an empty device buffer allocates");
    unsigned char byte = 0xA5;
    FERRY_OK_(ferry_buffer_write_async(s, b, 0, &byte, 0));
    FERRY_OK_(ferry_buffer_read_async(s, b, 0, &byte, 0));
    FERRY_OK_(ferry_buffer_fill_async(s, b, 0, 7, 0));
    FERRY_EXPECT(ferry_buffer_write_async(s, b, 0, &byte, 1),
                 FERRY_ERR_OUT_OF_RANGE);
    FERRY_OK_(ferry_stream_synchronize(s));
    cr_assert_eq(byte, 0xA5, "a 0-byte read wrote");
    ferry_buffer_destroy(b);
  }
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* host → device → device → host, each at an offset, for every size. */
Test(gpu_memory, device_round_trip) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  for (size_t k = 0; k < NSIZES; k++) {
    uint64_t n = sizes[k], off = k % 7, off2 = (k * 5) % 11;
    unsigned char *src = random_bytes(n, 1000 + k);
    unsigned char *dst = poisoned(n);
    ferry_buffer *a = buffer(ctx, FERRY_MEMORY_DEVICE, n + off);
    ferry_buffer *b = buffer(ctx, FERRY_MEMORY_DEVICE, n + off2);
    ferry_buffer_info ai = info_of(a);
    cr_assert_not_null(ai.device_pointer);
    cr_assert_null(ai.host_pointer, "discrete device memory has no host "
                                    "address");
    cr_assert_eq((uintptr_t)ai.device_pointer % 256, 0);
    FERRY_OK_(ferry_buffer_fill_async(s, b, 0, 0x5A, n + off2));
    FERRY_OK_(ferry_buffer_write_async(s, a, off, src, n));
    FERRY_OK_(ferry_buffer_copy_async(s, b, off2, a, off, n));
    FERRY_OK_(ferry_buffer_read_async(s, b, off2, dst, n));
    FERRY_OK_(ferry_stream_synchronize(s));
    expect_bytes(dst, src, n, "device round trip");
    if (off2 > 0) {
      unsigned char head[16];
      ferry_test_poison(head, sizeof head);
      FERRY_OK_(ferry_buffer_read_async(s, b, 0, head, off2));
      FERRY_OK_(ferry_stream_synchronize(s));
      expect_value(head, 0x5A, off2, "bytes before the copy's destination");
    }
    ferry_buffer_destroy(a);
    ferry_buffer_destroy(b);
    free(src);
    free(dst);
  }
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* Copies between every pair of memory spaces, in stream order. */
Test(gpu_memory, copies_between_all_spaces) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  ferry_memory_space spaces[] = {FERRY_MEMORY_DEVICE, FERRY_MEMORY_PINNED_HOST,
                                 FERRY_MEMORY_HOST};
  const uint64_t n = 65537 + 12;
  for (size_t i = 0; i < 3; i++)
    for (size_t j = 0; j < 3; j++) {
      unsigned char *src = random_bytes(n, 10 * i + j);
      unsigned char *dst = poisoned(n);
      ferry_buffer *a = buffer(ctx, spaces[i], n);
      ferry_buffer *b = buffer(ctx, spaces[j], n);
      FERRY_OK_(ferry_buffer_write_async(s, a, 0, src, n));
      FERRY_OK_(ferry_buffer_fill_async(s, b, 0, 0xA5, n));
      FERRY_OK_(ferry_buffer_copy_async(s, b, 5, a, 3, n - 12));
      FERRY_OK_(ferry_buffer_read_async(s, b, 0, dst, n));
      FERRY_OK_(ferry_stream_synchronize(s));
      expect_value(dst, 0xA5, 5, "before the copied range");
      expect_bytes(dst + 5, src + 3, n - 12, "copied range");
      expect_value(dst + 5 + (n - 12), 0xA5, 7, "after the copied range");
      ferry_buffer_destroy(a);
      ferry_buffer_destroy(b);
      free(src);
      free(dst);
    }
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* Fills touch exactly their range, in every space. */
Test(gpu_memory, fill_exact_range) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  ferry_memory_space spaces[] = {FERRY_MEMORY_DEVICE, FERRY_MEMORY_PINNED_HOST,
                                 FERRY_MEMORY_HOST};
  for (size_t i = 0; i < 3; i++)
    for (size_t k = 0; k < NSIZES; k++) {
      uint64_t n = sizes[k], lo = k % 5, hi = (k * 3) % 7;
      ferry_buffer *b = buffer(ctx, spaces[i], lo + n + hi);
      unsigned char *got = poisoned(lo + n + hi);
      FERRY_OK_(ferry_buffer_fill_async(s, b, 0, 0x11, lo + n + hi));
      FERRY_OK_(ferry_buffer_fill_async(s, b, lo, 0xEE, n));
      FERRY_OK_(ferry_buffer_read_async(s, b, 0, got, lo + n + hi));
      FERRY_OK_(ferry_stream_synchronize(s));
      expect_value(got, 0x11, lo, "before the fill");
      expect_value(got + lo, 0xEE, n, "filled range");
      expect_value(got + lo + n, 0x11, hi, "after the fill");
      ferry_buffer_destroy(b);
      free(got);
    }
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* Pinned host memory is addressable from the host and mapped for the
 * device; what the host writes there the device copies, and back. */
Test(gpu_memory, pinned_is_mapped) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  for (size_t k = 0; k < NSIZES; k++) {
    uint64_t n = sizes[k];
    ferry_buffer *p = buffer(ctx, FERRY_MEMORY_PINNED_HOST, n);
    ferry_buffer *q = buffer(ctx, FERRY_MEMORY_PINNED_HOST, n);
    ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
    ferry_buffer_info pi = info_of(p), qi = info_of(q);
    cr_assert_not_null(pi.host_pointer);
    cr_assert_not_null(pi.device_pointer, "pinned memory is not mapped");
    unsigned char *src = random_bytes(n, 77 + k);
    memcpy(pi.host_pointer, src, n);
    ferry_test_poison(qi.host_pointer, n);
    FERRY_OK_(ferry_buffer_copy_async(s, d, 0, p, 0, n));
    FERRY_OK_(ferry_buffer_copy_async(s, q, 0, d, 0, n));
    FERRY_OK_(ferry_stream_synchronize(s));
    expect_bytes(qi.host_pointer, src, n, "pinned → device → pinned");
    ferry_buffer_destroy(p);
    ferry_buffer_destroy(q);
    ferry_buffer_destroy(d);
    free(src);
  }
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* The caller's own memory, registered in place: the device reads and writes
 * it, and it stays the caller's after the buffer is gone. */
Test(gpu_memory, wrap_caller_memory) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  for (size_t k = 0; k < NSIZES; k++) {
    uint64_t n = sizes[k];
    /* Not page aligned, on purpose: 3 bytes into an allocation. */
    unsigned char *mem = malloc(n + 3);
    cr_assert_not_null(mem);
    unsigned char *caller = mem + 3;
    unsigned char *src = random_bytes(n, 500 + k);
    ferry_buffer *w = NULL;
    FERRY_OK_(ferry_buffer_wrap_host(ctx, caller, n, &w));
    ferry_buffer_info wi = info_of(w);
    cr_assert_eq(wi.host_pointer, caller);
    cr_assert_not_null(wi.device_pointer, "wrapped memory is not mapped");
    ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
    FERRY_OK_(ferry_buffer_write_async(s, d, 0, src, n));
    ferry_test_poison(caller, n);
    FERRY_OK_(ferry_buffer_copy_async(s, w, 0, d, 0, n));
    FERRY_OK_(ferry_stream_synchronize(s));
    expect_bytes(caller, src, n, "device → wrapped caller memory");
    ferry_buffer_destroy(w);
    ferry_buffer_destroy(d);
    /* Still the caller's, and still ordinary memory. */
    memset(caller, 0x42, n);
    expect_value(caller, 0x42, n, "caller memory after unwrapping");
    free(mem);
    free(src);
  }
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* Memory already registered (here by a first wrap) is used as is, and the
 * second wrapper leaves the registration to the first. */
Test(gpu_memory, wrap_registered_memory_twice) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  const uint64_t n = 1048583;
  unsigned char *mem = malloc(n);
  cr_assert_not_null(mem);
  ferry_buffer *first = NULL, *second = NULL;
  FERRY_OK_(ferry_buffer_wrap_host(ctx, mem, n, &first));
  FERRY_OK_(ferry_buffer_wrap_host(ctx, mem, n, &second));
  ferry_buffer_info fi = info_of(first), si = info_of(second);
  cr_assert_eq(fi.device_pointer, si.device_pointer);
  /* An inner range of the registration is accepted too. */
  ferry_buffer *inner = NULL;
  FERRY_OK_(ferry_buffer_wrap_host(ctx, mem + 4099, n - 9000, &inner));
  cr_assert_eq((uintptr_t)info_of(inner).device_pointer,
               (uintptr_t)fi.device_pointer + 4099);
  ferry_buffer_destroy(inner);
  ferry_buffer_destroy(second);
  /* The first registration still holds: the device can still write. */
  ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  FERRY_OK_(ferry_buffer_fill_async(s, d, 0, 0x77, n));
  ferry_test_poison(mem, n);
  FERRY_OK_(ferry_buffer_copy_async(s, first, 0, d, 0, n));
  FERRY_OK_(ferry_stream_synchronize(s));
  expect_value(mem, 0x77, n, "through the first wrapper");
  ferry_buffer_destroy(first);
  ferry_buffer_destroy(d);
  free(mem);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* Registration in chunks (forced small here, as drivers force it beyond
 * hundreds of GiB) must give one contiguous device range. */
Test(gpu_memory, wrap_in_chunks) {
  cr_assert_eq(setenv("FERRY_GPU_REGISTER_CHUNK", "65536", 1), 0);
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  const uint64_t n = 1048583;
  unsigned char *mem = malloc(n + 5);
  cr_assert_not_null(mem);
  unsigned char *caller = mem + 5;
  unsigned char *src = random_bytes(n, 9);
  ferry_buffer *w = NULL;
  FERRY_OK_(ferry_buffer_wrap_host(ctx, caller, n, &w));
  ferry_buffer *d = buffer(ctx, FERRY_MEMORY_DEVICE, n);
  memcpy(caller, src, n);
  FERRY_OK_(ferry_buffer_copy_async(s, d, 0, w, 0, n));
  FERRY_OK_(ferry_buffer_fill_async(s, w, 0, 0, n));
  FERRY_OK_(ferry_buffer_copy_async(s, w, 0, d, 0, n));
  FERRY_OK_(ferry_stream_synchronize(s));
  expect_bytes(caller, src, n, "chunk-registered memory round trip");
  ferry_buffer_destroy(w);
  ferry_buffer_destroy(d);
  free(mem);
  free(src);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

/* More device memory than exists fails cleanly, naming the size. */
Test(gpu_memory, too_much_device_memory) {
  ferry_context *ctx = ferry_test_context();
  ferry_context_info info = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &info));
  uint64_t too_much = info.device.total_memory * 4;
  ferry_buffer *b = NULL;
  FERRY_EXPECT(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, too_much, &b),
               FERRY_ERR_OUT_OF_DEVICE_MEMORY);
  cr_assert_null(b);
  char want[64];
  snprintf(want, sizeof want, "%llu bytes", (unsigned long long)too_much);
  FERRY_EXPECT_MESSAGE(want);
  /* The context is still fine. */
  b = buffer(ctx, FERRY_MEMORY_DEVICE, 4097);
  ferry_buffer_destroy(b);
  FERRY_OK_(ferry_context_synchronize(ctx));
  ferry_context_destroy(ctx);
}
