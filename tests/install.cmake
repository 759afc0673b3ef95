# Installs the built tree into a scratch prefix and builds a consumer against
# it with find_package(ferry) and with pkg-config (tests/install/run.sh).
# CTest runs after the build, so the tree being installed is complete.
add_test(NAME install
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install/run.sh
          ${PROJECT_BINARY_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/install/consumer
          ${CMAKE_CURRENT_BINARY_DIR}/install-test ${CMAKE_C_COMPILER}
          "${FERRY_SANITIZE}")
set_tests_properties(install PROPERTIES LABELS install TIMEOUT 300)
