/* The machine a run measured: written at the head of every JSON result
 * file so that a figure always carries where, when and from what code it
 * came. */
#ifndef FERRY_BENCH_MACHINE_H
#define FERRY_BENCH_MACHINE_H

#include <stdint.h>

#include "json_out.h"

typedef struct bench_machine {
  char hostname[256];
  char cpu_model[256];
  int cores; /* online logical CPUs */
  uint64_t memory_bytes;
  char os[512];
  char date[32]; /* UTC, ISO 8601 */
  uint64_t llc_bytes;
  char llc_source[64]; /* where llc_bytes came from */
  /* GPU kernel drivers the host has loaded (NVIDIA's /proc version line,
   * amdgpu's module version), "" when none. */
  char gpu_drivers[512];
} bench_machine;

void bench_machine_probe(bench_machine *m);

/* The last-level cache of CPU 0: sysconf, then /sys, else 32 MiB.
 * `source` (may be NULL) receives where the figure came from. */
uint64_t bench_llc_bytes(char *source, int source_size);

/* Writes the machine's members into the JSON object the caller has opened
 * (main.c adds the backends it found to the same object). */
void bench_machine_write_json(json_out *j, const bench_machine *m);

#endif
