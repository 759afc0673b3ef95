/* The Adan step's scalar pass on the cpu: what a GPU does in a one-block
 * kernel between the reduction and the update. In double, from the step
 * counter, so that no per-element pow is needed. */
#include "cpu_adan.h"

/* b^k by repeated squaring (libferry links no libm). */
static double power(double b, uint32_t k) {
  double r = 1.0;
  while (k) {
    if (k & 1u)
      r *= b;
    b *= b;
    k >>= 1;
  }
  return r;
}

int ferry_cpu_adan_scalars(const ferry_be_adan_hyper *h,
                           ferry_be_adan_control *ctl, double sum, uint32_t bad,
                           ferry_cpu_adan_coefs *coefs) {
  double clip = 1.0;
  if ((h->flags & FERRY_BE_ADAN_CHECK_FINITE) && bad) {
    ctl->skipped = 1;
    return 0;
  }
  if (h->flags & FERRY_BE_ADAN_CLIP) {
    clip =
        (double)h->max_grad_norm / (ferry_cpu_adan_sqrt(sum) + (double)h->eps);
    clip = clip > 1.0 ? 1.0 : clip; /* NaN stays NaN, as in the reference */
  }
  ctl->skipped = 0;
  ctl->clip = (float)clip;
  for (uint32_t g = 0; g < h->group_count && g < FERRY_BE_ADAN_MAX_GROUPS;
       g++) {
    ferry_be_adan_group_ctl *gc = &ctl->groups[g];
    uint32_t k = ++gc->step;
    double lr = h->lr[g], wd = h->weight_decay[g];
    double bc1 = 1.0 - power(h->beta1, k), bc2 = 1.0 - power(h->beta2, k);
    double bc3 = 1.0 - power(h->beta3, k);
    gc->s1 = (float)(lr / bc1);
    gc->s2 = (float)(lr * h->beta2 / bc2);
    gc->inv_sqrt_bc3 = (float)(1.0 / ferry_cpu_adan_sqrt(bc3));
    bool no_prox = (h->flags & FERRY_BE_ADAN_NO_PROX) != 0;
    gc->decay = (float)(no_prox ? 1.0 - lr * wd : 1.0 / (1.0 + lr * wd));
    gc->use_master = gc->master_ready;
    if (h->flags & FERRY_BE_ADAN_MASTER)
      gc->master_ready = 1;
    ferry_cpu_adan_coefs *c = &coefs[g];
    /* 1 - beta in double, then rounded: 1 - (float)0.98 is off by 1e-6. */
    c->b1 = (float)h->beta1;
    c->omb1 = (float)(1.0 - h->beta1);
    c->b2 = (float)h->beta2;
    c->omb2 = (float)(1.0 - h->beta2);
    c->b3 = (float)h->beta3;
    c->omb3 = (float)(1.0 - h->beta3);
    c->clip = ctl->clip;
    c->s1 = gc->s1;
    c->s2 = gc->s2;
    c->ibc3 = gc->inv_sqrt_bc3;
    c->eps = (float)h->eps;
    c->decay = gc->decay;
    c->no_prox = no_prox;
    c->first = k == 1;
  }
  return 1;
}
