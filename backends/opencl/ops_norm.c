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
    goto fail;
  uint64_t rows = (uint64_t)x->shape[0], cols = (uint64_t)x->shape[1];
  int per_item = row_per_item(s, cols);
  if ((st =
           kernel(&c, per_item ? "ferry_norm_fwd_rows" : "ferry_norm_fwd_group",
                  &k)) != FERRY_OK)
    goto fail;
  size_t lws, gws;
  if (per_item) {
    lws = OCL_NORM_ROWS_LOCAL;
    gws = round_up(rows < (uint64_t)OCL_NORM_MAX_GROUPS * lws
                       ? (size_t)rows
                       : (size_t)OCL_NORM_MAX_GROUPS * lws,
                   lws);
  } else {
    lws = group_local(k, s->ctx->dev->id);
    gws =
        (rows < OCL_NORM_MAX_GROUPS ? (size_t)rows : OCL_NORM_MAX_GROUPS) * lws;
  }
  args a = {k, 0, CL_SUCCESS};
  arg_int(&a, kind);
  arg_float(&a, eps);
  arg_int(&a, mx->dt);
  arg_ulong(&a, rows);
  arg_ulong(&a, cols);
  arg_mem(&a, mx);
  arg_ulong(&a, mx->off);
  arg_ulong(&a, (cl_ulong)x->strides[0]);
  arg_mem(&a, my);
  arg_ulong(&a, my->off);
  arg_ulong(&a, (cl_ulong)y->strides[0]);
  arg_mem(&a, mg);
  arg_ulong(&a, mg->off);
  arg_int(&a, mg->dt);
  arg_mem(&a, mb);
  arg_ulong(&a, mb->off);
  arg_int(&a, mb->dt);
  arg_mem(&a, mm);
  arg_ulong(&a, mm->off);
  arg_mem(&a, mr);
  arg_ulong(&a, mr->off);
  if (!per_item)
    arg(&a, lws * sizeof(cl_float), NULL);
  if (a.err != CL_SUCCESS) {
    st = ocl_fail("clSetKernelArg (norm forward)", a.err);
    goto fail;
  }
  if ((st = ocl_watch_new(s, l, &w)) != FERRY_OK)
    goto fail;
  cl_event last = NULL;
  cl_int err = launch(&c, k, 1, &gws, &lws, &last);
  if (err != CL_SUCCESS) {
    ocl_watch_cancel(w);
    st = ocl_fail("clEnqueueNDRangeKernel (norm forward)", err);
    goto fail;
  }
  finish(&c, l->seq, w, &last);
  clReleaseKernel(k);
  call_release(&c);
  return st;
fail:
  if (k)
    clReleaseKernel(k);
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
    goto fail;
  uint64_t rows = (uint64_t)x->shape[0], cols = (uint64_t)x->shape[1];
  int per_item = row_per_item(s, cols);
  int partials = dgamma != NULL || dbeta != NULL;
  if ((st =
           kernel(&c, per_item ? "ferry_norm_bwd_rows" : "ferry_norm_bwd_group",
                  &kdx)) != FERRY_OK)
    goto fail;
  /* dx. */
  size_t lws, gws;
  if (per_item) {
    lws = OCL_NORM_ROWS_LOCAL;
    gws = round_up(rows < (uint64_t)OCL_NORM_MAX_GROUPS * lws
                       ? (size_t)rows
                       : (size_t)OCL_NORM_MAX_GROUPS * lws,
                   lws);
  } else {
    lws = group_local(kdx, s->ctx->dev->id);
    gws =
        (rows < OCL_NORM_MAX_GROUPS ? (size_t)rows : OCL_NORM_MAX_GROUPS) * lws;
  }
  args a = {kdx, 0, CL_SUCCESS};
  arg_int(&a, kind);
  arg_int(&a, mx->dt);
  arg_ulong(&a, rows);
  arg_ulong(&a, cols);
  arg_mem(&a, mdy);
  arg_ulong(&a, mdy->off);
  arg_ulong(&a, (cl_ulong)dy->strides[0]);
  arg_mem(&a, mx);
  arg_ulong(&a, mx->off);
  arg_ulong(&a, (cl_ulong)x->strides[0]);
  arg_mem(&a, mg);
  arg_ulong(&a, mg->off);
  arg_int(&a, mg->dt);
  arg_mem(&a, mm);
  arg_ulong(&a, mm->off);
  arg_mem(&a, mr);
  arg_ulong(&a, mr->off);
  arg_mem(&a, mdx);
  arg_ulong(&a, mdx->off);
  arg_ulong(&a, (cl_ulong)dx->strides[0]);
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
    cl_int err;
    size_t half_bytes = (size_t)(chunks * cols * sizeof(cl_float));
    norm_mem *pg, *pb;
    /* Temporary device buffers, released with the call's operands. */
    pg = &c.m[c.n++];
    pb = &c.m[c.n++];
    memset(pg, 0, sizeof *pg);
    memset(pb, 0, sizeof *pb);
    if (dgamma) {
      pg->mem =
          clCreateBuffer(s->ctx->cl, CL_MEM_READ_WRITE, half_bytes, NULL, &err);
      pg->temp = 1;
      if (pg->mem == NULL || err != CL_SUCCESS) {
        pg->mem = NULL;
        st = ocl_fail("clCreateBuffer (dgamma partials)", err);
        goto fail;
      }
    }
    if (dbeta) {
      pb->mem =
          clCreateBuffer(s->ctx->cl, CL_MEM_READ_WRITE, half_bytes, NULL, &err);
      pb->temp = 1;
      if (pb->mem == NULL || err != CL_SUCCESS) {
        pb->mem = NULL;
        st = ocl_fail("clCreateBuffer (dbeta partials)", err);
        goto fail;
      }
    }
    if ((st = kernel(&c, "ferry_norm_bwd_partial", &kp)) != FERRY_OK ||
        (st = kernel(&c, "ferry_norm_bwd_final", &kf)) != FERRY_OK)
      goto fail;
    args p = {kp, 0, CL_SUCCESS};
    arg_int(&p, kind);
    arg_int(&p, mx->dt);
    arg_ulong(&p, rows);
    arg_ulong(&p, cols);
    arg_ulong(&p, chunk_rows);
    arg_mem(&p, mdy);
    arg_ulong(&p, mdy->off);
    arg_ulong(&p, (cl_ulong)dy->strides[0]);
    arg_mem(&p, mx);
    arg_ulong(&p, mx->off);
    arg_ulong(&p, (cl_ulong)x->strides[0]);
    arg_mem(&p, mm);
    arg_ulong(&p, mm->off);
    arg_mem(&p, mr);
    arg_ulong(&p, mr->off);
    arg_mem(&p, pg);
    arg_mem(&p, pb);
    args f = {kf, 0, CL_SUCCESS};
    arg_ulong(&f, cols);
    arg_ulong(&f, chunks);
    arg_int(&f, (flags & FERRY_NORM_ACCUMULATE) != 0);
    arg_mem(&f, pg);
    arg_mem(&f, pb);
    arg_mem(&f, mdg);
    arg_ulong(&f, mdg->off);
    arg_int(&f, mdg->dt);
    arg_mem(&f, mdb);
    arg_ulong(&f, mdb->off);
    arg_int(&f, mdb->dt);
    a.err = p.err != CL_SUCCESS ? p.err : f.err;
    pgws[0] = round_up((size_t)cols, plws[0]);
    pgws[1] = (size_t)chunks;
    fgws = round_up((size_t)cols, flws);
  }
  if (a.err != CL_SUCCESS) {
    st = ocl_fail("clSetKernelArg (norm backward)", a.err);
    goto fail;
  }
  if ((st = ocl_watch_new(s, l, &w)) != FERRY_OK)
    goto fail;
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
      goto fail;
    }
    /* dx is queued, the parameter gradients are not: a deferred error. */
    ocl_report_command_error(s, l->seq, l->op, err);
  }
  finish(&c, l->seq, w, &last);
  clReleaseKernel(kdx);
  if (kp)
    clReleaseKernel(kp);
  if (kf)
    clReleaseKernel(kf);
  call_release(&c);
  return st;
fail:
  if (kdx)
    clReleaseKernel(kdx);
  if (kp)
    clReleaseKernel(kp);
  if (kf)
    clReleaseKernel(kf);
  call_release(&c);
  return st;
}
