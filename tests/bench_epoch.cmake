# ferry-bench's end-to-end epoch smoke test: `ferry-bench epoch --quick` on
# each backend, its records checked by bench/epoch_check.py (exit 77 where
# the backend is unavailable). About 5 s on cpu.
find_package(Python3 COMPONENTS Interpreter)
if(TARGET ferry-bench AND Python3_Interpreter_FOUND)
  foreach(be IN LISTS FERRY_ALL_BACKENDS)
    add_test(NAME bench_epoch_${be}
      COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/bench/epoch_check.py
              $<TARGET_FILE:ferry-bench> ${be}
              ${CMAKE_CURRENT_BINARY_DIR}/bench_epoch_${be}.json)
    set_tests_properties(bench_epoch_${be} PROPERTIES
      LABELS "${be};bench" SKIP_RETURN_CODE 77 TIMEOUT 300
      ENVIRONMENT "${FERRY_TEST_ENV}")
  endforeach()
endif()
