/* LayerNorm and RMSNorm, forward and backward (backends/opencl/ops_norm.c).
 * OpenCL C 1.2 with no extension: f16 through vload_half/vstore_half_rte
 * (never a half variable), bf16 as ushort bit patterns.
 *
 * Strategies. Short rows (ops_norm.c picks the bound): one work-item per
 * row, several rows per work-group; PoCL runs a work-group's items as loop
 * iterations, so this is a plain loop over rows. Longer rows: one
 * work-group per row, the row's sums reduced through local memory in a fixed
 * tree. Both loop over rows (grid-stride), so any number of rows fits any
 * grid. Row sums are Kahan-compensated f32 (fp64 is optional in OpenCL).
 *
 * dgamma/dbeta: bwd_partial gives each (column, chunk of rows) one sum,
 * bwd_final adds a column's chunks in chunk order: the same bits on every
 * run, no atomics. */

#define DT_F32 1
#define DT_F16 2
#define DT_BF16 3
#define KIND_LAYER 1

inline float ld(__global const void *p, ulong i, int dt) {
  if (dt == DT_F32)
    return ((__global const float *)p)[i];
  if (dt == DT_BF16)
    return as_float(((uint)((__global const ushort *)p)[i]) << 16);
  return vload_half(i, (__global const half *)p);
}

inline ushort f32_to_bf16(float f) {
  uint u = as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (ushort)((u >> 16) | 0x40u); /* NaN stays NaN (quiet) */
  return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline void st(__global void *p, ulong i, int dt, float v) {
  if (dt == DT_F32)
    ((__global float *)p)[i] = v;
  else if (dt == DT_BF16)
    ((__global ushort *)p)[i] = f32_to_bf16(v);
  else
    vstore_half_rte(v, i, (__global half *)p);
}

/* A parameter (gamma, beta), or `absent` when the pointer is NULL. */
inline float param(__global const void *p, ulong off, int dt, ulong i,
                   float absent) {
  return p ? ld(p, off + i, dt) : absent;
}

/* Kahan-compensated running sum. */
typedef struct {
  float s, c;
} ksum;

inline void kadd(ksum *k, float v) {
  float y = v - k->c;
  float t = k->s + y;
  k->c = (t - k->s) - y;
  k->s = t;
}

/* Sum of v over the work-group, in a fixed tree; every item gets it.
 * Local size is a power of two. */
inline float group_sum(float v, __local float *red) {
  size_t lid = get_local_id(0), ls = get_local_size(0);
  red[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (size_t off = ls / 2; off > 0; off /= 2) {
    if (lid < off)
      red[lid] += red[lid + off];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  float s = red[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return s;
}

/* ---- forward ------------------------------------------------------------- */

/* Row statistics from items [first, cols) stepping `step`: partial sums,
 * then combined by `combine` (identity for one item per row). */
#define FWD_STATS(first, step, COMBINE)                                        \
  do {                                                                         \
    ksum s = {0.0f, 0.0f};                                                     \
    float m = 0.0f;                                                            \
    if (kind == KIND_LAYER) {                                                  \
      for (ulong c = (first); c < cols; c += (step))                           \
        kadd(&s, ld(x, xr + c, dt));                                           \
      m = COMBINE(s.s) / (float)cols;                                          \
    }                                                                          \
    ksum s1 = {0.0f, 0.0f}, s2 = {0.0f, 0.0f};                                 \
    for (ulong c = (first); c < cols; c += (step)) {                           \
      float d = ld(x, xr + c, dt) - m;                                         \
      kadd(&s1, d);                                                            \
      kadd(&s2, d *d);                                                         \
    }                                                                          \
    float t1 = kind == KIND_LAYER ? COMBINE(s1.s) : 0.0f;                      \
    float t2 = COMBINE(s2.s);                                                  \
    float var = (t2 - t1 * t1 / (float)cols) / (float)cols;                    \
    mu = m + t1 / (float)cols;                                                 \
    rs = 1.0f / sqrt(fmax(var, 0.0f) + eps);                                   \
  } while (0)

#define IDENTITY(v) (v)
#define GROUP(v) group_sum((v), red)

#define FWD_ARGS                                                               \
  int kind, float eps, int dt, ulong rows, ulong cols, __global const void *x, \
      ulong x_off, ulong x_ld, __global void *y, ulong y_off, ulong y_ld,      \
      __global const void *g, ulong g_off, int g_dt, __global const void *b,   \
      ulong b_off, int b_dt, __global float *mean, ulong m_off,                \
      __global float *rstd, ulong r_off

#define FWD_WRITE(first, step)                                                 \
  do {                                                                         \
    for (ulong c = (first); c < cols; c += (step)) {                           \
      float v =                                                                \
          (ld(x, xr + c, dt) - mu) * rs * param(g, g_off, g_dt, c, 1.0f);      \
      if (kind == KIND_LAYER)                                                  \
        v += param(b, b_off, b_dt, c, 0.0f);                                   \
      st(y, yr + c, dt, v);                                                    \
    }                                                                          \
  } while (0)

__kernel void ferry_norm_fwd_rows(FWD_ARGS) {
  for (ulong r = get_global_id(0); r < rows; r += get_global_size(0)) {
    ulong xr = x_off + r * x_ld, yr = y_off + r * y_ld;
    float mu, rs;
    FWD_STATS(0, 1, IDENTITY);
    if (kind != KIND_LAYER)
      mu = 0.0f;
    if (mean)
      mean[m_off + r] = mu;
    if (rstd)
      rstd[r_off + r] = rs;
    FWD_WRITE(0, 1);
  }
}

__kernel void ferry_norm_fwd_group(FWD_ARGS, __local float *red) {
  ulong lid = get_local_id(0), ls = get_local_size(0);
  for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
    ulong xr = x_off + r * x_ld, yr = y_off + r * y_ld;
    float mu, rs;
    FWD_STATS(lid, ls, GROUP);
    if (kind != KIND_LAYER)
      mu = 0.0f;
    if (lid == 0 && mean)
      mean[m_off + r] = mu;
    if (lid == 0 && rstd)
      rstd[r_off + r] = rs;
    FWD_WRITE(lid, ls);
  }
}

/* ---- backward: dx -------------------------------------------------------- */

#define BWD_ARGS                                                               \
  int kind, int dt, ulong rows, ulong cols, __global const void *dy,           \
      ulong dy_off, ulong dy_ld, __global const void *x, ulong x_off,          \
      ulong x_ld, __global const void *g, ulong g_off, int g_dt,               \
      __global const float *mean, ulong m_off, __global const float *rstd,     \
      ulong r_off, __global void *dx, ulong dx_off, ulong dx_ld

#define BWD_ROW(first, step, COMBINE)                                          \
  do {                                                                         \
    ulong xr = x_off + r * x_ld, dyr = dy_off + r * dy_ld,                     \
          dxr = dx_off + r * dx_ld;                                            \
    float m = kind == KIND_LAYER ? mean[m_off + r] : 0.0f;                     \
    float rs = rstd[r_off + r];                                                \
    ksum a1 = {0.0f, 0.0f}, a2 = {0.0f, 0.0f};                                 \
    for (ulong c = (first); c < cols; c += (step)) {                           \
      float xh = (ld(x, xr + c, dt) - m) * rs;                                 \
      float gd = ld(dy, dyr + c, dt) * param(g, g_off, g_dt, c, 1.0f);         \
      kadd(&a1, gd);                                                           \
      kadd(&a2, gd *xh);                                                       \
    }                                                                          \
    float c1 = kind == KIND_LAYER ? COMBINE(a1.s) / (float)cols : 0.0f;        \
    float c2 = COMBINE(a2.s) / (float)cols;                                    \
    for (ulong c = (first); c < cols; c += (step)) {                           \
      float xh = (ld(x, xr + c, dt) - m) * rs;                                 \
      float gd = ld(dy, dyr + c, dt) * param(g, g_off, g_dt, c, 1.0f);         \
      st(dx, dxr + c, dt, rs * (gd - xh * c2 - c1));                           \
    }                                                                          \
  } while (0)

__kernel void ferry_norm_bwd_rows(BWD_ARGS) {
  for (ulong r = get_global_id(0); r < rows; r += get_global_size(0))
    BWD_ROW(0, 1, IDENTITY);
}

__kernel void ferry_norm_bwd_group(BWD_ARGS, __local float *red) {
  ulong lid = get_local_id(0), ls = get_local_size(0);
  for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0))
    BWD_ROW(lid, ls, GROUP);
}

/* ---- backward: dgamma, dbeta ----------------------------------------------
 */

/* Item (column, chunk): the chunk's sums of dy * xhat and dy for the column,
 * into pg / pb[chunk * cols + column] (either may be NULL). */
__kernel void ferry_norm_bwd_partial(int kind, int dt, ulong rows, ulong cols,
                                     ulong chunk_rows, __global const void *dy,
                                     ulong dy_off, ulong dy_ld,
                                     __global const void *x, ulong x_off,
                                     ulong x_ld, __global const float *mean,
                                     ulong m_off, __global const float *rstd,
                                     ulong r_off, __global float *pg,
                                     __global float *pb) {
  ulong c = get_global_id(0), chunk = get_global_id(1);
  if (c >= cols)
    return;
  ulong r0 = chunk * chunk_rows;
  ulong r1 = min(rows, r0 + chunk_rows);
  ksum sg = {0.0f, 0.0f}, sb = {0.0f, 0.0f};
  for (ulong r = r0; r < r1; r++) {
    float m = kind == KIND_LAYER ? mean[m_off + r] : 0.0f;
    float xh = (ld(x, x_off + r * x_ld + c, dt) - m) * rstd[r_off + r];
    float d = ld(dy, dy_off + r * dy_ld + c, dt);
    kadd(&sg, d * xh);
    kadd(&sb, d);
  }
  if (pg)
    pg[chunk * cols + c] = sg.s;
  if (pb)
    pb[chunk * cols + c] = sb.s;
}

/* Item (column): the chunks' partials in chunk order, written or added to
 * dgamma / dbeta (either may be NULL). */
__kernel void ferry_norm_bwd_final(ulong cols, ulong chunks, int accumulate,
                                   __global const float *pg,
                                   __global const float *pb, __global void *dg,
                                   ulong dg_off, int dg_dt, __global void *db,
                                   ulong db_off, int db_dt) {
  ulong c = get_global_id(0);
  if (c >= cols)
    return;
  if (dg) {
    ksum s = {0.0f, 0.0f};
    for (ulong k = 0; k < chunks; k++)
      kadd(&s, pg[k * cols + c]);
    float v = accumulate ? ld(dg, dg_off + c, dg_dt) + s.s : s.s;
    st(dg, dg_off + c, dg_dt, v);
  }
  if (db) {
    ksum s = {0.0f, 0.0f};
    for (ulong k = 0; k < chunks; k++)
      kadd(&s, pb[k * cols + c]);
    float v = accumulate ? ld(db, db_off + c, db_dt) + s.s : s.s;
    st(db, db_off + c, db_dt, v);
  }
}
