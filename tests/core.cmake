# Core behaviour run against every backend present.
ferry_add_backend_test(bad_input SOURCES test_bad_input.c)
ferry_add_backend_test(dlpack SOURCES test_dlpack.c LINK)
target_include_directories(test_dlpack PRIVATE ${PROJECT_SOURCE_DIR}/core)
