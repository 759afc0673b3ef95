/* Between the emulated CUDA runtime (emu_runtime.c, C) and the kernels run
 * on the CPU (emu_kernels.cpp, C++). */
#ifndef FERRY_EMU_H
#define FERRY_EMU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_emu_kernel ferry_emu_kernel;

/* The kernel named `name` ("ferry_k_..."), or NULL. */
const ferry_emu_kernel *ferry_emu_kernel_find(const char *name);
const char *ferry_emu_kernel_name(const ferry_emu_kernel *k);

/* Copies the launch's arguments (args[i] points to parameter i, as for
 * cudaLaunchKernel): they must outlive the call, since the launch runs
 * later in stream order. NULL when out of memory. */
void *ferry_emu_kernel_pack(const ferry_emu_kernel *k, void **args);
void ferry_emu_kernel_unpack_free(const ferry_emu_kernel *k, void *packed);

/* Runs the launch on this thread. 0 on success; otherwise why the kernel
 * could not finish (a barrier or shuffle some threads never reached) in
 * `why`. */
int ferry_emu_kernel_run(const ferry_emu_kernel *k, const void *packed,
                         uint32_t grid, uint32_t block, uint32_t shared_bytes,
                         char *why, size_t why_size);

/* The warp width the kernels were built for. */
int ferry_emu_warp_size(void);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_EMU_H */
