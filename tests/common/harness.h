/* The test harness shared by every ferry test.
 *
 * Backend tests run once per backend (CTest sets FERRY_TEST_BACKEND); the
 * harness's own main() exits 77 with the reason when that backend is not
 * available here, so CTest shows the test as skipped rather than passed.
 * ferry_test_context() gives a context of exactly that backend, and fails the
 * test if the context runs anything else: tests never fall back. */
#ifndef FERRY_TEST_HARNESS_H
#define FERRY_TEST_HARNESS_H

#include <criterion/criterion.h>
#include <ferry/ferry.h>
#include <stdint.h>

/* The backend under test ("cpu", "opencl", ...), or NULL for core tests. */
const char *ferry_test_backend(void);

/* A context on the backend under test (asserts it runs that backend). */
ferry_context *ferry_test_context(void);

/* Assert a call returned `expected`, printing ferry_last_error() otherwise. */
#define FERRY_EXPECT(call, expected)                                           \
  do {                                                                         \
    ferry_status ferry_expect_st_ = (call);                                    \
    cr_assert_eq(ferry_expect_st_, (expected), "%s -> %s (%s), expected %s",   \
                 #call, ferry_status_string(ferry_expect_st_),                 \
                 ferry_last_error(), ferry_status_string(expected));           \
  } while (0)
#define FERRY_OK_(call) FERRY_EXPECT(call, FERRY_OK)

/* Assert the thread's last error message contains `needle`. */
#define FERRY_EXPECT_MESSAGE(needle)                                           \
  cr_assert(ferry_test_message_has(needle), "message '%s' lacks '%s'",         \
            ferry_last_error(), (needle))
int ferry_test_message_has(const char *needle);

/* Deterministic random numbers for test inputs (splitmix64). */
uint64_t ferry_test_rand(uint64_t *state);
double ferry_test_uniform(uint64_t *state); /* in [-1, 1) */

/* Fill `n` bytes with a poison pattern (0xA5) before an op writes them. */
void ferry_test_poison(void *p, size_t n);

/* The directory ../shared relative to the source tree (FERRY_SHARED_DIR). */
const char *ferry_test_shared_dir(void);

#endif /* FERRY_TEST_HARNESS_H */
