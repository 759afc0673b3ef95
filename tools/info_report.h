/* What ferry-info reports for one topology: its GPUs, the backends, and the
 * decision with every rejected candidate. Collected once (info_collect.c),
 * printed as text (info_text.c) or JSON (info_json.c). */
#ifndef FERRY_TOOLS_INFO_REPORT_H
#define FERRY_TOOLS_INFO_REPORT_H

#include <ferry/ferry.h>
#include <stdbool.h>

typedef struct info_backend {
  ferry_backend_info info; /* name, path, ABI, available, reason */
  bool found;              /* the loader knows it (else: no plugin file) */
  int device_count;
  ferry_device_info *devices;
} info_backend;

typedef struct info_report {
  /* Decided from an XML topology with synthesized devices (one per GPU for
   * its vendor's backend) rather than from this machine's plugins. */
  bool from_file;
  bool have_topology;
  char topology_error[1024];
  ferry_topology_info topology;
  int gpu_count;
  ferry_gpu_info *gpus;
  int backend_count;
  info_backend *backends;
  bool have_selection;
  char selection_error[1024];
  ferry_selection_info selection;
  int rejected_count;
  ferry_rejection *rejected;
} info_report;

/* This machine: topology, the loader's backends, ferry_select_machine.
 * Never fails as a whole; each part records its own error. */
void info_collect_machine(const char *request, int device_index,
                          info_report *out);
/* An XML file; returns false (message in *error) when it cannot be read. */
bool info_collect_file(const char *path, const char *request, int device_index,
                       info_report *out, char *error, size_t error_size);
void info_report_free(info_report *r);

/* "0,8" for a ferry_gpu_info's NUMA nodes, into buf. */
const char *info_numa_list(const uint32_t *nodes, int count, char *buf,
                           size_t size);

void info_print_text(const info_report *r, const char *title);
/* `machine` is printed as a nested "machine" object when not NULL. */
/* 0 when the document was complete and written, -1 otherwise. */
int info_print_json(const info_report *r, const info_report *machine);

#endif /* FERRY_TOOLS_INFO_REPORT_H */
