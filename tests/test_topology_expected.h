/* The six real topologies in ../shared/data/topologies and each GPU's NUMA
 * node, exactly as data/topologies/README.md lists them (hard-coded on
 * purpose: the tests check ferry against the README, not against itself).
 * GPUs are in ascending PCI bus id order. */
#ifndef FERRY_TEST_TOPOLOGY_EXPECTED_H
#define FERRY_TEST_TOPOLOGY_EXPECTED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "harness.h"

#define EXPECT_MAX_GPUS 16

typedef struct expected_gpu {
  const char *bus;
  unsigned numa;
} expected_gpu;

typedef struct expected_topology {
  const char *file;
  const char *vendor; /* "nvidia" or "amd" */
  uint32_t vendor_id;
  const char *backend; /* what auto chooses for it */
  int numa_node_count;
  const char *nodeset; /* every NUMA node */
  int gpu_count;
  expected_gpu gpus[EXPECT_MAX_GPUS];
} expected_topology;

static const expected_topology expected_topologies[] = {
    {"nvidia-dgx2-16xV100.xml",
     "nvidia",
     0x10de,
     "cuda",
     2,
     "0-1",
     16,
     {{"0000:34:00.0", 0},
      {"0000:36:00.0", 0},
      {"0000:39:00.0", 0},
      {"0000:3b:00.0", 0},
      {"0000:57:00.0", 0},
      {"0000:59:00.0", 0},
      {"0000:5c:00.0", 0},
      {"0000:5e:00.0", 0},
      {"0000:b7:00.0", 1},
      {"0000:b9:00.0", 1},
      {"0000:bc:00.0", 1},
      {"0000:be:00.0", 1},
      {"0000:e0:00.0", 1},
      {"0000:e2:00.0", 1},
      {"0000:e5:00.0", 1},
      {"0000:e7:00.0", 1}}},
    {"juwels-booster-4xA100-nps4.xml",
     "nvidia",
     0x10de,
     "cuda",
     8,
     "0-7",
     4,
     {{"0000:03:00.0", 3},
      {"0000:44:00.0", 1},
      {"0000:84:00.0", 7},
      {"0000:c4:00.0", 5}}},
    {"llnl-lassen-power9-4xV100.xml",
     "nvidia",
     0x10de,
     "cuda",
     2,
     "0,8",
     4,
     {{"0004:04:00.0", 0},
      {"0004:05:00.0", 0},
      {"0035:03:00.0", 8},
      {"0035:04:00.0", 8}}},
    {"llnl-tioga-8xMI250X-gcd-nps4.xml",
     "amd",
     0x1002,
     "hip",
     4,
     "0-3",
     8,
     {{"0000:c1:00.0", 3},
      {"0000:c6:00.0", 3},
      {"0000:c9:00.0", 1},
      {"0000:ce:00.0", 1},
      {"0000:d1:00.0", 0},
      {"0000:d6:00.0", 0},
      {"0000:d9:00.0", 2},
      {"0000:de:00.0", 2}}},
    {"llnl-corona-4xVega20-nps4.xml",
     "amd",
     0x1002,
     "hip",
     8,
     "0-7",
     4,
     {{"0000:13:00.0", 1},
      {"0000:23:00.0", 2},
      {"0000:53:00.0", 5},
      {"0000:73:00.0", 7}}},
    {"llnl-corona-8xVega20-rsmi-opencl.xml",
     "amd",
     0x1002,
     "hip",
     2,
     "0-1",
     8,
     {{"0000:03:00.0", 0},
      {"0000:27:00.0", 0},
      {"0000:43:00.0", 0},
      {"0000:63:00.0", 0},
      {"0000:83:00.0", 1},
      {"0000:a3:00.0", 1},
      {"0000:c3:00.0", 1},
      {"0000:e3:00.0", 1}}},
};

#define EXPECTED_TOPOLOGY_COUNT                                                \
  ((int)(sizeof expected_topologies / sizeof expected_topologies[0]))

/* The file's path under the shared data directory, into buf. */
static inline const char *expected_topology_path(const expected_topology *t,
                                                 char *buf, size_t size) {
  snprintf(buf, size, "%s/data/topologies/%s", ferry_test_shared_dir(),
           t->file);
  return buf;
}

#endif /* FERRY_TEST_TOPOLOGY_EXPECTED_H */
