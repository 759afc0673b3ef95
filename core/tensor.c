/* dtypes and tensor views. */
#include "internal.h"

#include <string.h>

size_t ferry_dtype_size(ferry_dtype dtype) {
  switch (dtype) {
  case FERRY_DTYPE_F64:
  case FERRY_DTYPE_I64:
  case FERRY_DTYPE_U64:
    return 8;
  case FERRY_DTYPE_F32:
  case FERRY_DTYPE_I32:
  case FERRY_DTYPE_U32:
    return 4;
  case FERRY_DTYPE_F16:
  case FERRY_DTYPE_BF16:
  case FERRY_DTYPE_I16:
  case FERRY_DTYPE_U16:
    return 2;
  case FERRY_DTYPE_U8:
  case FERRY_DTYPE_I8:
    return 1;
  case FERRY_DTYPE_INVALID:
    break;
  }
  return 0;
}

const char *ferry_dtype_name(ferry_dtype dtype) {
  static const char *const names[] = {"invalid", "f32", "f16", "bf16", "f64",
                                      "i32",     "i64", "u8",  "u16",  "u32",
                                      "u64",     "i8",  "i16"};
  if ((int)dtype < 0 || (size_t)dtype >= sizeof names / sizeof names[0])
    return "invalid";
  return names[dtype];
}

ferry_status ferry_tensor_make(ferry_buffer *buffer, uint64_t byte_offset,
                               ferry_dtype dtype, int32_t ndim,
                               const int64_t *shape, ferry_tensor *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(buffer);
  FERRY_CHECK_NULL(out);
  if (ndim > 0 && shape == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER,
                        "ferry_tensor_make: argument 'shape' is NULL with "
                        "ndim %d",
                        ndim);
  /* Check ndim before reading `shape`: the caller's array has ndim items. */
  if (ndim < 0 || ndim > FERRY_MAX_DIMS)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "ferry_tensor_make: argument 'ndim' is %d, outside "
                        "[0, %d]",
                        ndim, FERRY_MAX_DIMS);
  ferry_tensor t;
  memset(&t, 0, sizeof t);
  t.buffer = buffer;
  t.byte_offset = byte_offset;
  t.dtype = dtype;
  t.ndim = ndim;
  for (int32_t i = 0; i < ndim; i++)
    t.shape[i] = shape[i];
  ferry_be_tensor resolved;
  ferry_status st =
      ferry__tensor_resolve(buffer->ctx, "ferry_tensor_make", &t, &resolved);
  if (st != FERRY_OK)
    return st;
  for (int32_t i = 0; i < ndim; i++)
    t.strides[i] = resolved.strides[i];
  *out = t;
  return FERRY_OK;
}

ferry_status ferry__tensor_resolve(ferry_context *ctx, const char *arg,
                                   const ferry_tensor *t,
                                   ferry_be_tensor *out) {
  if (t == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER, "argument '%s' is NULL", arg);
  size_t esize = ferry_dtype_size(t->dtype);
  if (esize == 0)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "argument '%s': dtype %d is not a ferry_dtype", arg,
                        (int)t->dtype);
  if (t->ndim < 0 || t->ndim > FERRY_MAX_DIMS)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "argument '%s': ndim %d is outside [0, %d]", arg,
                        t->ndim, FERRY_MAX_DIMS);
  if ((t->buffer == NULL) == (t->host == NULL))
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "argument '%s': exactly one of 'buffer' and 'host' "
                        "must be set",
                        arg);
  bool compact = true;
  for (int32_t i = 0; i < t->ndim; i++)
    if (t->strides[i] != 0)
      compact = false;
  ferry_be_tensor r;
  memset(&r, 0, sizeof r);
  r.dtype = t->dtype;
  r.ndim = t->ndim;
  /* Extent of the view in elements: the last element's offset + 1. */
  uint64_t count = 1, last = 0;
  int64_t stride = 1;
  for (int32_t i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] < 0)
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "argument '%s': shape[%d] is %lld (negative)", arg, i,
                          (long long)t->shape[i]);
    r.shape[i] = t->shape[i];
    int64_t s = compact ? stride : t->strides[i];
    if (s < 0 || (s == 0 && t->shape[i] > 1))
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "argument '%s': strides[%d] is %lld; ferry needs "
                          "positive strides for dimensions of extent > 1",
                          arg, i, (long long)s);
    r.strides[i] = s;
    if (t->shape[i] == 0)
      count = 0;
    else if (__builtin_mul_overflow((uint64_t)(t->shape[i] - 1), (uint64_t)s,
                                    &(uint64_t){0}))
      return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                          "argument '%s': the view's extent overflows", arg);
    else
      last += (uint64_t)(t->shape[i] - 1) * (uint64_t)s;
    if (compact &&
        __builtin_mul_overflow(stride, t->shape[i] ? t->shape[i] : 1, &stride))
      return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                          "argument '%s': the shape's product overflows", arg);
  }
  uint64_t bytes = count == 0 ? 0 : (last + 1) * esize;
  if (t->buffer) {
    ferry_status st = ferry__buffer_memref(ctx, arg, t->buffer, t->byte_offset,
                                           bytes, &r.mem);
    if (st != FERRY_OK)
      return st;
  } else {
    r.mem.buffer = NULL;
    r.mem.ptr = t->host;
    r.mem.offset = t->byte_offset;
    r.mem.space = FERRY_MEMORY_HOST;
  }
  *out = r;
  return FERRY_OK;
}
