/* ferry_gather on OpenCL C 1.2: `lanes` work-items per row (1 on a CPU
 * device, where one work-item streaming a row is best; 32 on a GPU), rows
 * grid-strided so a capped grid still covers every id. A table larger than
 * the device's maximum allocation comes in pieces: one launch per piece,
 * each copying the rows whose id lies in [lo, hi); the launch with `first`
 * set zero-fills rows of ids outside [0, rows) and records the first such
 * position in *bad (atomic_min; positions past 2^32 - 2 are clamped).
 * f16 is read with vload_half (no cl_khr_fp16 needed), bf16 as ushort. */

inline long ferry_load_id(__global const uchar *ids, ulong i, uint ids64) {
  return ids64 ? ((__global const long *)ids)[i]
               : (long)((__global const int *)ids)[i];
}

inline float ferry_bf16(ushort h) {
  return as_float((uint)h << 16);
}

#define FERRY_GATHER_KERNEL(NAME, TIN, TOUT, LOAD)                             \
  __kernel void NAME(__global const TIN *table, ulong lo, ulong hi,            \
                     ulong rows, ulong cols, __global const uchar *ids_base,   \
                     ulong ids_offset, uint ids64, ulong n,                    \
                     __global TOUT *out_base, ulong out_offset, uint lanes,    \
                     uint first, __global uint *bad) {                         \
    __global const uchar *ids = ids_base + ids_offset;                         \
    __global TOUT *out = out_base + out_offset;                                \
    ulong gid = get_global_id(0);                                              \
    ulong step = get_global_size(0) / lanes;                                   \
    ulong lane = gid % lanes;                                                  \
    for (ulong i = gid / lanes; i < n; i += step) {                            \
      long id = ferry_load_id(ids, i, ids64);                                  \
      __global TOUT *o = out + i * cols;                                       \
      if (id < 0 || (ulong)id >= rows) {                                       \
        if (first) {                                                           \
          for (ulong c = lane; c < cols; c += lanes)                           \
            o[c] = (TOUT)0;                                                    \
          if (lane == 0)                                                       \
            atomic_min(bad, (uint)min(i, (ulong)0xfffffffeu));                 \
        }                                                                      \
        continue;                                                              \
      }                                                                        \
      if ((ulong)id < lo || (ulong)id >= hi)                                   \
        continue;                                                              \
      __global const TIN *r = table + ((ulong)id - lo) * cols;                 \
      for (ulong c = lane; c < cols; c += lanes)                               \
        o[c] = LOAD;                                                           \
    }                                                                          \
  }

FERRY_GATHER_KERNEL(ferry_gather_u32, uint, uint, r[c])
FERRY_GATHER_KERNEL(ferry_gather_u16, ushort, ushort, r[c])
FERRY_GATHER_KERNEL(ferry_gather_f16_f32, ushort, float,
                    vload_half(c, (__global const half *)r))
FERRY_GATHER_KERNEL(ferry_gather_bf16_f32, ushort, float, ferry_bf16(r[c]))
