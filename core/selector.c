/* The hard-batch selector ("Can we learn better with hard samples?"): B
 * fixed batches; the first round is a full pass in id order; each later
 * round takes the k = max(1, floor(delta B)) batches of highest stored loss
 * (ties: the lower id), trained in id order; only trained batches refresh
 * their loss; epochs * B steps in all, the last round cut to the steps
 * left. */
#include "internal.h"

#include <ferry/graph.h>

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct ferry_selector {
  pthread_mutex_t lock;
  int64_t num_batches, k, total_steps;
  int64_t epochs;
  double delta;
  int64_t steps;  /* handed out so far */
  double *loss;   /* stored loss per batch */
  bool *has_loss; /* reported at least once */
  /* Handed out in this round and no loss reported since. */
  bool *pending;
  int64_t *round; /* this round's batch ids, in id order */
  int64_t round_len, round_pos;
  int64_t round_index;    /* 0: the first pass */
  int64_t round_reported; /* batches of this round reported since handed out */
};

ferry_status ferry_selector_create(const ferry_selector_options *opts,
                                   ferry_selector **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(opts);
  FERRY_CHECK_NULL(out);
  if (opts->struct_size != sizeof(ferry_selector_options))
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "%s: opts->struct_size is %zu; use "
                        "FERRY_SELECTOR_OPTIONS_INIT",
                        __func__, opts->struct_size);
  if (opts->num_batches < 1)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: opts->num_batches is %lld; at least 1", __func__,
                        (long long)opts->num_batches);
  if (opts->epochs < 1 || opts->epochs > INT64_MAX / opts->num_batches)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: opts->epochs is %lld; at least 1 and epochs * "
                        "num_batches must fit int64",
                        __func__, (long long)opts->epochs);
  if (!(opts->delta > 0.0 && opts->delta <= 1.0))
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: opts->delta is %g; it must lie in (0, 1]",
                        __func__, opts->delta);
  ferry_selector *s = calloc(1, sizeof *s);
  size_t b = (size_t)opts->num_batches;
  if (s == NULL || (s->loss = calloc(b, sizeof *s->loss)) == NULL ||
      (s->has_loss = calloc(b, sizeof *s->has_loss)) == NULL ||
      (s->pending = calloc(b, sizeof *s->pending)) == NULL ||
      (s->round = calloc(b, sizeof *s->round)) == NULL) {
    if (s) {
      free(s->loss);
      free(s->has_loss);
      free(s->pending);
      free(s);
    }
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        __func__);
  }
  pthread_mutex_init(&s->lock, NULL);
  s->num_batches = opts->num_batches;
  s->epochs = opts->epochs;
  s->delta = opts->delta;
  /* Truncation is floor here: delta * B > 0. */
  int64_t k = (int64_t)(opts->delta * (double)opts->num_batches);
  s->k = k < 1 ? 1 : (k > s->num_batches ? s->num_batches : k);
  s->total_steps = opts->epochs * opts->num_batches;
  for (int64_t i = 0; i < s->num_batches; i++)
    s->round[i] = i;
  s->round_len = s->num_batches;
  *out = s;
  return FERRY_OK;
}

void ferry_selector_destroy(ferry_selector *sel) {
  if (sel == NULL)
    return;
  pthread_mutex_destroy(&sel->lock);
  free(sel->loss);
  free(sel->has_loss);
  free(sel->pending);
  free(sel->round);
  free(sel);
}

static const ferry_selector *cmp_sel; /* qsort has no context argument */

/* Higher loss first; equal losses: lower id first. */
static int by_loss(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  double lx = cmp_sel->loss[x], ly = cmp_sel->loss[y];
  if (lx != ly)
    return lx > ly ? -1 : 1;
  return (x > y) - (x < y);
}

static int by_id(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

/* Fills the next round from the stored losses (under s->lock). */
static ferry_status next_round(ferry_selector *s) {
  for (int64_t i = 0; i < s->num_batches; i++)
    if (!s->has_loss[i])
      return ferry__error(FERRY_ERR_NOT_READY,
                          "ferry_selector_next: batch %lld has no loss "
                          "reported; report every batch of the first pass "
                          "before the next round",
                          (long long)i);
  for (int64_t i = 0; i < s->num_batches; i++)
    s->round[i] = i;
  pthread_mutex_lock(&sort_lock);
  cmp_sel = s;
  qsort(s->round, (size_t)s->num_batches, sizeof *s->round, by_loss);
  cmp_sel = NULL;
  pthread_mutex_unlock(&sort_lock);
  qsort(s->round, (size_t)s->k, sizeof *s->round, by_id);
  int64_t left = s->total_steps - s->steps;
  s->round_len = s->k < left ? s->k : left;
  s->round_pos = 0;
  s->round_index++;
  s->round_reported = 0;
  memset(s->pending, 0, (size_t)s->num_batches * sizeof *s->pending);
  return FERRY_OK;
}

ferry_status ferry_selector_next(ferry_selector *sel, int64_t *batch_id,
                                 int *done) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(sel);
  FERRY_CHECK_NULL(batch_id);
  FERRY_CHECK_NULL(done);
  pthread_mutex_lock(&sel->lock);
  ferry_status st = FERRY_OK;
  if (sel->steps >= sel->total_steps) {
    *batch_id = -1;
    *done = 1;
    pthread_mutex_unlock(&sel->lock);
    return FERRY_OK;
  }
  if (sel->round_pos == sel->round_len)
    st = next_round(sel);
  if (st == FERRY_OK) {
    *batch_id = sel->round[sel->round_pos++];
    *done = 0;
    sel->steps++;
    sel->pending[*batch_id] = true;
  }
  pthread_mutex_unlock(&sel->lock);
  return st;
}

ferry_status ferry_selector_report(ferry_selector *sel, int64_t batch_id,
                                   double loss) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(sel);
  if (batch_id < 0 || batch_id >= sel->num_batches)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "%s: argument 'batch_id' is %lld, outside [0, %lld)",
                        __func__, (long long)batch_id,
                        (long long)sel->num_batches);
  if (!isfinite(loss))
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument 'loss' is %g; losses must be finite",
                        __func__, loss);
  pthread_mutex_lock(&sel->lock);
  sel->loss[batch_id] = loss;
  sel->has_loss[batch_id] = true;
  if (sel->pending[batch_id]) {
    sel->pending[batch_id] = false;
    sel->round_reported++;
  }
  pthread_mutex_unlock(&sel->lock);
  return FERRY_OK;
}

ferry_status ferry_selector_round_size(const ferry_selector *sel,
                                       int64_t *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(sel);
  FERRY_CHECK_NULL(out);
  *out = sel->k;
  return FERRY_OK;
}

/* The first version's size: callers built against it pass no less. */
#define SELECTOR_INFO_V1_SIZE                                                  \
  (offsetof(ferry_selector_info, round_reported) + sizeof(int64_t))

ferry_status ferry_selector_get_info(const ferry_selector *sel,
                                     ferry_selector_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(sel);
  FERRY_CHECK_NULL(out);
  ferry_status st = ferry__check_struct_size(
      __func__, out->struct_size, SELECTOR_INFO_V1_SIZE,
      sizeof(ferry_selector_info), "FERRY_SELECTOR_INFO_INIT");
  if (st != FERRY_OK)
    return st;
  ferry_selector_info info;
  memset(&info, 0, sizeof info);
  info.num_batches = sel->num_batches;
  info.epochs = sel->epochs;
  info.delta = sel->delta;
  info.round_size = sel->k;
  info.total_steps = sel->total_steps;
  /* One consistent snapshot; the selector is const to the caller only. */
  ferry_selector *s = (ferry_selector *)sel;
  pthread_mutex_lock(&s->lock);
  info.steps = s->steps;
  info.done = s->steps >= s->total_steps;
  info.round = s->round_index;
  info.round_length = s->round_len;
  info.round_handed = s->round_pos;
  info.round_reported = s->round_reported;
  pthread_mutex_unlock(&s->lock);
  size_t size = out->struct_size;
  info.struct_size = size;
  memcpy(out, &info, size);
  return FERRY_OK;
}
