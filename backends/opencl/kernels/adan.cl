/* The Adan step on OpenCL (OpenCL C 1.2): a per-tensor reduction of the
 * gradients' squares into partial sums, a one-work-item scalar pass over
 * the control block, and a per-tensor fused update. Operands are byte
 * pointers with element offsets and a ferry_dtype (1 f32, 2 f16, 3 bf16).
 *
 * The control block (ferry_be_adan_control) as 32-bit words: [0] skipped,
 * [1] clip, [2..3] reserved, then per group 8 words from 4 + 8 g: step,
 * master_ready, use_master, reserved, s1, s2, inv_sqrt_bc3, decay. */
#ifdef FERRY_ADAN_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double real;
#else
typedef float real;
#endif

#define ADAN_NO_PROX 1u
#define ADAN_CLIP 2u
#define ADAN_CHECK_FINITE 4u
#define ADAN_MASTER 8u
#define ADAN_LOCAL 64

static float adan_load(__global const uchar *p, ulong i, int dt) {
  if (dt == 1)
    return ((__global const float *)p)[i];
  if (dt == 2)
    return vload_half(i, (__global const half *)p);
  return as_float((uint)((__global const ushort *)p)[i] << 16);
}

static void adan_store(__global uchar *p, ulong i, int dt, float v) {
  if (dt == 1) {
    ((__global float *)p)[i] = v;
  } else if (dt == 2) {
    vstore_half_rte(v, i, (__global half *)p);
  } else {
    uint u = as_uint(v);
    uint r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    if ((u & 0x7fffffffu) > 0x7f800000u)
      r = (u >> 16) | 0x40u; /* NaN stays a (quiet) NaN */
    ((__global ushort *)p)[i] = (ushort)r;
  }
}

/* One partial per work-group: sum of g^2 (float, a fixed tree) and a
 * non-finite flag, at out[first + group]. Local size ADAN_LOCAL. */
__kernel void ferry_adan_reduce(__global const uchar *g, ulong goff, int gdt,
                                ulong n, __global float *sums,
                                __global uint *bad, uint first) {
  __local float ls[ADAN_LOCAL];
  __local uint lb[ADAN_LOCAL];
  float acc = 0.0f;
  uint b = 0;
  for (ulong i = get_global_id(0); i < n; i += get_global_size(0)) {
    float x = adan_load(g, goff + i, gdt);
    acc += x * x;
    b |= isfinite(x) ? 0u : 1u;
  }
  uint l = get_local_id(0);
  ls[l] = acc;
  lb[l] = b;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint s = ADAN_LOCAL / 2; s > 0; s >>= 1) {
    if (l < s) {
      ls[l] += ls[l + s];
      lb[l] |= lb[l + s];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (l == 0) {
    sums[first + get_group_id(0)] = ls[0];
    bad[first + get_group_id(0)] = lb[0];
  }
}

static real adan_pow(real b, uint k) {
  real r = 1;
  while (k) {
    if (k & 1u)
      r *= b;
    b *= b;
    k >>= 1;
  }
  return r;
}

/* One work-item. hyper: beta1, beta2, beta3, eps, max_grad_norm, then lr[g]
 * and weight_decay[g] for each group (reals). */
__kernel void ferry_adan_scalars(__global uint *ctl, __global const real *hyper,
                                 uint groups, uint flags,
                                 __global const float *sums,
                                 __global const uint *bad, uint nparts) {
  real sum = 0;
  uint anybad = 0;
  for (uint i = 0; i < nparts; i++) { /* in order: deterministic */
    sum += sums[i];
    anybad |= bad[i];
  }
  if ((flags & ADAN_CHECK_FINITE) && anybad) {
    ctl[0] = 1u;
    return;
  }
  real b1 = hyper[0], b2 = hyper[1], b3 = hyper[2], eps = hyper[3];
  real clip = 1;
  if (flags & ADAN_CLIP) {
    clip = hyper[4] / (sqrt(sum) + eps);
    clip = clip > 1 ? 1 : clip;
  }
  ctl[0] = 0u;
  ctl[1] = as_uint((float)clip);
  for (uint g = 0; g < groups; g++) {
    __global uint *c = ctl + 4 + 8 * g;
    uint k = ++c[0];
    real lr = hyper[5 + g], wd = hyper[5 + groups + g];
    real bc1 = 1 - adan_pow(b1, k), bc2 = 1 - adan_pow(b2, k);
    real bc3 = 1 - adan_pow(b3, k);
    c[4] = as_uint((float)(lr / bc1));
    c[5] = as_uint((float)(lr * b2 / bc2));
    c[6] = as_uint((float)(1 / sqrt(bc3)));
    c[7] = as_uint(
        (float)((flags & ADAN_NO_PROX) ? 1 - lr * wd : 1 / (1 + lr * wd)));
    c[2] = c[1];
    if (flags & ADAN_MASTER)
      c[1] = 1u;
  }
}

/* The fused update of one tensor. coef: b1, 1-b1, b2, 1-b2, b3, 1-b3, eps
 * (f32, rounded from double on the host). State: m at st[soff], v, n,
 * g_prev and master `stride` floats apart. */
__kernel void ferry_adan_update(__global uchar *p, ulong poff, int pdt,
                                __global const uchar *gr, ulong goff, int gdt,
                                __global float *st, ulong soff, ulong stride,
                                ulong n, __global const uint *ctl, uint group,
                                uint flags, float b1, float omb1, float b2,
                                float omb2, float b3, float omb3, float eps) {
  if (ctl[0] != 0u)
    return; /* skipped: nothing touched */
  __global const uint *c = ctl + 4 + 8 * group;
  const float clip = as_float(ctl[1]);
  const float s1 = as_float(c[4]), s2 = as_float(c[5]);
  const float ibc3 = as_float(c[6]), decay = as_float(c[7]);
  const int first = c[0] == 1u, use_master = c[2] != 0u;
  const int master = (flags & ADAN_MASTER) && pdt != 1;
  __global float *m = st + soff;
  __global float *v = m + stride;
  __global float *nn = v + stride;
  __global float *gp = nn + stride;
  __global float *mw = gp + stride;
  for (ulong i = get_global_id(0); i < n; i += get_global_size(0)) {
    float g = clip * adan_load(gr, goff + i, gdt);
    float d = first ? 0.0f : g - gp[i];
    float mm = b1 * m[i] + omb1 * g;
    float vv = b2 * v[i] + omb2 * d;
    float u = g + b2 * d;
    float n2 = b3 * nn[i] + omb3 * (u * u);
    float den = sqrt(n2) * ibc3 + eps;
    float step = (s1 * mm + s2 * vv) / den;
    float pw = master && use_master ? mw[i] : adan_load(p, poff + i, pdt);
    pw = (flags & ADAN_NO_PROX) ? pw * decay - step : (pw - step) * decay;
    if (master)
      mw[i] = pw;
    adan_store(p, poff + i, pdt, pw);
    m[i] = mm;
    v[i] = vv;
    nn[i] = n2;
    gp[i] = g;
  }
}
