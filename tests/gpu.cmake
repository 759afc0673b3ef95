# The cuda and hip plugins' tests (labels "cuda" and "hip": `ctest -L cuda`).
#   gpu_memory_<be>   buffers in every space, copies between all of them,
#                     fills, the caller's memory registered in place (also in
#                     chunks), device memory exhausted;
#   gpu_streams_<be>  stream order, host functions and their errors, events,
#                     waits across streams, wrapped streams, streams destroyed
#                     with work queued, threads, fork;
#   <be>_native_<be>  next to the vendor's runtime: its streams and pinned
#                     memory wrapped, the caller's current device kept, ferry's
#                     native handles used by the runtime.
# Each is built only where its plugin is; without a device they exit 77 with
# the runtime's reason (ctest: "Skipped"). Each Criterion test is a process
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

# The vendor-specific test links the vendor's runtime itself, as a framework
# would (the plugin carries its own static copy of cudart).
if(TARGET ferry-cuda)
  # Imported targets are per directory: find the toolkit again (cached).
  find_package(CUDAToolkit REQUIRED)
  ferry_add_backend_test(cuda_native SOURCES test_gpu_native.c BACKENDS cuda
    LINK CUDA::cudart Threads::Threads)
  target_compile_definitions(test_cuda_native PRIVATE FERRY_GPU_CUDA)
  target_include_directories(test_cuda_native PRIVATE ${PROJECT_SOURCE_DIR}/backends/gpu_common)
  add_dependencies(test_cuda_native ferry-cuda)
endif()
if(TARGET ferry-hip)
  ferry_add_backend_test(hip_native SOURCES test_gpu_native.c BACKENDS hip
    LINK ${FERRY_HIP_RUNTIME} Threads::Threads)
  target_compile_definitions(test_hip_native PRIVATE FERRY_GPU_HIP __HIP_PLATFORM_AMD__)
  get_target_property(ferry_hip_includes ferry-hip INCLUDE_DIRECTORIES)
  target_include_directories(test_hip_native PRIVATE ${ferry_hip_includes})
  add_dependencies(test_hip_native ferry-hip)
endif()

# The architecture judgement of each plugin, compiled into a test with a
# target list of its own: runs anywhere (made-up device properties).
if(TARGET ferry-cuda)
  ferry_add_core_test(gpu_arch_cuda SOURCES test_gpu_arch.c
    ${PROJECT_SOURCE_DIR}/backends/cuda/cuda_arch.c LABELS cuda LINK CUDA::toolkit)
  target_compile_definitions(test_gpu_arch_cuda PRIVATE _GNU_SOURCE FERRY_GPU_CUDA
    FERRY_GPU_TARGETS="80-real,90a,100-virtual")
  target_include_directories(test_gpu_arch_cuda PRIVATE ${PROJECT_SOURCE_DIR}/backends/gpu_common)
endif()
if(TARGET ferry-hip)
  ferry_add_core_test(gpu_arch_hip SOURCES test_gpu_arch.c
    ${PROJECT_SOURCE_DIR}/backends/hip/hip_arch.c LABELS hip)
  target_compile_definitions(test_gpu_arch_hip PRIVATE _GNU_SOURCE FERRY_GPU_HIP
    __HIP_PLATFORM_AMD__ FERRY_GPU_TARGETS="gfx908,gfx90a:xnack+")
  target_include_directories(test_gpu_arch_hip PRIVATE ${ferry_hip_includes}
    ${PROJECT_SOURCE_DIR}/backends/gpu_common)
endif()
