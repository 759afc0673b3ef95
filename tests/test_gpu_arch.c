/* Which devices the GPU plugins' kernels run on, judged from a device's
 * properties against the architectures a build made (backends/cuda/
 * cuda_arch.c, backends/hip/hip_arch.c, compiled into this test with a
 * target list of its own). Needs no GPU: the properties are made up. */
#include "gpu_internal.h"
#include "harness.h"

#include <stdio.h>
#include <string.h>

static ferry_device_info judge(const gpuDeviceProp_t *prop) {
  ferry_device_info d;
  memset(&d, 0, sizeof d);
  d.struct_size = sizeof d;
  d.usable = 7; /* poison: judge must set it */
  memcpy(d.reason, "poison", 7);
  ferry_gpu_arch_judge(prop, &d);
  return d;
}

#if defined(FERRY_GPU_CUDA)
/* Built with FERRY_GPU_TARGETS "80-real,90a,100-virtual". */
Test(gpu_arch, cuda_architectures) {
  static const struct {
    int major, minor, usable;
  } cases[] = {
      {7, 5, 0},  /* below everything */
      {8, 0, 1},  /* sm_80 SASS */
      {8, 6, 1},  /* sm_80 SASS runs on later minors of major 8 */
      {8, 9, 1},  /* likewise */
      {9, 0, 1},  /* sm_90a: exactly 9.0 */
      {9, 1, 0},  /* not 9.0, no PTX below 10.0 */
      {10, 0, 1}, /* compute_100 PTX */
      {12, 0, 1}, /* PTX runs on later devices */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gpuDeviceProp_t prop;
    memset(&prop, 0, sizeof prop);
    prop.major = cases[i].major;
    prop.minor = cases[i].minor;
    ferry_device_info d = judge(&prop);
    cr_assert_eq(d.capability_major, (uint32_t)cases[i].major);
    cr_assert_eq(d.capability_minor, (uint32_t)cases[i].minor);
    cr_assert_eq(d.usable, (uint32_t)cases[i].usable,
                 "compute capability %d.%d: usable %u, expected %d (%s)",
                 cases[i].major, cases[i].minor, d.usable, cases[i].usable,
                 d.reason);
    if (cases[i].usable) {
      cr_assert_str_empty(d.reason);
    } else {
      char want[32];
      snprintf(want, sizeof want, "compute capability %d.%d", cases[i].major,
               cases[i].minor);
      cr_assert(strstr(d.reason, want) && strstr(d.reason, "80-real,90a"),
                "reason '%s'", d.reason);
    }
  }
}
#else
/* Built with FERRY_GPU_TARGETS "gfx908,gfx90a:xnack+". */
Test(gpu_arch, hip_targets) {
  static const struct {
    const char *arch;
    int usable;
  } cases[] = {
      {"gfx908:sramecc+:xnack-", 1},
      {"gfx90a:sramecc+:xnack-", 1}, /* target features compare by name */
      {"gfx90a", 1},
      {"gfx90", 0}, /* a prefix of a target is not that target */
      {"gfx942:sramecc+:xnack-", 0},
      {"gfx1030", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gpuDeviceProp_t prop;
    memset(&prop, 0, sizeof prop);
    snprintf(prop.gcnArchName, sizeof prop.gcnArchName, "%s", cases[i].arch);
    prop.major = 9;
    prop.minor = 0;
    ferry_device_info d = judge(&prop);
    cr_assert_eq(d.usable, (uint32_t)cases[i].usable,
                 "%s: usable %u, expected %d (%s)", cases[i].arch, d.usable,
                 cases[i].usable, d.reason);
    if (!cases[i].usable) {
      size_t base = strcspn(cases[i].arch, ":");
      cr_assert(strncmp(strstr(d.reason, "this device is ") + 15, cases[i].arch,
                        base) == 0,
                "reason '%s'", d.reason);
    }
  }
}
#endif
