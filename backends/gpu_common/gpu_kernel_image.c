/* The kernel image, embedded in the plugin's read-only data.
 *
 * FERRY_GPU_KERNEL_IMAGE is the path of the image the build made from
 * kernels/ferry_kernels.cuh (nvcc --fatbin for CUDA, hipcc --genco for HIP);
 * the build makes this file depend on it. The assembler's .incbin copies it
 * byte for byte, however large, without a generated C array. The runtimes
 * read the image in place, so it is aligned as a loaded ELF would be. */

#ifndef FERRY_GPU_KERNEL_IMAGE
#error "the build passes FERRY_GPU_KERNEL_IMAGE, the kernel image's path"
#endif

/* Declared here too, so that the file is a C translation unit in its own
 * right; gpu_kernels.c reads it. */
extern const unsigned char ferry_gpu_kernel_image[];

__asm__(".pushsection .rodata\n"
        ".balign 4096\n"
        ".globl ferry_gpu_kernel_image\n"
        ".hidden ferry_gpu_kernel_image\n"
        ".type ferry_gpu_kernel_image, @object\n"
        "ferry_gpu_kernel_image:\n"
        ".incbin \"" FERRY_GPU_KERNEL_IMAGE "\"\n"
        ".byte 0\n" /* a PTX image would need its terminator */
        ".size ferry_gpu_kernel_image, . - ferry_gpu_kernel_image\n"
        ".popsection\n");
