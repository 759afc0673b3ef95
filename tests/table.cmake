# Feature tables and ferry_gather (include/ferry/table.h, docs/table.md):
# every backend; cuda and hip skip (exit 77) where no device is present.
ferry_add_backend_test(table SOURCES test_table.c LINK m)
if(TARGET ferry-opencl)
  add_dependencies(test_table ferry-opencl)
endif()
