# The opencl plugin's tests (label "opencl"; `ctest -L opencl`):
#   opencl_basic_opencl  public-API behaviour on an OpenCL device (PoCL here):
#                        buffers, copies, fills, queues, events, wrapped native
#                        queues, deferred errors;
#   opencl_program       the plugin's program cache driven directly: build
#                        failures carry the compiler's log, good programs are
#                        built once and run.
# Each Criterion test is a process that pays OpenCL start-up (and LLVM for
# kernels), so the cases are few and loop over sizes inside.
if(TARGET ferry-opencl)
  # Imported targets are per directory: find OpenCL again here (cached).
  find_package(OpenCL REQUIRED)
  ferry_add_backend_test(opencl_basic SOURCES test_opencl_basic.c
    BACKENDS opencl LINK OpenCL::OpenCL)
  target_compile_definitions(test_opencl_basic PRIVATE CL_TARGET_OPENCL_VERSION=120)
  # The test loads the plugin at run time: build it first.
  add_dependencies(test_opencl_basic ferry-opencl)

  ferry_add_core_test(opencl_program SOURCES test_opencl_program.c
    LABELS opencl LINK ferry-opencl-program)
endif()
