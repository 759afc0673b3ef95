/* The OpenCL copy of the sampler's draws (backends/opencl/kernels/sample.cl)
 * against core/philox.h, bit for bit: Random123's known answers, then the
 * positions every node of a range draws, with and without replacement. */
#include "harness.h"
#include "kernel_sources.h"

#include "../core/philox.h"

#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

static cl_context context;
static cl_command_queue queue;
static cl_program program;

static void setup(void) {
  cl_platform_id platforms[16];
  cl_uint np = 0;
  cr_assert_eq(clGetPlatformIDs(16, platforms, &np), CL_SUCCESS);
  cl_device_id device = NULL;
  for (cl_uint i = 0; i < np && i < 16 && device == NULL; i++) {
    cl_device_id ids[16];
    cl_uint nd = 0;
    if (clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_ALL, 16, ids, &nd) !=
        CL_SUCCESS)
      continue;
    for (cl_uint j = 0; j < nd && j < 16 && device == NULL; j++) {
      cl_bool compiler = CL_FALSE;
      clGetDeviceInfo(ids[j], CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler,
                      &compiler, NULL);
      if (compiler)
        device = ids[j];
    }
  }
  cr_assert_not_null(device, "no OpenCL device with a compiler");
  cl_int err = CL_SUCCESS;
  context = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
  cr_assert_eq(err, CL_SUCCESS);
  queue = clCreateCommandQueue(context, device, 0, &err);
  cr_assert_eq(err, CL_SUCCESS);
  const char *src = ocl_source_sample;
  size_t len = ocl_source_sample_size;
  program = clCreateProgramWithSource(context, 1, &src, &len, &err);
  cr_assert_eq(err, CL_SUCCESS);
  err = clBuildProgram(program, 1, &device, NULL, NULL, NULL);
  if (err != CL_SUCCESS) {
    char log[8192] = "";
    clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, sizeof log,
                          log, NULL);
    cr_assert_fail("sample.cl does not build: %s", log);
  }
}

static void teardown(void) {
  clReleaseProgram(program);
  clReleaseCommandQueue(queue);
  clReleaseContext(context);
}

TestSuite(sample_philox_opencl, .init = setup, .fini = teardown);

Test(sample_philox_opencl, known_answers_and_random_vectors) {
  enum { N = 259 };
  static uint32_t in[N * 6], out[N * 4];
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
       0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
       0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};
  uint64_t rng = 17;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < 6; j++)
      in[6 * i + j] = i < 3 ? kat[i][j] : (uint32_t)ferry_test_rand(&rng);
  ferry_test_poison(out, sizeof out);
  cl_int err = CL_SUCCESS;
  cl_mem a = clCreateBuffer(context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                            sizeof in, in, &err);
  cl_mem b = clCreateBuffer(context, CL_MEM_WRITE_ONLY, sizeof out, NULL, &err);
  cl_kernel k = clCreateKernel(program, "ferry_sample_philox_kat", &err);
  cr_assert_eq(err, CL_SUCCESS);
  cl_uint count = N;
  clSetKernelArg(k, 0, sizeof a, &a);
  clSetKernelArg(k, 1, sizeof b, &b);
  clSetKernelArg(k, 2, sizeof count, &count);
  size_t global = N;
  cr_assert_eq(
      clEnqueueNDRangeKernel(queue, k, 1, NULL, &global, NULL, 0, NULL, NULL),
      CL_SUCCESS);
  cr_assert_eq(
      clEnqueueReadBuffer(queue, b, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL),
      CL_SUCCESS);
  for (int i = 0; i < N; i++) {
    uint32_t want[4];
    ferry_philox4x32_10(in + 6 * i, in + 6 * i + 4, want);
    for (int j = 0; j < 4; j++) {
      cr_assert_eq(out[4 * i + j], want[j], "vector %d word %d", i, j);
      if (i < 3)
        cr_assert_eq(out[4 * i + j], kat[i][6 + j]);
    }
  }
  clReleaseKernel(k);
  clReleaseMemObject(a);
  clReleaseMemObject(b);
}

Test(sample_philox_opencl, node_positions) {
  enum { NODES = 1000 };
  const int64_t degs[] = {1, 2, 7, 100, 65537, 4000000000};
  const int64_t fans[] = {1, 3, 25};
  for (size_t d = 0; d < sizeof degs / sizeof degs[0]; d++)
    for (size_t f = 0; f < sizeof fans / sizeof fans[0]; f++)
      for (int replace = 0; replace <= 1; replace++) {
        int64_t kk = ferry_sample_count(degs[d], fans[f], replace);
        size_t bytes = (size_t)(NODES * kk * 8);
        int64_t *got = malloc(bytes), *want = malloc(bytes);
        ferry_test_poison(got, bytes);
        cl_int err = CL_SUCCESS;
        cl_mem o =
            clCreateBuffer(context, CL_MEM_WRITE_ONLY, bytes, NULL, &err);
        cr_assert_eq(err, CL_SUCCESS);
        cl_kernel k =
            clCreateKernel(program, "ferry_sample_positions_test", &err);
        cl_ulong seed = 0xDEADBEEF12345ull, nodes = NODES;
        cl_uint batch = 77, layer = 3;
        cl_long deg = degs[d], fanout = fans[f];
        cl_int rep = replace;
        clSetKernelArg(k, 0, sizeof seed, &seed);
        clSetKernelArg(k, 1, sizeof batch, &batch);
        clSetKernelArg(k, 2, sizeof layer, &layer);
        clSetKernelArg(k, 3, sizeof deg, &deg);
        clSetKernelArg(k, 4, sizeof fanout, &fanout);
        clSetKernelArg(k, 5, sizeof rep, &rep);
        clSetKernelArg(k, 6, sizeof nodes, &nodes);
        clSetKernelArg(k, 7, sizeof o, &o);
        size_t global = NODES;
        cr_assert_eq(clEnqueueNDRangeKernel(queue, k, 1, NULL, &global, NULL, 0,
                                            NULL, NULL),
                     CL_SUCCESS);
        cr_assert_eq(clEnqueueReadBuffer(queue, o, CL_TRUE, 0, bytes, got, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
        for (int v = 0; v < NODES; v++)
          ferry_sample_positions(seed, batch, layer, (uint64_t)v, deg, fanout,
                                 replace, want + v * kk);
        for (int64_t i = 0; i < NODES * kk; i++)
          cr_assert_eq(
              got[i], want[i], "deg %lld fanout %lld replace %d: element %lld",
              (long long)deg, (long long)fanout, replace, (long long)i);
        clReleaseKernel(k);
        clReleaseMemObject(o);
        free(got);
        free(want);
      }
}
