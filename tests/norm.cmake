# LayerNorm and RMSNorm (include/ferry/norm.h, docs/norm.md): one test body
# run against every backend (norm_<backend>), compared with a float64
# reference; norm_half checks the cpu backend's f16/bf16 conversions
# exhaustively.
ferry_add_backend_test(norm SOURCES test_norm.c LINK m)
ferry_add_backend_test(norm_half SOURCES test_norm_half.c BACKENDS cpu LINK m)
target_include_directories(test_norm_half PRIVATE ${PROJECT_SOURCE_DIR}/backends/cpu)
# The cpu builds (SSE/AVX2/AVX-512) and store paths give the same bits.
ferry_add_backend_test(norm_isa SOURCES test_norm_isa.c BACKENDS cpu)
