/* Status names and the thread-local last error. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

typedef struct ferry__tls_error {
  ferry_status status;
  uint64_t seq;
  char op[32];
  char message[1024];
} ferry__tls_error;

static _Thread_local ferry__tls_error tls_error;

const char *ferry_status_string(ferry_status status) {
  switch (status) {
#define S(x)                                                                   \
  case x:                                                                      \
    return #x;
    S(FERRY_OK)
    S(FERRY_ERR_INVALID_ARGUMENT)
    S(FERRY_ERR_NULL_POINTER)
    S(FERRY_ERR_STRUCT_SIZE)
    S(FERRY_ERR_OUT_OF_RANGE)
    S(FERRY_ERR_MISMATCH)
    S(FERRY_ERR_BAD_FORMAT)
    S(FERRY_ERR_UNSUPPORTED)
    S(FERRY_ERR_NO_BACKEND)
    S(FERRY_ERR_NO_DEVICE)
    S(FERRY_ERR_PLUGIN_REJECTED)
    S(FERRY_ERR_DEVICE_TOO_OLD)
    S(FERRY_ERR_OUT_OF_MEMORY)
    S(FERRY_ERR_OUT_OF_DEVICE_MEMORY)
    S(FERRY_ERR_IO)
    S(FERRY_ERR_NOT_READY)
    S(FERRY_ERR_CONTEXT_LOST)
    S(FERRY_ERR_FORKED)
    S(FERRY_ERR_BACKEND)
    S(FERRY_ERR_BUSY)
    S(FERRY_ERR_INTERNAL)
#undef S
  }
  return "FERRY_ERR_UNKNOWN";
}

const char *ferry_last_error(void) {
  return tls_error.message;
}

ferry_status ferry_last_error_info(ferry_error_info *out) {
  if (out == NULL)
    return FERRY_ERR_NULL_POINTER; /* keep the error being asked about */
  if (out->struct_size < sizeof(ferry_error_info))
    return FERRY_ERR_STRUCT_SIZE;
  out->status = tls_error.status;
  out->op = tls_error.op;
  out->sequence = tls_error.seq;
  out->message = tls_error.message;
  return FERRY_OK;
}

void ferry__clear_error(void) {
  tls_error.status = FERRY_OK;
  tls_error.seq = 0;
  tls_error.op[0] = '\0';
  tls_error.message[0] = '\0';
}

ferry_status ferry__verror(ferry_status status, const char *fmt, va_list ap) {
  tls_error.status = status;
  tls_error.seq = 0;
  tls_error.op[0] = '\0';
  vsnprintf(tls_error.message, sizeof tls_error.message, fmt, ap);
  return status;
}

ferry_status ferry__check_struct_size(const char *func, size_t given,
                                      size_t min, size_t max,
                                      const char *init) {
  if (given >= min && given <= max)
    return FERRY_OK;
  return ferry__error(FERRY_ERR_STRUCT_SIZE,
                      "%s: out->struct_size is %zu; use %s", func, given, init);
}

ferry_status ferry__error(ferry_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ferry__verror(status, fmt, ap);
  va_end(ap);
  return status;
}

ferry_status ferry__error_deferred(ferry_status status, const char *op,
                                   uint64_t seq, const char *message) {
  tls_error.status = status;
  tls_error.seq = seq;
  snprintf(tls_error.op, sizeof tls_error.op, "%s", op);
  snprintf(tls_error.message, sizeof tls_error.message,
           "deferred error from op '%s' (sequence %llu): %s", op,
           (unsigned long long)seq, message);
  return status;
}
