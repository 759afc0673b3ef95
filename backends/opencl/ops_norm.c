/* norm_forward and norm_backward on OpenCL (kernels/norm.cl).
 *
 * Operands: device memory is its cl_mem; pinned host memory its registered
 * cl_mem; a caller's host pointer or ferry host memory is wrapped for the
 * call in a CL_MEM_USE_HOST_PTR buffer (zero-copy where the device shares
 * host memory, as PoCL does). Host-side outputs are mapped and unmapped
 * after the kernels, which is where a driver that keeps a device copy of
 * such buffers must write the results back.
 *
 * Rows of at most OCL_NORM_ROW_ITEM_COLS columns (OCL_NORM_ROW_ITEM_COLS_CPU
 * on a CPU device) run one per work-item (several rows per work-group);
 * longer rows one per work-group. dgamma and
 * dbeta come from per-chunk partial sums (a temporary buffer) added in a
 * fixed order by a second kernel. Everything that can fail (buffers,
 * kernels, arguments) is prepared before the first command is enqueued. */
#include "internal.h"
#include "kernel_sources.h"

#include <stdlib.h>
#include <string.h>

#define OCL_NORM_ROW_ITEM_COLS 64
#define OCL_NORM_ROW_ITEM_COLS_CPU 4096
#define OCL_NORM_ROWS_LOCAL 64
#define OCL_NORM_GROUP_LOCAL 128
#define OCL_NORM_MAX_GROUPS 4096
#define OCL_NORM_CHUNKS 256
#define OCL_NORM_PARTIAL_FLOATS ((uint64_t)16 << 20)

/* One operand as the kernels see it. */
typedef struct norm_mem {
  cl_mem mem;      /* NULL for an absent operand */
  cl_ulong off;    /* elements from mem's start */
  cl_int dt;       /* ferry_dtype */
  int temp;        /* mem is ours: released after enqueueing */
  int host_output; /* a host-side output: map/unmap after the kernels */
  size_t bytes;    /* extent from mem's start (temp) */
} norm_mem;

typedef struct norm_call {
  ferry_be_stream *s;
  const char *op;
  norm_mem m[12];
  int n;
} norm_call;

static void call_release(norm_call *c) {
  for (int i = 0; i < c->n; i++)
    if (c->m[i].temp && c->m[i].mem)
      clReleaseMemObject(c->m[i].mem);
  c->n = 0;
}

/* Bytes a tensor's view spans from its first element. */
static size_t view_bytes(const ferry_be_tensor *t) {
  size_t es = t->dtype == FERRY_DTYPE_F32 ? 4 : 2;
  if (t->ndim == 1)
    return (size_t)t->shape[0] * es;
  return ((size_t)(t->shape[0] - 1) * (size_t)t->strides[0] +
          (size_t)t->shape[1]) *
         es;
}

static ferry_status operand(norm_call *c, const ferry_be_tensor *t,
                            const char *arg, int output, norm_mem **out) {
  norm_mem *m = &c->m[c->n++];
  memset(m, 0, sizeof *m);
  *out = m;
  if (t == NULL)
    return FERRY_OK;
  size_t es = t->dtype == FERRY_DTYPE_F32 ? 4 : 2;
  m->dt = (cl_int)t->dtype;
  if (t->mem.buffer != NULL) { /* device memory, or registered host memory */
    m->mem = t->mem.buffer->mem;
    m->off = (cl_ulong)(t->mem.offset / es);
    m->host_output = output && t->mem.space != FERRY_MEMORY_DEVICE;
    m->bytes = (size_t)t->mem.offset + view_bytes(t);
    return FERRY_OK;
  }
  if (t->mem.ptr == NULL)
    return ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                               "opencl %s: argument '%s' has neither a cl_mem "
                               "nor a host address",
                               c->op, arg);
  cl_int err;
  m->bytes = view_bytes(t);
  m->mem =
      clCreateBuffer(c->s->ctx->cl, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR,
                     m->bytes, (char *)t->mem.ptr + t->mem.offset, &err);
  if (m->mem == NULL || err != CL_SUCCESS) {
    m->mem = NULL;
    return ocl_fail("clCreateBuffer (wrapping a host operand)", err);
  }
  m->temp = 1;
  m->host_output = output;
  return FERRY_OK;
}

/* Kernel arguments in order; the first failure is kept. */
typedef struct args {
  cl_kernel k;
  cl_uint i;
  cl_int err;
} args;

static void arg(args *a, size_t size, const void *value) {
  if (a->err == CL_SUCCESS)
    a->err = clSetKernelArg(a->k, a->i, size, value);
  a->i++;
}
static void arg_mem(args *a, const norm_mem *m) {
  arg(a, sizeof(cl_mem), m->mem ? &m->mem : NULL);
}
static void arg_int(args *a, cl_int v) {
  arg(a, sizeof v, &v);
}
static void arg_ulong(args *a, cl_ulong v) {
  arg(a, sizeof v, &v);
}
static void arg_float(args *a, cl_float v) {
  arg(a, sizeof v, &v);
}
/* The kernels take each operand as a few arguments in a row; these are its
 * three shapes. A matrix: memory, offset, row stride. */
static void arg_matrix(args *a, const norm_mem *m, const ferry_be_tensor *t) {
  arg_mem(a, m);
  arg_ulong(a, m->off);
  arg_ulong(a, (cl_ulong)t->strides[0]);
}
/* A parameter vector (gamma, beta, their gradients): memory, offset, dtype. */
static void arg_param(args *a, const norm_mem *m) {
  arg_mem(a, m);
  arg_ulong(a, m->off);
  arg_int(a, m->dt);
}
/* A row statistic (mean, rstd; f32): memory, offset. */
static void arg_stat(args *a, const norm_mem *m) {
  arg_mem(a, m);
  arg_ulong(a, m->off);
}

static ferry_status kernel(norm_call *c, const char *name, cl_kernel *out) {
  return ocl_kernel_create(&c->s->ctx->programs, "norm", ocl_source_norm, NULL,
                           name, out);
}

/* Local size for the group kernels: a power of two the kernel allows. */
static size_t group_local(cl_kernel k, cl_device_id dev) {
  size_t max = OCL_NORM_GROUP_LOCAL;
  size_t kmax = 0;
  if (clGetKernelWorkGroupInfo(k, dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax,
                               &kmax, NULL) == CL_SUCCESS &&
      kmax > 0)
    while (max > kmax)
      max /= 2;
  return max ? max : 1;
}

/* Enqueue `k` (1-D: rows or groups of rows; 2-D when gws[1] > 1). Commands
 * go to the stream's in-order queue; `*last` receives the event. */
static cl_int launch(norm_call *c, cl_kernel k, cl_uint dims, const size_t *gws,
                     const size_t *lws, cl_event *last) {
  cl_event ev = NULL;
  cl_int err = clEnqueueNDRangeKernel(c->s->queue, k, dims, NULL, gws, lws, 0,
                                      NULL, &ev);
  if (err == CL_SUCCESS) {
    if (*last)
      clReleaseEvent(*last);
    *last = ev;
  }
  return err;
}

/* Map and unmap host-side outputs so that their host memory holds what the
 * kernels wrote, then watch the last command. A failure here comes after
 * kernels were queued: it becomes the op's deferred error. */
static void finish(norm_call *c, uint64_t seq, ocl_watch *w, cl_event *last) {
  cl_int err = CL_SUCCESS;
  for (int i = 0; i < c->n && err == CL_SUCCESS; i++) {
    norm_mem *m = &c->m[i];
    if (!m->host_output || m->mem == NULL || m->bytes == 0)
      continue;
    void *p = clEnqueueMapBuffer(c->s->queue, m->mem, CL_FALSE, CL_MAP_READ, 0,
                                 m->bytes, 0, NULL, NULL, &err);
    if (err == CL_SUCCESS) {
      cl_event ev = NULL;
      err = clEnqueueUnmapMemObject(c->s->queue, m->mem, p, 0, NULL, &ev);
      if (err == CL_SUCCESS) {
        clReleaseEvent(*last);
        *last = ev;
      }
    }
  }
  if (err != CL_SUCCESS)
    ocl_report_command_error(c->s, seq, c->op, err);
  ocl_watch_start(w, *last);
}

static size_t round_up(size_t v, size_t m) {
  return (v + m - 1) / m * m;
}

/* One work-item per row? Short rows everywhere; rows up to
 * OCL_NORM_ROW_ITEM_COLS_CPU on a CPU device (PoCL), where a work-group is
 * a loop over its items and a group per row pays a barrier per reduction
 * step (measured: 16384 x 128 forward 400 ms with a group per row, 55 ms
 * with an item per row); longer rows amortise the barriers. */
static int row_per_item(ferry_be_stream *s, uint64_t cols) {
  if (cols <= OCL_NORM_ROW_ITEM_COLS)
    return 1;
  cl_device_type type = 0;
  if (clGetDeviceInfo(s->ctx->dev->id, CL_DEVICE_TYPE, sizeof type, &type,
                      NULL) != CL_SUCCESS)
    return 0;
  return (type & CL_DEVICE_TYPE_CPU) != 0 && cols <= OCL_NORM_ROW_ITEM_COLS_CPU;
}

/* Geometry of the row kernels (forward, and the backward's dx): work-groups
 * of OCL_NORM_ROWS_LOCAL rows with a row per item, or a row per group; at
 * most OCL_NORM_MAX_GROUPS groups, each looping over the rows left. */
static void rows_geometry(ferry_be_stream *s, cl_kernel k, int per_item,
                          uint64_t rows, size_t *gws, size_t *lws) {
  if (per_item) {
    *lws = OCL_NORM_ROWS_LOCAL;
    *gws = round_up(rows < (uint64_t)OCL_NORM_MAX_GROUPS * *lws
                        ? (size_t)rows
                        : (size_t)OCL_NORM_MAX_GROUPS * *lws,
                    *lws);
  } else {
    *lws = group_local(k, s->ctx->dev->id);
    *gws = (rows < OCL_NORM_MAX_GROUPS ? (size_t)rows : OCL_NORM_MAX_GROUPS) *
           *lws;
  }
}

/* A temporary device buffer of per-chunk partial sums (dgamma's or
 * dbeta's), released with the call's operands; no memory where that
 * gradient is not asked for. */
static ferry_status partials_buffer(norm_call *c, int wanted, size_t bytes,
                                    const char *what, norm_mem **out) {
  norm_mem *m = &c->m[c->n++];
  memset(m, 0, sizeof *m);
  *out = m;
  if (!wanted)
    return FERRY_OK;
  cl_int err;
  m->mem = clCreateBuffer(c->s->ctx->cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
  m->temp = 1;
  if (m->mem == NULL || err != CL_SUCCESS) {
    m->mem = NULL;
    return ocl_fail(what, err);
  }
  return FERRY_OK;
}

/* Both ops end on one exit path, which releases whichever kernels the call
 * got before it stopped (NULL: none). */
static void release_kernel(cl_kernel k) {
  if (k)
    clReleaseKernel(k);
}

ferry_status ocl_op_norm_forward(ferry_be_stream *s, const ferry_be_launch *l,
                                 int kind, float eps, const ferry_be_tensor *x,
                                 const ferry_be_tensor *gamma,
                                 const ferry_be_tensor *beta,
                                 const ferry_be_tensor *y,
                                 const ferry_be_tensor *mean,
                                 const ferry_be_tensor *rstd) {
  norm_call c = {s, l->op, {{0}}, 0};
  norm_mem *mx, *my, *mg, *mb, *mm, *mr;
  ferry_status st;
  cl_kernel k = NULL;
  ocl_watch *w = NULL;
  if ((st = operand(&c, x, "x", 0, &mx)) != FERRY_OK ||
      (st = operand(&c, y, "y", 1, &my)) != FERRY_OK ||
      (st = operand(&c, gamma, "gamma", 0, &mg)) != FERRY_OK ||
      (st = operand(&c, beta, "beta", 0, &mb)) != FERRY_OK ||
      (st = operand(&c, mean, "mean", 1, &mm)) != FERRY_OK ||
      (st = operand(&c, rstd, "rstd", 1, &mr)) != FERRY_OK)
    goto done;
  uint64_t rows = (uint64_t)x->shape[0], cols = (uint64_t)x->shape[1];
  int per_item = row_per_item(s, cols);
  if ((st =
           kernel(&c, per_item ? "ferry_norm_fwd_rows" : "ferry_norm_fwd_group",
                  &k)) != FERRY_OK)
    goto done;
  size_t lws, gws;
  rows_geometry(s, k, per_item, rows, &gws, &lws);
  args a = {k, 0, CL_SUCCESS};
  arg_int(&a, kind);
  arg_float(&a, eps);
  arg_int(&a, mx->dt);
  arg_ulong(&a, rows);
  arg_ulong(&a, cols);
  arg_matrix(&a, mx, x);
  arg_matrix(&a, my, y);
  arg_param(&a, mg);
  arg_param(&a, mb);
  arg_stat(&a, mm);
  arg_stat(&a, mr);
  if (!per_item)
    arg(&a, lws * sizeof(cl_float), NULL);
  if (a.err != CL_SUCCESS) {
    st = ocl_fail("clSetKernelArg (norm forward)", a.err);
    goto done;
  }
  if ((st = ocl_watch_new(s, l, &w)) != FERRY_OK)
    goto done;
  cl_event last = NULL;
  cl_int err = launch(&c, k, 1, &gws, &lws, &last);
  if (err != CL_SUCCESS) {
    ocl_watch_cancel(w);
    st = ocl_fail("clEnqueueNDRangeKernel (norm forward)", err);
    goto done;
  }
  finish(&c, l->seq, w, &last);
done:
  release_kernel(k);
  call_release(&c);
  return st;
}

ferry_status
ocl_op_norm_backward(ferry_be_stream *s, const ferry_be_launch *l, int kind,
                     uint32_t flags, const ferry_be_tensor *dy,
                     const ferry_be_tensor *x, const ferry_be_tensor *gamma,
                     const ferry_be_tensor *mean, const ferry_be_tensor *rstd,
                     const ferry_be_tensor *dx, const ferry_be_tensor *dgamma,
                     const ferry_be_tensor *dbeta) {
  norm_call c = {s, l->op, {{0}}, 0};
  norm_mem *mdy, *mx, *mg, *mm, *mr, *mdx, *mdg, *mdb;
  ferry_status st;
  cl_kernel kdx = NULL, kp = NULL, kf = NULL;
  ocl_watch *w = NULL;
  if ((st = operand(&c, dy, "dy", 0, &mdy)) != FERRY_OK ||
      (st = operand(&c, x, "x", 0, &mx)) != FERRY_OK ||
      (st = operand(&c, gamma, "gamma", 0, &mg)) != FERRY_OK ||
      (st = operand(&c, mean, "mean", 0, &mm)) != FERRY_OK ||
      (st = operand(&c, rstd, "rstd", 0, &mr)) != FERRY_OK ||
      (st = operand(&c, dx, "dx", 1, &mdx)) != FERRY_OK ||
      (st = operand(&c, dgamma, "dgamma", 1, &mdg)) != FERRY_OK ||
      (st = operand(&c, dbeta, "dbeta", 1, &mdb)) != FERRY_OK)
    goto done;
  uint64_t rows = (uint64_t)x->shape[0], cols = (uint64_t)x->shape[1];
  int per_item = row_per_item(s, cols);
  int partials = dgamma != NULL || dbeta != NULL;
  if ((st =
           kernel(&c, per_item ? "ferry_norm_bwd_rows" : "ferry_norm_bwd_group",
                  &kdx)) != FERRY_OK)
    goto done;
  /* dx. */
  size_t lws, gws;
  rows_geometry(s, kdx, per_item, rows, &gws, &lws);
  args a = {kdx, 0, CL_SUCCESS};
  arg_int(&a, kind);
  arg_int(&a, mx->dt);
  arg_ulong(&a, rows);
  arg_ulong(&a, cols);
  arg_matrix(&a, mdy, dy);
  arg_matrix(&a, mx, x);
  arg_param(&a, mg);
  arg_stat(&a, mm);
  arg_stat(&a, mr);
  arg_matrix(&a, mdx, dx);
  if (!per_item)
    arg(&a, lws * sizeof(cl_float), NULL);
  /* dgamma/dbeta: chunks of rows, a partial per (chunk, column). */
  uint64_t chunk_rows = 1, chunks = 0;
  size_t pgws[2] = {0, 0}, plws[2] = {64, 1}, fgws = 0, flws = 64;
  if (partials && a.err == CL_SUCCESS) {
    chunk_rows = (rows + OCL_NORM_CHUNKS - 1) / OCL_NORM_CHUNKS;
    uint64_t max_chunks = OCL_NORM_PARTIAL_FLOATS / 2 / cols;
    if (max_chunks < 1)
      max_chunks = 1;
    if (chunk_rows < (rows + max_chunks - 1) / max_chunks)
      chunk_rows = (rows + max_chunks - 1) / max_chunks;
    chunks = (rows + chunk_rows - 1) / chunk_rows;
    size_t half_bytes = (size_t)(chunks * cols * sizeof(cl_float));
    norm_mem *pg, *pb;
    if ((st = partials_buffer(&c, dgamma != NULL, half_bytes,
                              "clCreateBuffer (dgamma partials)", &pg)) !=
            FERRY_OK ||
        (st = partials_buffer(&c, dbeta != NULL, half_bytes,
                              "clCreateBuffer (dbeta partials)", &pb)) !=
            FERRY_OK ||
        (st = kernel(&c, "ferry_norm_bwd_partial", &kp)) != FERRY_OK ||
        (st = kernel(&c, "ferry_norm_bwd_final", &kf)) != FERRY_OK)
      goto done;
    args p = {kp, 0, CL_SUCCESS};
    arg_int(&p, kind);
    arg_int(&p, mx->dt);
    arg_ulong(&p, rows);
    arg_ulong(&p, cols);
    arg_ulong(&p, chunk_rows);
    arg_matrix(&p, mdy, dy);
    arg_matrix(&p, mx, x);
    arg_stat(&p, mm);
    arg_stat(&p, mr);
    arg_mem(&p, pg);
    arg_mem(&p, pb);
    args f = {kf, 0, CL_SUCCESS};
    arg_ulong(&f, cols);
    arg_ulong(&f, chunks);
    arg_int(&f, (flags & FERRY_NORM_ACCUMULATE) != 0);
    arg_mem(&f, pg);
    arg_mem(&f, pb);
    arg_param(&f, mdg);
    arg_param(&f, mdb);
    a.err = p.err != CL_SUCCESS ? p.err : f.err;
    pgws[0] = round_up((size_t)cols, plws[0]);
    pgws[1] = (size_t)chunks;
    fgws = round_up((size_t)cols, flws);
  }
  if (a.err != CL_SUCCESS) {
    st = ocl_fail("clSetKernelArg (norm backward)", a.err);
    goto done;
  }
  if ((st = ocl_watch_new(s, l, &w)) != FERRY_OK)
    goto done;
  cl_event last = NULL;
  cl_int err = launch(&c, kdx, 1, &gws, &lws, &last);
  if (err == CL_SUCCESS && partials)
    err = launch(&c, kp, 2, pgws, plws, &last);
  if (err == CL_SUCCESS && partials)
    err = launch(&c, kf, 1, &fgws, &flws, &last);
  if (err != CL_SUCCESS) {
    if (last == NULL) { /* nothing was enqueued */
      ocl_watch_cancel(w);
      st = ocl_fail("clEnqueueNDRangeKernel (norm backward)", err);
      goto done;
    }
    /* dx is queued, the parameter gradients are not: a deferred error. */
    ocl_report_command_error(s, l->seq, l->op, err);
  }
  finish(&c, l->seq, w, &last);
done:
  release_kernel(kdx);
  release_kernel(kp);
  release_kernel(kf);
  call_release(&c);
  return st;
}
