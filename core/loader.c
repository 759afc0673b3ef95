/* Plugin discovery and loading.
 *
 * The directory scan happens once (pthread_once): the built-in cpu backend
 * first, then every libferry-<name>.so in FERRY_PLUGIN_PATH (colon-separated
 * directories; it replaces the default) or else in <dir of libferry.so>/ferry/.
 * Never the working directory. Opening, checking and initialising a plugin
 * happens once per plugin on first need, so that a context asking strictly
 * for "cpu" maps no vendor runtime into the process. The first plugin of a
 * name wins; later ones are listed as duplicates with the reason. */
#include "internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PLUGINS 64

/* The public records form one contiguous array (ferry__plugins hands it out);
 * the loader's own per-plugin state sits in parallel arrays. */
static ferry__plugin plugins[MAX_PLUGINS];
static pthread_once_t onces[MAX_PLUGINS];
static bool builtins[MAX_PLUGINS];
static bool duplicates[MAX_PLUGINS];
static int plugin_count;
static pthread_once_t scan_once = PTHREAD_ONCE_INIT;

static void reject(ferry__plugin *p, ferry_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reject(ferry__plugin *p, ferry_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->reason, sizeof p->reason, fmt, ap);
  va_end(ap);
  p->status = st;
  ferry__trace("loader", "%s (%s): rejected: %s", p->name, p->path, p->reason);
}

/* Checks of the table every plugin (built in or not) must pass. */
static bool check_table(ferry__plugin *p, const ferry_backend *be) {
  if (be == NULL) {
    reject(p, FERRY_ERR_PLUGIN_REJECTED, "entry function returned NULL");
    return false;
  }
  if (be->abi_major != FERRY_BACKEND_ABI_MAJOR) {
    reject(p, FERRY_ERR_PLUGIN_REJECTED,
           "plugin ABI major %u, this ferry speaks %u", be->abi_major,
           FERRY_BACKEND_ABI_MAJOR);
    return false;
  }
  if (be->struct_size < FERRY_BACKEND_SIZE_1_0) {
    reject(p, FERRY_ERR_PLUGIN_REJECTED,
           "short table: the backend table is %u bytes, ABI %u.0 needs at "
           "least %zu",
           be->struct_size, FERRY_BACKEND_ABI_MAJOR,
           (size_t)FERRY_BACKEND_SIZE_1_0);
    return false;
  }
  if (be->flags & ~(uint32_t)FERRY_BACKEND_FLAGS_KNOWN) {
    reject(p, FERRY_ERR_PLUGIN_REJECTED, "unknown flags 0x%x in backend table",
           be->flags & ~(uint32_t)FERRY_BACKEND_FLAGS_KNOWN);
    return false;
  }
  if (be->name == NULL || strcmp(be->name, p->name) != 0) {
    reject(p, FERRY_ERR_PLUGIN_REJECTED,
           "table names itself '%s' but the file is for '%s'",
           be->name ? be->name : "(null)", p->name);
    return false;
  }
  if (be->init == NULL || be->device_count == NULL || be->device_info == NULL ||
      be->context_create == NULL || be->context_destroy == NULL) {
    reject(p, FERRY_ERR_PLUGIN_REJECTED,
           "backend table lacks a required slot (init, device_count, "
           "device_info, context_create, context_destroy)");
    return false;
  }
  return true;
}

static void count_devices(ferry__plugin *p) {
  int n = 0;
  ferry_status st = p->be->device_count(&n);
  if (st != FERRY_OK) {
    reject(p, FERRY_ERR_NO_DEVICE, "no device: %s", ferry_last_error());
    return;
  }
  p->device_count = n;
  int usable = 0;
  char first_reason[FERRY_REASON_MAX] = "";
  for (int i = 0; i < n; i++) {
    ferry_device_info info = FERRY_DEVICE_INFO_INIT;
    if (ferry__plugin_device_info(p, i, &info) != FERRY_OK)
      continue;
    if (info.usable)
      usable++;
    else if (first_reason[0] == '\0')
      snprintf(first_reason, sizeof first_reason, "device %d (%.60s): %.150s",
               i, info.name, info.reason);
  }
  if (n == 0)
    reject(p, FERRY_ERR_NO_DEVICE, "the runtime reports no device");
  else if (usable == 0)
    reject(p, FERRY_ERR_DEVICE_TOO_OLD, "no usable device: %s", first_reason);
}

/* pthread_once takes no argument: the index travels in a thread-local. */
static _Thread_local int tls_loading;

static const ferry_backend *open_plugin(ferry__plugin *p) {
  ferry__trace("loader", "trying %s", p->path);
  void *dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    const char *e = dlerror();
    reject(p, FERRY_ERR_PLUGIN_REJECTED, "dlopen failed: %s",
           e ? e : "unknown error");
    return NULL;
  }
  char sym[FERRY_NAME_MAX + 32];
  snprintf(sym, sizeof sym, "ferry_backend_%s_entry", p->name);
  void *addr = dlsym(dl, sym);
  if (addr == NULL) {
    reject(p, FERRY_ERR_PLUGIN_REJECTED, "missing entry symbol %s", sym);
    dlclose(dl);
    return NULL;
  }
  /* ISO C has no conversion from void* to a function pointer; POSIX
   * guarantees the representation, so copy the bits. */
  ferry_backend_entry_fn entry;
  memcpy(&entry, &addr, sizeof entry);
  p->dl = dl;
  const ferry_backend *be = entry(FERRY_BACKEND_ABI_MAJOR);
  if (be == NULL)
    reject(p, FERRY_ERR_PLUGIN_REJECTED, "entry function %s returned NULL",
           sym);
  return be;
}

static void load_one(void) {
  int i = tls_loading;
  ferry__plugin *p = &plugins[i];
  ferry__clear_error();
  const ferry_backend *be =
      builtins[i] ? ferry_backend_cpu_entry(FERRY_BACKEND_ABI_MAJOR)
                  : open_plugin(p);
  if (p->status != FERRY_OK || !check_table(p, be)) {
    if (p->dl)
      dlclose(p->dl);
    p->dl = NULL;
    return;
  }
  /* Widen the table: a plugin of an older minor version has no slots for
   * the ops added since, which read as NULL (unsupported). */
  memset(&p->table, 0, sizeof p->table);
  memcpy(&p->table, be,
         be->struct_size < sizeof p->table ? be->struct_size : sizeof p->table);
  be = p->be = &p->table;
  ferry__clear_error();
  ferry_status st = be->init(ferry__host_api());
  if (st != FERRY_OK) {
    reject(p, st == FERRY_ERR_NO_DEVICE ? st : FERRY_ERR_NO_BACKEND,
           "init failed: %s: %s", ferry_status_string(st),
           ferry_last_error()[0] ? ferry_last_error() : "(no message)");
    return;
  }
  p->initialised = true;
  count_devices(p);
  if (p->status == FERRY_OK)
    ferry__trace("loader", "%s: loaded from %s, %d device(s)", p->name, p->path,
                 p->device_count);
}

static void ensure_loaded(int i) {
  if (duplicates[i])
    return;
  tls_loading = i;
  pthread_once(&onces[i], load_one);
}

static ferry__plugin *add_plugin(const char *name, const char *path,
                                 bool builtin) {
  if (plugin_count >= MAX_PLUGINS)
    return NULL;
  int i = plugin_count++;
  ferry__plugin *p = &plugins[i];
  memset(p, 0, sizeof *p);
  onces[i] = (pthread_once_t)PTHREAD_ONCE_INIT;
  builtins[i] = builtin;
  snprintf(p->name, sizeof p->name, "%s", name);
  snprintf(p->path, sizeof p->path, "%s", path);
  p->status = FERRY_OK;
  return p;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_file(const char *dir, const char *file) {
  char name[FERRY_NAME_MAX];
  size_t len = strlen(file) - 9 - 3; /* "libferry-" ... ".so" */
  if (len >= sizeof name)
    len = sizeof name - 1;
  memcpy(name, file + 9, len);
  name[len] = '\0';
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  const ferry__plugin *first = NULL;
  for (int k = 0; k < plugin_count; k++)
    if (strcmp(plugins[k].name, name) == 0) {
      first = &plugins[k];
      break;
    }
  ferry__plugin *p = add_plugin(name, path, false);
  if (p == NULL)
    return;
  if (first) {
    duplicates[plugin_count - 1] = true;
    reject(p, FERRY_ERR_PLUGIN_REJECTED,
           "duplicate: backend '%s' was already found at %s", name,
           first->path);
  } else {
    ferry__trace("loader", "found %s", path);
  }
}

static void scan_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    ferry__trace("loader", "plugin directory %s: cannot open", dir);
    return;
  }
  char *names[MAX_PLUGINS];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < MAX_PLUGINS) {
    size_t len = strlen(e->d_name);
    if (len > 12 && strncmp(e->d_name, "libferry-", 9) == 0 &&
        strcmp(e->d_name + len - 3, ".so") == 0) {
      char *copy = strdup(e->d_name);
      if (copy)
        names[n++] = copy;
    }
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof names[0], cmp_str);
  for (int i = 0; i < n; i++) {
    add_file(dir, names[i]);
    free(names[i]);
  }
}

/* Any object of libferry locates the library for dladdr. */
static const char library_anchor;

static void scan(void) {
  add_plugin("cpu", "(built in)", true);
  const char *env = ferry__getenv("FERRY_PLUGIN_PATH");
  if (env != NULL) {
    char *copy = strdup(env);
    char *save = NULL;
    for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir;
         dir = strtok_r(NULL, ":", &save)) {
      if (dir[0] == '/') /* a relative entry would mean the working dir */
        scan_dir(dir);
      else
        ferry__trace("loader",
                     "FERRY_PLUGIN_PATH entry '%s' ignored: not absolute", dir);
    }
    free(copy);
    return;
  }
  Dl_info info;
  if (dladdr(&library_anchor, &info) && info.dli_fname) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", info.dli_fname);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
      return;
    snprintf(slash, sizeof dir - (size_t)(slash - dir), "/ferry");
    scan_dir(dir);
  }
}

void ferry__plugins(ferry__plugin **list, int *count) {
  pthread_once(&scan_once, scan);
  for (int i = 0; i < plugin_count; i++)
    ensure_loaded(i);
  *list = plugin_count > 0 ? plugins : NULL;
  *count = plugin_count;
}

const ferry__plugin *ferry__plugin_get(const char *name, ferry_status *status,
                                       const char **reason) {
  pthread_once(&scan_once, scan);
  for (int i = 0; i < plugin_count; i++) {
    ferry__plugin *p = &plugins[i];
    if (duplicates[i] || strcmp(p->name, name) != 0)
      continue;
    ensure_loaded(i);
    if (p->status != FERRY_OK) {
      *status = p->status == FERRY_ERR_PLUGIN_REJECTED ? FERRY_ERR_NO_BACKEND
                                                       : p->status;
      ferry__error(*status, "backend '%s' is unavailable: %s", name, p->reason);
      if (reason)
        *reason = p->reason;
      return NULL;
    }
    *status = FERRY_OK;
    return p;
  }
  *status = FERRY_ERR_NO_BACKEND;
  const char *why = ferry__getenv("FERRY_PLUGIN_PATH")
                        ? "no plugin of that name was found (searched "
                          "FERRY_PLUGIN_PATH)"
                        : "no plugin of that name was found (searched the "
                          "ferry/ directory beside libferry.so)";
  ferry__error(FERRY_ERR_NO_BACKEND, "backend '%s' is unavailable: %s", name,
               why);
  if (reason)
    *reason = why;
  return NULL;
}

ferry_status ferry__plugin_device_info(const ferry__plugin *p, int device,
                                       ferry_device_info *out) {
  if (p->be == NULL || !p->initialised)
    return ferry__error(FERRY_ERR_NO_BACKEND, "backend '%s' is unavailable: %s",
                        p->name, p->reason);
  ferry_device_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  ferry_status st = p->be->device_info(device, &info);
  if (st != FERRY_OK)
    return st;
  info.struct_size = sizeof info;
  info.name[sizeof info.name - 1] = '\0';
  info.reason[sizeof info.reason - 1] = '\0';
  info.pci_bus_id[sizeof info.pci_bus_id - 1] = '\0';
  const ferry_backend *be = p->be;
  if (info.usable && (info.capability_major < be->min_capability_major ||
                      (info.capability_major == be->min_capability_major &&
                       info.capability_minor < be->min_capability_minor))) {
    info.usable = 0;
    snprintf(info.reason, sizeof info.reason,
             "capability %u.%u is below the %s plugin's minimum %u.%u",
             info.capability_major, info.capability_minor, p->name,
             be->min_capability_major, be->min_capability_minor);
  }
  *out = info;
  return FERRY_OK;
}

/* ---- public queries ------------------------------------------------------ */

ferry_status ferry_backend_count(int *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(out);
  ferry__plugin *list;
  int n;
  ferry__plugins(&list, &n);
  *out = n;
  return FERRY_OK;
}

ferry_status ferry_backend_get_info(int index, ferry_backend_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(out);
  if (out->struct_size < sizeof(ferry_backend_info))
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "ferry_backend_get_info: out->struct_size is %zu, "
                        "expected at least %zu",
                        out->struct_size, sizeof(ferry_backend_info));
  ferry__plugin *list;
  int n;
  ferry__plugins(&list, &n);
  if (index < 0 || index >= n)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_backend_get_info: index %d is outside [0, %d)",
                        index, n);
  const ferry__plugin *p = &list[index];
  ferry_backend_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  snprintf(info.name, sizeof info.name, "%s", p->name);
  snprintf(info.path, sizeof info.path, "%s", p->path);
  if (p->be) {
    info.abi_major = p->be->abi_major;
    info.abi_minor = p->be->abi_minor;
  }
  info.available = p->status == FERRY_OK && p->initialised;
  info.device_count = p->device_count;
  snprintf(info.reason, sizeof info.reason, "%s", p->reason);
  *out = info;
  return FERRY_OK;
}

ferry_status ferry_backend_get_device_info(const char *backend, int device,
                                           ferry_device_info *out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(backend);
  FERRY_CHECK_NULL(out);
  if (out->struct_size < sizeof(ferry_device_info))
    return ferry__error(FERRY_ERR_STRUCT_SIZE,
                        "ferry_backend_get_device_info: out->struct_size is "
                        "%zu, expected at least %zu",
                        out->struct_size, sizeof(ferry_device_info));
  ferry_status st;
  const ferry__plugin *p = ferry__plugin_get(backend, &st, NULL);
  if (p == NULL)
    return st;
  if (device < 0 || device >= p->device_count)
    return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "ferry_backend_get_device_info: device %d is outside "
                        "[0, %d) for backend '%s'",
                        device, p->device_count, backend);
  return ferry__plugin_device_info(p, device, out);
}
