/* ferry's own copy kernel: bytes moved with no other work, the reference a
 * kernel's bandwidth is judged against. Grid-stride, so any global size
 * covers any length. OpenCL C 1.2. */
__kernel void ferry_copy_bytes(__global const uchar *src, ulong src_offset,
                               __global uchar *dst, ulong dst_offset, ulong n) {
  for (ulong i = get_global_id(0); i < n; i += get_global_size(0))
    dst[dst_offset + i] = src[src_offset + i];
}
