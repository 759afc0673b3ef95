# ferry-bench smoke test: `ferry-bench copy --quick` on each backend, its
# JSON checked by bench/check_results.py (exit 77 where the backend is
# unavailable).
find_package(Python3 COMPONENTS Interpreter)
if(TARGET ferry-bench AND Python3_Interpreter_FOUND)
  foreach(be IN LISTS FERRY_ALL_BACKENDS)
    add_test(NAME bench_copy_${be}
      COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/bench/check_results.py
              $<TARGET_FILE:ferry-bench> ${be}
              ${CMAKE_CURRENT_BINARY_DIR}/bench_copy_${be}.json)
    set_tests_properties(bench_copy_${be} PROPERTIES
      LABELS "${be};bench" SKIP_RETURN_CODE 77 TIMEOUT 300
      ENVIRONMENT "${FERRY_TEST_ENV}")
  endforeach()
endif()
