# Graphs, the neighbor sampler and the hard-batch selector (issue #5):
#   sample_<backend>         blocks against a reference, statistics, the same
#                            sample for every thread count and backend;
#   graph_<backend>          CSR checks, edge lists, R-MAT, Cora's counts;
#   sample_philox            Philox4x32-10 known answers, unbiased draws;
#   sample_philox_opencl     the OpenCL copy of the draws agrees bit for bit;
#   selector                 the hard-batch selector on scripted losses.
ferry_add_backend_test(sample SOURCES test_sample.c)
ferry_add_backend_test(graph SOURCES test_graph.c)
ferry_add_core_test(sample_philox SOURCES test_sample_philox.c)
ferry_add_core_test(selector SOURCES test_selector.c)
if(TARGET ferry-opencl)
  add_dependencies(test_sample ferry-opencl)
  add_dependencies(test_graph ferry-opencl)
endif()
if(TARGET ferry-opencl-program)
  find_package(OpenCL REQUIRED)
  ferry_add_core_test(sample_philox_opencl SOURCES test_sample_philox_opencl.c
    LABELS opencl LINK ferry-opencl-program OpenCL::OpenCL)
endif()
