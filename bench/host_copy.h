/* memcpy on host threads: the host-side copy limit. The threads mirror the
 * context's worker pool: as many, bound to the same cpuset, each copying one
 * contiguous slice of the buffer. */
#ifndef FERRY_BENCH_HOST_COPY_H
#define FERRY_BENCH_HOST_COPY_H

#include <stddef.h>

typedef struct host_copy_team host_copy_team;

/* Starts threads-1 helpers (the caller is the first thread) bound to the CPUs
 * of `cpuset`, an hwloc list string ("0-7,16"; "" for no binding). Returns
 * NULL after printing why. */
host_copy_team *host_copy_team_start(int threads, const char *cpuset);
/* Copies `bytes` from src to dst split across the team; returns the wall
 * seconds from release to the last thread finishing. */
double host_copy_team_run(host_copy_team *team, void *dst, const void *src,
                          size_t bytes);
void host_copy_team_stop(host_copy_team *team);

/* CPUs in an hwloc list string; for "" (no binding) the online CPUs. 0 when
 * the string cannot be parsed. */
int host_copy_cpu_count(const char *cpuset);

#endif
