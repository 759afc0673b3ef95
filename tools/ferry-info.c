/* ferry-info: what clinfo and `nvidia-smi topo -m` tell, for ferry.
 *
 *   ferry-info [--topology FILE.xml] [--backend REQUEST] [--device N] [--json]
 *
 * Shows the GPUs hwloc sees (bus id, vendor, model, NUMA nodes), every
 * backend (plugin, ABI, devices, or why it is unavailable) and the decision
 * ferry_context_create would make here, with the reason each other candidate
 * was rejected. With --topology it also decides from the XML file alone, as
 * if each GPU's plugin reported it, and prints that beside this machine's. */
#include "info_report.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fprintf(f,
          "usage: ferry-info [--topology FILE.xml] [--backend REQUEST] "
          "[--device N] [--json]\n"
          "  --topology FILE  also decide from an hwloc XML topology (format "
          "2.x)\n"
          "  --backend REQ    the request to decide for: auto, a name, or a "
          "comma list\n"
          "                   (default: FERRY_BACKEND, else auto)\n"
          "  --device N       the device index to ask for (default: ferry "
          "chooses)\n"
          "  --json           machine-readable output\n");
}

typedef struct args {
  const char *topology;
  const char *backend;
  int device;
  int json;
} args;

/* 0: parsed; 1: print usage and exit 0; 2: usage error. */
static int parse_args(int argc, char **argv, args *a) {
  a->topology = NULL;
  a->backend = NULL;
  a->device = -1;
  a->json = 0;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (strcmp(s, "--json") == 0) {
      a->json = 1;
    } else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
      return 1;
    } else if ((strcmp(s, "--topology") == 0 || strcmp(s, "--backend") == 0 ||
                strcmp(s, "--device") == 0) &&
               i + 1 < argc) {
      const char *v = argv[++i];
      if (strcmp(s, "--topology") == 0) {
        a->topology = v;
      } else if (strcmp(s, "--backend") == 0) {
        a->backend = v;
      } else {
        char *end = NULL;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < -1 || n > INT_MAX) {
          fprintf(stderr, "ferry-info: --device '%s' is not an index\n", v);
          return 2;
        }
        a->device = (int)n;
      }
    } else {
      fprintf(stderr, "ferry-info: unknown or incomplete argument '%s'\n", s);
      return 2;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  args a;
  int pa = parse_args(argc, argv, &a);
  if (pa != 0) {
    usage(pa == 1 ? stdout : stderr);
    return pa == 1 ? 0 : 2;
  }
  info_report file;
  memset(&file, 0, sizeof file);
  if (a.topology != NULL) {
    char err[1024];
    if (!info_collect_file(a.topology, a.backend, a.device, &file, err,
                           sizeof err)) {
      fprintf(stderr, "ferry-info: %s\n", err);
      return 1;
    }
  }
  info_report machine;
  info_collect_machine(a.backend, a.device, &machine);

  if (a.json) {
    int rc = a.topology ? info_print_json(&file, &machine)
                        : info_print_json(&machine, NULL);
    if (rc != 0) {
      fprintf(stderr, "ferry-info: writing the JSON failed\n");
      return 1;
    }
  } else {
    if (a.topology) {
      char title[1200];
      snprintf(title, sizeof title,
               "%s (hwloc XML; decision from the "
               "topology alone)",
               a.topology);
      info_print_text(&file, title);
      printf("\n");
    }
    info_print_text(&machine, "this machine");
  }
  info_report_free(&file);
  info_report_free(&machine);
  return fflush(stdout) == 0 ? 0 : 1;
}
