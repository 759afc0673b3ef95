/* The cpu norm row kernels at 4 lanes (SSE on x86-64's baseline; whatever
 * 16-byte vectors are elsewhere): the build every CPU runs. */
#define NORM_VW 4
#define NORM_KERNELS cpu_norm_kernels_sse
#include "cpu_norm_rows.h"
