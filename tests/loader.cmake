# The loader, ABI and dispatch tests, driven by the stub plugin built under
# several names and defects, each into its own directory so that a test picks
# the set it wants with FERRY_PLUGIN_PATH.
set(FERRY_STUB_DIR ${PROJECT_BINARY_DIR}/tests/plugins)

# ferry_stub_plugin(<dir> <name> <variant> [<entry symbol>])
function(ferry_stub_plugin dir name variant)
  set(entry ferry_backend_${name}_entry)
  if(ARGC GREATER 3)
    set(entry ${ARGV3})
  endif()
  string(MAKE_C_IDENTIFIER "stub_${dir}_${name}" target)
  add_library(${target} MODULE ${CMAKE_CURRENT_SOURCE_DIR}/stub_backend/stub_backend.c)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE
    STUB_NAME="${name}" STUB_VARIANT=${variant} STUB_ENTRY=${entry})
  set_target_properties(${target} PROPERTIES PREFIX "" OUTPUT_NAME "libferry-${name}"
    LIBRARY_OUTPUT_DIRECTORY ${FERRY_STUB_DIR}/${dir})
  ferry_target_defaults(${target})
  add_dependencies(test_loader ${target})
endfunction()

ferry_add_core_test(loader SOURCES test_loader.c LABELS loader
  ENVIRONMENT "FERRY_STUB_DIR=${FERRY_STUB_DIR}")
ferry_stub_plugin(good stub 0)
ferry_stub_plugin(dup1 stub 0)
ferry_stub_plugin(dup2 stub 0)
ferry_stub_plugin(reject badabi 1)
ferry_stub_plugin(reject short 2)
ferry_stub_plugin(reject flags 3)
ferry_stub_plugin(reject initfails 4)
ferry_stub_plugin(reject wrongname 5)
ferry_stub_plugin(reject nulltable 6)
ferry_stub_plugin(reject noentry 0 ferry_backend_misspelled_entry)
ferry_stub_plugin(reject good 0)
ferry_stub_plugin(reject abi10 7)
# The stub posing as the device backends, for selection tests on real
# topologies: it reports whatever devices FERRY_STUB_DEVICES lists.
foreach(be cuda hip opencl)
  ferry_stub_plugin(as-vendors ${be} 0)
endforeach()
