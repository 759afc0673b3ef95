/* hwloc list strings ("0-7,16") applied to glibc CPU sets.
 *
 * The core hands the cpu backend its worker cpuset as hwloc's list syntax;
 * the backend must not link hwloc (plugins carry no dependencies beyond libc
 * and pthread), so it parses the string itself. Pure functions: no
 * allocation, no host services, so they are unit-tested on their own. */
#ifndef FERRY_CPU_CPUSET_H
#define FERRY_CPU_CPUSET_H

#include <sched.h>
#include <stddef.h>

/* Check `list` against hwloc's list syntax:
 *   list  := "" | range ("," range)*
 *   range := N | N "-" M | N "-"      (N <= M; "N-" runs to infinity)
 * Returns 0 when well formed, else -1 with *bad_pos set to the offset of the
 * first offending character. */
int ferry_cpu_cpuset_check(const char *list, size_t *bad_pos);

/* Nonzero when CPU `cpu` is in the well-formed `list`. */
int ferry_cpu_cpuset_has(const char *list, unsigned long cpu);

/* Clear from `set` (a dynamically sized set of `setsize` bytes, see
 * CPU_ALLOC) every CPU that the well-formed `list` does not name. An empty
 * list names no CPU here: callers treat "" as "no restriction" before. */
void ferry_cpu_cpuset_restrict(cpu_set_t *set, size_t setsize,
                               const char *list);

#endif /* FERRY_CPU_CPUSET_H */
