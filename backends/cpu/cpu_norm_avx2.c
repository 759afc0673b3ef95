/* The cpu norm row kernels at 8 lanes for CPUs with AVX2, compiled for it
 * here alone (the rest of ferry keeps the baseline ISA); cpu_norm.c picks
 * them when __builtin_cpu_supports("avx2") says so. FMA is deliberately not
 * enabled: all builds must give the same bits. */
#include "cpu_norm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#pragma GCC target("avx2")
#define NORM_VW 8
#define NORM_KERNELS cpu_norm_kernels_avx2_table
extern const cpu_norm_kernels cpu_norm_kernels_avx2_table;
#include "cpu_norm_rows.h"
const cpu_norm_kernels *const cpu_norm_kernels_avx2 =
    &cpu_norm_kernels_avx2_table;
#else
const cpu_norm_kernels *const cpu_norm_kernels_avx2 = NULL;
#endif
