/* DLPack import and export of buffers at the C level (BRIEF §6). */
#include "dlpack_abi.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct dl_export {
  struct DLManagedTensorVersioned managed;
  int64_t shape[FERRY_MAX_DIMS];
  int64_t strides[FERRY_MAX_DIMS];
  ferry_buffer *buffer; /* the reference the export holds, or NULL */
} dl_export;

static const struct {
  ferry_dtype dtype;
  uint8_t code, bits;
} dtype_map[] = {
    {FERRY_DTYPE_F32, FERRY_DL_FLOAT, 32},
    {FERRY_DTYPE_F16, FERRY_DL_FLOAT, 16},
    {FERRY_DTYPE_BF16, FERRY_DL_BFLOAT, 16},
    {FERRY_DTYPE_F64, FERRY_DL_FLOAT, 64},
    {FERRY_DTYPE_I32, FERRY_DL_INT, 32},
    {FERRY_DTYPE_I64, FERRY_DL_INT, 64},
    {FERRY_DTYPE_U8, FERRY_DL_UINT, 8},
    {FERRY_DTYPE_U16, FERRY_DL_UINT, 16},
    {FERRY_DTYPE_U32, FERRY_DL_UINT, 32},
    {FERRY_DTYPE_U64, FERRY_DL_UINT, 64},
    {FERRY_DTYPE_I8, FERRY_DL_INT, 8},
    {FERRY_DTYPE_I16, FERRY_DL_INT, 16},
};

static bool backend_is(const ferry_context *ctx, const char *name) {
  return strcmp(ctx->plugin->name, name) == 0;
}

static void export_deleter(struct DLManagedTensorVersioned *self) {
  dl_export *e = (dl_export *)self;
  ferry_buffer_destroy(e->buffer);
  free(e);
}

/* The DLPack device of ferry memory; FERRY_ERR_UNSUPPORTED where no
 * framework could use it (OpenCL device memory not shared with the host). */
static ferry_status export_device(const ferry_context *ctx,
                                  const ferry_buffer *b, ferry_dl_device *dev,
                                  void **data) {
  dev->device_id = 0;
  if (b == NULL) {
    dev->device_type = FERRY_DL_CPU;
    return FERRY_OK;
  }
  bool cuda = backend_is(ctx, "cuda"), hip = backend_is(ctx, "hip");
  switch (b->space) {
  case FERRY_MEMORY_HOST:
    dev->device_type = FERRY_DL_CPU;
    *data = b->host_ptr;
    return FERRY_OK;
  case FERRY_MEMORY_PINNED_HOST:
    dev->device_type = cuda  ? FERRY_DL_CUDA_HOST
                       : hip ? FERRY_DL_ROCM_HOST
                             : FERRY_DL_CPU;
    *data = b->host_ptr;
    return FERRY_OK;
  case FERRY_MEMORY_DEVICE:
    if (cuda || hip) {
      dev->device_type = cuda ? FERRY_DL_CUDA : FERRY_DL_ROCM;
      dev->device_id = ctx->device;
      *data = b->device_ptr;
      return FERRY_OK;
    }
    if (b->host_ptr != NULL) { /* cpu, or OpenCL sharing host memory */
      dev->device_type = FERRY_DL_CPU;
      *data = b->host_ptr;
      return FERRY_OK;
    }
    break;
  }
  return ferry__error(FERRY_ERR_UNSUPPORTED,
                      "ferry_tensor_to_dlpack: %s device memory has no "
                      "address a framework can import (it is not shared with "
                      "the host)",
                      ctx->plugin->name);
}

ferry_status ferry_tensor_to_dlpack(ferry_context *ctx,
                                    const ferry_tensor *tensor,
                                    struct DLManagedTensorVersioned **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(tensor);
  FERRY_CHECK_NULL(out);
  ferry_be_tensor r;
  ferry_status st = ferry__tensor_resolve(ctx, "tensor", tensor, &r);
  if (st != FERRY_OK)
    return st;
  ferry_dl_device dev;
  void *data = tensor->host;
  st = export_device(ctx, tensor->buffer, &dev, &data);
  if (st != FERRY_OK)
    return st;
  dl_export *e = calloc(1, sizeof *e);
  if (e == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "ferry_tensor_to_dlpack: out of host memory");
  ferry_dl_tensor *t = &e->managed.dl_tensor;
  t->data = data;
  t->device = dev;
  t->ndim = r.ndim;
  for (size_t i = 0; i < sizeof dtype_map / sizeof dtype_map[0]; i++)
    if (dtype_map[i].dtype == r.dtype) {
      t->dtype.code = dtype_map[i].code;
      t->dtype.bits = dtype_map[i].bits;
      t->dtype.lanes = 1;
    }
  memcpy(e->shape, r.shape, sizeof e->shape);
  memcpy(e->strides, r.strides, sizeof e->strides);
  t->shape = e->shape;
  t->strides = e->strides;
  t->byte_offset = tensor->byte_offset;
  e->managed.version.major = FERRY_DLPACK_MAJOR;
  e->managed.version.minor = FERRY_DLPACK_MINOR;
  e->managed.manager_ctx = e;
  e->managed.deleter = export_deleter;
  if (tensor->buffer) {
    e->buffer = tensor->buffer;
    ferry__buffer_retain(e->buffer);
  }
  *out = &e->managed;
  return FERRY_OK;
}

/* What an import needs of either struct kind. */
typedef struct dl_view {
  const ferry_dl_tensor *t;
  void (*release)(void *);
  void *release_arg;
} dl_view;

static ferry_status import_view(ferry_context *ctx, const dl_view *v,
                                const char *func, ferry_buffer **out_buffer,
                                ferry_tensor *out_tensor) {
  const ferry_dl_tensor *t = v->t;
  ferry_tensor view;
  memset(&view, 0, sizeof view);
  for (size_t i = 0; i < sizeof dtype_map / sizeof dtype_map[0]; i++)
    if (dtype_map[i].code == t->dtype.code &&
        dtype_map[i].bits == t->dtype.bits)
      view.dtype = dtype_map[i].dtype;
  if (view.dtype == FERRY_DTYPE_INVALID || t->dtype.lanes != 1)
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "%s: dtype (code %u, bits %u, lanes %u) has no ferry "
                        "dtype",
                        func, t->dtype.code, t->dtype.bits, t->dtype.lanes);
  if (t->ndim < 0 || t->ndim > FERRY_MAX_DIMS || (t->ndim > 0 && !t->shape))
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: ndim %d (ferry takes 0..%d, with a shape)", func,
                        t->ndim, FERRY_MAX_DIMS);
  view.ndim = t->ndim;
  for (int32_t i = 0; i < t->ndim; i++) {
    view.shape[i] = t->shape[i];
    view.strides[i] = t->strides ? t->strides[i] : 0;
  }
  ferry_memory_space space;
  bool cuda = backend_is(ctx, "cuda"), hip = backend_is(ctx, "hip");
  switch (t->device.device_type) {
  case FERRY_DL_CPU:
    space = FERRY_MEMORY_HOST;
    break;
  case FERRY_DL_CUDA_HOST:
  case FERRY_DL_ROCM_HOST:
    space = FERRY_MEMORY_PINNED_HOST;
    break;
  case FERRY_DL_CUDA:
  case FERRY_DL_ROCM:
    if (!((cuda && t->device.device_type == FERRY_DL_CUDA) ||
          (hip && t->device.device_type == FERRY_DL_ROCM)))
      return ferry__error(FERRY_ERR_MISMATCH,
                          "%s: device type %d memory cannot be used by a %s "
                          "context",
                          func, t->device.device_type, ctx->plugin->name);
    if (t->device.device_id != ctx->device)
      return ferry__error(FERRY_ERR_MISMATCH,
                          "%s: the tensor is on device %d, the context on "
                          "device %d",
                          func, t->device.device_id, ctx->device);
    space = FERRY_MEMORY_DEVICE;
    break;
  default:
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "%s: DLPack device type %d is not supported by ferry",
                        func, t->device.device_type);
  }
  /* Resolve the view against an unbounded host pointer to learn its extent,
   * then size the foreign buffer to cover it. */
  view.host = (void *)1;
  ferry_be_tensor r;
  ferry_status st = ferry__tensor_resolve(ctx, func, &view, &r);
  if (st != FERRY_OK)
    return st;
  uint64_t bytes = 0;
  bool empty = false;
  for (int32_t i = 0; i < r.ndim; i++)
    if (r.shape[i] == 0)
      empty = true;
  if (!empty) {
    uint64_t last = 0;
    for (int32_t i = 0; i < r.ndim; i++)
      last += (uint64_t)(r.shape[i] - 1) * (uint64_t)r.strides[i];
    bytes = (last + 1) * ferry_dtype_size(r.dtype);
  }
  if (t->data == NULL && bytes > 0)
    return ferry__error(FERRY_ERR_NULL_POINTER,
                        "%s: the tensor's data pointer is NULL", func);
  ferry_buffer *b = NULL;
  uint64_t total = t->byte_offset + bytes;
  st = ferry__buffer_foreign(ctx, space,
                             space == FERRY_MEMORY_DEVICE ? NULL : t->data,
                             space == FERRY_MEMORY_DEVICE ? t->data : NULL,
                             total, v->release, v->release_arg, &b);
  if (st != FERRY_OK)
    return st;
  view.host = NULL;
  view.buffer = b;
  view.byte_offset = t->byte_offset;
  for (int32_t i = 0; i < r.ndim; i++)
    view.strides[i] = r.strides[i];
  *out_buffer = b;
  *out_tensor = view;
  return FERRY_OK;
}

static void release_versioned(void *arg) {
  struct DLManagedTensorVersioned *m = arg;
  if (m->deleter)
    m->deleter(m);
}

static void release_legacy(void *arg) {
  struct DLManagedTensor *m = arg;
  if (m->deleter)
    m->deleter(m);
}

ferry_status ferry_buffer_from_dlpack(ferry_context *ctx,
                                      struct DLManagedTensorVersioned *managed,
                                      ferry_buffer **out_buffer,
                                      ferry_tensor *out_tensor) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(managed);
  FERRY_CHECK_NULL(out_buffer);
  FERRY_CHECK_NULL(out_tensor);
  if (managed->version.major != FERRY_DLPACK_MAJOR)
    return ferry__error(FERRY_ERR_UNSUPPORTED,
                        "ferry_buffer_from_dlpack: DLPack major version %u, "
                        "ferry reads %u (the caller keeps ownership and should "
                        "call the deleter)",
                        managed->version.major, FERRY_DLPACK_MAJOR);
  dl_view v = {&managed->dl_tensor, release_versioned, managed};
  return import_view(ctx, &v, "ferry_buffer_from_dlpack", out_buffer,
                     out_tensor);
}

ferry_status ferry_buffer_from_dlpack_legacy(ferry_context *ctx,
                                             struct DLManagedTensor *managed,
                                             ferry_buffer **out_buffer,
                                             ferry_tensor *out_tensor) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(managed);
  FERRY_CHECK_NULL(out_buffer);
  FERRY_CHECK_NULL(out_tensor);
  dl_view v = {&managed->dl_tensor, release_legacy, managed};
  return import_view(ctx, &v, "ferry_buffer_from_dlpack_legacy", out_buffer,
                     out_tensor);
}
