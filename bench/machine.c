#include "machine.h"

#include <ferry/ferry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef FERRY_BENCH_VERSION
#define FERRY_BENCH_VERSION "unknown"
#endif
#ifndef FERRY_BENCH_GIT_COMMIT
#define FERRY_BENCH_GIT_COMMIT "unknown"
#endif

#define FALLBACK_LLC (32ull << 20)

/* The value after "key<spaces>:" on the first line of `path` that starts
 * with `key`, or "" (the /proc/cpuinfo and os-release formats). */
static void read_field(const char *path, const char *key, char sep, char *out,
                       size_t size) {
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  char line[512];
  size_t klen = strlen(key);
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, key, klen) != 0)
      continue;
    char *v = line + klen;
    while (*v == ' ' || *v == '\t')
      v++;
    if (*v != sep)
      continue;
    v++;
    while (*v == ' ' || *v == '"')
      v++;
    v[strcspn(v, "\"\n")] = '\0';
    snprintf(out, size, "%s", v);
    break;
  }
  fclose(f);
}

/* "49152K" / "48M" as /sys writes cache sizes. */
static uint64_t parse_size(const char *s) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s)
    return 0;
  if (*end == 'K')
    v <<= 10;
  else if (*end == 'M')
    v <<= 20;
  else if (*end == 'G')
    v <<= 30;
  return v;
}

uint64_t bench_llc_bytes(char *source, int source_size) {
  long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (v > 0) {
    if (source)
      snprintf(source, (size_t)source_size, "sysconf L3");
    return (uint64_t)v;
  }
  /* The highest-level unified or data cache that /sys lists for CPU 0. */
  uint64_t best = 0;
  int best_level = 0;
  for (int i = 0; i < 16; i++) {
    char path[128], text[64];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/",
             i);
    char file[160];
    snprintf(file, sizeof file, "%slevel", path);
    FILE *f = fopen(file, "r");
    if (f == NULL)
      break;
    int level = 0;
    if (fscanf(f, "%d", &level) != 1)
      level = 0;
    fclose(f);
    snprintf(file, sizeof file, "%stype", path);
    f = fopen(file, "r");
    text[0] = '\0';
    if (f != NULL) {
      if (fgets(text, sizeof text, f) == NULL)
        text[0] = '\0';
      fclose(f);
    }
    if (strncmp(text, "Instruction", 11) == 0 || level < best_level)
      continue;
    snprintf(file, sizeof file, "%ssize", path);
    f = fopen(file, "r");
    if (f == NULL)
      continue;
    if (fgets(text, sizeof text, f) != NULL) {
      uint64_t size = parse_size(text);
      if (size > 0) {
        best = size;
        best_level = level;
      }
    }
    fclose(f);
  }
  if (best > 0) {
    if (source)
      snprintf(source, (size_t)source_size, "/sys L%d", best_level);
    return best;
  }
  if (source)
    snprintf(source, (size_t)source_size, "fallback (unknown)");
  return FALLBACK_LLC;
}

/* The first line of `path` (newline dropped), or "". */
static void read_line(const char *path, char *out, size_t size) {
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  if (fgets(out, (int)size, f) == NULL)
    out[0] = '\0';
  out[strcspn(out, "\n")] = '\0';
  fclose(f);
}

/* The loaded GPU kernel drivers: ferry's backends report devices, not
 * driver versions, so they come from the kernel's own files. */
static void probe_gpu_drivers(char *out, size_t size) {
  char nv[256], amd[64];
  read_line("/proc/driver/nvidia/version", nv, sizeof nv);
  read_line("/sys/module/amdgpu/version", amd, sizeof amd);
  if (amd[0] == '\0' && access("/sys/module/amdgpu", F_OK) == 0)
    snprintf(amd, sizeof amd, "(in-tree)");
  snprintf(out, size, "%s%s%s%s", nv, nv[0] && amd[0] ? "; " : "",
           amd[0] ? "amdgpu " : "", amd);
}

void bench_machine_probe(bench_machine *m) {
  memset(m, 0, sizeof *m);
  if (gethostname(m->hostname, sizeof m->hostname - 1) != 0)
    snprintf(m->hostname, sizeof m->hostname, "unknown");
  read_field("/proc/cpuinfo", "model name", ':', m->cpu_model,
             sizeof m->cpu_model);
  if (m->cpu_model[0] == '\0')
    snprintf(m->cpu_model, sizeof m->cpu_model, "unknown");
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  m->cores = n > 0 ? (int)n : 0;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  m->memory_bytes =
      pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;

  char pretty[160];
  read_field("/etc/os-release", "PRETTY_NAME", '=', pretty, sizeof pretty);
  struct utsname u;
  if (uname(&u) == 0)
    snprintf(m->os, sizeof m->os, "%.160s%s%.64s %.64s %.64s", pretty,
             pretty[0] ? ", " : "", u.sysname, u.release, u.machine);
  else
    snprintf(m->os, sizeof m->os, "%s", pretty[0] ? pretty : "unknown");

  time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm) == NULL ||
      strftime(m->date, sizeof m->date, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(m->date, sizeof m->date, "unknown");
  m->llc_bytes = bench_llc_bytes(m->llc_source, (int)sizeof m->llc_source);
  probe_gpu_drivers(m->gpu_drivers, sizeof m->gpu_drivers);
}

void bench_machine_write_json(json_out *j, const bench_machine *m) {
  unsigned api = ferry_get_api_version();
  char api_text[32];
  snprintf(api_text, sizeof api_text, "%u.%u.%u", (api >> 16) & 0xff,
           (api >> 8) & 0xff, api & 0xff);
  json_string(j, "hostname", m->hostname);
  json_string(j, "cpu_model", m->cpu_model);
  json_int(j, "cores", m->cores);
  json_int(j, "memory_bytes", (int64_t)m->memory_bytes);
  json_string(j, "os", m->os);
  json_string(j, "ferry_version", FERRY_BENCH_VERSION);
  json_string(j, "ferry_api_version", api_text);
  json_string(j, "git_commit", FERRY_BENCH_GIT_COMMIT);
  json_string(j, "date", m->date);
  json_int(j, "llc_bytes", (int64_t)m->llc_bytes);
  json_string(j, "llc_source", m->llc_source);
  json_string(j, "gpu_drivers", m->gpu_drivers[0] ? m->gpu_drivers : NULL);
}
