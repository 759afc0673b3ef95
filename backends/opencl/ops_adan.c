/* adan_step on OpenCL (kernels/adan.cl): per tensor a reduction kernel
 * (with clipping or the finite check), one scalar kernel over the control
 * block, then per tensor the fused update; all on the stream's in-order
 * queue, so the step never waits for the device.
 *
 * Operands must be cl_mem backed (device memory, or pinned host memory
 * registered with the device); a caller's plain host pointer is refused.
 * The scalar pass runs in double where the device has cl_khr_fp64 (1 - b^k
 * from an f32 beta is off by ~1e-6 relative), else in float. Everything that
 * can fail before the first command (kernels, temporary buffers, arguments)
 * is prepared first. */
#include "internal.h"
#include "kernel_sources.h"

#include <stdlib.h>
#include <string.h>

#define ADAN_LOCAL 64
#define ADAN_REDUCE_GROUPS 16 /* work-groups (partials) per tensor */
#define ADAN_UPDATE_MAX_ITEMS ((uint64_t)1 << 20)

typedef struct adan_kernels {
  cl_kernel reduce, scalars, update;
  cl_mem hyper, sums, bad;
} adan_kernels;

static void release(adan_kernels *k) {
  if (k->reduce)
    clReleaseKernel(k->reduce);
  if (k->scalars)
    clReleaseKernel(k->scalars);
  if (k->update)
    clReleaseKernel(k->update);
  if (k->hyper)
    clReleaseMemObject(k->hyper);
  if (k->sums)
    clReleaseMemObject(k->sums);
  if (k->bad)
    clReleaseMemObject(k->bad);
}

static bool has_fp64(const ocl_device *dev) {
  cl_device_fp_config cfg = 0;
  return clGetDeviceInfo(dev->id, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof cfg, &cfg,
                         NULL) == CL_SUCCESS &&
         cfg != 0;
}

typedef struct kargs {
  cl_kernel k;
  cl_uint i;
  cl_int err;
} kargs;

static void arg(kargs *a, size_t size, const void *value) {
  if (a->err == CL_SUCCESS)
    a->err = clSetKernelArg(a->k, a->i, size, value);
  a->i++;
}

static cl_int enqueue(ferry_be_stream *s, cl_kernel k, size_t gws, size_t lws,
                      cl_event *last) {
  cl_event ev = NULL;
  cl_int err =
      clEnqueueNDRangeKernel(s->queue, k, 1, NULL, &gws, &lws, 0, NULL, &ev);
  if (err == CL_SUCCESS) {
    if (*last)
      clReleaseEvent(*last);
    *last = ev;
  }
  return err;
}

static size_t groups_for(uint64_t n, uint64_t cap) {
  uint64_t items = n < cap ? n : cap;
  return (size_t)((items + ADAN_LOCAL - 1) / ADAN_LOCAL * ADAN_LOCAL);
}

/* Bytes per element of an Adan operand (f32, f16, bf16). */
static cl_ulong elem_size(ferry_dtype dt) {
  return dt == FERRY_DTYPE_F32 ? 4 : 2;
}

/* Sets a tensor's reduce or update arguments (the kernel's own order). */
static cl_int tensor_args(cl_kernel k, int update,
                          const ferry_be_adan_tensor *t, const adan_kernels *K,
                          cl_mem ctl, uint32_t first, uint32_t flags,
                          const float *coef) {
  kargs a = {k, 0, CL_SUCCESS};
  cl_ulong goff = t->grad.offset / elem_size(t->grad_dtype);
  cl_int gdt = (cl_int)t->grad_dtype;
  cl_ulong n = t->length;
  if (!update) {
    arg(&a, sizeof(cl_mem), &t->grad.buffer->mem);
    arg(&a, sizeof goff, &goff);
    arg(&a, sizeof gdt, &gdt);
    arg(&a, sizeof n, &n);
    arg(&a, sizeof(cl_mem), &K->sums);
    arg(&a, sizeof(cl_mem), &K->bad);
    cl_uint f = first;
    arg(&a, sizeof f, &f);
    return a.err;
  }
  cl_ulong poff = t->param.offset / elem_size(t->param_dtype);
  cl_int pdt = (cl_int)t->param_dtype;
  cl_ulong soff = t->state.offset / sizeof(float);
  cl_ulong stride = t->stride;
  cl_uint group = t->group, fl = flags;
  arg(&a, sizeof(cl_mem), &t->param.buffer->mem);
  arg(&a, sizeof poff, &poff);
  arg(&a, sizeof pdt, &pdt);
  arg(&a, sizeof(cl_mem), &t->grad.buffer->mem);
  arg(&a, sizeof goff, &goff);
  arg(&a, sizeof gdt, &gdt);
  arg(&a, sizeof(cl_mem), &t->state.buffer->mem);
  arg(&a, sizeof soff, &soff);
  arg(&a, sizeof stride, &stride);
  arg(&a, sizeof n, &n);
  arg(&a, sizeof(cl_mem), &ctl);
  arg(&a, sizeof group, &group);
  arg(&a, sizeof fl, &fl);
  for (int i = 0; i < 7; i++)
    arg(&a, sizeof(float), &coef[i]);
  return a.err;
}

ferry_status ocl_op_adan_step(ferry_be_stream *s, const ferry_be_launch *l,
                              const ferry_be_adan_step *step) {
  const ferry_be_adan_hyper *h = &step->hyper;
  for (uint64_t i = 0; i < step->tensor_count; i++) {
    const ferry_be_adan_tensor *t = &step->tensors[i];
    if (t->param.buffer == NULL || t->grad.buffer == NULL ||
        t->state.buffer == NULL)
      return ocl_host->set_error(FERRY_ERR_INVALID_ARGUMENT,
                                 "opencl adan_step: tensor %llu is plain host "
                                 "memory; OpenCL needs ferry buffers (device "
                                 "or pinned host memory)",
                                 (unsigned long long)i);
  }
  if (step->control.buffer == NULL || step->control.offset != 0)
    return ocl_host->set_error(FERRY_ERR_INTERNAL,
                               "opencl adan_step: the control block is not "
                               "a whole device buffer");
  const bool reduce =
      (h->flags & (FERRY_BE_ADAN_CLIP | FERRY_BE_ADAN_CHECK_FINITE)) != 0;
  const bool fp64 = has_fp64(s->ctx->dev);
  const char *opts = fp64 ? "-DFERRY_ADAN_FP64" : NULL;
  adan_kernels K;
  memset(&K, 0, sizeof K);
  ocl_program_cache *pc = &s->ctx->programs;
  ferry_status st =
      ocl_kernel_create(pc, fp64 ? "adan64" : "adan", ocl_source_adan, opts,
                        "ferry_adan_scalars", &K.scalars);
  if (st == FERRY_OK)
    st = ocl_kernel_create(pc, fp64 ? "adan64" : "adan", ocl_source_adan, opts,
                           "ferry_adan_update", &K.update);
  if (st == FERRY_OK && reduce)
    st = ocl_kernel_create(pc, fp64 ? "adan64" : "adan", ocl_source_adan, opts,
                           "ferry_adan_reduce", &K.reduce);
  if (st != FERRY_OK) {
    release(&K);
    return st;
  }

  /* The hyper-parameters as the scalar kernel reads them. */
  uint32_t groups = h->group_count;
  size_t nh = 5 + 2 * (size_t)groups;
  double hd[5 + 2 * FERRY_BE_ADAN_MAX_GROUPS];
  float hf[5 + 2 * FERRY_BE_ADAN_MAX_GROUPS];
  hd[0] = h->beta1;
  hd[1] = h->beta2;
  hd[2] = h->beta3;
  hd[3] = h->eps;
  hd[4] = h->max_grad_norm;
  for (uint32_t g = 0; g < groups; g++) {
    hd[5 + g] = h->lr[g];
    hd[5 + groups + g] = h->weight_decay[g];
  }
  for (size_t i = 0; i < nh; i++)
    hf[i] = (float)hd[i];
  cl_int err;
  K.hyper = clCreateBuffer(s->ctx->cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                           nh * (fp64 ? sizeof(double) : sizeof(float)),
                           fp64 ? (void *)hd : (void *)hf, &err);
  cl_uint nparts =
      reduce ? (cl_uint)(step->tensor_count * ADAN_REDUCE_GROUPS) : 0;
  if (K.hyper != NULL && reduce) {
    K.sums = clCreateBuffer(s->ctx->cl, CL_MEM_READ_WRITE,
                            nparts * sizeof(float), NULL, &err);
    if (K.sums != NULL)
      K.bad = clCreateBuffer(s->ctx->cl, CL_MEM_READ_WRITE,
                             nparts * sizeof(cl_uint), NULL, &err);
  }
  if (K.hyper == NULL || (reduce && (K.sums == NULL || K.bad == NULL))) {
    release(&K);
    return ocl_fail("clCreateBuffer (adan_step temporaries)", err);
  }

  cl_mem ctl = step->control.buffer->mem;
  cl_uint fl = h->flags, ng = groups;
  kargs a = {K.scalars, 0, CL_SUCCESS};
  arg(&a, sizeof(cl_mem), &ctl);
  arg(&a, sizeof(cl_mem), &K.hyper);
  arg(&a, sizeof ng, &ng);
  arg(&a, sizeof fl, &fl);
  arg(&a, sizeof(cl_mem), reduce ? &K.sums : NULL);
  arg(&a, sizeof(cl_mem), reduce ? &K.bad : NULL);
  arg(&a, sizeof nparts, &nparts);
  if (a.err != CL_SUCCESS) {
    release(&K);
    return ocl_fail("clSetKernelArg (ferry_adan_scalars)", a.err);
  }
  /* 1 - beta rounded from double (see cpu_adan_scalars.c). */
  const float coef[7] = {(float)h->beta1, (float)(1.0 - h->beta1),
                         (float)h->beta2, (float)(1.0 - h->beta2),
                         (float)h->beta3, (float)(1.0 - h->beta3),
                         (float)h->eps};

  ocl_watch *w = NULL;
  if ((st = ocl_watch_new(s, l, &w)) != FERRY_OK) {
    release(&K);
    return st;
  }
  cl_event last = NULL;
  err = CL_SUCCESS;
  const char *what = "clEnqueueNDRangeKernel (ferry_adan_reduce)";
  for (uint64_t i = 0; reduce && i < step->tensor_count && !err; i++) {
    err = tensor_args(K.reduce, 0, &step->tensors[i], &K, ctl,
                      (uint32_t)(i * ADAN_REDUCE_GROUPS), 0, NULL);
    if (!err)
      err = enqueue(s, K.reduce, ADAN_REDUCE_GROUPS * ADAN_LOCAL, ADAN_LOCAL,
                    &last);
  }
  if (!err) {
    what = "clEnqueueNDRangeKernel (ferry_adan_scalars)";
    err = enqueue(s, K.scalars, 1, 1, &last);
  }
  for (uint64_t i = 0; i < step->tensor_count && !err; i++) {
    what = "clEnqueueNDRangeKernel (ferry_adan_update)";
    const ferry_be_adan_tensor *t = &step->tensors[i];
    err = tensor_args(K.update, 1, t, &K, ctl, 0, h->flags, coef);
    if (!err)
      err = enqueue(s, K.update, groups_for(t->length, ADAN_UPDATE_MAX_ITEMS),
                    ADAN_LOCAL, &last);
  }
  release(&K);
  if (err != CL_SUCCESS && last == NULL) {
    ocl_watch_cancel(w);
    return ocl_fail(what, err);
  }
  if (err != CL_SUCCESS) /* part of the step is queued: a deferred error */
    ocl_report_command_error(s, l->seq, l->op, err);
  ocl_watch_start(w, last);
  return FERRY_OK;
}
