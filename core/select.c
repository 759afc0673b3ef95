/* The backend/device decision: a pure function of a topology snapshot and
 * the candidates (backends with the devices they report). Nothing here loads
 * a plugin or reads the environment; select_machine.c gathers the inputs.
 *
 * The rule (docs/topology.md):
 *   - "auto" tries cuda, hip, opencl, then cpu. A GPU backend qualifies in
 *     auto only with a usable device on PCI (it has a bus id) of its vendor:
 *     cuda for NVIDIA, hip for AMD, opencl for any. So NVIDIA GPUs go to
 *     cuda, then opencl; AMD GPUs to hip, then opencl; other GPUs to opencl;
 *     and a machine without a GPU gets cpu (PoCL's CPU device is no GPU).
 *   - A list ("hip,opencl,cpu") tries its names in order; any usable device
 *     qualifies. One name is strict: if it does not qualify, nothing does.
 *   - Within the chosen backend: the device index asked for, else the
 *     usable device with the lowest PCI bus id (devices without one last).
 *   - Placement: the chosen device's locality from the topology (nearest
 *     non-I/O ancestor's NUMA nodes and PUs); the whole machine for cpu. */
#include "topology_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NAMES 16
#define MAX_CANDIDATES 1024
#define MAX_DEVICES 4096

static const char *const auto_order[] = {"cuda", "hip", "opencl", "cpu"};
#define AUTO_COUNT ((int)(sizeof auto_order / sizeof auto_order[0]))

struct ferry_selection {
  ferry_status status;
  char message[1024];
  char request[FERRY_NAME_MAX];
  char backend[FERRY_NAME_MAX];
  int candidate;
  int device;
  char bus[FERRY_BUS_ID_MAX];
  int locality_known;
  int numa_count;
  uint32_t numa[FERRY_TOPOLOGY_MAX_NUMA];
  char nodeset[FERRY_LIST_MAX];
  char cpuset[FERRY_LIST_MAX];
  int nrej;
  int caprej;
  ferry_rejection *rej;
  bool oom; /* a rejection could not be recorded */
};

/* ---- the request --------------------------------------------------------- */

typedef struct request {
  bool is_auto;
  int n;
  char names[MAX_NAMES][FERRY_NAME_MAX];
  char text[FERRY_NAME_MAX]; /* normalised: "auto" or "a,b,c" */
} request;

static ferry_status parse_request(const char *req, request *out) {
  memset(out, 0, sizeof *out);
  if (req == NULL || req[0] == '\0') {
    out->is_auto = true;
    snprintf(out->text, sizeof out->text, "auto");
    return FERRY_OK;
  }
  if (strlen(req) >= sizeof out->text)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "backend request '%.40s...' is longer than %zu "
                        "characters",
                        req, sizeof out->text - 1);
  const char *p = req;
  int pos = 0;
  for (;;) {
    pos++;
    while (*p == ' ' || *p == '\t')
      p++;
    char name[FERRY_NAME_MAX];
    size_t len = 0;
    while (*p && *p != ',' && *p != ' ' && *p != '\t') {
      char ch = (char)tolower((unsigned char)*p);
      if (!(isalnum((unsigned char)ch) || ch == '_' || ch == '-'))
        return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                            "backend request '%s': character '%c' in name %d "
                            "(names are letters, digits, '_' and '-', "
                            "separated by commas)",
                            req, *p, pos);
      name[len++] = ch;
      p++;
    }
    name[len] = '\0';
    while (*p == ' ' || *p == '\t')
      p++;
    if (len == 0)
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "backend request '%s': name %d is empty (use e.g. "
                          "\"auto\", \"cuda\" or \"hip,opencl,cpu\")",
                          req, pos);
    if (strcmp(name, "auto") == 0) {
      if (pos != 1 || *p != '\0')
        return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                            "backend request '%s': \"auto\" stands alone, it "
                            "cannot be part of a list",
                            req);
      out->is_auto = true;
      snprintf(out->text, sizeof out->text, "auto");
      return FERRY_OK;
    }
    if (out->n == MAX_NAMES)
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "backend request '%s' names more than %d backends",
                          req, MAX_NAMES);
    bool repeated = false;
    for (int k = 0; k < out->n; k++)
      repeated |= strcmp(out->names[k], name) == 0;
    if (!repeated) { /* "cuda,cuda" asks for cuda once */
      memcpy(out->names[out->n++], name, len + 1);
      size_t tl = strlen(out->text);
      snprintf(out->text + tl, sizeof out->text - tl, "%s%s", tl ? "," : "",
               name);
    }
    if (*p == '\0')
      return FERRY_OK;
    if (*p != ',')
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "backend request '%s': expected ',' after name %d",
                          req, pos);
    p++;
  }
}

/* ---- input access -------------------------------------------------------- */

static const ferry_select_candidate *cand_at(const ferry_select_input *in,
                                             int i) {
  size_t stride = in->candidates[0].struct_size;
  return (const ferry_select_candidate *)((const char *)in->candidates +
                                          stride * (size_t)i);
}

static const ferry_device_info *dev_at(const ferry_select_candidate *c, int i) {
  size_t stride = c->devices[0].struct_size;
  return (const ferry_device_info *)((const char *)c->devices +
                                     stride * (size_t)i);
}

static ferry_status check_input(const char *func,
                                const ferry_select_input *in) {
  if (in->struct_size < sizeof(ferry_select_input))
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "%s: in->struct_size is %zu, expected at least %zu "
                        "(use FERRY_SELECT_INPUT_INIT)",
                        func, in->struct_size, sizeof(ferry_select_input));
  if (in->device_index < -1)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "%s: in->device_index is %d; use -1 to choose, or a "
                        "device index >= 0",
                        func, in->device_index);
  if (in->candidate_count < 0 || in->candidate_count > MAX_CANDIDATES)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "%s: in->candidate_count is %d, outside [0, %d]", func,
                        in->candidate_count, MAX_CANDIDATES);
  if (in->candidate_count == 0)
    return FERRY_OK;
  if (in->candidates == NULL)
    return ferry__error(FERRY_ERR_NULL_POINTER,
                        "%s: in->candidates is NULL but in->candidate_count "
                        "is %d",
                        func, in->candidate_count);
  size_t stride = in->candidates[0].struct_size;
  if (stride < sizeof(ferry_select_candidate) ||
      stride % _Alignof(ferry_select_candidate) != 0)
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "%s: in->candidates[0].struct_size is %zu, expected "
                        "%zu (use FERRY_SELECT_CANDIDATE_INIT)",
                        func, stride, sizeof(ferry_select_candidate));
  for (int i = 0; i < in->candidate_count; i++) {
    const ferry_select_candidate *c = cand_at(in, i);
    if (c->struct_size != stride)
      return ferry__error(FERRY_ERR_STRUCT_SIZE,
                          "%s: in->candidates[%d].struct_size is %zu, but "
                          "candidates[0]'s is %zu",
                          func, i, c->struct_size, stride);
    if (c->backend == NULL || c->backend[0] == '\0' ||
        strlen(c->backend) >= FERRY_NAME_MAX)
      return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                          "%s: in->candidates[%d].backend is %s", func, i,
                          c->backend == NULL ? "NULL"
                          : c->backend[0]    ? "too long"
                                             : "empty");
    if (c->device_count < 0 || c->device_count > MAX_DEVICES)
      return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                          "%s: in->candidates[%d].device_count is %d, "
                          "outside [0, %d]",
                          func, i, c->device_count, MAX_DEVICES);
    if (c->device_count == 0)
      continue;
    if (c->devices == NULL)
      return ferry__error(FERRY_ERR_NULL_POINTER,
                          "%s: in->candidates[%d].devices is NULL but its "
                          "device_count is %d",
                          func, i, c->device_count);
    size_t ds = c->devices[0].struct_size;
    if (ds < sizeof(ferry_device_info) || ds % _Alignof(ferry_device_info) != 0)
      return ferry__error(FERRY_ERR_STRUCT_SIZE,
                          "%s: in->candidates[%d].devices[0].struct_size is "
                          "%zu, expected %zu (use FERRY_DEVICE_INFO_INIT)",
                          func, i, ds, sizeof(ferry_device_info));
    for (int d = 1; d < c->device_count; d++)
      if (dev_at(c, d)->struct_size != ds)
        return ferry__error(FERRY_ERR_STRUCT_SIZE,
                            "%s: in->candidates[%d].devices[%d].struct_size "
                            "is %zu, but devices[0]'s is %zu",
                            func, i, d, dev_at(c, d)->struct_size, ds);
  }
  return FERRY_OK;
}

/* ---- rejections ---------------------------------------------------------- */

static void reject_at(ferry_selection *s, int pos, const char *backend,
                      int device, const char *bus, ferry_status st,
                      const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static void reject_at(ferry_selection *s, int pos, const char *backend,
                      int device, const char *bus, ferry_status st,
                      const char *fmt, ...) {
  if (s->nrej == s->caprej) {
    int cap = s->caprej ? s->caprej * 2 : 16;
    ferry_rejection *r = realloc(s->rej, (size_t)cap * sizeof *r);
    if (r == NULL) {
      s->oom = true;
      return;
    }
    s->rej = r;
    s->caprej = cap;
  }
  if (pos < 0 || pos > s->nrej)
    pos = s->nrej;
  memmove(&s->rej[pos + 1], &s->rej[pos],
          (size_t)(s->nrej - pos) * sizeof *s->rej);
  s->nrej++;
  ferry_rejection *r = &s->rej[pos];
  memset(r, 0, sizeof *r);
  r->struct_size = sizeof *r;
  snprintf(r->backend, sizeof r->backend, "%s", backend);
  r->device_index = device;
  snprintf(r->pci_bus_id, sizeof r->pci_bus_id, "%s", bus ? bus : "");
  r->status = st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->reason, sizeof r->reason, fmt, ap);
  va_end(ap);
}

/* ---- devices ------------------------------------------------------------- */

typedef struct devview {
  int index;
  bool has_bus;
  ferry__busid id;
  char bus[FERRY_BUS_ID_MAX]; /* canonical, or "" */
  char label[FERRY_NAME_MAX + 32];
  uint32_t vendor; /* reported, else from the topology, else 0 */
} devview;

static void view_device(const ferry_topology *topo,
                        const ferry_select_candidate *c, int i, devview *v) {
  const ferry_device_info *d = dev_at(c, i);
  memset(v, 0, sizeof *v);
  v->index = i;
  char raw[FERRY_BUS_ID_MAX];
  memcpy(raw, d->pci_bus_id, sizeof raw);
  raw[sizeof raw - 1] = '\0';
  v->has_bus = ferry__busid_parse(raw, &v->id);
  if (v->has_bus)
    ferry__busid_format(&v->id, v->bus);
  v->vendor = d->pci_vendor_id;
  if (v->vendor == 0 && v->has_bus) {
    const ferry__pci *p = ferry__topology_find(topo, &v->id);
    if (p)
      v->vendor = p->info.vendor_id;
  }
  char name[FERRY_NAME_MAX];
  memcpy(name, d->name, sizeof name);
  name[sizeof name - 1] = '\0';
  snprintf(v->label, sizeof v->label, "%s device %d (%s)", c->backend, i,
           v->has_bus ? v->bus
           : name[0]  ? name
                      : "no PCI bus id");
}

static uint32_t backend_vendor(const char *backend) {
  if (strcasecmp(backend, "cuda") == 0)
    return 0x10de;
  if (strcasecmp(backend, "hip") == 0)
    return 0x1002;
  return 0;
}

static bool devview_before(const devview *a, const devview *b) {
  if (a->has_bus != b->has_bus)
    return a->has_bus;
  if (a->has_bus) {
    int c = ferry__busid_cmp(&a->id, &b->id);
    if (c != 0)
      return c < 0;
  }
  return a->index < b->index;
}

/* ---- evaluating one candidate -------------------------------------------- */

typedef struct eval {
  bool qualifies;
  devview chosen;
  ferry_status status; /* when it does not qualify */
  char reason[640];
  int eligible_count;
  devview *eligible; /* owned; freed by the caller */
} eval;

static ferry_status unavailable_status(ferry_status st) {
  switch (st) {
  case FERRY_ERR_NO_DEVICE:
  case FERRY_ERR_DEVICE_TOO_OLD:
  case FERRY_ERR_NO_BACKEND:
    return st;
  default:
    return FERRY_ERR_NO_BACKEND;
  }
}

static void evaluate(ferry_selection *s, const ferry_topology *topo,
                     const ferry_select_candidate *c, bool is_auto,
                     int device_index, eval *e) {
  memset(e, 0, sizeof *e);
  if (!c->available) {
    e->status = unavailable_status(c->status);
    snprintf(e->reason, sizeof e->reason, "plugin unavailable: %.350s",
             c->reason && c->reason[0] ? c->reason : "(no reason given)");
    return;
  }
  bool gpu_only = is_auto && strcasecmp(c->backend, "cpu") != 0;
  uint32_t want_vendor = is_auto ? backend_vendor(c->backend) : 0;
  if (c->device_count > 0) {
    e->eligible = malloc((size_t)c->device_count * sizeof *e->eligible);
    if (e->eligible == NULL) {
      s->oom = true;
      e->status = FERRY_ERR_NO_DEVICE;
      snprintf(e->reason, sizeof e->reason, "out of host memory");
      return;
    }
  }
  int unusable = 0, not_pci = 0, other_vendor = 0;
  for (int i = 0; i < c->device_count; i++) {
    devview v;
    view_device(topo, c, i, &v);
    const ferry_device_info *d = dev_at(c, i);
    if (!d->usable) {
      char why[FERRY_REASON_MAX];
      memcpy(why, d->reason, sizeof why);
      why[sizeof why - 1] = '\0';
      reject_at(s, -1, c->backend, i, v.bus, FERRY_ERR_DEVICE_TOO_OLD, "%s: %s",
                v.label, why[0] ? why : "unusable (no reason given)");
      unusable++;
      continue;
    }
    if (gpu_only && !v.has_bus) {
      reject_at(s, -1, c->backend, i, v.bus, FERRY_ERR_NO_DEVICE,
                "%s: not on PCI (auto takes a GPU backend only for GPUs; "
                "request '%s' to use it)",
                v.label, c->backend);
      not_pci++;
      continue;
    }
    if (want_vendor && v.vendor && v.vendor != want_vendor) {
      char vn[32], wn[32];
      ferry__vendor_name(v.vendor, vn);
      ferry__vendor_name(want_vendor, wn);
      reject_at(s, -1, c->backend, i, v.bus, FERRY_ERR_NO_DEVICE,
                "%s: vendor %s, and auto takes %s for %s devices only", v.label,
                vn, c->backend, wn);
      other_vendor++;
      continue;
    }
    e->eligible[e->eligible_count++] = v;
  }

  if (device_index >= 0) {
    if (device_index >= c->device_count) {
      /* The caller's index is out of range, as for any other index. */
      e->status = FERRY_ERR_OUT_OF_RANGE;
      snprintf(e->reason, sizeof e->reason,
               "device index %d was requested but it reports %d device%s",
               device_index, c->device_count, c->device_count == 1 ? "" : "s");
      return;
    }
    for (int k = 0; k < e->eligible_count; k++)
      if (e->eligible[k].index == device_index) {
        e->qualifies = true;
        e->chosen = e->eligible[k];
        return;
      }
    const ferry_device_info *d = dev_at(c, device_index);
    devview v;
    view_device(topo, c, device_index, &v);
    if (!d->usable) {
      char why[FERRY_REASON_MAX];
      memcpy(why, d->reason, sizeof why);
      why[sizeof why - 1] = '\0';
      e->status = FERRY_ERR_DEVICE_TOO_OLD;
      snprintf(e->reason, sizeof e->reason,
               "device index %d was requested but %.160s is unusable: %.200s",
               device_index, v.label, why[0] ? why : "(no reason given)");
    } else {
      e->status = FERRY_ERR_NO_DEVICE;
      snprintf(e->reason, sizeof e->reason,
               "device index %d was requested but auto cannot use %.160s (see "
               "its own entry)",
               device_index, v.label);
    }
    return;
  }
  if (e->eligible_count == 0) {
    bool ineligible = not_pci + other_vendor > 0;
    e->status = unusable > 0 && !ineligible ? FERRY_ERR_DEVICE_TOO_OLD
                                            : FERRY_ERR_NO_DEVICE;
    if (c->device_count == 0)
      snprintf(e->reason, sizeof e->reason, "it reports no device");
    else if (ineligible)
      snprintf(e->reason, sizeof e->reason,
               "no GPU for auto among its %d device%s (%d not on PCI, %d of "
               "another vendor, %d unusable)",
               c->device_count, c->device_count == 1 ? "" : "s", not_pci,
               other_vendor, unusable);
    else
      snprintf(e->reason, sizeof e->reason,
               "none of its %d device%s is usable (see their entries)",
               c->device_count, c->device_count == 1 ? "" : "s");
    return;
  }
  int best = 0;
  for (int k = 1; k < e->eligible_count; k++)
    if (devview_before(&e->eligible[k], &e->eligible[best]))
      best = k;
  e->qualifies = true;
  e->chosen = e->eligible[best];
}

/* ---- placement ----------------------------------------------------------- */

static void place_machine(ferry_selection *s, const ferry_topology *topo) {
  s->numa_count = topo->numa_count;
  memcpy(s->numa, topo->numa_nodes, sizeof s->numa);
  snprintf(s->nodeset, sizeof s->nodeset, "%s", topo->nodeset);
  snprintf(s->cpuset, sizeof s->cpuset, "%s", topo->cpuset);
}

static void place(ferry_selection *s, const ferry_topology *topo, bool cpu,
                  const devview *v) {
  if (topo == NULL)
    return; /* unrestricted */
  const ferry__pci *p =
      (!cpu && v->has_bus) ? ferry__topology_find(topo, &v->id) : NULL;
  if (p == NULL) {
    place_machine(s, topo);
    s->locality_known = cpu;
    return;
  }
  s->locality_known = 1;
  s->numa_count = p->info.numa_node_count;
  memcpy(s->numa, p->info.numa_nodes, sizeof s->numa);
  snprintf(s->nodeset, sizeof s->nodeset, "%s", p->info.nodeset);
  snprintf(s->cpuset, sizeof s->cpuset, "%s", p->info.cpuset);
}

/* ---- the decision -------------------------------------------------------- */

static bool is_gpu_backend(const char *name) {
  return strcasecmp(name, "cpu") != 0;
}

static void finish_failure(ferry_selection *s, const request *rq,
                           bool any_available) {
  ferry_status st = any_available ? FERRY_ERR_NO_DEVICE : FERRY_ERR_NO_BACKEND;
  if (!rq->is_auto && rq->n == 1) {
    for (int i = 0; i < s->nrej; i++)
      if (s->rej[i].device_index < 0 &&
          strcasecmp(s->rej[i].backend, rq->names[0]) == 0) {
        st = s->rej[i].status;
        break;
      }
  }
  if (st == FERRY_OK)
    st = FERRY_ERR_NO_BACKEND;
  s->status = st;
  int n = snprintf(s->message, sizeof s->message, "backend request '%s': %s",
                   rq->text,
                   rq->is_auto || rq->n > 1 ? "no backend qualifies: " : "");
  for (int i = 0; i < s->nrej && n >= 0 && (size_t)n < sizeof s->message; i++) {
    if (s->rej[i].device_index >= 0)
      continue;
    n += snprintf(s->message + n, sizeof s->message - (size_t)n, "%s%s",
                  n > 0 && s->message[n - 1] != ' ' ? "; " : "",
                  s->rej[i].reason);
  }
}

ferry_status ferry__select(const ferry_topology *topo,
                           const ferry_select_input *in,
                           ferry_selection **out) {
  static const char func[] = "ferry_select";
  ferry_status st = check_input(func, in);
  if (st != FERRY_OK)
    return st;
  request rq;
  st = parse_request(in->request, &rq);
  if (st != FERRY_OK)
    return st;
  ferry_selection *s = calloc(1, sizeof *s);
  bool *considered =
      calloc((size_t)(in->candidate_count > 0 ? in->candidate_count : 1), 1);
  if (s == NULL || considered == NULL) {
    free(s);
    free(considered);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        func);
  }
  s->candidate = -1;
  s->device = -1;
  snprintf(s->request, sizeof s->request, "%s", rq.text);

  const char *const *order = rq.is_auto ? auto_order : NULL;
  int norder = rq.is_auto ? AUTO_COUNT : rq.n;
  bool any_available = false;
  char chosen_desc[FERRY_NAME_MAX + 64] = "";

  for (int k = 0; k < norder; k++) {
    const char *name = order ? order[k] : rq.names[k];
    bool found = false;
    for (int ci = 0; ci < in->candidate_count; ci++) {
      const ferry_select_candidate *c = cand_at(in, ci);
      if (considered[ci] || strcasecmp(c->backend, name) != 0)
        continue;
      considered[ci] = true;
      found = true;
      int pos = s->nrej;
      eval e;
      evaluate(s, topo, c, rq.is_auto, in->device_index, &e);
      any_available |= c->available != 0;
      if (e.qualifies && s->candidate < 0) {
        s->candidate = ci;
        s->device = e.chosen.index;
        snprintf(s->backend, sizeof s->backend, "%s", c->backend);
        snprintf(s->bus, sizeof s->bus, "%s", e.chosen.bus);
        snprintf(chosen_desc, sizeof chosen_desc, "%s", e.chosen.label);
        place(s, topo, !is_gpu_backend(c->backend), &e.chosen);
        for (int j = 0; j < e.eligible_count; j++) {
          const devview *v = &e.eligible[j];
          if (v->index == e.chosen.index)
            continue;
          if (in->device_index >= 0)
            reject_at(s, -1, c->backend, v->index, v->bus, FERRY_OK,
                      "%s: device index %d was requested", v->label,
                      in->device_index);
          else
            reject_at(s, -1, c->backend, v->index, v->bus, FERRY_OK,
                      "%s: device %d (%s) has a lower PCI bus id", v->label,
                      e.chosen.index,
                      e.chosen.has_bus ? e.chosen.bus : "first listed");
        }
      } else if (e.qualifies) {
        if (rq.is_auto && !is_gpu_backend(c->backend))
          reject_at(s, pos, c->backend, -1, "", FERRY_OK,
                    "%s: a GPU backend was preferred (%s)", c->backend,
                    chosen_desc);
        else if (rq.is_auto)
          reject_at(s, pos, c->backend, -1, "", FERRY_OK,
                    "%s: %s was preferred (auto tries cuda, hip, opencl, "
                    "then cpu)",
                    c->backend, s->backend);
        else
          reject_at(s, pos, c->backend, -1, "", FERRY_OK,
                    "%s: '%s' comes first in the request '%s'", c->backend,
                    s->backend, rq.text);
      } else {
        reject_at(s, pos, c->backend, -1, "", e.status, "%s: %s", c->backend,
                  e.reason);
      }
      free(e.eligible);
    }
    if (found)
      continue;
    /* select_machine.c stops gathering once a backend qualifies, so later
     * names have no candidate: they were simply not needed. */
    if (s->candidate >= 0 && rq.is_auto)
      reject_at(s, -1, name, -1, "", FERRY_OK,
                "%s: not tried: %s was preferred", name, s->backend);
    else if (s->candidate >= 0)
      reject_at(s, -1, name, -1, "", FERRY_OK,
                "%s: not tried: '%s' comes first in the request '%s'", name,
                s->backend, rq.text);
    else
      reject_at(s, -1, name, -1, "", FERRY_ERR_NO_BACKEND,
                "%s: no such backend among the candidates", name);
  }
  for (int ci = 0; ci < in->candidate_count; ci++) {
    if (considered[ci])
      continue;
    const ferry_select_candidate *c = cand_at(in, ci);
    if (rq.is_auto)
      reject_at(s, -1, c->backend, -1, "", FERRY_OK,
                "%s: not tried: auto tries cuda, hip, opencl, then cpu "
                "(request '%s' by name)",
                c->backend, c->backend);
    else
      reject_at(s, -1, c->backend, -1, "", FERRY_OK,
                "%s: not in the request '%s'", c->backend, rq.text);
  }
  free(considered);
  if (s->oom) {
    ferry_selection_destroy(s);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        func);
  }
  if (s->candidate < 0)
    finish_failure(s, &rq, any_available);
  *out = s;
  return FERRY_OK;
}

/* ---- accessors ----------------------------------------------------------- */

int ferry__selection_candidate(const ferry_selection *sel) {
  return sel->candidate;
}

int ferry__selection_device(const ferry_selection *sel) {
  return sel->device;
}

ferry_status ferry__selection_status(const ferry_selection *sel,
                                     const char **message) {
  *message = sel->message;
  return sel->status;
}

const char *ferry__selection_cpuset(const ferry_selection *sel) {
  return sel->cpuset;
}

const char *ferry__selection_nodeset(const ferry_selection *sel) {
  return sel->nodeset;
}

/* ---- public API ---------------------------------------------------------- */

ferry_status ferry_select(const ferry_topology *topo,
                          const ferry_select_input *in, ferry_selection **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(in);
  FERRY_CHECK_NULL(out);
  return ferry__select(topo, in, out);
}

void ferry_selection_destroy(ferry_selection *sel) {
  if (sel == NULL)
    return;
  free(sel->rej);
  free(sel);
}

ferry_status ferry_selection_get_info(const ferry_selection *sel,
                                      ferry_selection_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(sel);
  FERRY_CHECK_NULL(out);
  ferry_selection_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.status = sel->status;
  snprintf(info.message, sizeof info.message, "%s", sel->message);
  snprintf(info.request, sizeof info.request, "%s", sel->request);
  snprintf(info.backend, sizeof info.backend, "%s", sel->backend);
  info.candidate = sel->candidate;
  info.device_index = sel->device;
  snprintf(info.pci_bus_id, sizeof info.pci_bus_id, "%s", sel->bus);
  info.locality_known = sel->locality_known;
  info.numa_node_count = sel->numa_count;
  memcpy(info.numa_nodes, sel->numa, sizeof info.numa_nodes);
  snprintf(info.nodeset, sizeof info.nodeset, "%s", sel->nodeset);
  snprintf(info.cpuset, sizeof info.cpuset, "%s", sel->cpuset);
  return ferry__copy_out(__func__, out, &info, sizeof info, sizeof info);
}

ferry_status ferry_selection_rejected_count(const ferry_selection *sel,
                                            int *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(sel);
  FERRY_CHECK_NULL(out);
  *out = sel->nrej;
  return FERRY_OK;
}

ferry_status ferry_selection_get_rejected(const ferry_selection *sel, int index,
                                          ferry_rejection *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(sel);
  FERRY_CHECK_NULL(out);
  if (index < 0 || index >= sel->nrej)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_selection_get_rejected: argument 'index' is %d, "
                        "outside [0, %d)",
                        index, sel->nrej);
  return ferry__copy_out(__func__, out, &sel->rej[index],
                         sizeof sel->rej[index], sizeof sel->rej[index]);
}
