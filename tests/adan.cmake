# The fused Adan step (include/ferry/adan.h) on every backend, against a
# float64 reference written in the test; `ctest -R adan`.
ferry_add_backend_test(adan SOURCES test_adan.c)
target_link_libraries(test_adan PRIVATE m)
