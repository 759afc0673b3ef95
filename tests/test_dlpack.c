/* C-level DLPack: export of ferry views (versioned) and import of versioned
 * and legacy tensors, with the ownership rules. */
#include "dlpack_abi.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static int deleted;

static void legacy_deleter(struct DLManagedTensor *self) {
  deleted++;
  free(self);
}

static void versioned_deleter(struct DLManagedTensorVersioned *self) {
  deleted++;
  free(self);
}

Test(dlpack, export_then_import_round_trip_keeps_data_and_ownership) {
  ferry_context *ctx = ferry_test_context();
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  ferry_buffer *b = NULL;
  const int64_t rows = 7, cols = 13; /* awkward sizes */
  const uint64_t off = 16;
  uint64_t bytes = off + (uint64_t)(rows * cols) * sizeof(float);
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_HOST, bytes, &b));
  float *src = malloc(bytes);
  uint64_t rng = 42;
  for (int64_t i = 0; i < rows * cols; i++)
    src[i] = (float)ferry_test_uniform(&rng);
  FERRY_OK_(ferry_buffer_write_async(s, b, off, src, bytes - off));
  FERRY_OK_(ferry_stream_synchronize(s));

  int64_t shape[2] = {rows, cols};
  ferry_tensor t;
  FERRY_OK_(ferry_tensor_make(b, off, FERRY_DTYPE_F32, 2, shape, &t));
  struct DLManagedTensorVersioned *m = NULL;
  FERRY_OK_(ferry_tensor_to_dlpack(ctx, &t, &m));
  cr_assert_not_null(m);
  cr_expect_eq(m->version.major, 1u);
  cr_expect_eq(m->dl_tensor.device.device_type, FERRY_DL_CPU);
  cr_expect_eq(m->dl_tensor.ndim, 2);
  cr_expect_eq(m->dl_tensor.dtype.code, FERRY_DL_FLOAT);
  cr_expect_eq(m->dl_tensor.dtype.bits, 32);
  cr_expect_eq(m->dl_tensor.dtype.lanes, 1);
  cr_expect_eq(m->dl_tensor.shape[0], rows);
  cr_expect_eq(m->dl_tensor.shape[1], cols);
  cr_expect_eq(m->dl_tensor.strides[0], cols);
  cr_expect_eq(m->dl_tensor.strides[1], 1);
  cr_expect_eq(m->dl_tensor.byte_offset, off);
  /* The export holds a reference: the data outlives the caller's handle. */
  ferry_buffer_destroy(b);
  const float *data =
      (const float *)((char *)m->dl_tensor.data + m->dl_tensor.byte_offset);
  cr_expect_eq(memcmp(data, src, bytes - off), 0);

  /* Import it back: ferry now owns `m` and calls its deleter at the end. */
  ferry_buffer *imported = NULL;
  ferry_tensor view;
  FERRY_OK_(ferry_buffer_from_dlpack(ctx, m, &imported, &view));
  cr_expect_eq(view.dtype, FERRY_DTYPE_F32);
  cr_expect_eq(view.shape[1], cols);
  cr_expect_eq(view.byte_offset, off);
  float *back = malloc(bytes);
  ferry_test_poison(back, bytes);
  FERRY_OK_(ferry_buffer_read_async(s, imported, off, back, bytes - off));
  FERRY_OK_(ferry_stream_synchronize(s));
  cr_expect_eq(memcmp(back, src, bytes - off), 0);
  ferry_buffer_destroy(imported); /* runs the export's deleter */
  free(src);
  free(back);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

Test(dlpack, legacy_and_versioned_imports_call_the_deleter_once) {
  ferry_context *ctx = ferry_test_context();
  static int64_t shape[1] = {5};
  static int16_t data[5] = {1, 2, 3, 4, 5};
  struct DLManagedTensor *legacy = calloc(1, sizeof *legacy);
  legacy->dl_tensor.data = data;
  legacy->dl_tensor.device.device_type = FERRY_DL_CPU;
  legacy->dl_tensor.ndim = 1;
  legacy->dl_tensor.dtype.code = FERRY_DL_INT;
  legacy->dl_tensor.dtype.bits = 16;
  legacy->dl_tensor.dtype.lanes = 1;
  legacy->dl_tensor.shape = shape;
  legacy->dl_tensor.strides = NULL; /* compact */
  legacy->deleter = legacy_deleter;
  deleted = 0;
  ferry_buffer *b = NULL;
  ferry_tensor view;
  FERRY_OK_(ferry_buffer_from_dlpack_legacy(ctx, legacy, &b, &view));
  cr_expect_eq(view.dtype, FERRY_DTYPE_I16);
  cr_expect_eq(view.strides[0], 1);
  ferry_buffer_info info = FERRY_BUFFER_INFO_INIT;
  FERRY_OK_(ferry_buffer_get_info(b, &info));
  cr_expect_eq(info.host_pointer, (void *)data);
  cr_expect_eq(info.size, sizeof data);
  cr_expect_eq(deleted, 0);
  ferry_dl_tensor described = legacy->dl_tensor;
  ferry_buffer_destroy(b); /* frees `legacy` through its deleter */
  cr_expect_eq(deleted, 1);

  struct DLManagedTensorVersioned *v = calloc(1, sizeof *v);
  v->version.major = 1;
  v->version.minor = 3; /* a newer minor is readable */
  v->dl_tensor = described;
  v->deleter = versioned_deleter;
  struct DLManagedTensorVersioned copy = *v;
  FERRY_OK_(ferry_buffer_from_dlpack(ctx, v, &b, &view));
  ferry_buffer_destroy(b);
  cr_expect_eq(deleted, 2);

  /* Rejected imports leave ownership with the caller: no deleter call. */
  struct DLManagedTensorVersioned bad = copy;
  bad.deleter = NULL;
  bad.version.major = 2;
  FERRY_EXPECT(ferry_buffer_from_dlpack(ctx, &bad, &b, &view),
               FERRY_ERR_UNSUPPORTED);
  FERRY_EXPECT_MESSAGE("major");
  bad.version.major = 1;
  bad.dl_tensor.dtype.lanes = 4;
  FERRY_EXPECT(ferry_buffer_from_dlpack(ctx, &bad, &b, &view),
               FERRY_ERR_UNSUPPORTED);
  FERRY_EXPECT_MESSAGE("lanes");
  bad.dl_tensor.dtype.lanes = 1;
  bad.dl_tensor.device.device_type = 7; /* Vulkan */
  FERRY_EXPECT(ferry_buffer_from_dlpack(ctx, &bad, &b, &view),
               FERRY_ERR_UNSUPPORTED);
  FERRY_EXPECT_MESSAGE("device type 7");
  cr_expect_eq(deleted, 2);
  ferry_context_destroy(ctx);
}
