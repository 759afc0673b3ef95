/* See cpu_cpuset.h. The list is scanned again for every CPU tested rather than
 * decoded into a bitmap: the set's size is only known at run time and the
 * strings are short, so this needs no allocation. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* CPU_*_S: also built alone into its unit test */
#endif
#include "cpu_cpuset.h"

#include <limits.h>

/* Indices above this are refused as malformed: hwloc indices are unsigned
 * int, and no machine has this many CPUs. */
#define CPUSET_INDEX_MAX 0x7fffffffUL

/* Parse a decimal index at *p; returns 0 and advances *p, or -1. */
static int parse_index(const char **p, unsigned long *out) {
  const char *s = *p;
  unsigned long v = 0;
  if (*s < '0' || *s > '9')
    return -1;
  while (*s >= '0' && *s <= '9') {
    v = v * 10 + (unsigned long)(*s - '0');
    if (v > CPUSET_INDEX_MAX)
      return -1;
    s++;
  }
  *p = s;
  *out = v;
  return 0;
}

/* Parse one range at *p into [*lo, *hi] (hi = ULONG_MAX for "N-"). */
static int parse_range(const char **p, unsigned long *lo, unsigned long *hi) {
  if (parse_index(p, lo) != 0)
    return -1;
  *hi = *lo;
  if (**p != '-')
    return 0;
  (*p)++;
  if (**p == ',' || **p == '\0') {
    *hi = ULONG_MAX;
    return 0;
  }
  const char *before = *p;
  if (parse_index(p, hi) != 0 || *hi < *lo) {
    *p = before;
    return -1;
  }
  return 0;
}

int ferry_cpu_cpuset_check(const char *list, size_t *bad_pos) {
  const char *p = list;
  if (*p == '\0')
    return 0;
  for (;;) {
    unsigned long lo, hi;
    if (parse_range(&p, &lo, &hi) != 0)
      break;
    if (*p == '\0')
      return 0;
    if (*p != ',')
      break;
    p++;
  }
  if (bad_pos)
    *bad_pos = (size_t)(p - list);
  return -1;
}

int ferry_cpu_cpuset_has(const char *list, unsigned long cpu) {
  const char *p = list;
  while (*p != '\0') {
    unsigned long lo, hi;
    if (parse_range(&p, &lo, &hi) != 0)
      return 0;
    if (cpu >= lo && cpu <= hi)
      return 1;
    if (*p == ',')
      p++;
  }
  return 0;
}

void ferry_cpu_cpuset_restrict(cpu_set_t *set, size_t setsize,
                               const char *list) {
  size_t ncpus = setsize * CHAR_BIT;
  for (size_t cpu = 0; cpu < ncpus; cpu++) {
    if (CPU_ISSET_S(cpu, setsize, set) &&
        !ferry_cpu_cpuset_has(list, (unsigned long)cpu))
      CPU_CLR_S(cpu, setsize, set);
  }
}
