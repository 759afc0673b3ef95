/* Runtime errors as ferry statuses and messages.
 *
 * A message names what failed and carries the vendor's own error name and
 * text ("cudaMalloc of 1024 bytes: cudaErrorMemoryAllocation: out of
 * memory"). Sticky errors (a faulting kernel, uncorrectable ECC) leave the
 * device context unusable for the rest of the process: they mark the ferry
 * context lost, so every later call says so instead of failing obscurely. */
#include "gpu_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Numbers, not names, where a name is newer than the oldest toolkit ferry
 * builds with; switch on int so that such cases raise no enum warning. */
bool ferry_gpu_error_is_sticky(gpuError_t err) {
  switch ((int)err) {
#if defined(FERRY_GPU_CUDA)
  case cudaErrorIllegalAddress:
  case cudaErrorLaunchTimeout:
  case cudaErrorAssert:
  case cudaErrorHardwareStackError:
  case cudaErrorIllegalInstruction:
  case cudaErrorMisalignedAddress:
  case cudaErrorInvalidAddressSpace:
  case cudaErrorInvalidPc:
  case cudaErrorLaunchFailure:
  case cudaErrorECCUncorrectable:
  case cudaErrorNvlinkUncorrectable:
  case 226: /* cudaErrorContained (CUDA 12.4): a contained device fault */
  case 911: /* cudaErrorExternalDevice: a fault of a peer device */
    return true;
#else
  case hipErrorIllegalAddress:
  case hipErrorLaunchTimeOut:
  case hipErrorAssert:
  case hipErrorLaunchFailure:
  case hipErrorECCNotCorrectable:
    return true;
#endif
  default:
    return false;
  }
}

ferry_status ferry_gpu_status_of(gpuError_t err) {
  if (ferry_gpu_error_is_sticky(err))
    return FERRY_ERR_CONTEXT_LOST;
  switch ((int)err) {
  case gpuSuccess:
    return FERRY_OK;
#if defined(FERRY_GPU_CUDA)
  case cudaErrorMemoryAllocation:
    return FERRY_ERR_OUT_OF_DEVICE_MEMORY;
  case cudaErrorInvalidValue:
  case cudaErrorInvalidDevicePointer:
  case cudaErrorInvalidHostPointer:
  case cudaErrorInvalidMemcpyDirection:
  case cudaErrorInvalidResourceHandle:
  case cudaErrorInvalidDevice:
  case cudaErrorInvalidConfiguration:
  case cudaErrorHostMemoryNotRegistered:
    return FERRY_ERR_INVALID_ARGUMENT;
  case cudaErrorNotReady:
    return FERRY_ERR_NOT_READY;
  case cudaErrorNoDevice:
  case cudaErrorInsufficientDriver:
  case cudaErrorInitializationError:
  case cudaErrorDevicesUnavailable:
  case cudaErrorSystemDriverMismatch:
  case cudaErrorCompatNotSupportedOnDevice:
  case cudaErrorSystemNotReady:
  case cudaErrorStubLibrary:
  case cudaErrorCudartUnloading:
    return FERRY_ERR_NO_DEVICE;
  case cudaErrorNoKernelImageForDevice:
  case cudaErrorInvalidKernelImage:
  case cudaErrorUnsupportedPtxVersion:
  case cudaErrorInvalidPtx:
  case cudaErrorJitCompilerNotFound:
    return FERRY_ERR_DEVICE_TOO_OLD;
  case cudaErrorNotSupported:
  case cudaErrorNotPermitted:
  case cudaErrorStreamCaptureUnsupported:
  case cudaErrorStreamCaptureInvalidated:
  case cudaErrorStreamCaptureImplicit:
  case cudaErrorStreamCaptureWrongThread:
    return FERRY_ERR_UNSUPPORTED;
#else
  case hipErrorOutOfMemory:
    return FERRY_ERR_OUT_OF_DEVICE_MEMORY;
  case hipErrorInvalidValue:
  case hipErrorInvalidDevicePointer:
  case hipErrorInvalidMemcpyDirection:
  case hipErrorInvalidHandle:
  case hipErrorInvalidDevice:
  case hipErrorInvalidConfiguration:
  case hipErrorHostMemoryNotRegistered:
    return FERRY_ERR_INVALID_ARGUMENT;
  case hipErrorNotReady:
    return FERRY_ERR_NOT_READY;
  case hipErrorNoDevice:
  case hipErrorInsufficientDriver:
  case hipErrorNotInitialized:
  case hipErrorDeinitialized:
    return FERRY_ERR_NO_DEVICE;
  case hipErrorNoBinaryForGpu:
  case hipErrorInvalidImage:
  case hipErrorInvalidKernelFile:
    return FERRY_ERR_DEVICE_TOO_OLD;
  case hipErrorNotSupported:
  case hipErrorStreamCaptureUnsupported:
  case hipErrorStreamCaptureInvalidated:
  case hipErrorStreamCaptureImplicit:
  case hipErrorStreamCaptureWrongThread:
    return FERRY_ERR_UNSUPPORTED;
#endif
  default:
    return FERRY_ERR_BACKEND;
  }
}

void ferry_gpu_describe(gpuError_t err, char *buf, size_t size) {
  const char *name = gpuGetErrorName(err);
  const char *text = gpuGetErrorString(err);
  if (name == NULL)
    name = "an unknown error";
  /* ROCm 5 returns the name as the text: say it once. */
  if (text == NULL || text[0] == '\0' || strcmp(text, name) == 0)
    snprintf(buf, size, "%s (%d)", name, (int)err);
  else
    snprintf(buf, size, "%s: %s", name, text);
}

static ferry_status vfail(ferry_be_context *ctx, ferry_status status,
                          gpuError_t err, const char *fmt, va_list ap) {
  char what[384], desc[256];
  vsnprintf(what, sizeof what, fmt, ap);
  ferry_gpu_describe(err, desc, sizeof desc);
  if (ferry_gpu_error_is_sticky(err)) {
    status = FERRY_ERR_CONTEXT_LOST;
    if (ctx != NULL)
      ferry_gpu_host->context_lost(ctx->cookie, FERRY_ERR_CONTEXT_LOST,
                                   FERRY_GPU_NAME " device %d: %s: %s",
                                   ctx->device, what, desc);
  } else {
    /* Only non-sticky errors can be cleared; clearing keeps them from
     * surfacing again in an unrelated later call. */
    (void)gpuGetLastError();
  }
  return ferry_gpu_host->set_error(status, FERRY_GPU_NAME " %s: %s", what,
                                   desc);
}

ferry_status ferry_gpu_fail(ferry_be_context *ctx, gpuError_t err,
                            const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ferry_status st = vfail(ctx, ferry_gpu_status_of(err), err, fmt, ap);
  va_end(ap);
  return st;
}

ferry_status ferry_gpu_fail_as(ferry_be_context *ctx, ferry_status status,
                               gpuError_t err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ferry_status st = vfail(ctx, status, err, fmt, ap);
  va_end(ap);
  return st;
}
