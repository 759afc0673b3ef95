# Topology snapshots, the selection decision, host memory placement, and
# ferry-info (see docs/topology.md).
ferry_add_core_test(topology SOURCES test_topology.c LABELS topology)
ferry_add_core_test(selection SOURCES test_selection.c LABELS topology)
ferry_add_core_test(no_vendor_maps SOURCES test_no_vendor_maps.c LABELS topology)
ferry_add_core_test(topology_host_memory SOURCES test_topology_host_memory.c
  LABELS topology LINK PkgConfig::HWLOC)

# Selection through the loader: stub plugins (tests/loader.cmake) posing as
# the vendor backends at the bus ids of the real topologies.
if(COMMAND ferry_stub_plugin AND DEFINED FERRY_STUB_DIR)
  ferry_stub_plugin(no-cuda hip 0)
  ferry_stub_plugin(no-cuda opencl 0)
  ferry_add_core_test(selection_stub SOURCES test_selection_stub.c
    LABELS topology ENVIRONMENT "FERRY_STUB_DIR=${FERRY_STUB_DIR}")
  foreach(stub stub_as_vendors_cuda stub_as_vendors_hip stub_as_vendors_opencl
               stub_no_cuda_hip stub_no_cuda_opencl)
    if(TARGET ${stub})
      add_dependencies(test_selection_stub ${stub})
    endif()
  endforeach()
endif()

# ferry-info's JSON, read back with Python's json module.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET ferry-info)
  set(ferry_info_check ${CMAKE_CURRENT_SOURCE_DIR}/test_topology_ferry_info.py)
  add_test(NAME ferry_info_topologies
    COMMAND Python3::Interpreter ${ferry_info_check} topologies
            $<TARGET_FILE:ferry-info> ${PROJECT_SOURCE_DIR}/../shared/data/topologies)
  add_test(NAME ferry_info_machine
    COMMAND Python3::Interpreter ${ferry_info_check} machine
            $<TARGET_FILE:ferry-info>)
  set_tests_properties(ferry_info_topologies ferry_info_machine PROPERTIES
    LABELS "core;topology" SKIP_RETURN_CODE 77 TIMEOUT 300
    ENVIRONMENT "${FERRY_TEST_ENV}")
endif()
