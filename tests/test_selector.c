/* The hard-batch selector on scripted loss sequences. */
#include "harness.h"

#include <math.h>

static ferry_selector *make(int64_t b, int64_t epochs, double delta) {
  ferry_selector_options o = FERRY_SELECTOR_OPTIONS_INIT;
  o.num_batches = b;
  o.epochs = epochs;
  o.delta = delta;
  ferry_selector *s = NULL;
  FERRY_OK_(ferry_selector_create(&o, &s));
  return s;
}

static int64_t next(ferry_selector *s) {
  int64_t id = -2;
  int done = -1;
  FERRY_OK_(ferry_selector_next(s, &id, &done));
  cr_assert_eq(done, id < 0);
  return id;
}

Test(selector, scripted_rounds) {
  /* B = 5, delta = 0.4: k = 2; 3 epochs = 15 steps: 5 + 2*5 rounds. */
  ferry_selector *s = make(5, 3, 0.4);
  int64_t k = 0;
  FERRY_OK_(ferry_selector_round_size(s, &k));
  cr_assert_eq(k, 2);
  double loss[5] = {1.0, 5.0, 3.0, 5.0, 0.5};
  for (int64_t i = 0; i < 5; i++) {
    cr_assert_eq(next(s), i, "first pass in id order");
    FERRY_OK_(ferry_selector_report(s, i, loss[i]));
  }
  /* Top 2 by loss: 1 and 3 (tie at 5.0; both in), in id order. */
  cr_assert_eq(next(s), 1);
  FERRY_OK_(ferry_selector_report(s, 1, 0.1)); /* batch 1 got easy */
  cr_assert_eq(next(s), 3);
  FERRY_OK_(ferry_selector_report(s, 3, 4.0));
  /* Stored: 1.0 0.1 3.0 4.0 0.5 -> 3, 2 -> in id order 2, 3. */
  cr_assert_eq(next(s), 2);
  FERRY_OK_(ferry_selector_report(s, 2, 3.0));
  cr_assert_eq(next(s), 3);
  FERRY_OK_(ferry_selector_report(s, 3, 3.0));
  /* Stored: 1.0 0.1 3.0 3.0 0.5: tie 2, 3 -> 2, 3. Untrained batch 0 keeps
   * its stale loss and returns once the others drop below it. */
  cr_assert_eq(next(s), 2);
  FERRY_OK_(ferry_selector_report(s, 2, 0.2));
  cr_assert_eq(next(s), 3);
  FERRY_OK_(ferry_selector_report(s, 3, 0.3));
  /* Stored: 1.0 0.1 0.2 0.3 0.5 -> 0 and 4. */
  cr_assert_eq(next(s), 0);
  FERRY_OK_(ferry_selector_report(s, 0, 1.0));
  cr_assert_eq(next(s), 4);
  FERRY_OK_(ferry_selector_report(s, 4, 1.0));
  /* 13 steps so far. Tie 0 and 4 at 1.0, everything else lower. */
  cr_assert_eq(next(s), 0);
  cr_assert_eq(next(s), 4);
  cr_assert_eq(next(s), -1, "15 steps in all");
  cr_assert_eq(next(s), -1);
  ferry_selector_destroy(s);
}

Test(selector, truncated_last_round_and_small_delta) {
  /* B = 4, delta = 0.1: delta B < 1 so k = 1; 2 epochs = 8 steps. */
  ferry_selector *s = make(4, 2, 0.1);
  int64_t k = 0;
  FERRY_OK_(ferry_selector_round_size(s, &k));
  cr_assert_eq(k, 1);
  for (int64_t i = 0; i < 4; i++) {
    cr_assert_eq(next(s), i);
    FERRY_OK_(ferry_selector_report(s, i, (double)(i == 2)));
  }
  for (int step = 0; step < 4; step++)
    cr_assert_eq(next(s), 2, "always the hardest");
  cr_assert_eq(next(s), -1);
  ferry_selector_destroy(s);
  /* B = 5, delta = 0.6: k = 3; 2 epochs = 10 steps = 5 + 3 + 2 (cut). */
  s = make(5, 2, 0.6);
  for (int64_t i = 0; i < 5; i++) {
    cr_assert_eq(next(s), i);
    FERRY_OK_(ferry_selector_report(s, i, 10.0 - (double)i));
  }
  cr_assert_eq(next(s), 0);
  cr_assert_eq(next(s), 1);
  cr_assert_eq(next(s), 2);
  /* Unchanged losses: the same top 3, cut to the 2 steps left. */
  cr_assert_eq(next(s), 0);
  cr_assert_eq(next(s), 1);
  cr_assert_eq(next(s), -1);
  ferry_selector_destroy(s);
}

Test(selector, delta_one_is_ordinary_training) {
  ferry_selector *s = make(3, 3, 1.0);
  for (int e = 0; e < 3; e++)
    for (int64_t i = 0; i < 3; i++) {
      cr_assert_eq(next(s), i);
      FERRY_OK_(ferry_selector_report(s, i, (double)(3 - i)));
    }
  cr_assert_eq(next(s), -1);
  ferry_selector_destroy(s);
}

Test(selector, bad_input) {
  ferry_selector_options o = FERRY_SELECTOR_OPTIONS_INIT;
  ferry_selector *s = NULL;
  o.num_batches = 4;
  o.delta = 0.0;
  FERRY_EXPECT(ferry_selector_create(&o, &s), FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("delta");
  o.delta = 1.5;
  FERRY_EXPECT(ferry_selector_create(&o, &s), FERRY_ERR_INVALID_ARGUMENT);
  o.delta = 0.5;
  o.num_batches = 0;
  FERRY_EXPECT(ferry_selector_create(&o, &s), FERRY_ERR_INVALID_ARGUMENT);
  FERRY_EXPECT_MESSAGE("num_batches");
  cr_assert_null(s);
  s = make(2, 2, 0.5);
  cr_assert_eq(next(s), 0);
  FERRY_EXPECT(ferry_selector_report(s, 2, 1.0), FERRY_ERR_OUT_OF_RANGE);
  FERRY_EXPECT(ferry_selector_report(s, 0, NAN), FERRY_ERR_INVALID_ARGUMENT);
  FERRY_OK_(ferry_selector_report(s, 0, 1.0));
  cr_assert_eq(next(s), 1);
  /* Batch 1's loss missing at the round boundary. */
  int64_t id;
  int done;
  FERRY_EXPECT(ferry_selector_next(s, &id, &done), FERRY_ERR_NOT_READY);
  FERRY_EXPECT_MESSAGE("batch 1");
  FERRY_OK_(ferry_selector_report(s, 1, 2.0));
  cr_assert_eq(next(s), 1);
  ferry_selector_destroy(s);
}

static ferry_selector_info info_of(const ferry_selector *s) {
  ferry_selector_info i;
  ferry_test_poison(&i, sizeof i); /* every field must be written */
  i.struct_size = sizeof i;
  FERRY_OK_(ferry_selector_get_info(s, &i));
  cr_assert_eq(i.struct_size, sizeof i);
  return i;
}

/* The current round as the info reports it. */
static void expect_round(const ferry_selector *s, int64_t round, int64_t length,
                         int64_t handed, int64_t reported) {
  ferry_selector_info i = info_of(s);
  cr_assert(i.round == round && i.round_length == length &&
                i.round_handed == handed && i.round_reported == reported,
            "round %lld of %lld steps, %lld handed out, %lld reported; "
            "expected %lld, %lld, %lld, %lld",
            (long long)i.round, (long long)i.round_length,
            (long long)i.round_handed, (long long)i.round_reported,
            (long long)round, (long long)length, (long long)handed,
            (long long)reported);
}

/* Where the selector stands, step by step: the round, its length, how much
 * of it was handed out and reported. */
Test(selector, get_info) {
  /* B = 5, delta = 0.6: k = 3; 2 epochs = 10 steps = 5 + 3 + 2 (cut). */
  ferry_selector *s = make(5, 2, 0.6);
  ferry_selector_info i = info_of(s);
  cr_assert_eq(i.num_batches, 5);
  cr_assert_eq(i.epochs, 2);
  cr_assert_eq(i.delta, 0.6);
  cr_assert_eq(i.round_size, 3);
  cr_assert_eq(i.total_steps, 10);
  cr_assert_eq(i.steps, 0);
  cr_assert_eq(i.done, 0);
  expect_round(s, 0, 5, 0, 0);
  for (int64_t b = 0; b < 5; b++) {
    cr_assert_eq(next(s), b);
    expect_round(s, 0, 5, b + 1, b);
    FERRY_OK_(ferry_selector_report(s, b, 10.0 - (double)b));
    /* A second report of the same batch counts once. */
    FERRY_OK_(ferry_selector_report(s, b, 10.0 - (double)b));
    expect_round(s, 0, 5, b + 1, b + 1);
  }
  /* Round 1 (batches 0, 1, 2) begins with the next call. A loss reported
   * for a batch not handed out in this round is not counted. */
  cr_assert_eq(next(s), 0);
  expect_round(s, 1, 3, 1, 0);
  cr_assert_eq(info_of(s).steps, 6);
  FERRY_OK_(ferry_selector_report(s, 4, 0.0));
  expect_round(s, 1, 3, 1, 0);
  FERRY_OK_(ferry_selector_report(s, 0, 10.0));
  expect_round(s, 1, 3, 1, 1);
  cr_assert_eq(next(s), 1);
  cr_assert_eq(next(s), 2);
  /* Round 2 is cut to the 2 steps left. */
  cr_assert_eq(next(s), 0);
  expect_round(s, 2, 2, 1, 0);
  cr_assert_eq(info_of(s).done, 0);
  cr_assert_eq(next(s), 1);
  cr_assert_eq(next(s), -1);
  i = info_of(s);
  cr_assert_eq(i.done, 1);
  cr_assert_eq(i.steps, 10);
  expect_round(s, 2, 2, 2, 0);
  /* Bad input. */
  ferry_selector_info bad = FERRY_SELECTOR_INFO_INIT;
  FERRY_EXPECT(ferry_selector_get_info(NULL, &bad), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("sel");
  FERRY_EXPECT(ferry_selector_get_info(s, NULL), FERRY_ERR_NULL_POINTER);
  FERRY_EXPECT_MESSAGE("out");
  bad.struct_size = sizeof bad - 8;
  FERRY_EXPECT(ferry_selector_get_info(s, &bad), FERRY_ERR_STRUCT_SIZE);
  FERRY_EXPECT_MESSAGE("FERRY_SELECTOR_INFO_INIT");
  bad.struct_size = 0;
  FERRY_EXPECT(ferry_selector_get_info(s, &bad), FERRY_ERR_STRUCT_SIZE);
  ferry_selector_destroy(s);
}
