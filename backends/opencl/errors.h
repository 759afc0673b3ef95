/* OpenCL error codes: their names, the ferry status each maps to, and the
 * host services every file of the plugin reports through. */
#ifndef FERRY_OPENCL_ERRORS_H
#define FERRY_OPENCL_ERRORS_H

#include <ferry/backend.h>

#include <CL/cl.h>

#include <stdbool.h>

/* The core's services, set by init (or by a test that links these files
 * without the plugin). */
extern const ferry_host_api *ocl_host;

/* "CL_INVALID_VALUE"; "CL_UNKNOWN_ERROR" for codes no header names. */
const char *ocl_error_name(cl_int err);

/* The ferry status a failing OpenCL call maps to. */
ferry_status ocl_status(cl_int err);

/* A command status that means the device is gone or wedged (as NVIDIA's
 * driver reports a faulting kernel): the context cannot be trusted after it. */
bool ocl_error_is_fatal(cl_int err);

/* Set the thread's error for a failed OpenCL call: "<what>: <name> (<err>)".
 * Returns the mapped status. */
ferry_status ocl_fail(const char *what, cl_int err);

#endif /* FERRY_OPENCL_ERRORS_H */
