/* Bad input on every public function: NULL handles and pointers, wrong
 * struct_size, unknown backend names, device index out of range, zero and
 * huge sizes, mixed contexts, and use after fork. Each case checks the status
 * and that the message names the argument. Runs on every backend. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

Test(bad_input, null_handles_and_pointers) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  ferry_event *e = NULL;
  ferry_buffer *b = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  FERRY_OK_(ferry_event_create(ctx, &e));
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, 16, &b));
  char host[16];

  FERRY_EXPECT(ferry_context_create(NULL, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("out");
  FERRY_EXPECT(ferry_context_get_info(NULL, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_context_synchronize(NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_buffer_create(NULL, FERRY_MEMORY_HOST, 1, &b),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("ctx");
  FERRY_EXPECT(ferry_buffer_create(ctx, FERRY_MEMORY_HOST, 1, NULL),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("out");
  FERRY_EXPECT(ferry_buffer_get_info(NULL, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_buffer_copy_async(NULL, b, 0, b, 0, 1),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("stream");
  FERRY_EXPECT(ferry_buffer_copy_async(s, NULL, 0, b, 0, 1),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("dst");
  FERRY_EXPECT(ferry_buffer_copy_async(s, b, 0, NULL, 0, 1),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("src");
  FERRY_EXPECT(ferry_buffer_write_async(s, b, 0, NULL, 1),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("src");
  FERRY_EXPECT(ferry_buffer_read_async(s, b, 0, NULL, 1),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("dst");
  FERRY_EXPECT(ferry_buffer_fill_async(s, NULL, 0, 0, 1),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_buffer_wrap_host(ctx, NULL, 16, &b),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("ptr");
  FERRY_EXPECT(ferry_stream_create(NULL, &s), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_stream_create(ctx, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_stream_wrap_native(ctx, NULL, &s), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("native");
  FERRY_EXPECT(ferry_stream_synchronize(NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_stream_query(NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_stream_wait_event(s, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("event");
  FERRY_EXPECT(ferry_stream_wait_event(NULL, e), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_stream_next_sequence(s, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_stream_native_handle(NULL, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_stream_enqueue_host_fn(s, NULL, NULL),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("fn");
  FERRY_EXPECT(ferry_event_create(NULL, &e), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_event_record(NULL, s), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_event_record(e, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_event_synchronize(NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_event_query(NULL), FERRY_ERR_NULL_POINTER);
  double ms;
  FERRY_EXPECT(ferry_event_elapsed_ms(e, NULL, &ms), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_event_elapsed_ms(e, e, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_event_native_handle(e, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_tensor_make(NULL, 0, FERRY_DTYPE_F32, 0, NULL, NULL),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_tensor_to_dlpack(ctx, NULL, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_buffer_from_dlpack(ctx, NULL, &b, NULL),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_buffer_from_dlpack_legacy(ctx, NULL, &b, NULL),
               FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_backend_count(NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_backend_get_info(0, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT(ferry_backend_get_device_info(NULL, 0, NULL),
               FERRY_ERR_NULL_POINTER);
  cr_expect_eq(ferry_last_error_info(NULL), FERRY_ERR_NULL_POINTER);
  (void)host;

  /* Destroy accepts NULL. */
  ferry_context_destroy(NULL);
  ferry_buffer_destroy(NULL);
  ferry_stream_destroy(NULL);
  ferry_event_destroy(NULL);

  ferry_buffer_destroy(b);
  ferry_event_destroy(e);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

Test(bad_input, wrong_struct_sizes) {
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = ferry_test_backend();
  ferry_context *ctx = NULL;
  o.struct_size = 3;
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_STRUCT_SIZE);
  FERRY_EXPECT_MESSAGE("struct_size");
  o.struct_size = (size_t)1 << 40;
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_STRUCT_SIZE);
  ctx = ferry_test_context();
  ferry_context_info ci = FERRY_CONTEXT_INFO_INIT;
  ci.struct_size = 1;
  FERRY_EXPECT(ferry_context_get_info(ctx, &ci), FERRY_ERR_STRUCT_SIZE);
  ferry_buffer *b = NULL;
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_HOST, 8, &b));
  ferry_buffer_info bi = FERRY_BUFFER_INFO_INIT;
  bi.struct_size = 0;
  FERRY_EXPECT(ferry_buffer_get_info(b, &bi), FERRY_ERR_STRUCT_SIZE);
  ferry_backend_info be = FERRY_BACKEND_INFO_INIT;
  be.struct_size = 2;
  FERRY_EXPECT(ferry_backend_get_info(0, &be), FERRY_ERR_STRUCT_SIZE);
  ferry_device_info di = FERRY_DEVICE_INFO_INIT;
  di.struct_size = 2;
  FERRY_EXPECT(ferry_backend_get_device_info(ferry_test_backend(), 0, &di),
               FERRY_ERR_STRUCT_SIZE);
  ferry_error_info ei = FERRY_ERROR_INFO_INIT;
  ei.struct_size = 1;
  cr_expect_eq(ferry_last_error_info(&ei), FERRY_ERR_STRUCT_SIZE);
  ferry_buffer_destroy(b);
  ferry_context_destroy(ctx);
}

Test(bad_input, names_indices_and_option_values) {
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  ferry_context *ctx = NULL;
  o.backend = "vulkan";
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_NO_BACKEND);
  FERRY_EXPECT_MESSAGE("vulkan");
  o.backend = ",,";
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_INVALID_ARGUMENT);
  o.backend = ferry_test_backend();
  o.device_index = 1 << 20;
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT_MESSAGE("device");
  o.device_index = -5;
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_OUT_OF_RANGE);
  o.device_index = -1;
  o.num_threads = -1;
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT_MESSAGE("num_threads");
  cr_expect_null(ctx);
  int n = 0;
  FERRY_OK_(ferry_backend_count(&n));
  ferry_backend_info bi = FERRY_BACKEND_INFO_INIT;
  FERRY_EXPECT(ferry_backend_get_info(n, &bi), FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT(ferry_backend_get_info(-1, &bi), FERRY_ERR_OUT_OF_RANGE);
  ferry_device_info di = FERRY_DEVICE_INFO_INIT;
  FERRY_EXPECT(
      ferry_backend_get_device_info(ferry_test_backend(), 1 << 20, &di),
      FERRY_ERR_OUT_OF_RANGE);
  cr_expect_str_eq(ferry_status_string((ferry_status)12345),
                   "FERRY_ERR_UNKNOWN");
  cr_expect_str_eq(ferry_status_string(FERRY_ERR_OUT_OF_RANGE),
                   "FERRY_ERR_OUT_OF_RANGE");
  cr_expect_eq(ferry_get_api_version(), (unsigned)FERRY_API_VERSION);
}

Test(bad_input, sizes_ranges_and_spaces) {
  ferry_context *ctx = ferry_test_context();
  ferry_buffer *b = NULL, *empty = NULL;
  FERRY_EXPECT(ferry_buffer_create(ctx, (ferry_memory_space)42, 8, &b),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("space");
  FERRY_EXPECT(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, UINT64_MAX, &b),
               FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT_MESSAGE("size");
  cr_expect_null(b);
  ferry_memory_space spaces[] = {FERRY_MEMORY_HOST, FERRY_MEMORY_PINNED_HOST,
                                 FERRY_MEMORY_DEVICE};
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  for (int i = 0; i < 3; i++) {
    FERRY_OK_(ferry_buffer_create(ctx, spaces[i], 0, &empty));
    FERRY_OK_(ferry_buffer_create(ctx, spaces[i], 100, &b));
    ferry_buffer_info info = FERRY_BUFFER_INFO_INIT;
    FERRY_OK_(ferry_buffer_get_info(empty, &info));
    cr_expect_eq(info.size, 0u);
    cr_expect_eq(info.space, spaces[i]);
    char host[128];
    /* Ranges past the end, and offset + size overflowing. */
    FERRY_EXPECT(ferry_buffer_write_async(s, b, 1, host, 100),
                 FERRY_ERR_OUT_OF_RANGE);
    FERRY_EXPECT_MESSAGE("dst");
    FERRY_EXPECT(ferry_buffer_read_async(s, b, UINT64_MAX, host, 2),
                 FERRY_ERR_OUT_OF_RANGE);
    FERRY_EXPECT(ferry_buffer_copy_async(s, b, 0, empty, 0, 1),
                 FERRY_ERR_OUT_OF_RANGE);
    FERRY_EXPECT_MESSAGE("src");
    FERRY_EXPECT(ferry_buffer_fill_async(s, b, 0, 256, 1),
                 FERRY_ERR_OUT_OF_RANGE);
    FERRY_EXPECT_MESSAGE("value");
    /* Zero-size work is a valid no-op, even on an empty buffer. */
    FERRY_OK_(ferry_buffer_copy_async(s, empty, 0, empty, 0, 0));
    FERRY_OK_(ferry_buffer_write_async(s, empty, 0, host, 0));
    FERRY_OK_(ferry_buffer_fill_async(s, b, 100, 0, 0));
    FERRY_OK_(ferry_stream_synchronize(s));
    ferry_buffer_destroy(empty);
    ferry_buffer_destroy(b);
  }
  /* Tensors: bad dtype, ndim, shape, strides, extent past the buffer. */
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_HOST, 64, &b));
  ferry_tensor t;
  int64_t shape[2] = {4, 4};
  FERRY_OK_(ferry_tensor_make(b, 0, FERRY_DTYPE_F32, 2, shape, &t));
  cr_expect_eq(t.strides[0], 4);
  cr_expect_eq(t.strides[1], 1);
  FERRY_EXPECT(ferry_tensor_make(b, 4, FERRY_DTYPE_F32, 2, shape, &t),
               FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT(ferry_tensor_make(b, 0, (ferry_dtype)99, 2, shape, &t),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("dtype");
  FERRY_EXPECT(ferry_tensor_make(b, 0, FERRY_DTYPE_F32, 9, shape, &t),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("ndim");
  int64_t neg[2] = {4, -1};
  FERRY_EXPECT(ferry_tensor_make(b, 0, FERRY_DTYPE_F32, 2, neg, &t),
               FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("shape[1]");
  int64_t zero[2] = {0, 1000000};
  FERRY_OK_(ferry_tensor_make(b, 64, FERRY_DTYPE_F32, 2, zero, &t));
  ferry_buffer_destroy(b);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

Test(bad_input, objects_of_another_context_are_rejected) {
  ferry_context *a = ferry_test_context(), *b = ferry_test_context();
  ferry_stream *sa = NULL;
  ferry_event *eb = NULL;
  ferry_buffer *ba = NULL, *bb = NULL;
  FERRY_OK_(ferry_stream_create(a, &sa));
  FERRY_OK_(ferry_event_create(b, &eb));
  FERRY_OK_(ferry_buffer_create(a, FERRY_MEMORY_DEVICE, 8, &ba));
  FERRY_OK_(ferry_buffer_create(b, FERRY_MEMORY_DEVICE, 8, &bb));
  FERRY_EXPECT(ferry_buffer_copy_async(sa, ba, 0, bb, 0, 8),
               FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("src");
  FERRY_EXPECT(ferry_buffer_copy_async(sa, bb, 0, ba, 0, 8),
               FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("dst");
  FERRY_EXPECT(ferry_event_record(eb, sa), FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("stream");
  FERRY_EXPECT(ferry_stream_wait_event(sa, eb), FERRY_ERR_MISMATCH);
  FERRY_EXPECT_MESSAGE("event");
  ferry_tensor t;
  FERRY_OK_(ferry_tensor_make(bb, 0, FERRY_DTYPE_U8, 0, NULL, &t));
  struct DLManagedTensorVersioned *m = NULL;
  FERRY_EXPECT(ferry_tensor_to_dlpack(a, &t, &m), FERRY_ERR_MISMATCH);
  cr_expect_null(m);
  ferry_buffer_destroy(ba);
  ferry_buffer_destroy(bb);
  ferry_event_destroy(eb);
  ferry_stream_destroy(sa);
  ferry_context_destroy(a);
  ferry_context_destroy(b);
}

Test(bad_input, calls_in_a_forked_child_fail_cleanly) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  ferry_buffer *b = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_HOST, 64, &b));
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0) {
    int bad = 0;
    ferry_context *c2 = NULL;
    bad |= ferry_context_create(NULL, &c2) != FERRY_ERR_FORKED;
    bad |= strstr(ferry_last_error(), "fork") == NULL;
    bad |= ferry_buffer_fill_async(s, b, 0, 1, 64) != FERRY_ERR_FORKED;
    bad |= ferry_stream_synchronize(s) != FERRY_ERR_FORKED;
    int n;
    bad |= ferry_backend_count(&n) != FERRY_ERR_FORKED;
    /* Destroy frees host memory only, never touches the parent's threads or
     * driver, and does not hang. */
    ferry_buffer_destroy(b);
    ferry_stream_destroy(s);
    ferry_context_destroy(ctx);
    _exit(bad ? 1 : 0);
  }
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: status %d",
            status);
  /* The parent's objects still work. */
  FERRY_OK_(ferry_buffer_fill_async(s, b, 0, 7, 64));
  FERRY_OK_(ferry_stream_synchronize(s));
  ferry_buffer_destroy(b);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}
