# The cuda and hip plugins' tests (labels "cuda" and "hip": `ctest -L cuda`).
#
# On the device (skipped, exit 77 with the runtime's reason, where the
# backend has none; never run on another backend):
#   gpu_memory_<be>   buffers in every space, copies between all of them,
#                     fills, the caller's memory registered in place (also in
#                     chunks), device memory exhausted;
#   gpu_streams_<be>  stream order, host functions and their errors, events,
#                     waits across streams, wrapped streams, streams destroyed
#                     with work queued, threads, fork;
#   <be>_native_<be>  next to the vendor's runtime, which the test links as a
#                     framework would: its streams and pinned memory wrapped,
#                     the caller's current device kept, ferry's native
#                     handles used by the runtime.
# Anywhere (no device needed; label "core" too):
#   gpu_arch_<be>     which devices the built kernels run on, judged from
#                     made-up device properties;
#   gpu_callback      the lifetime of host functions and destroyed streams,
#                     against a stand-in for the runtime's stream calls.
# Each is built only where its plugin is. Each Criterion test is a process
# paying runtime start-up, so the cases are few and loop over sizes inside.
set(ferry_gpu_backends)
foreach(be cuda hip)
  if(TARGET ferry-${be})
    list(APPEND ferry_gpu_backends ${be})
  endif()
endforeach()

if(ferry_gpu_backends)
  foreach(t gpu_memory gpu_streams)
    ferry_add_backend_test(${t} SOURCES test_${t}.c BACKENDS ${ferry_gpu_backends}
      LINK Threads::Threads)
    # The tests load the plugins at run time: build them first.
    foreach(be IN LISTS ferry_gpu_backends)
      add_dependencies(test_${t} ferry-${be})
    endforeach()
  endforeach()
endif()

set(ferry_gpu_common ${PROJECT_SOURCE_DIR}/backends/gpu_common)

if(TARGET ferry-cuda)
  # Imported targets are per directory: find the toolkit again (cached).
  find_package(CUDAToolkit REQUIRED)
  ferry_add_backend_test(cuda_native SOURCES test_gpu_native.c BACKENDS cuda NO_EMU
    LINK CUDA::cudart Threads::Threads)
  target_compile_definitions(test_cuda_native PRIVATE FERRY_GPU_CUDA)
  target_include_directories(test_cuda_native PRIVATE ${ferry_gpu_common})
  add_dependencies(test_cuda_native ferry-cuda)

  ferry_add_core_test(gpu_arch_cuda SOURCES test_gpu_arch.c
    ${PROJECT_SOURCE_DIR}/backends/cuda/cuda_arch.c LABELS cuda LINK CUDA::toolkit)
  target_compile_definitions(test_gpu_arch_cuda PRIVATE _GNU_SOURCE FERRY_GPU_CUDA
    FERRY_GPU_TARGETS="80-real,90a,100-virtual")
  target_include_directories(test_gpu_arch_cuda PRIVATE ${ferry_gpu_common})

  # CUDA's headers only: the test defines the stream calls it needs.
  ferry_add_core_test(gpu_callback SOURCES test_gpu_callback.c
    ${ferry_gpu_common}/gpu_callback.c ${ferry_gpu_common}/gpu_error.c
    LABELS cuda LINK CUDA::toolkit Threads::Threads)
  target_compile_definitions(test_gpu_callback PRIVATE _GNU_SOURCE FERRY_GPU_CUDA
    FERRY_GPU_TARGETS="test")
  target_include_directories(test_gpu_callback PRIVATE ${ferry_gpu_common})
endif()

if(TARGET ferry-hip)
  get_target_property(ferry_hip_includes ferry-hip INCLUDE_DIRECTORIES)
  ferry_add_backend_test(hip_native SOURCES test_gpu_native.c BACKENDS hip
    LINK ${FERRY_HIP_RUNTIME} Threads::Threads)
  target_compile_definitions(test_hip_native PRIVATE FERRY_GPU_HIP __HIP_PLATFORM_AMD__)
  target_include_directories(test_hip_native PRIVATE ${ferry_hip_includes})
  add_dependencies(test_hip_native ferry-hip)

  ferry_add_core_test(gpu_arch_hip SOURCES test_gpu_arch.c
    ${PROJECT_SOURCE_DIR}/backends/hip/hip_arch.c LABELS hip)
  target_compile_definitions(test_gpu_arch_hip PRIVATE _GNU_SOURCE FERRY_GPU_HIP
    __HIP_PLATFORM_AMD__ FERRY_GPU_TARGETS="gfx908,gfx90a:xnack+")
  target_include_directories(test_gpu_arch_hip PRIVATE ${ferry_hip_includes})
endif()
