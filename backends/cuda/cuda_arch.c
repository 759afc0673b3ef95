/* Whether the cuda plugin's kernels run on a device.
 *
 * FERRY_GPU_TARGETS is the build's CUDA architecture list in CMake's form,
 * comma-separated ("80-real,90": SASS for sm_80; SASS and PTX for sm_90).
 * SASS runs on devices of the same major version and an equal or higher
 * minor one (sm_80 code on an 8.6 device); an "a" suffix (sm_90a) runs on
 * exactly that device and an "f" suffix on its family (same major). PTX is
 * compiled by the driver for any device at or above its version. */
#include "gpu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FERRY_GPU_TARGETS
#error "the build passes FERRY_GPU_TARGETS"
#endif

static bool entry_runs(const char *entry, size_t len, int major, int minor) {
  char buf[32];
  if (len == 0 || len >= sizeof buf)
    return false;
  memcpy(buf, entry, len);
  buf[len] = '\0';
  char *end = NULL;
  long n = strtol(buf, &end, 10);
  if (end == buf || n < 10)
    return false;
  int emaj = (int)(n / 10), emin = (int)(n % 10);
  char suffix = (*end == 'a' || *end == 'f') ? *end++ : '\0';
  bool sass = strcmp(end, "-virtual") != 0;
  bool ptx = strcmp(end, "-real") != 0;
  if (suffix == 'a')
    return major == emaj && minor == emin;
  if (suffix == 'f')
    return major == emaj && minor >= emin;
  if (sass && major == emaj && minor >= emin)
    return true;
  return ptx && (major > emaj || (major == emaj && minor >= emin));
}

void ferry_gpu_arch_judge(const gpuDeviceProp_t *prop, ferry_device_info *out) {
  out->capability_major = (uint32_t)prop->major;
  out->capability_minor = (uint32_t)prop->minor;
  const char *list = FERRY_GPU_TARGETS;
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    if (entry_runs(p, len, prop->major, prop->minor)) {
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
           "the cuda plugin was built for CUDA architectures %s, none of "
           "which runs on compute capability %d.%d (rebuild with "
           "-DFERRY_CUDA_ARCHITECTURES=%d%d)",
           list, prop->major, prop->minor, prop->major, prop->minor);
}
