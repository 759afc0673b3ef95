/* The opencl plugin's program cache (backends/opencl/program.c), linked into
 * this test directly with a fake host_api: a broken source fails with the
 * compiler's log in the message; a good one builds once per (name, options),
 * even when several threads ask at once, and its kernel runs. */
#include "harness.h"
#include "kernel_sources.h"
#include "program.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a host_api that records the plugin's errors ------------------------- */

static _Thread_local char message[4096];

static ferry_status fake_set_error(ferry_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  return status;
}

static void fake_trace(const char *backend, const char *fmt, ...) {
  (void)backend;
  (void)fmt;
}

static const ferry_host_api fake_host = {
    .struct_size = sizeof(ferry_host_api),
    .abi_major = FERRY_BACKEND_ABI_MAJOR,
    .abi_minor = FERRY_BACKEND_ABI_MINOR,
    .set_error = fake_set_error,
    .trace = fake_trace,
};

/* Without any OpenCL platform there is nothing to test: exit 77 (a visible
 * skip) before Criterion starts. */
__attribute__((constructor)) static void skip_without_platform(void) {
  cl_uint n = 0;
  cl_int err = clGetPlatformIDs(0, NULL, &n);
  if (err != CL_SUCCESS || n == 0) {
    printf("SKIP: no OpenCL platform here (clGetPlatformIDs: %d, %u "
           "platforms)\n",
           (int)err, (unsigned)n);
    fflush(stdout);
    _exit(77);
  }
}

/* ---- a context on the first device with a compiler ----------------------- */

static cl_context context;
static cl_device_id device;
static ocl_program_cache cache;

static void setup(void) {
  ocl_host = &fake_host;
  cl_platform_id platforms[16];
  cl_uint np = 0;
  cr_assert_eq(clGetPlatformIDs(16, platforms, &np), CL_SUCCESS);
  device = NULL;
  for (cl_uint i = 0; i < np && i < 16 && device == NULL; i++) {
    cl_device_id ids[16];
    cl_uint nd = 0;
    if (clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_ALL, 16, ids, &nd) !=
        CL_SUCCESS)
      continue;
    for (cl_uint j = 0; j < nd && j < 16; j++) {
      cl_bool compiler = CL_FALSE;
      clGetDeviceInfo(ids[j], CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler,
                      &compiler, NULL);
      if (compiler) {
        device = ids[j];
        break;
      }
    }
  }
  cr_assert_not_null(device, "no OpenCL device with a compiler");
  cl_int err = CL_SUCCESS;
  context = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
  cr_assert_eq(err, CL_SUCCESS, "clCreateContext: %d", (int)err);
  ocl_program_cache_init(&cache, context, device);
}

static void teardown(void) {
  ocl_program_cache_fini(&cache, 0);
  clReleaseContext(context);
}

TestSuite(opencl_program, .init = setup, .fini = teardown);

static const char broken_source[] = "__kernel void broken(__global int *p) {\n"
                                    "  p[0] = no_such_identifier_in_ferry;\n"
                                    "}\n";

Test(opencl_program, build_failure_carries_the_compiler_log) {
  /* Twice: a failed build is not cached, and fails the same way again. */
  for (int round = 0; round < 2; round++) {
    cl_program p = (cl_program)(uintptr_t)0x1;
    message[0] = '\0';
    ferry_status st =
        ocl_program_get(&cache, "broken", broken_source, "-DFERRY_TEST=1", &p);
    cr_assert_eq(st, FERRY_ERR_BACKEND, "round %d: status %d (%s)", round,
                 (int)st, message);
    cr_assert_eq(p, (cl_program)(uintptr_t)0x1,
                 "the output was written on failure");
    cr_assert(strstr(message, "'broken'"), "no program name in: %s", message);
    cr_assert(strstr(message, "-DFERRY_TEST=1"), "no options in: %s", message);
    cr_assert(strstr(message, "CL_BUILD_PROGRAM_FAILURE"),
              "no OpenCL error name in: %s", message);
    /* The log is the compiler's own text, naming the bad identifier. */
    cr_assert(strstr(message, "no_such_identifier_in_ferry"),
              "no compiler log in: %s", message);
  }
  /* Kernels of a program that does not build fail the same way. */
  cl_kernel k = NULL;
  message[0] = '\0';
  cr_assert_eq(
      ocl_kernel_create(&cache, "broken", broken_source, NULL, "broken", &k),
      FERRY_ERR_BACKEND);
  cr_assert_null(k);
  cr_assert(strstr(message, "no_such_identifier_in_ferry"), "%s", message);
}

/* ---- a good program --------------------------------------------------------
 */

typedef struct getter {
  ocl_program_cache *cache;
  cl_program program;
  ferry_status status;
} getter;

static void *get_copy_program(void *arg) {
  getter *g = arg;
  g->status =
      ocl_program_get(g->cache, "copy", ocl_source_copy, NULL, &g->program);
  return NULL;
}

static void run_copy(cl_kernel k, cl_command_queue q, size_t n, size_t src_off,
                     size_t dst_off, uint64_t *rng) {
  size_t src_size = src_off + n + 3, dst_size = dst_off + n + 5;
  unsigned char *src = malloc(src_size), *dst = malloc(dst_size);
  cr_assert(src && dst);
  for (size_t i = 0; i < src_size; i++)
    src[i] = (unsigned char)ferry_test_rand(rng);
  ferry_test_poison(dst, dst_size);
  cl_int err = CL_SUCCESS;
  cl_mem a = clCreateBuffer(context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                            src_size, src, &err);
  cr_assert_eq(err, CL_SUCCESS);
  cl_mem b = clCreateBuffer(context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                            dst_size, dst, &err);
  cr_assert_eq(err, CL_SUCCESS);
  cl_ulong so = src_off, dof = dst_off, len = n;
  cr_assert_eq(clSetKernelArg(k, 0, sizeof a, &a), CL_SUCCESS);
  cr_assert_eq(clSetKernelArg(k, 1, sizeof so, &so), CL_SUCCESS);
  cr_assert_eq(clSetKernelArg(k, 2, sizeof b, &b), CL_SUCCESS);
  cr_assert_eq(clSetKernelArg(k, 3, sizeof dof, &dof), CL_SUCCESS);
  cr_assert_eq(clSetKernelArg(k, 4, sizeof len, &len), CL_SUCCESS);
  /* Fewer work-items than bytes: the grid-stride loop covers the rest. */
  size_t global = 64;
  cr_assert_eq(
      clEnqueueNDRangeKernel(q, k, 1, NULL, &global, NULL, 0, NULL, NULL),
      CL_SUCCESS);
  cr_assert_eq(
      clEnqueueReadBuffer(q, b, CL_TRUE, 0, dst_size, dst, 0, NULL, NULL),
      CL_SUCCESS);
  for (size_t i = 0; i < dst_size; i++) {
    unsigned char want =
        (i >= dst_off && i < dst_off + n) ? src[src_off + (i - dst_off)] : 0xA5;
    cr_assert_eq(dst[i], want,
                 "n=%zu src_off=%zu dst_off=%zu: byte %zu is %u, "
                 "expected %u",
                 n, src_off, dst_off, i, dst[i], want);
  }
  clReleaseMemObject(a);
  clReleaseMemObject(b);
  free(src);
  free(dst);
}

Test(opencl_program, builds_once_runs_and_is_cached) {
  /* Four threads ask for the same program at once: one builds, the others
   * wait for it, and all get the same cl_program. */
  getter g[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    g[i].cache = &cache;
    g[i].program = NULL;
    g[i].status = FERRY_ERR_INTERNAL;
    cr_assert_eq(pthread_create(&t[i], NULL, get_copy_program, &g[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(g[i].status, FERRY_OK, "thread %d: %s", i, message);
    cr_assert_not_null(g[i].program);
    cr_assert_eq(g[i].program, g[0].program, "thread %d got another program",
                 i);
  }
  /* Only the cache holds it: nobody built a second copy and leaked it. */
  cl_uint refs = 0;
  cr_assert_eq(clGetProgramInfo(g[0].program, CL_PROGRAM_REFERENCE_COUNT,
                                sizeof refs, &refs, NULL),
               CL_SUCCESS);
  cr_assert_eq(refs, 1u);

  /* Later calls return it without building. */
  cl_program again = NULL;
  cr_assert_eq(ocl_program_get(&cache, "copy", ocl_source_copy, "", &again),
               FERRY_OK);
  cr_assert_eq(again, g[0].program, "NULL and \"\" options are one key");

  /* Other options are another program. */
  cl_program relaxed = NULL;
  cr_assert_eq(ocl_program_get(&cache, "copy", ocl_source_copy,
                               "-cl-fast-relaxed-math", &relaxed),
               FERRY_OK, "%s", message);
  cr_assert_neq(relaxed, g[0].program);

  /* A kernel name the program lacks is reported by name. */
  cl_kernel k = NULL;
  message[0] = '\0';
  cr_assert_eq(ocl_kernel_create(&cache, "copy", ocl_source_copy, NULL,
                                 "no_such_kernel", &k),
               FERRY_ERR_BACKEND);
  cr_assert(strstr(message, "no_such_kernel") &&
                strstr(message, "CL_INVALID_KERNEL_NAME"),
            "%s", message);

  /* The embedded kernel runs: awkward lengths and offsets. */
  cr_assert_eq(ocl_kernel_create(&cache, "copy", ocl_source_copy, NULL,
                                 "ferry_copy_bytes", &k),
               FERRY_OK, "%s", message);
  cl_int err = CL_SUCCESS;
  cl_command_queue q = clCreateCommandQueue(context, device, 0, &err);
  cr_assert_eq(err, CL_SUCCESS);
  uint64_t rng = 42;
  const size_t sizes[] = {1, 7, 64, 4099, (1u << 20) + 3};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    run_copy(k, q, sizes[i], 0, 0, &rng);
    run_copy(k, q, sizes[i], 3, 17, &rng);
  }
  clReleaseCommandQueue(q);
  clReleaseKernel(k);
}
