/* The sampler's ops on OpenCL (kernels/sample.cl): sample_count is a kernel
 * per frontier node followed by a one-work-item prefix sum, sample_pick a
 * kernel per frontier node, sample_relabel one work item walking frontier
 * and neighbors in order through an open-addressing table in the scratch
 * buffer the core provides. Everything stays on the device: no host round
 * trip, whatever the device. Operands are cl_mems (device buffers, or pinned
 * host memory registered with CL_MEM_USE_HOST_PTR); an empty operand is
 * passed as a NULL buffer. */
#include "internal.h"
#include "kernel_sources.h"

#include <string.h>

#define LOCAL_SIZE 64

/* An operand's cl_mem and element offset; *ok = 0 when it has none. */
static cl_mem mem_of(const ferry_be_memref *m, size_t elem, cl_ulong *off,
                     int *ok) {
  *off = m->offset / elem;
  if (m->buffer != NULL && m->space != FERRY_MEMORY_HOST)
    return m->buffer->mem;
  *ok = 0;
  return NULL;
}

typedef struct arg_list {
  cl_kernel k;
  cl_uint next;
  cl_int err;
} arg_list;

static void arg(arg_list *a, size_t size, const void *value) {
  if (a->err == CL_SUCCESS)
    a->err = clSetKernelArg(a->k, a->next, size, value);
  a->next++;
}

static ferry_status launch(ferry_be_stream *s, const ferry_be_launch *l,
                           cl_kernel k, uint64_t items, const char *what) {
  ocl_watch *w = NULL;
  ferry_status st = ocl_watch_new(s, l, &w);
  if (st != FERRY_OK)
    return st;
  size_t local = items <= 1 ? 1 : LOCAL_SIZE;
  size_t global = (size_t)((items + local - 1) / local * local);
  if (global == 0)
    global = local;
  cl_event ev = NULL;
  cl_int err = clEnqueueNDRangeKernel(s->queue, k, 1, NULL, &global, &local, 0,
                                      NULL, &ev);
  if (err != CL_SUCCESS) {
    ocl_watch_cancel(w);
    return ocl_fail(what, err);
  }
  ocl_watch_start(w, ev);
  return FERRY_OK;
}

static ferry_status kernel(ferry_be_stream *s, const char *name,
                           cl_kernel *out) {
  return ocl_kernel_create(&s->ctx->programs, "sample", ocl_source_sample, NULL,
                           name, out);
}

static ferry_status no_mem(const char *op) {
  return ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                             "opencl %s: an operand is neither a device "
                             "buffer nor registered (pinned) host memory",
                             op);
}

ferry_status ocl_op_sample_count(ferry_be_stream *s, const ferry_be_launch *l,
                                 const ferry_be_csr *g,
                                 const ferry_be_sample_layer *p,
                                 const ferry_be_memref *frontier, uint64_t n,
                                 const ferry_be_memref *offsets_out) {
  int ok = 1;
  cl_ulong off_o, fr_o, out_o;
  cl_mem offs = mem_of(&g->offsets, 8, &off_o, &ok);
  cl_mem fr = n ? mem_of(frontier, 8, &fr_o, &ok) : NULL;
  if (!n)
    fr_o = 0;
  cl_mem out = mem_of(offsets_out, 8, &out_o, &ok);
  if (!ok)
    return no_mem("sample_count");
  cl_kernel k = NULL;
  ferry_status st = FERRY_OK;
  if (n > 0) {
    st = kernel(s, "ferry_sample_count", &k);
    if (st != FERRY_OK)
      return st;
    cl_ulong nn = n;
    cl_long nodes = g->num_nodes, fanout = p->fanout;
    cl_int replace = p->replace;
    arg_list a = {k, 0, CL_SUCCESS};
    arg(&a, sizeof offs, &offs);
    arg(&a, sizeof off_o, &off_o);
    arg(&a, sizeof fr, &fr);
    arg(&a, sizeof fr_o, &fr_o);
    arg(&a, sizeof nn, &nn);
    arg(&a, sizeof nodes, &nodes);
    arg(&a, sizeof fanout, &fanout);
    arg(&a, sizeof replace, &replace);
    arg(&a, sizeof out, &out);
    arg(&a, sizeof out_o, &out_o);
    st = a.err != CL_SUCCESS ? ocl_fail("clSetKernelArg (sample_count)", a.err)
                             : launch(s, l, k, n, "sample_count");
    clReleaseKernel(k);
    if (st != FERRY_OK)
      return st;
  }
  st = kernel(s, "ferry_sample_scan", &k);
  if (st != FERRY_OK)
    return st;
  cl_ulong nn = n;
  arg_list a = {k, 0, CL_SUCCESS};
  arg(&a, sizeof out, &out);
  arg(&a, sizeof out_o, &out_o);
  arg(&a, sizeof nn, &nn);
  st = a.err != CL_SUCCESS ? ocl_fail("clSetKernelArg (sample_scan)", a.err)
                           : launch(s, l, k, 1, "sample_scan");
  clReleaseKernel(k);
  return st;
}

ferry_status ocl_op_sample_pick(ferry_be_stream *s, const ferry_be_launch *l,
                                const ferry_be_csr *g,
                                const ferry_be_sample_layer *p,
                                const ferry_be_memref *frontier, uint64_t n,
                                const ferry_be_memref *offsets,
                                const ferry_be_memref *out) {
  if (n == 0)
    return FERRY_OK;
  int ok = 1;
  size_t cw = g->col_dtype == FERRY_DTYPE_I32 ? 4 : 8;
  cl_ulong off_o, col_o, fr_o, eo_o, out_o;
  cl_mem offs = mem_of(&g->offsets, 8, &off_o, &ok);
  cl_mem cols = mem_of(&g->cols, cw, &col_o, &ok);
  cl_mem fr = mem_of(frontier, 8, &fr_o, &ok);
  cl_mem eo = mem_of(offsets, 8, &eo_o, &ok);
  cl_mem o = mem_of(out, 8, &out_o, &ok);
  if (!ok)
    return no_mem("sample_pick");
  cl_kernel k = NULL;
  ferry_status st = kernel(
      s, cw == 4 ? "ferry_sample_pick_i32" : "ferry_sample_pick_i64", &k);
  if (st != FERRY_OK)
    return st;
  cl_ulong nn = n, seed = p->seed;
  cl_long nodes = g->num_nodes, fanout = p->fanout;
  cl_uint batch = p->batch_id, layer = p->layer;
  cl_int replace = p->replace;
  arg_list a = {k, 0, CL_SUCCESS};
  arg(&a, sizeof offs, &offs);
  arg(&a, sizeof off_o, &off_o);
  arg(&a, sizeof cols, &cols);
  arg(&a, sizeof col_o, &col_o);
  arg(&a, sizeof fr, &fr);
  arg(&a, sizeof fr_o, &fr_o);
  arg(&a, sizeof nn, &nn);
  arg(&a, sizeof nodes, &nodes);
  arg(&a, sizeof eo, &eo);
  arg(&a, sizeof eo_o, &eo_o);
  arg(&a, sizeof o, &o);
  arg(&a, sizeof out_o, &out_o);
  arg(&a, sizeof seed, &seed);
  arg(&a, sizeof batch, &batch);
  arg(&a, sizeof layer, &layer);
  arg(&a, sizeof fanout, &fanout);
  arg(&a, sizeof replace, &replace);
  st = a.err != CL_SUCCESS ? ocl_fail("clSetKernelArg (sample_pick)", a.err)
                           : launch(s, l, k, n, "sample_pick");
  clReleaseKernel(k);
  return st;
}

ferry_status ocl_op_sample_relabel(ferry_be_stream *s, const ferry_be_launch *l,
                                   const ferry_be_memref *frontier, uint64_t n,
                                   const ferry_be_memref *nbrs, uint64_t e,
                                   int64_t num_nodes,
                                   const ferry_be_memref *scratch,
                                   uint64_t scratch_bytes, uint64_t table_slots,
                                   const ferry_be_memref *src_out,
                                   const ferry_be_memref *local_out,
                                   const ferry_be_memref *num_src_out) {
  (void)num_nodes;
  int ok = 1;
  cl_ulong fr_o = 0, nb_o = 0, tab_o, src_o = 0, loc_o = 0, ns_o;
  cl_mem fr = n ? mem_of(frontier, 8, &fr_o, &ok) : NULL;
  cl_mem nb = e ? mem_of(nbrs, 8, &nb_o, &ok) : NULL;
  cl_mem tab = mem_of(scratch, 8, &tab_o, &ok);
  cl_mem src = n + e ? mem_of(src_out, 8, &src_o, &ok) : NULL;
  cl_mem loc = e ? mem_of(local_out, 8, &loc_o, &ok) : NULL;
  cl_mem ns = mem_of(num_src_out, 8, &ns_o, &ok);
  if (!ok)
    return no_mem("sample_relabel");
  if (table_slots == 0 || (table_slots & (table_slots - 1)) != 0 ||
      table_slots < 2 * (n + e) ||
      scratch_bytes < FERRY_BE_SAMPLE_SCRATCH_BYTES(table_slots, n + e))
    return ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                               "opencl sample_relabel: table_slots %llu is "
                               "not a power of two >= 2 * (n + e) that the "
                               "scratch holds",
                               (unsigned long long)table_slots);
  cl_kernel k = NULL;
  ferry_status st = kernel(s, "ferry_sample_relabel", &k);
  if (st != FERRY_OK)
    return st;
  cl_ulong nn = n, ee = e, slots = table_slots;
  arg_list a = {k, 0, CL_SUCCESS};
  arg(&a, sizeof fr, &fr);
  arg(&a, sizeof fr_o, &fr_o);
  arg(&a, sizeof nn, &nn);
  arg(&a, sizeof nb, &nb);
  arg(&a, sizeof nb_o, &nb_o);
  arg(&a, sizeof ee, &ee);
  arg(&a, sizeof tab, &tab);
  arg(&a, sizeof tab_o, &tab_o);
  arg(&a, sizeof slots, &slots);
  arg(&a, sizeof src, &src);
  arg(&a, sizeof src_o, &src_o);
  arg(&a, sizeof loc, &loc);
  arg(&a, sizeof loc_o, &loc_o);
  arg(&a, sizeof ns, &ns);
  arg(&a, sizeof ns_o, &ns_o);
  st = a.err != CL_SUCCESS ? ocl_fail("clSetKernelArg (sample_relabel)", a.err)
                           : launch(s, l, k, 1, "sample_relabel");
  clReleaseKernel(k);
  return st;
}
