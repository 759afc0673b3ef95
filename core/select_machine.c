/* The decision for this machine: resolve the request, gather candidates from
 * the loader, and run the pure decision (select.c) on the machine topology.
 *
 * Only the plugins the request needs are loaded: one name loads that plugin
 * alone (a strict "cpu" maps no vendor runtime), a list loads its names in
 * order until one qualifies, and "auto" loads them all. */
#include "topology_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The loader's plugins plus the known backends it did not find. */
#define MAX_GATHER 80

typedef struct gathered {
  int n;
  ferry_select_candidate cands[MAX_GATHER];
  const ferry__plugin *plugins[MAX_GATHER]; /* NULL: not found */
  char names[MAX_GATHER][FERRY_NAME_MAX];
  ferry_device_info *devs[MAX_GATHER];
  char reasons[MAX_GATHER][FERRY_REASON_MAX + 64];
} gathered;

static void gathered_free(gathered *g) {
  if (g == NULL)
    return;
  for (int i = 0; i < g->n; i++)
    free(g->devs[i]);
  free(g);
}

static ferry_select_candidate *slot(gathered *g, const char *name,
                                    const ferry__plugin *p) {
  if (g->n == MAX_GATHER)
    return NULL;
  int i = g->n++;
  ferry_select_candidate c = FERRY_SELECT_CANDIDATE_INIT;
  snprintf(g->names[i], sizeof g->names[i], "%s", p ? p->name : name);
  c.backend = g->names[i];
  g->cands[i] = c;
  g->plugins[i] = p;
  g->devs[i] = NULL;
  g->reasons[i][0] = '\0';
  g->cands[i].reason = g->reasons[i];
  return &g->cands[i];
}

static ferry_status add_plugin(gathered *g, const ferry__plugin *p) {
  ferry_select_candidate *c = slot(g, NULL, p);
  if (c == NULL)
    return FERRY_OK; /* more plugins than the loader itself keeps */
  int i = (int)(c - g->cands);
  c->available = p->status == FERRY_OK && p->initialised;
  c->status = p->status;
  snprintf(g->reasons[i], sizeof g->reasons[i], "%s", p->reason);
  if (!c->available || p->device_count <= 0)
    return FERRY_OK;
  ferry_device_info *devs = calloc((size_t)p->device_count, sizeof *devs);
  if (devs == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "backend selection: out of host memory");
  for (int d = 0; d < p->device_count; d++) {
    ferry_device_info info = FERRY_DEVICE_INFO_INIT;
    if (ferry__plugin_device_info(p, d, &info) != FERRY_OK) {
      memset(&info, 0, sizeof info);
      info.struct_size = sizeof info;
      info.usable = 0;
      snprintf(info.reason, sizeof info.reason, "device_info failed: %s",
               ferry_last_error());
    }
    devs[d] = info;
  }
  g->devs[i] = devs;
  c->devices = devs;
  c->device_count = p->device_count;
  return FERRY_OK;
}

static void add_absent(gathered *g, const char *name, ferry_status st,
                       const char *reason) {
  ferry_select_candidate *c = slot(g, name, NULL);
  if (c == NULL)
    return;
  int i = (int)(c - g->cands);
  snprintf(g->reasons[i], sizeof g->reasons[i], "%s", reason);
  c->available = 0;
  c->status = st;
}

static void absent_reason(const char *name, char *out, size_t n) {
  snprintf(out, n,
           "no plugin libferry-%s.so was found (searched %s; it is built only "
           "where its toolkit was found)",
           name,
           ferry__getenv("FERRY_PLUGIN_PATH")
               ? "FERRY_PLUGIN_PATH"
               : "the ferry/ directory beside libferry.so");
}

static ferry_status gather_auto(gathered *g) {
  ferry__plugin *list;
  int n;
  ferry__plugins(&list, &n);
  for (int i = 0; i < n; i++) {
    ferry_status st = add_plugin(g, &list[i]);
    if (st != FERRY_OK)
      return st;
  }
  static const char *const known[] = {"cpu", "cuda", "hip", "opencl"};
  for (int k = 0; k < 4; k++) {
    bool seen = false;
    for (int i = 0; i < n && !seen; i++)
      seen = strcmp(list[i].name, known[k]) == 0;
    if (seen)
      continue;
    char why[FERRY_REASON_MAX];
    absent_reason(known[k], why, sizeof why);
    add_absent(g, known[k], FERRY_ERR_NO_BACKEND, why);
  }
  return FERRY_OK;
}

/* One named backend, loading that plugin only. */
static void gather_name(gathered *g, const char *name) {
  ferry_status st;
  const char *msg = "";
  const ferry__plugin *p = ferry__plugin_get(name, &st, &msg);
  if (p != NULL) {
    if (add_plugin(g, p) != FERRY_OK) {
      /* out of memory: leave it as a candidate without devices */
    }
    return;
  }
  char why[FERRY_REASON_MAX + 64];
  snprintf(why, sizeof why, "%s", msg[0] ? msg : "(no reason given)");
  ferry_select_candidate *c = slot(g, name, NULL);
  if (c == NULL)
    return;
  int i = (int)(c - g->cands);
  snprintf(g->reasons[i], sizeof g->reasons[i], "%s", why);
  c->status = st;
}

/* Split a request into names the same way select.c parses it; syntax errors
 * are left for select.c to report. */
static int split_names(const char *req, char names[][FERRY_NAME_MAX], int max) {
  int n = 0;
  const char *p = req;
  while (*p && n < max) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    size_t len = 0;
    while (p[len] && p[len] != ',' && p[len] != ' ' && p[len] != '\t')
      len++;
    if (len == 0)
      break;
    size_t k = len < FERRY_NAME_MAX - 1 ? len : FERRY_NAME_MAX - 1;
    for (size_t j = 0; j < k; j++)
      names[n][j] =
          (char)(p[j] >= 'A' && p[j] <= 'Z' ? p[j] - 'A' + 'a' : p[j]);
    names[n][k] = '\0';
    n++;
    p += len;
  }
  return n;
}

static bool is_auto(const char *req) {
  while (*req == ' ' || *req == '\t')
    req++;
  char word[8] = "";
  size_t n = 0;
  while (req[n] && req[n] != ' ' && req[n] != '\t' && n < sizeof word - 1) {
    word[n] =
        (char)(req[n] >= 'A' && req[n] <= 'Z' ? req[n] - 'A' + 'a' : req[n]);
    n++;
  }
  word[n] = '\0';
  const char *rest = req + n;
  while (*rest == ' ' || *rest == '\t')
    rest++;
  return strcmp(word, "auto") == 0 && *rest == '\0';
}

/* Resolve, gather and decide. *src says where the request came from. */
static ferry_status machine_select(const char *request, int device_index,
                                   const char **src, gathered **gout,
                                   ferry_selection **out) {
  *src = "opts->backend";
  if (request == NULL || request[0] == '\0') {
    const char *env = ferry__getenv("FERRY_BACKEND");
    if (env != NULL && env[0] != '\0') {
      request = env;
      *src = "the FERRY_BACKEND environment variable";
    } else {
      request = "auto";
      *src = "the default";
    }
  }
  gathered *g = calloc(1, sizeof *g);
  if (g == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "backend selection: out of host memory");
  const ferry_topology *topo = ferry__machine_topology();
  ferry_select_input in = FERRY_SELECT_INPUT_INIT;
  in.request = request;
  in.device_index = device_index;
  in.candidates = g->cands;

  /* Check the request's syntax before loading anything for it. */
  ferry_selection *sel = NULL;
  ferry_status st = ferry__select(topo, &in, &sel);
  ferry_selection_destroy(sel);
  sel = NULL;
  if (st == FERRY_OK && is_auto(request)) {
    st = gather_auto(g);
    in.candidate_count = g->n;
    if (st == FERRY_OK)
      st = ferry__select(topo, &in, &sel);
  } else if (st == FERRY_OK) {
    char names[16][FERRY_NAME_MAX];
    int n = split_names(request, names, 16);
    /* Gather name by name and stop once one qualifies, so that e.g.
     * "cpu,opencl" never loads the opencl plugin. */
    for (int k = 0; k < n || k == 0; k++) {
      if (k < n) {
        bool dup = false;
        for (int j = 0; j < k; j++)
          dup |= strcmp(names[j], names[k]) == 0;
        if (!dup)
          gather_name(g, names[k]);
      }
      in.candidate_count = g->n;
      ferry_selection_destroy(sel);
      sel = NULL;
      ferry__clear_error();
      st = ferry__select(topo, &in, &sel);
      if (st != FERRY_OK || ferry__selection_candidate(sel) >= 0)
        break;
    }
  }
  if (st != FERRY_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ferry_last_error());
    gathered_free(g);
    return ferry__error(st, "%s (the request comes from %s)", msg, *src);
  }
  *gout = g;
  *out = sel;
  return FERRY_OK;
}

static void trace_selection(const ferry_selection *sel) {
  int n = 0;
  if (ferry_selection_rejected_count(sel, &n) != FERRY_OK)
    return;
  for (int i = 0; i < n; i++) {
    ferry_rejection r = FERRY_REJECTION_INIT;
    if (ferry_selection_get_rejected(sel, i, &r) == FERRY_OK)
      ferry__trace("select", "rejected: %s", r.reason);
  }
}

ferry_status ferry__choose(const char *request, int device_index,
                           ferry__choice *out) {
  const char *src;
  gathered *g = NULL;
  ferry_selection *sel = NULL;
  ferry_status st = machine_select(request, device_index, &src, &g, &sel);
  if (st != FERRY_OK)
    return st;
  trace_selection(sel);
  const char *message;
  ferry_status decided = ferry__selection_status(sel, &message);
  int ci = ferry__selection_candidate(sel);
  if (decided != FERRY_OK || ci < 0 || g->plugins[ci] == NULL) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", message);
    ferry_selection_destroy(sel);
    gathered_free(g);
    if (decided == FERRY_OK)
      decided = FERRY_ERR_INTERNAL;
    return ferry__error(decided, "%s (the request comes from %s)", msg, src);
  }
  ferry__choice c;
  memset(&c, 0, sizeof c);
  c.plugin = g->plugins[ci];
  c.device = ferry__selection_device(sel);
  snprintf(c.cpuset, sizeof c.cpuset, "%s", ferry__selection_cpuset(sel));
  snprintf(c.nodeset, sizeof c.nodeset, "%s", ferry__selection_nodeset(sel));
  ferry__trace("select", "chose %s device %d (NUMA nodes '%s', PUs '%s')",
               c.plugin->name, c.device, c.nodeset, c.cpuset);
  ferry_selection_destroy(sel);
  gathered_free(g);
  ferry__clear_error();
  *out = c;
  return FERRY_OK;
}

ferry_status ferry_select_machine(const char *request, int device_index,
                                  ferry_selection **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(out);
  if (device_index < -1)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_select_machine: argument 'device_index' is %d; "
                        "use -1 to choose, or a device index >= 0",
                        device_index);
  const char *src;
  gathered *g = NULL;
  ferry_selection *sel = NULL;
  ferry_status st = machine_select(request, device_index, &src, &g, &sel);
  if (st != FERRY_OK)
    return st;
  gathered_free(g);
  ferry__clear_error();
  *out = sel;
  return FERRY_OK;
}
