/* op_gather on OpenCL (kernels/gather.cl). The table's pieces are cl_mems:
 * CL_MEM_USE_HOST_PTR registrations of host memory for ZEROCOPY (real zero
 * copy where the device shares host memory, as on PoCL; the core makes such
 * tables STAGED on devices with memory of their own) or device buffers for
 * DEVICE. One launch per piece. Out-of-range ids: a 4-byte flag buffer
 * (first bad position, atomic_min) is read back after the launches and
 * checked by a host task in stream order, which defers the error. */
#include "internal.h"
#include "kernel_sources.h"

#include <stdlib.h>
#include <string.h>

#define LOCAL_SIZE 64
#define MAX_GROUPS 65536

typedef struct gather_check {
  void *cookie;
  uint64_t seq;
  uint64_t rows;
  cl_mem flag;
  cl_uint bad;
  cl_uint init; /* the flag's first value, read by the queued write */
} gather_check;

static ferry_status check_fn(void *user) {
  gather_check *c = user;
  if (c->bad != 0xffffffffu)
    ocl_host->defer_error(c->cookie, c->seq, "gather", FERRY_ERR_OUT_OF_RANGE,
                          "gather: ids[%llu] is outside the table's %llu rows "
                          "(its out row was zero-filled)",
                          (unsigned long long)c->bad,
                          (unsigned long long)c->rows);
  clReleaseMemObject(c->flag);
  free(c);
  return FERRY_OK;
}

static const char *kernel_for(ferry_dtype in, ferry_dtype out) {
  if (in == FERRY_DTYPE_F32)
    return "ferry_gather_u32";
  if (out != FERRY_DTYPE_F32)
    return "ferry_gather_u16";
  return in == FERRY_DTYPE_F16 ? "ferry_gather_f16_f32"
                               : "ferry_gather_bf16_f32";
}

static cl_mem operand_mem(const ferry_be_memref *m) {
  return m->buffer != NULL && m->space != FERRY_MEMORY_HOST ? m->buffer->mem
                                                            : NULL;
}

static ferry_status launch(ferry_be_stream *s, const ferry_be_launch *l,
                           cl_kernel k, size_t global) {
  ocl_watch *w = NULL;
  ferry_status st = ocl_watch_new(s, l, &w);
  if (st != FERRY_OK)
    return st;
  size_t local = LOCAL_SIZE;
  cl_event ev = NULL;
  cl_int err = clEnqueueNDRangeKernel(s->queue, k, 1, NULL, &global, &local, 0,
                                      NULL, &ev);
  if (err != CL_SUCCESS) {
    ocl_watch_cancel(w);
    return ocl_fail("clEnqueueNDRangeKernel (gather)", err);
  }
  ocl_watch_start(w, ev);
  return FERRY_OK;
}

ferry_status ocl_op_gather(ferry_be_stream *s, const ferry_be_launch *l,
                           const ferry_be_gather *g) {
  if (g->n == 0)
    return FERRY_OK;
  cl_mem ids = operand_mem(&g->ids->mem), out = operand_mem(&g->out->mem);
  if (ids == NULL || out == NULL)
    return ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                               "opencl gather: argument '%s' must be a device "
                               "or pinned host buffer",
                               ids == NULL ? "ids" : "out");
  for (uint32_t p = 0; p < g->num_pieces; p++)
    if (g->pieces[p].buffer == NULL)
      return ocl_host->set_error(FERRY_ERR_INTERNAL,
                                 "opencl gather: table piece %u has no "
                                 "cl_mem",
                                 (unsigned)p);
  ferry_be_context *ctx = s->ctx;
  const bool cpu_device = ctx->dev->info.host_unified_memory != 0;
  cl_uint lanes = cpu_device ? 1u : 32u;
  size_t oes = g->out->dtype == FERRY_DTYPE_F32 ? 4 : 2;
  uint64_t groups = (g->n * lanes + LOCAL_SIZE - 1) / LOCAL_SIZE;
  if (groups > MAX_GROUPS)
    groups = MAX_GROUPS;
  if (g->max_blocks > 0 && groups > g->max_blocks)
    groups = g->max_blocks;
  size_t global = (size_t)groups * LOCAL_SIZE;

  gather_check *chk = calloc(1, sizeof *chk);
  if (chk == NULL)
    return ocl_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                               "opencl gather: out of host memory");
  cl_int err = CL_SUCCESS;
  cl_mem flag =
      clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, sizeof(cl_uint), NULL, &err);
  if (flag == NULL) {
    free(chk);
    return ocl_fail("clCreateBuffer (gather flag)", err);
  }
  chk->cookie = s->cookie;
  chk->seq = l->seq;
  chk->rows = g->rows;
  chk->flag = flag;
  chk->bad = 0xffffffffu;
  chk->init = 0xffffffffu;
  cl_kernel k = NULL;
  ferry_status st =
      ocl_kernel_create(&ctx->programs, "gather", ocl_source_gather, NULL,
                        kernel_for(g->dtype, g->out->dtype), &k);
  if (st != FERRY_OK)
    goto fail;
  err = clEnqueueWriteBuffer(s->queue, flag, CL_FALSE, 0, sizeof chk->init,
                             &chk->init, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    clReleaseKernel(k);
    st = ocl_fail("clEnqueueWriteBuffer (gather flag)", err);
    goto fail;
  }
  cl_ulong rows = g->rows, cols = g->cols, n = g->n;
  cl_ulong ids_off = g->ids->mem.offset;
  cl_ulong out_off = g->out->mem.offset / oes;
  cl_uint ids64 = g->ids->dtype == FERRY_DTYPE_I64;
  uint32_t launches = g->num_pieces ? g->num_pieces : 1;
  for (uint32_t p = 0; p < launches && st == FERRY_OK; p++) {
    cl_ulong lo = (cl_ulong)p * g->piece_rows;
    cl_ulong hi = g->num_pieces ? lo + g->piece_rows : 0;
    /* An empty table has no piece: the launch only flags every id. */
    cl_mem table = g->num_pieces ? g->pieces[p].buffer->mem : flag;
    cl_uint first = p == 0;
    err = clSetKernelArg(k, 0, sizeof table, &table);
    err |= clSetKernelArg(k, 1, sizeof lo, &lo);
    err |= clSetKernelArg(k, 2, sizeof hi, &hi);
    err |= clSetKernelArg(k, 3, sizeof rows, &rows);
    err |= clSetKernelArg(k, 4, sizeof cols, &cols);
    err |= clSetKernelArg(k, 5, sizeof ids, &ids);
    err |= clSetKernelArg(k, 6, sizeof ids_off, &ids_off);
    err |= clSetKernelArg(k, 7, sizeof ids64, &ids64);
    err |= clSetKernelArg(k, 8, sizeof n, &n);
    err |= clSetKernelArg(k, 9, sizeof out, &out);
    err |= clSetKernelArg(k, 10, sizeof out_off, &out_off);
    err |= clSetKernelArg(k, 11, sizeof lanes, &lanes);
    err |= clSetKernelArg(k, 12, sizeof first, &first);
    err |= clSetKernelArg(k, 13, sizeof flag, &flag);
    if (err != CL_SUCCESS) {
      st = ocl_fail("clSetKernelArg (gather)", err);
      break;
    }
    st = launch(s, l, k, global);
  }
  clReleaseKernel(k);
  if (st != FERRY_OK) {
    clFinish(s->queue); /* commands queued may still use the flag */
    goto fail;
  }
  err = clEnqueueReadBuffer(s->queue, flag, CL_FALSE, 0, sizeof chk->bad,
                            &chk->bad, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    /* The launches are queued: wait for them before the flag goes. */
    clFinish(s->queue);
    st = ocl_fail("clEnqueueReadBuffer (gather flag)", err);
    goto fail;
  }
  st = ocl_op_host_fn(s, l, check_fn, chk);
  if (st != FERRY_OK) {
    clFinish(s->queue);
    goto fail;
  }
  return FERRY_OK;
fail:
  /* The write of chk->init may be queued: let the queue finish first. */
  clFinish(s->queue);
  clReleaseMemObject(flag);
  free(chk);
  return st;
}
