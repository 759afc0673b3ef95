# The host code shared by the cuda and hip plugins, and how each plugin is
# assembled from it (included by backends/cuda and backends/hip).
#
#   ferry_add_gpu_plugin(<name>
#     IMAGE <kernel image> IMAGE_TARGET <target making it>
#     TARGETS <architecture list> MIN_MAJOR <n> MIN_MINOR <n>
#     SOURCES <vendor files> [DEFINITIONS ...] [INCLUDES ...] [LINK ...])
#
# builds libferry-<name>.so from gpu_common/gpu_*.c (compiled with the
# vendor's definitions) plus the vendor's own files, embedding the kernel
# image (see gpu_kernel_image.c).

set(FERRY_GPU_COMMON_DIR ${CMAKE_CURRENT_LIST_DIR})
file(GLOB FERRY_GPU_COMMON_SOURCES CONFIGURE_DEPENDS ${FERRY_GPU_COMMON_DIR}/gpu_*.c)
file(GLOB FERRY_GPU_KERNEL_SOURCES CONFIGURE_DEPENDS
  ${FERRY_GPU_COMMON_DIR}/kernels/*.cuh ${FERRY_GPU_COMMON_DIR}/kernels/*.h)

function(ferry_add_gpu_plugin name)
  cmake_parse_arguments(G "" "IMAGE;IMAGE_TARGET;TARGETS;MIN_MAJOR;MIN_MINOR"
    "SOURCES;DEFINITIONS;INCLUDES;LINK" ${ARGN})
  ferry_add_plugin(${name} SOURCES ${FERRY_GPU_COMMON_SOURCES} ${G_SOURCES} LINK ${G_LINK})
  set(t ferry-${name})
  # A list inside one definition would be split by CMake: commas in C.
  string(REPLACE ";" "," targets "${G_TARGETS}")
  target_include_directories(${t} PRIVATE ${FERRY_GPU_COMMON_DIR} ${G_INCLUDES})
  target_compile_definitions(${t} PRIVATE _GNU_SOURCE ${G_DEFINITIONS}
    FERRY_GPU_TARGETS="${targets}"
    FERRY_GPU_MIN_CAP_MAJOR=${G_MIN_MAJOR}u
    FERRY_GPU_MIN_CAP_MINOR=${G_MIN_MINOR}u
    FERRY_GPU_KERNEL_IMAGE="${G_IMAGE}")
  # The image is assembled into this object: rebuild it when the image
  # changes.
  set_source_files_properties(${FERRY_GPU_COMMON_DIR}/gpu_kernel_image.c
    PROPERTIES OBJECT_DEPENDS ${G_IMAGE})
  add_dependencies(${t} ${G_IMAGE_TARGET})
endfunction()
