/* The cpu norm row kernels at 16 lanes for CPUs with AVX-512 (F and BW),
 * compiled for it here alone (the rest of ferry keeps the baseline ISA);
 * cpu_norm.c picks them when __builtin_cpu_supports says so. They give the
 * same bits as the SSE and AVX2 builds (cpu_norm_rows.h): AVX-512F has
 * fused multiply-adds of its own, but the build is ISO C (-std=c11:
 * GCC does not contract) and clang is told not to. */
#include "cpu_norm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")
#define NORM_VW 16
#define NORM_KERNELS cpu_norm_kernels_avx512_table
extern const cpu_norm_kernels cpu_norm_kernels_avx512_table;
#include "cpu_norm_rows.h"
const cpu_norm_kernels *const cpu_norm_kernels_avx512 =
    &cpu_norm_kernels_avx512_table;
#else
const cpu_norm_kernels *const cpu_norm_kernels_avx512 = NULL;
#endif
