/* A gate: a host function that holds its stream until the test opens it,
 * for showing that a call made meanwhile does not wait for that stream's
 * work. It gives up after a time limit and says so (gave_up), so that a call
 * that does wait makes the test fail instead of hanging it; the limit only
 * bounds how long a regression takes to show, a passing run never reaches
 * it. (tests/test_cpu_streams.c has the plain gate without a limit.) */
#ifndef FERRY_TEST_GATE_H
#define FERRY_TEST_GATE_H

#include <ferry/ferry.h>

#include <stdatomic.h>
#include <time.h>

/* Long enough for the slowest place the tests run (the GPU emulator under
 * sanitizers on a loaded 2-core machine); a regression costs this once. */
#define FERRY_TEST_GATE_LIMIT_MS 15000.0

typedef struct ferry_test_gate {
  atomic_int open;
  atomic_int entered;
  atomic_int gave_up;
  double limit_ms;
} ferry_test_gate;

static inline double ferry_test_gate_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void ferry_test_gate_nap(void) {
  struct timespec ts = {0, 1000000L};
  nanosleep(&ts, NULL);
}

static inline ferry_status ferry_test_gate_fn(void *user) {
  ferry_test_gate *g = user;
  atomic_store(&g->entered, 1);
  double until = ferry_test_gate_clock_ms() + g->limit_ms;
  while (!atomic_load(&g->open)) {
    if (ferry_test_gate_clock_ms() > until) {
      atomic_store(&g->gave_up, 1);
      break;
    }
    ferry_test_gate_nap();
  }
  return FERRY_OK;
}

/* Queues a gate of `limit_ms` on `s` and returns once it holds the stream
 * (FERRY_ERR_NOT_READY if it never started within the limit). */
static inline ferry_status
ferry_test_gate_close(ferry_test_gate *g, ferry_stream *s, double limit_ms) {
  atomic_init(&g->open, 0);
  atomic_init(&g->entered, 0);
  atomic_init(&g->gave_up, 0);
  g->limit_ms = limit_ms;
  ferry_status st = ferry_stream_enqueue_host_fn(s, ferry_test_gate_fn, g);
  double until = ferry_test_gate_clock_ms() + limit_ms;
  while (st == FERRY_OK && !atomic_load(&g->entered))
    if (ferry_test_gate_clock_ms() > until)
      st = FERRY_ERR_NOT_READY;
    else
      ferry_test_gate_nap();
  return st;
}

/* Opens the gate and waits for the stream; 1 if the gate held until now. */
static inline int ferry_test_gate_open(ferry_test_gate *g, ferry_stream *s) {
  int held = !atomic_load(&g->gave_up);
  atomic_store(&g->open, 1);
  ferry_status st = ferry_stream_synchronize(s);
  return held && st == FERRY_OK;
}

#endif /* FERRY_TEST_GATE_H */
