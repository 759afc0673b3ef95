/* Whether the hip plugin's kernels run on a device.
 *
 * AMD code objects run only on the exact processor they were built for
 * (gfx908 code does not run on gfx90a), so a device is usable when its
 * processor name (gcnArchName without feature flags: "gfx90a" of
 * "gfx90a:sramecc+:xnack-") is one of FERRY_GPU_TARGETS ("gfx908,gfx90a").
 * Target features (xnack, sramecc) are compared only through the base name:
 * targets built without a feature suffix run in either mode. */
#include "gpu_internal.h"

#include <stdio.h>
#include <string.h>

#ifndef FERRY_GPU_TARGETS
#error "the build passes FERRY_GPU_TARGETS"
#endif

static size_t base_len(const char *s, size_t len) {
  const char *colon = memchr(s, ':', len);
  return colon ? (size_t)(colon - s) : len;
}

void ferry_gpu_arch_judge(const gpuDeviceProp_t *prop, ferry_device_info *out) {
  out->capability_major = (uint32_t)prop->major;
  out->capability_minor = (uint32_t)prop->minor;
  const char *arch = prop->gcnArchName;
  size_t arch_len = base_len(arch, strnlen(arch, sizeof prop->gcnArchName));
  const char *list = FERRY_GPU_TARGETS;
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    if (base_len(p, len) == arch_len && memcmp(p, arch, arch_len) == 0) {
      out->usable = 1;
      out->reason[0] = '\0';
      return;
    }
    p += len;
    if (*p == ',')
      p++;
  }
  out->usable = 0;
  snprintf(out->reason, sizeof out->reason,
           "the hip plugin was built for %s; this device is %.*s (rebuild "
           "with -DFERRY_HIP_TARGETS=%.*s)",
           list, (int)arch_len, arch, (int)arch_len, arch);
}
