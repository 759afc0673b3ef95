/* See harness.h. The custom main() replaces Criterion's so that an
 * unavailable backend exits 77 (a visible skip) instead of 0. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ferry_test_backend(void) {
  const char *be = getenv("FERRY_TEST_BACKEND");
  return (be && *be) ? be : NULL;
}

ferry_context *ferry_test_context(void) {
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = ferry_test_backend();
  cr_assert_not_null(o.backend,
                     "not a backend test (FERRY_TEST_BACKEND unset)");
  ferry_context *ctx = NULL;
  ferry_status st = ferry_context_create(&o, &ctx);
  cr_assert_eq(st, FERRY_OK, "context on %s: %s: %s", o.backend,
               ferry_status_string(st), ferry_last_error());
  ferry_context_info info = FERRY_CONTEXT_INFO_INIT;
  cr_assert_eq(ferry_context_get_info(ctx, &info), FERRY_OK);
  cr_assert_str_eq(info.backend, o.backend,
                   "asked for backend %s, the context runs %s", o.backend,
                   info.backend);
  return ctx;
}

int ferry_test_message_has(const char *needle) {
  return strstr(ferry_last_error(), needle) != NULL;
}

uint64_t ferry_test_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double ferry_test_uniform(uint64_t *state) {
  return (double)(ferry_test_rand(state) >> 11) * (2.0 / 9007199254740992.0) -
         1.0;
}

void ferry_test_poison(void *p, size_t n) {
  memset(p, 0xA5, n);
}

const char *ferry_test_shared_dir(void) {
  const char *d = getenv("FERRY_SHARED_DIR");
  return d ? d : "../shared";
}

/* Exit 77 with the reason when the backend under test is unavailable. A
 * strict request for one backend either gets it or fails with the reason. */
static int backend_unavailable(const char *be) {
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = be;
  ferry_context *ctx = NULL;
  ferry_status st = ferry_context_create(&o, &ctx);
  if (st == FERRY_OK) {
    ferry_context_destroy(ctx);
    return 0;
  }
  if (st == FERRY_ERR_NO_BACKEND || st == FERRY_ERR_NO_DEVICE ||
      st == FERRY_ERR_DEVICE_TOO_OLD) {
    printf("SKIP: backend %s is unavailable here: %s: %s\n", be,
           ferry_status_string(st), ferry_last_error());
    fflush(stdout);
    return 1;
  }
  /* Anything else is a real failure of the backend: let the tests show it. */
  return 0;
}

int main(int argc, char *argv[]) {
  const char *be = ferry_test_backend();
  /* Criterion re-executes this program for every test: probe once, in the
   * first process, and let the test processes inherit the answer. */
  if (be && getenv("FERRY_TEST_PROBED") == NULL) {
    if (backend_unavailable(be))
      return 77;
    setenv("FERRY_TEST_PROBED", "1", 1);
  }
  struct criterion_test_set *tests = criterion_initialize();
  int result = 0;
  if (criterion_handle_args(argc, argv, true))
    result = !criterion_run_all_tests(tests);
  criterion_finalize(tests);
  return result;
}
