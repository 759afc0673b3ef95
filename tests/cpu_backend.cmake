# The built-in cpu backend (backends/cpu).
ferry_add_backend_test(cpu_streams SOURCES test_cpu_streams.c BACKENDS cpu)

# Its hwloc list parser, compiled into the test on its own.
ferry_add_backend_test(cpu_cpuset
  SOURCES test_cpu_cpuset.c ${PROJECT_SOURCE_DIR}/backends/cpu/cpu_cpuset.c
  BACKENDS cpu)
target_include_directories(test_cpu_cpuset PRIVATE ${PROJECT_SOURCE_DIR}/backends/cpu)

# Its MODULE build, driven through the plugin ABI without the core.
if(TARGET ferry-cpu-module)
  ferry_add_backend_test(cpu_module SOURCES test_cpu_module.c BACKENDS cpu
    LINK ${CMAKE_DL_LIBS} Threads::Threads)
  add_dependencies(test_cpu_module ferry-cpu-module)
endif()
