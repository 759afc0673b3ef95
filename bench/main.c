/* ferry-bench: runs benchmarks on every backend present (or the ones named),
 * prints a table and optionally writes JSON (docs/benchmarks.md).
 *
 *   ferry-bench [BENCHMARK...] [--backend NAME[,NAME...]] [--json FILE]
 *               [--csv FILE] [--quick | --scale] [--reps N] [--list]
 *
 * With no BENCHMARK every benchmark in the table below runs. A benchmark is
 * one bench_fn; adding one is one line in `benchmarks`.
 *
 * Exit status: 0 success, 1 a benchmark failed, 2 bad usage, 3 a backend
 * named with --backend is not available here (the others still ran). */
#include "bench.h"
#include "machine.h"
#include "results.h"
#include "timing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_entry {
  const char *name;
  const char *summary;
  bench_fn run;
} bench_entry;

static const bench_entry benchmarks[] = {
    {"copy", "copy limits: host memcpy (1 thread, pool), h2d, d2h, d2d",
     bench_copy},
    {"gather", "feature-table gathers: every placement and kernel",
     bench_gather},
    {"sample", "neighbor sampling on R-MAT graphs", bench_sample},
    {"layernorm", "LayerNorm and RMSNorm, forward and backward",
     bench_layernorm},
    {"adan", "the fused Adan step", bench_adan},
    {"epoch", "end-to-end epoch through the loader: zerocopy, staged, device",
     bench_epoch},
};
#define NUM_BENCHMARKS ((int)(sizeof benchmarks / sizeof benchmarks[0]))

#define MAX_BACKENDS 32

typedef struct backend_seen {
  char name[FERRY_NAME_MAX];
  char path[512];
  int available;
  int device_count; /* devices the backend reports (for the JSON) */
  char device[FERRY_NAME_MAX];
  char reason[FERRY_REASON_MAX];
} backend_seen;

typedef struct run_state {
  int selected[NUM_BENCHMARKS];
  const char *backends; /* --backend list, or NULL for all */
  const char *json_path;
  const char *csv_path;
  int list_only;
  bench_config cfg;
  bench_machine machine;
  backend_seen seen[MAX_BACKENDS];
  int nseen;
  bench_results results;
  int jobs_done, jobs_total; /* (backend, benchmark) pairs, for progress */
} run_state;

int bench_fail(const char *what, ferry_status status) {
  fprintf(stderr, "ferry-bench: %s: %s: %s\n", what,
          ferry_status_string(status), ferry_last_error());
  return -1;
}

int bench_host_emulated(const bench_target *target) {
  return strcmp(target->info.backend, "cpu") != 0 &&
         target->info.device.host_unified_memory != 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: ferry-bench [BENCHMARK...] [--backend NAME[,NAME...]] "
          "[--json FILE] [--csv FILE] [--quick | --scale] [--reps N] "
          "[--list]\n\n"
          "Runs each BENCHMARK (default: all) on every backend present, or "
          "on the\nnamed ones, prints a table and writes JSON to FILE.\n\n"
          "  --backend LIST  only these backends (each must be available)\n"
          "  --json FILE     write {\"machine\": ..., \"results\": [...]}\n"
          "  --csv FILE      write one row per result (params as key=value)\n"
          "  --quick         small buffers and few repetitions (smoke test)\n"
          "  --scale         large sizes for big machines (papers100M-sized\n"
          "                  tables where memory allows)\n"
          "  --reps N        timed repetitions (median taken; default 11)\n"
          "  --list          list benchmarks and backends, run nothing\n\n"
          "benchmarks:\n");
  for (int i = 0; i < NUM_BENCHMARKS; i++)
    fprintf(f, "  %-8s %s\n", benchmarks[i].name, benchmarks[i].summary);
}

/* 1 when `name` is an item of the comma list. */
static int in_list(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    if (len == n && strncmp(p, name, n) == 0)
      return 1;
    p += len;
    if (*p == ',')
      p++;
  }
  return 0;
}

static int parse_args(int argc, char **argv, run_state *s) {
  int any = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--quick") == 0) {
      s->cfg.quick = 1;
    } else if (strcmp(a, "--scale") == 0) {
      s->cfg.scale = 1;
    } else if (strcmp(a, "--list") == 0) {
      s->list_only = 1;
    } else if (strcmp(a, "--backend") == 0 || strcmp(a, "--json") == 0 ||
               strcmp(a, "--csv") == 0 || strcmp(a, "--reps") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "ferry-bench: %s needs a value\n", a);
        return -1;
      }
      const char *v = argv[++i];
      if (a[2] == 'b') {
        s->backends = v;
      } else if (a[2] == 'j') {
        s->json_path = v;
      } else if (a[2] == 'c') {
        s->csv_path = v;
      } else {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno != 0 || *end != '\0' || n < 1 || n > BENCH_MAX_REPS) {
          fprintf(stderr, "ferry-bench: --reps %s: want 1..%d\n", v,
                  BENCH_MAX_REPS);
          return -1;
        }
        s->cfg.reps = (int)n;
      }
    } else if (a[0] == '-') {
      fprintf(stderr, "ferry-bench: unknown option '%s'\n", a);
      return -1;
    } else {
      int found = 0;
      for (int b = 0; b < NUM_BENCHMARKS; b++)
        if (strcmp(a, benchmarks[b].name) == 0)
          s->selected[b] = found = any = 1;
      if (!found) {
        fprintf(stderr, "ferry-bench: no benchmark named '%s'\n", a);
        return -1;
      }
    }
  }
  if (!any)
    for (int b = 0; b < NUM_BENCHMARKS; b++)
      s->selected[b] = 1;
  if (s->cfg.quick && s->cfg.scale) {
    fprintf(stderr, "ferry-bench: --quick and --scale exclude each other\n");
    return -1;
  }
  return 0;
}

/* Runs the selected benchmarks on one backend; returns -1 if one failed. */
static int run_backend(run_state *s, backend_seen *be) {
  ferry_context_options opts = FERRY_CONTEXT_OPTIONS_INIT;
  opts.backend = be->name; /* one name: strict, never a fallback */
  bench_target t;
  memset(&t, 0, sizeof t);
  ferry_status st = ferry_context_create(&opts, &t.ctx);
  if (st != FERRY_OK) {
    be->available = 0;
    snprintf(be->reason, sizeof be->reason, "%s: %s", ferry_status_string(st),
             ferry_last_error());
    printf("skip %s: %s\n", be->name, be->reason);
    return 0;
  }
  t.info = (ferry_context_info)FERRY_CONTEXT_INFO_INIT;
  if ((st = ferry_context_get_info(t.ctx, &t.info)) != FERRY_OK) {
    ferry_context_destroy(t.ctx);
    return bench_fail("ferry_context_get_info", st);
  }
  snprintf(be->device, sizeof be->device, "%s", t.info.device.name);
  printf("\n== %s: %s, %d worker threads, cpuset %s\n", t.info.backend,
         t.info.device.name, t.info.num_threads,
         t.info.cpuset[0] ? t.info.cpuset : "(all)");
  bench_results_print_header(stdout);

  int rc = 0;
  for (int b = 0; b < NUM_BENCHMARKS; b++) {
    if (!s->selected[b])
      continue;
    if (benchmarks[b].run == NULL) {
      printf("(%s: not built)\n", benchmarks[b].name);
      continue;
    }
    size_t first = s->results.count;
    /* Progress on stderr: stdout stays the table. */
    int job = ++s->jobs_done;
    fprintf(stderr, "[%d/%d] %s on %s ...\n", job, s->jobs_total,
            benchmarks[b].name, be->name);
    double started = bench_now();
    int failed_here = benchmarks[b].run(&s->cfg, &t, &s->results) != 0;
    fprintf(stderr, "[%d/%d] %s on %s: %.1f s\n", job, s->jobs_total,
            benchmarks[b].name, be->name, bench_now() - started);
    if (failed_here) {
      fprintf(stderr, "ferry-bench: %s on %s failed\n", benchmarks[b].name,
              be->name);
      rc = -1;
    }
    for (size_t i = first; i < s->results.count; i++)
      bench_results_print_row(stdout, &s->results.items[i]);
    fflush(stdout);
  }
  ferry_context_destroy(t.ctx);
  return rc;
}

/* Fills s->seen from the loader, one entry per backend name. */
static int discover(run_state *s) {
  int count = 0;
  ferry_status st = ferry_backend_count(&count);
  if (st != FERRY_OK)
    return bench_fail("ferry_backend_count", st);
  for (int i = 0; i < count && s->nseen < MAX_BACKENDS; i++) {
    ferry_backend_info info = FERRY_BACKEND_INFO_INIT;
    if ((st = ferry_backend_get_info(i, &info)) != FERRY_OK)
      return bench_fail("ferry_backend_get_info", st);
    int dup = 0;
    for (int k = 0; k < s->nseen; k++)
      dup |= strcmp(s->seen[k].name, info.name) == 0;
    if (dup) /* the loader keeps the first plugin of a name */
      continue;
    backend_seen *be = &s->seen[s->nseen++];
    memset(be, 0, sizeof *be);
    snprintf(be->name, sizeof be->name, "%s", info.name);
    snprintf(be->path, sizeof be->path, "%s", info.path);
    snprintf(be->reason, sizeof be->reason, "%s", info.reason);
    be->available = info.available;
    be->device_count = info.device_count;
  }
  return 0;
}

/* The devices a backend reports: GPUs (or the OpenCL device) with their
 * memory and capability, as ferry_backend_get_device_info gives them. */
static void write_devices_json(json_out *j, const backend_seen *be) {
  json_begin_array(j, "devices");
  for (int d = 0; d < be->device_count; d++) {
    ferry_device_info di = FERRY_DEVICE_INFO_INIT;
    if (ferry_backend_get_device_info(be->name, d, &di) != FERRY_OK)
      continue;
    char cap[32], vendor[16];
    snprintf(cap, sizeof cap, "%u.%u", di.capability_major,
             di.capability_minor);
    snprintf(vendor, sizeof vendor, "0x%04x", di.pci_vendor_id);
    json_begin_object(j, NULL);
    json_int(j, "index", d);
    json_string(j, "name", di.name);
    json_string(j, "pci_bus_id", di.pci_bus_id[0] ? di.pci_bus_id : NULL);
    json_string(j, "pci_vendor_id", di.pci_vendor_id ? vendor : NULL);
    json_int(j, "total_memory", (int64_t)di.total_memory);
    json_string(j, "capability", cap);
    json_bool(j, "host_unified_memory", di.host_unified_memory != 0);
    json_bool(j, "usable", di.usable != 0);
    json_string(j, "reason", di.reason);
    json_end_object(j);
  }
  json_end_array(j);
}

static int write_json(const run_state *s) {
  FILE *f = fopen(s->json_path, "w");
  if (f == NULL) {
    fprintf(stderr, "ferry-bench: cannot write %s: %s\n", s->json_path,
            strerror(errno));
    return -1;
  }
  json_out j;
  json_out_init(&j, f);
  json_begin_object(&j, NULL);
  json_begin_object(&j, "machine");
  bench_machine_write_json(&j, &s->machine);
  json_begin_array(&j, "backends");
  for (int i = 0; i < s->nseen; i++) {
    const backend_seen *be = &s->seen[i];
    json_begin_object(&j, NULL);
    json_string(&j, "name", be->name);
    json_string(&j, "path", be->path);
    json_bool(&j, "available", be->available);
    json_string(&j, "device", be->device[0] ? be->device : NULL);
    json_string(&j, "reason", be->reason);
    write_devices_json(&j, be);
    json_end_object(&j);
  }
  json_end_array(&j);
  json_end_object(&j);
  bench_results_write_json(&j, "results", &s->results);
  json_end_object(&j);
  int rc = json_out_finish(&j);
  if (fclose(f) != 0 || rc != 0) {
    fprintf(stderr, "ferry-bench: writing %s failed\n", s->json_path);
    return -1;
  }
  printf("\nwrote %s\n", s->json_path);
  return 0;
}

int main(int argc, char **argv) {
  static run_state s;
  if (parse_args(argc, argv, &s) != 0) {
    usage(stderr);
    return 2;
  }
  bench_machine_probe(&s.machine);
  s.cfg.llc_bytes = s.machine.llc_bytes;
  s.cfg.warmup = s.cfg.quick ? 1 : 2;
  if (s.cfg.reps == 0)
    s.cfg.reps = s.cfg.quick ? 3 : 11;
  if (discover(&s) != 0)
    return 1;

  if (s.list_only) {
    printf("benchmarks:\n");
    for (int b = 0; b < NUM_BENCHMARKS; b++)
      printf("  %-8s %s\n", benchmarks[b].name, benchmarks[b].summary);
    printf("backends:\n");
    for (int i = 0; i < s.nseen; i++)
      printf("  %-8s %-11s %s%s%s\n", s.seen[i].name,
             s.seen[i].available ? "available" : "unavailable", s.seen[i].path,
             s.seen[i].reason[0] ? ": " : "", s.seen[i].reason);
    return 0;
  }

  printf("ferry-bench on %s: %s, %d cpus, %.1f GiB, LLC %.1f MiB (%s)\n",
         s.machine.hostname, s.machine.cpu_model, s.machine.cores,
         (double)s.machine.memory_bytes / (1 << 30),
         (double)s.machine.llc_bytes / (1 << 20), s.machine.llc_source);
  printf("median of %d timed repetitions after %d warm-up; ratio* = buffers "
         "under 4x LLC, not judged\n",
         s.cfg.reps, s.cfg.warmup);
  if (s.cfg.scale)
    printf("--scale: large sizes, for the benchmarks that have them\n");

  int failed = 0, missing = 0;
  int nselected = 0;
  for (int b = 0; b < NUM_BENCHMARKS; b++)
    nselected += s.selected[b] && benchmarks[b].run != NULL;
  for (int i = 0; i < s.nseen; i++)
    if (s.seen[i].available &&
        (s.backends == NULL || in_list(s.backends, s.seen[i].name)))
      s.jobs_total += nselected;
  if (s.backends != NULL) { /* every backend named must exist */
    for (const char *p = s.backends; *p;) {
      size_t len = strcspn(p, ",");
      int known = 0;
      for (int i = 0; i < s.nseen; i++)
        known |= strlen(s.seen[i].name) == len &&
                 strncmp(s.seen[i].name, p, len) == 0;
      if (!known) {
        printf("skip %.*s: no such backend was found\n", (int)len, p);
        missing = 1;
      }
      p += len;
      if (*p == ',')
        p++;
    }
  }
  for (int i = 0; i < s.nseen; i++) {
    backend_seen *be = &s.seen[i];
    if (s.backends != NULL && !in_list(s.backends, be->name))
      continue;
    if (!be->available) {
      printf("skip %s: %s\n", be->name, be->reason);
      missing |= s.backends != NULL;
      continue;
    }
    failed |= run_backend(&s, be) != 0;
    missing |= s.backends != NULL && !be->available;
  }

  if (s.json_path != NULL && write_json(&s) != 0)
    failed = 1;
  if (s.csv_path != NULL) {
    if (bench_results_write_csv(s.csv_path, &s.results) != 0)
      failed = 1;
    else
      printf("wrote %s\n", s.csv_path);
  }
  bench_results_free(&s.results);
  return failed ? 1 : missing ? 3 : 0;
}
