/* The Adan optimizer's state from the host: counters, the skipped flag,
 * restarts and checkpoints. Each call orders itself after every step
 * enqueued so far (the optimizer's stream waits on the event recorded after
 * the last step) and waits for its own copies. */
#include "adan_internal.h"

#include <stdlib.h>
#include <string.h>

/* Look up group `group` with the lock held; unlocks on failure. */
static ferry_status lock_group(ferry_adan *opt, const char *func, int group) {
  pthread_mutex_lock(&opt->lock);
  if (group >= 0 && group < opt->group_count)
    return FERRY_OK;
  int n = opt->group_count;
  pthread_mutex_unlock(&opt->lock);
  return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                      "%s: argument 'group' is %d; the optimizer has %d "
                      "groups",
                      func, group, n);
}

static uint64_t ctl_group_offset(int group, size_t field) {
  return offsetof(ferry_be_adan_control, groups) +
         (uint64_t)group * sizeof(ferry_be_adan_group_ctl) + field;
}

/* Read `size` bytes of the control block after the queued steps. */
static ferry_status read_control(ferry_adan *opt, uint64_t offset, void *dst,
                                 uint64_t size) {
  ferry_status st = ferry__adan_wait_steps(opt);
  if (st == FERRY_OK)
    st = ferry_buffer_read_async(opt->stream, opt->control, offset, dst, size);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(opt->stream);
  return st;
}

static ferry_status write_control(ferry_adan *opt, uint64_t offset,
                                  const void *src, uint64_t size) {
  ferry_status st = ferry__adan_wait_steps(opt);
  if (st == FERRY_OK)
    st = ferry_buffer_write_async(opt->stream, opt->control, offset, src, size);
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(opt->stream);
  return st;
}

ferry_status ferry_adan_get_step(ferry_adan *opt, int group, uint64_t *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(opt);
  FERRY_CHECK_NULL(out);
  ferry_status st = lock_group(opt, "ferry_adan_get_step", group);
  if (st != FERRY_OK)
    return st;
  uint32_t k = 0;
  st = read_control(
      opt, ctl_group_offset(group, offsetof(ferry_be_adan_group_ctl, step)), &k,
      sizeof k);
  pthread_mutex_unlock(&opt->lock);
  if (st == FERRY_OK)
    *out = k;
  return st;
}

ferry_status ferry_adan_set_step(ferry_adan *opt, int group, uint64_t step) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(opt);
  if (step > UINT32_MAX)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_adan_set_step: argument 'step' is %llu; the "
                        "counter holds at most 2^32 - 1",
                        (unsigned long long)step);
  ferry_status st = lock_group(opt, "ferry_adan_set_step", group);
  if (st != FERRY_OK)
    return st;
  uint32_t k = (uint32_t)step;
  st = write_control(
      opt, ctl_group_offset(group, offsetof(ferry_be_adan_group_ctl, step)), &k,
      sizeof k);
  pthread_mutex_unlock(&opt->lock);
  return st;
}

ferry_status ferry_adan_last_step_skipped(ferry_adan *opt, int *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(opt);
  FERRY_CHECK_NULL(out);
  pthread_mutex_lock(&opt->lock);
  uint32_t skipped = 0;
  ferry_status st = read_control(opt, offsetof(ferry_be_adan_control, skipped),
                                 &skipped, sizeof skipped);
  pthread_mutex_unlock(&opt->lock);
  if (st == FERRY_OK)
    *out = skipped != 0;
  return st;
}

ferry_status ferry_adan_restart(ferry_adan *opt) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(opt);
  pthread_mutex_lock(&opt->lock);
  ferry_status st = ferry__adan_wait_steps(opt);
  const uint32_t zero = 0;
  for (int i = 0; i < opt->group_count && st == FERRY_OK; i++) {
    /* m, v and n are the arena's first three vectors. */
    const ferry__adan_group *g = &opt->groups[i];
    st = ferry_buffer_fill_async(opt->stream, g->arena, FERRY_ADAN_SKEW, 0,
                                 3 * g->stride * sizeof(float));
    if (st == FERRY_OK)
      st = ferry_buffer_write_async(
          opt->stream, opt->control,
          ctl_group_offset(i, offsetof(ferry_be_adan_group_ctl, step)), &zero,
          sizeof zero);
  }
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(opt->stream);
  pthread_mutex_unlock(&opt->lock);
  return st;
}

ferry_status ferry_adan_state_length(const ferry_adan *opt, int group,
                                     uint64_t *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(opt);
  FERRY_CHECK_NULL(out);
  ferry_adan *o = (ferry_adan *)opt; /* the lock only */
  ferry_status st = lock_group(o, "ferry_adan_state_length", group);
  if (st != FERRY_OK)
    return st;
  *out = o->groups[group].length;
  pthread_mutex_unlock(&o->lock);
  return FERRY_OK;
}

/* Checks a checkpoint call's arguments; locks on success. */
static ferry_status state_args(ferry_adan *opt, const char *func, int group,
                               ferry_adan_state which, uint64_t count) {
  if ((int)which < FERRY_ADAN_STATE_M || (int)which > FERRY_ADAN_STATE_MASTER)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument 'which' is %d; not a ferry_adan_state",
                        func, (int)which);
  ferry_status st = lock_group(opt, func, group);
  if (st != FERRY_OK)
    return st;
  const ferry__adan_group *g = &opt->groups[group];
  if ((int)which >= g->vectors)
    st = ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                      "%s: group %d has no master weights (its parameters "
                      "are f32, or master weights are off)",
                      func, group);
  else if (count != g->length)
    st = ferry__error(FERRY_ERR_MISMATCH,
                      "%s: argument 'count' is %llu; group %d's state has "
                      "%llu elements",
                      func, (unsigned long long)count, group,
                      (unsigned long long)g->length);
  if (st != FERRY_OK)
    pthread_mutex_unlock(&opt->lock);
  return st;
}

/* Copies each tensor's part of a vector between the arena (with its
 * alignment gaps) and the caller's plain array. */
static ferry_status state_copy(ferry_adan *opt, int group,
                               ferry_adan_state which, float *read_to,
                               const float *write_from) {
  const ferry__adan_group *g = &opt->groups[group];
  ferry_status st = ferry__adan_wait_steps(opt);
  uint64_t base = (uint64_t)which * g->stride, at = 0;
  for (size_t i = 0; i < g->count && st == FERRY_OK; i++) {
    const ferry__adan_tensor *t = &opt->tensors[g->first + i];
    uint64_t off = FERRY_ADAN_SKEW + (base + t->offset) * sizeof(float);
    uint64_t bytes = t->length * sizeof(float);
    st = read_to ? ferry_buffer_read_async(opt->stream, g->arena, off,
                                           read_to + at, bytes)
                 : ferry_buffer_write_async(opt->stream, g->arena, off,
                                            write_from + at, bytes);
    at += t->length;
  }
  if (st == FERRY_OK && write_from && which == FERRY_ADAN_STATE_MASTER) {
    static const uint32_t one = 1;
    st = ferry_buffer_write_async(
        opt->stream, opt->control,
        ctl_group_offset(group,
                         offsetof(ferry_be_adan_group_ctl, master_ready)),
        &one, sizeof one);
  }
  if (st == FERRY_OK)
    st = ferry_stream_synchronize(opt->stream);
  return st;
}

ferry_status ferry_adan_read_state(ferry_adan *opt, int group,
                                   ferry_adan_state which, float *dst,
                                   uint64_t count) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(opt);
  FERRY_CHECK_NULL(dst);
  ferry_status st =
      state_args(opt, "ferry_adan_read_state", group, which, count);
  if (st != FERRY_OK)
    return st;
  st = state_copy(opt, group, which, dst, NULL);
  pthread_mutex_unlock(&opt->lock);
  return st;
}

ferry_status ferry_adan_write_state(ferry_adan *opt, int group,
                                    ferry_adan_state which, const float *src,
                                    uint64_t count) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(opt);
  FERRY_CHECK_NULL(src);
  ferry_status st =
      state_args(opt, "ferry_adan_write_state", group, which, count);
  if (st != FERRY_OK)
    return st;
  st = state_copy(opt, group, which, NULL, src);
  pthread_mutex_unlock(&opt->lock);
  return st;
}
