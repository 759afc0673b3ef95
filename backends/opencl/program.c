/* See program.h. Builds run outside the cache's lock so that a slow LLVM
 * compile of one program does not hold up lookups of the others. */
#include "program.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct ocl_program_entry {
  ocl_program_entry *next;
  char *name;
  char *options;
  cl_program program; /* NULL while building */
  bool building;
};

static char *copy_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

static void entry_free(ocl_program_entry *e) {
  free(e->name);
  free(e->options);
  free(e);
}

void ocl_program_cache_init(ocl_program_cache *c, cl_context context,
                            cl_device_id device) {
  c->context = context;
  c->device = device;
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->built, NULL);
  c->entries = NULL;
}

void ocl_program_cache_fini(ocl_program_cache *c, uint32_t destroy_flags) {
  bool forked = (destroy_flags & FERRY_BE_DESTROY_FORKED) != 0;
  ocl_program_entry *e = c->entries;
  while (e) {
    ocl_program_entry *next = e->next;
    if (!forked && e->program)
      clReleaseProgram(e->program);
    entry_free(e);
    e = next;
  }
  c->entries = NULL;
  if (!forked) {
    pthread_cond_destroy(&c->built);
    pthread_mutex_destroy(&c->lock);
  }
}

/* The compiler's log for `p` on `dev`, trimmed; NULL when there is none. */
static char *build_log(cl_program p, cl_device_id dev) {
  size_t n = 0;
  if (clGetProgramBuildInfo(p, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) !=
          CL_SUCCESS ||
      n == 0)
    return NULL;
  char *log = malloc(n + 1);
  if (log == NULL)
    return NULL;
  if (clGetProgramBuildInfo(p, dev, CL_PROGRAM_BUILD_LOG, n, log, NULL) !=
      CL_SUCCESS) {
    free(log);
    return NULL;
  }
  log[n] = '\0';
  size_t len = strlen(log);
  while (len > 0 && (log[len - 1] == '\n' || log[len - 1] == ' ' ||
                     log[len - 1] == '\r' || log[len - 1] == '\t'))
    log[--len] = '\0';
  return log;
}

static ferry_status build(ocl_program_cache *c, const char *name,
                          const char *source, const char *options,
                          cl_program *out) {
  cl_int err = CL_SUCCESS;
  cl_program p = clCreateProgramWithSource(c->context, 1, &source, NULL, &err);
  if (err != CL_SUCCESS)
    return ocl_host->set_error(
        ocl_status(err), "clCreateProgramWithSource for program '%s': %s (%d)",
        name, ocl_error_name(err), (int)err);
  err = clBuildProgram(p, 1, &c->device, options, NULL, NULL);
  if (err != CL_SUCCESS) {
    char *log = build_log(p, c->device);
    ferry_status st = ocl_host->set_error(
        ocl_status(err),
        "building OpenCL program '%s' (options \"%s\") failed: %s (%d); "
        "compiler log: %s",
        name, options, ocl_error_name(err), (int)err,
        log && log[0] ? log : "(empty)");
    free(log);
    clReleaseProgram(p);
    return st;
  }
  *out = p;
  return FERRY_OK;
}

static ocl_program_entry *find(ocl_program_cache *c, const char *name,
                               const char *options) {
  for (ocl_program_entry *e = c->entries; e; e = e->next)
    if (strcmp(e->name, name) == 0 && strcmp(e->options, options) == 0)
      return e;
  return NULL;
}

static void unlink_entry(ocl_program_cache *c, ocl_program_entry *e) {
  ocl_program_entry **p = &c->entries;
  while (*p != e)
    p = &(*p)->next;
  *p = e->next;
}

ferry_status ocl_program_get(ocl_program_cache *c, const char *name,
                             const char *source, const char *options,
                             cl_program *out) {
  if (name == NULL || source == NULL || out == NULL)
    return ocl_host->set_error(FERRY_ERR_NULL_POINTER,
                               "ocl_program_get: argument '%s' is NULL",
                               name == NULL     ? "name"
                               : source == NULL ? "source"
                                                : "out");
  if (options == NULL)
    options = "";
  pthread_mutex_lock(&c->lock);
  ocl_program_entry *e;
  while ((e = find(c, name, options)) != NULL && e->building)
    pthread_cond_wait(&c->built, &c->lock);
  if (e != NULL) {
    *out = e->program;
    pthread_mutex_unlock(&c->lock);
    return FERRY_OK;
  }
  /* Claim the build: others asking for this program wait for it. */
  e = calloc(1, sizeof *e);
  if (e)
    e->name = copy_string(name);
  if (e && e->name)
    e->options = copy_string(options);
  if (e == NULL || e->options == NULL) {
    pthread_mutex_unlock(&c->lock);
    if (e)
      entry_free(e);
    return ocl_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                               "program '%s': out of host memory", name);
  }
  e->building = true;
  e->next = c->entries;
  c->entries = e;
  pthread_mutex_unlock(&c->lock);

  cl_program p = NULL;
  ferry_status st = build(c, name, source, options, &p);

  pthread_mutex_lock(&c->lock);
  if (st == FERRY_OK) {
    e->program = p;
    e->building = false;
  } else {
    unlink_entry(c, e);
    entry_free(e);
  }
  pthread_cond_broadcast(&c->built);
  pthread_mutex_unlock(&c->lock);
  if (st == FERRY_OK)
    *out = p;
  return st;
}

ferry_status ocl_kernel_create(ocl_program_cache *c, const char *name,
                               const char *source, const char *options,
                               const char *kernel_name, cl_kernel *out) {
  cl_program p = NULL;
  ferry_status st = ocl_program_get(c, name, source, options, &p);
  if (st != FERRY_OK)
    return st;
  cl_int err = CL_SUCCESS;
  cl_kernel k = clCreateKernel(p, kernel_name, &err);
  if (err != CL_SUCCESS)
    return ocl_host->set_error(
        ocl_status(err), "clCreateKernel '%s' of program '%s': %s (%d)",
        kernel_name, name, ocl_error_name(err), (int)err);
  *out = k;
  return FERRY_OK;
}
