/* Programs built at first use and cached per context.
 *
 * A program is identified by its name and build options; the source is the
 * embedded text of a kernels/<name>.cl file (see kernel_sources.h). The first
 * caller builds it while others asking for the same program wait; callers
 * asking for other programs are not held up. A failed build is not cached:
 * the error (with the compiler's log) goes to the caller, and the next
 * request builds again. */
#ifndef FERRY_OPENCL_PROGRAM_H
#define FERRY_OPENCL_PROGRAM_H

#include "errors.h"

#include <pthread.h>
#include <stdint.h>

typedef struct ocl_program_entry ocl_program_entry;

typedef struct ocl_program_cache {
  cl_context context;
  cl_device_id device;
  pthread_mutex_t lock;
  pthread_cond_t built; /* an entry left the "building" state */
  ocl_program_entry *entries;
} ocl_program_cache;

/* The cache does not retain the context: it must outlive the cache. */
void ocl_program_cache_init(ocl_program_cache *c, cl_context context,
                            cl_device_id device);
/* Releases every program. With FERRY_BE_DESTROY_FORKED only host memory is
 * freed. */
void ocl_program_cache_fini(ocl_program_cache *c, uint32_t destroy_flags);

/* The built program `name` with `options` (NULL: none). *out stays owned by
 * the cache and valid until ocl_program_cache_fini. A build failure returns
 * FERRY_ERR_BACKEND with the compiler's log in the message. */
ferry_status ocl_program_get(ocl_program_cache *c, const char *name,
                             const char *source, const char *options,
                             cl_program *out);

/* A new kernel object of a cached program (the caller releases it: kernel
 * arguments are per object, so concurrent launches need their own). */
ferry_status ocl_kernel_create(ocl_program_cache *c, const char *name,
                               const char *source, const char *options,
                               const char *kernel_name, cl_kernel *out);

#endif /* FERRY_OPENCL_PROGRAM_H */
