# The minibatch loader (include/ferry/loader.h, docs/loader.md):
#   batch_loader_<backend>  every batch against sequential ferry_sample and
#                           the table's rows; orders, depths, cancellation,
#                           errors from inside the pipeline, bad arguments.
#   example_loader          builds examples/ against the installed package
#                           (find_package(ferry)) and runs one epoch.
ferry_add_backend_test(batch_loader SOURCES test_batch_loader.c)
if(TARGET ferry-opencl)
  add_dependencies(test_batch_loader ferry-opencl)
endif()
add_test(NAME example_loader
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install/example.sh
          ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR}/examples
          ${CMAKE_CURRENT_BINARY_DIR}/example-test ${CMAKE_C_COMPILER}
          "${FERRY_SANITIZE}" ${PROJECT_SOURCE_DIR}/../shared/data/graphs/cora/cora)
set_tests_properties(example_loader PROPERTIES LABELS install TIMEOUT 300
  ENVIRONMENT "POCL_CACHE_DIR=${PROJECT_BINARY_DIR}/pocl-cache;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan.supp:print_suppressions=0")
