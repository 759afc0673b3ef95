/* The DLPack exchange ABI (v1.x), declared by ferry for its own use.
 *
 * These are ferry's declarations of DLPack's stable binary layout (the
 * structs' tags, members, order and enum values are the interface, as
 * specified by the DLPack project, Apache-2.0). ferry does not install a
 * header named dlpack.h nor use upstream's include guard: frameworks ship
 * their own copies and the first one included would win. A consumer includes
 * its own dlpack.h; the struct tags match, so the forward declarations in
 * ferry.h resolve to them. */
#ifndef FERRY_CORE_DLPACK_ABI_H
#define FERRY_CORE_DLPACK_ABI_H

#include <stdint.h>

#define FERRY_DLPACK_MAJOR 1u
#define FERRY_DLPACK_MINOR 0u

/* Device types (DLDeviceType). */
enum {
  FERRY_DL_CPU = 1,
  FERRY_DL_CUDA = 2,
  FERRY_DL_CUDA_HOST = 3,
  FERRY_DL_OPENCL = 4,
  FERRY_DL_ROCM = 10,
  FERRY_DL_ROCM_HOST = 11,
  FERRY_DL_CUDA_MANAGED = 13
};

/* Type codes (DLDataTypeCode). */
enum {
  FERRY_DL_INT = 0,
  FERRY_DL_UINT = 1,
  FERRY_DL_FLOAT = 2,
  FERRY_DL_BFLOAT = 4,
  FERRY_DL_BOOL = 6
};

#define FERRY_DL_FLAG_READ_ONLY (UINT64_C(1) << 0)
#define FERRY_DL_FLAG_IS_COPIED (UINT64_C(1) << 1)

typedef struct ferry_dl_version {
  uint32_t major;
  uint32_t minor;
} ferry_dl_version;

typedef struct ferry_dl_device {
  int32_t device_type; /* an enum of int size in DLPack */
  int32_t device_id;
} ferry_dl_device;

typedef struct ferry_dl_dtype {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
} ferry_dl_dtype;

typedef struct ferry_dl_tensor {
  void *data;
  ferry_dl_device device;
  int32_t ndim;
  ferry_dl_dtype dtype;
  int64_t *shape;
  int64_t *strides;
  uint64_t byte_offset;
} ferry_dl_tensor;

struct DLManagedTensor {
  ferry_dl_tensor dl_tensor;
  void *manager_ctx;
  void (*deleter)(struct DLManagedTensor *self);
};

struct DLManagedTensorVersioned {
  ferry_dl_version version;
  void *manager_ctx;
  void (*deleter)(struct DLManagedTensorVersioned *self);
  uint64_t flags;
  ferry_dl_tensor dl_tensor;
};

#endif /* FERRY_CORE_DLPACK_ABI_H */
