/* Neighbor sampling kernels, OpenCL C 1.2. The draws are a copy of
 * core/philox.h (an embedded program cannot include it): Philox4x32-10,
 * the per-node word stream, Lemire's bounded draw and the node's positions.
 * tests/test_sample_philox_opencl.c and the sampler's cross-backend test
 * check that the copies agree bit for bit.
 *
 * Every buffer argument comes with an element offset (the operand's byte
 * offset / element size). No 64-bit atomics are used. */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static uint4 philox4x32_10(uint4 c, uint2 k) {
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k.x += PHILOX_W0;
      k.y += PHILOX_W1;
    }
    uint hi0 = mul_hi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
    uint hi1 = mul_hi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
    c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}

typedef struct rng {
  uint2 key;
  uint4 ctr;
  uint4 buf;
  uint used;
} rng;

static void rng_init(rng *r, ulong seed, uint batch_id, uint layer,
                     ulong node) {
  r->key = (uint2)((uint)seed, (uint)(seed >> 32));
  r->ctr = (uint4)(0u, (uint)node,
                   ((uint)(node >> 32) & 0xFFFFu) | (layer << 16), batch_id);
  r->used = 4;
}

static uint rng_next(rng *r) {
  if (r->used == 4) {
    r->buf = philox4x32_10(r->ctr, r->key);
    r->ctr.x++;
    r->used = 0;
  }
  uint w = r->used == 0   ? r->buf.x
           : r->used == 1 ? r->buf.y
           : r->used == 2 ? r->buf.z
                          : r->buf.w;
  r->used++;
  return w;
}

/* Lemire's multiply-shift with rejection, range in [1, 2^32). */
static uint rng_below(rng *r, uint range) {
  for (;;) {
    ulong m = (ulong)rng_next(r) * range;
    uint low = (uint)m;
    if (low >= range || low >= (uint)(-range) % range)
      return (uint)(m >> 32);
  }
}

static long sample_count(long deg, long fanout, int replace) {
  if (fanout < 0)
    return deg;
  if (replace)
    return deg > 0 ? fanout : 0;
  return deg < fanout ? deg : fanout;
}

/* core/philox.h's ferry_sample_positions. */
static void sample_positions(ulong seed, uint batch_id, uint layer, ulong node,
                             long deg, long fanout, int replace,
                             __global long *out) {
  long k = sample_count(deg, fanout, replace);
  if (fanout < 0 || (!replace && deg <= fanout)) {
    for (long j = 0; j < k; j++)
      out[j] = j;
    return;
  }
  rng r;
  rng_init(&r, seed, batch_id, layer, node);
  if (replace) {
    for (long j = 0; j < k; j++)
      out[j] = (long)rng_below(&r, (uint)deg);
    return;
  }
  long taken = 0;
  for (long j = deg - k; j < deg; j++) {
    long t = (long)rng_below(&r, (uint)(j + 1));
    for (long i = 0; i < taken; i++)
      if (out[i] == t) {
        t = j;
        break;
      }
    out[taken++] = t;
  }
}

/* out[i + 1] = the number of neighbors frontier node i gets. */
__kernel void ferry_sample_count(__global const long *offsets, ulong off_o,
                                 __global const long *frontier, ulong fr_o,
                                 ulong n, long num_nodes, long fanout,
                                 int replace, __global long *out, ulong out_o) {
  ulong i = get_global_id(0);
  if (i >= n)
    return;
  long v = frontier[fr_o + i];
  long c = 0;
  if (v >= 0 && v < num_nodes)
    c = sample_count(offsets[off_o + v + 1] - offsets[off_o + v], fanout,
                     replace);
  out[out_o + i + 1] = c;
}

/* Inclusive prefix sum over out[1..n], out[0] = 0: one work item (the
 * frontier's counts are a few thousand to a million values). */
__kernel void ferry_sample_scan(__global long *out, ulong out_o, ulong n) {
  if (get_global_id(0) != 0)
    return;
  out[out_o] = 0;
  for (ulong i = 1; i <= n; i++)
    out[out_o + i] += out[out_o + i - 1];
}

#define PICK_KERNEL(NAME, COL)                                                 \
  __kernel void NAME(__global const long *offsets, ulong off_o,                \
                     __global const COL *cols, ulong col_o,                    \
                     __global const long *frontier, ulong fr_o, ulong n,       \
                     long num_nodes, __global const long *eoff, ulong eoff_o,  \
                     __global long *out, ulong out_o, ulong seed,              \
                     uint batch_id, uint layer, long fanout, int replace) {    \
    ulong i = get_global_id(0);                                                \
    if (i >= n)                                                                \
      return;                                                                  \
    long v = frontier[fr_o + i];                                               \
    long first = eoff[eoff_o + i], k = eoff[eoff_o + i + 1] - first;           \
    if (k == 0 || v < 0 || v >= num_nodes)                                     \
      return;                                                                  \
    long row = offsets[off_o + v], deg = offsets[off_o + v + 1] - row;         \
    __global long *o = out + out_o + first;                                    \
    sample_positions(seed, batch_id, layer, (ulong)v, deg, fanout, replace,    \
                     o);                                                       \
    for (long j = 0; j < k; j++)                                               \
      o[j] = (long)cols[col_o + row + o[j]];                                   \
  }
PICK_KERNEL(ferry_sample_pick_i32, int)
PICK_KERNEL(ferry_sample_pick_i64, long)

static ulong id_hash(ulong x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ul;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBul;
  return x ^ (x >> 31);
}

static long relabel_one(__global long *table, ulong mask, long key,
                        __global long *src, long *next) {
  ulong h = id_hash((ulong)key) & mask;
  for (;;) {
    __global long *slot = table + 2 * h;
    if (slot[0] == key)
      return slot[1];
    if (slot[0] == -1) {
      slot[0] = key;
      slot[1] = *next;
      src[*next] = key;
      return (*next)++;
    }
    h = (h + 1) & mask;
  }
}

/* First-occurrence numbering of frontier then neighbors: one work item, in
 * order (what makes the numbering the same as cpu's). */
__kernel void ferry_sample_relabel(__global const long *frontier, ulong fr_o,
                                   ulong n, __global const long *nbrs,
                                   ulong nb_o, ulong e, __global long *table,
                                   ulong tab_o, ulong slots, __global long *src,
                                   ulong src_o, __global long *local_ids,
                                   ulong loc_o, __global long *num_src,
                                   ulong ns_o) {
  if (get_global_id(0) != 0)
    return;
  table += tab_o;
  src += src_o;
  for (ulong i = 0; i < 2 * slots; i++)
    table[i] = -1;
  long next = 0;
  for (ulong i = 0; i < n; i++)
    (void)relabel_one(table, slots - 1, frontier[fr_o + i], src, &next);
  for (ulong j = 0; j < e; j++)
    local_ids[loc_o + j] =
        relabel_one(table, slots - 1, nbrs[nb_o + j], src, &next);
  num_src[ns_o] = next;
}

/* Test hook: Philox4x32-10 of count (ctr[4], key[2]) vectors, and the
 * bounded draws of a node's stream. */
__kernel void ferry_sample_philox_kat(__global const uint *in,
                                      __global uint *out, uint count) {
  uint i = get_global_id(0);
  if (i >= count)
    return;
  uint4 c = (uint4)(in[6 * i], in[6 * i + 1], in[6 * i + 2], in[6 * i + 3]);
  uint2 k = (uint2)(in[6 * i + 4], in[6 * i + 5]);
  uint4 r = philox4x32_10(c, k);
  out[4 * i] = r.x;
  out[4 * i + 1] = r.y;
  out[4 * i + 2] = r.z;
  out[4 * i + 3] = r.w;
}

__kernel void ferry_sample_positions_test(ulong seed, uint batch_id, uint layer,
                                          long deg, long fanout, int replace,
                                          ulong nodes, __global long *out) {
  ulong v = get_global_id(0);
  if (v >= nodes)
    return;
  long k = sample_count(deg, fanout, replace);
  sample_positions(seed, batch_id, layer, v, deg, fanout, replace,
                   out + v * (ulong)k);
}
