/* The cpu backend's parser for hwloc list strings (backends/cpu/cpu_cpuset.c),
 * tested on its own: the strings come from hwloc, so every form hwloc prints
 * must parse, and anything else must be refused with the offending offset. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include "cpu_cpuset.h"

#include <sched.h>
#include <stdlib.h>

Test(cpu_cpuset, accepts_hwloc_lists) {
  const char *good[] = {"",       "0",          "7",        "0-7",
                        "0-7,16", "0,2,4-6,9-", "3-",       "0-0",
                        "1,1,1",  "4294967",    "12-15,0-3"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    size_t pos = 12345;
    cr_assert_eq(ferry_cpu_cpuset_check(good[i], &pos), 0,
                 "\"%s\" refused at %zu", good[i], pos);
  }
}

Test(cpu_cpuset, refuses_malformed_lists_with_position) {
  struct {
    const char *list;
    size_t pos;
  } bad[] = {{",", 0},       {"0,", 2},    {"a", 0},  {"0-a", 2},
             {"7-3", 2},     {"0 ,1", 1},  {" 0", 0}, {"0,,1", 2},
             {"-3", 0},      {"0-3-5", 3}, {"1x", 1}, {"99999999999", 0},
             {"0-7,16,", 7}, {"0x3", 1}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t pos = 12345;
    cr_assert_eq(ferry_cpu_cpuset_check(bad[i].list, &pos), -1,
                 "\"%s\" accepted", bad[i].list);
    cr_assert_eq(pos, bad[i].pos, "\"%s\": offset %zu, expected %zu",
                 bad[i].list, pos, bad[i].pos);
  }
}

Test(cpu_cpuset, membership) {
  const char *list = "0-2,5,9-11,20-";
  int want[32] = {0};
  for (int c = 0; c <= 2; c++)
    want[c] = 1;
  want[5] = 1;
  for (int c = 9; c <= 11; c++)
    want[c] = 1;
  for (int c = 20; c < 32; c++)
    want[c] = 1;
  for (int c = 0; c < 32; c++)
    cr_assert_eq(ferry_cpu_cpuset_has(list, (unsigned long)c), want[c],
                 "cpu %d", c);
  cr_assert(ferry_cpu_cpuset_has(list, 1000000));
  cr_assert(!ferry_cpu_cpuset_has("", 0));
}

Test(cpu_cpuset, restrict_dynamic_sets) {
  /* Sets sized past the fixed cpu_set_t, as on machines with > 1024 CPUs. */
  const size_t ncpus = 4096;
  size_t size = CPU_ALLOC_SIZE(ncpus);
  cpu_set_t *set = CPU_ALLOC(ncpus);
  cr_assert_not_null(set);
  CPU_ZERO_S(size, set);
  for (size_t c = 0; c < ncpus; c += 3)
    CPU_SET_S(c, size, set);
  ferry_cpu_cpuset_restrict(set, size, "0-10,2000-2005,4000-");
  for (size_t c = 0; c < ncpus; c++) {
    int in_list = c <= 10 || (c >= 2000 && c <= 2005) || c >= 4000;
    int want = c % 3 == 0 && in_list;
    cr_assert_eq(CPU_ISSET_S(c, size, set) != 0, want, "cpu %zu", c);
  }
  /* Disjoint: the set empties, which the context treats as "fall back". */
  ferry_cpu_cpuset_restrict(set, size, "1,2,4");
  cr_assert_eq(CPU_COUNT_S(size, set), 0);
  CPU_FREE(set);
}
