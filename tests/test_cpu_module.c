/* The cpu backend built as a plugin (tests/plugins/cpu/libferry-cpu.so),
 * driven directly through the plugin ABI with a host table of the test's
 * own, without the core: the module must load with RTLD_LOCAL, export only
 * its entry function, and use nothing but the host services it is given
 * (deferred errors, stream release, allocation). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <ferry/backend.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the test's host services ------------------------------------------- */

static _Thread_local char last_message[512];
static pthread_mutex_t deferred_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int count;
  void *cookie;
  uint64_t seq;
  char op[32];
  ferry_status status;
  char message[512];
} deferred;
static atomic_int released[4];
static atomic_long live_allocs;

static ferry_status t_set_error(ferry_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
  return status;
}

static void t_trace(const char *backend, const char *fmt, ...) {
  (void)backend;
  (void)fmt;
}

static void *t_alloc(uint64_t size, uint64_t alignment) {
  void *p = NULL;
  if (alignment < sizeof(void *))
    alignment = sizeof(void *);
  if (posix_memalign(&p, alignment, size ? size : 1) != 0)
    return NULL;
  atomic_fetch_add(&live_allocs, 1);
  return p;
}

static void t_free(void *p) {
  if (p != NULL)
    atomic_fetch_sub(&live_allocs, 1);
  free(p);
}

static void t_defer_error(void *cookie, uint64_t seq, const char *op,
                          ferry_status status, const char *fmt, ...) {
  pthread_mutex_lock(&deferred_lock);
  if (deferred.count++ == 0) {
    deferred.cookie = cookie;
    deferred.seq = seq;
    snprintf(deferred.op, sizeof deferred.op, "%s", op);
    deferred.status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(deferred.message, sizeof deferred.message, fmt, ap);
    va_end(ap);
  }
  pthread_mutex_unlock(&deferred_lock);
}

static void t_context_lost(void *cookie, ferry_status status, const char *fmt,
                           ...) {
  (void)cookie;
  (void)status;
  (void)fmt;
  cr_assert_fail("the cpu backend reported a lost context");
}

static void t_stream_released(void *cookie) {
  atomic_fetch_add(&released[(intptr_t)cookie], 1);
}

static const ferry_host_api host = {.struct_size = sizeof(ferry_host_api),
                                    .abi_major = FERRY_BACKEND_ABI_MAJOR,
                                    .abi_minor = FERRY_BACKEND_ABI_MINOR,
                                    .set_error = t_set_error,
                                    .trace = t_trace,
                                    .alloc = t_alloc,
                                    .free = t_free,
                                    .defer_error = t_defer_error,
                                    .context_lost = t_context_lost,
                                    .stream_released = t_stream_released};

/* ---- loading ------------------------------------------------------------- */

static void *module;

static const ferry_backend *load(void) {
  const char *build = getenv("FERRY_BUILD_DIR");
  cr_assert_not_null(build, "FERRY_BUILD_DIR is not set");
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/plugins/cpu/libferry-cpu.so", build);
  module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  cr_assert_not_null(module, "dlopen %s: %s", path, dlerror());
  void *sym = dlsym(module, "ferry_backend_cpu_entry");
  cr_assert_not_null(sym, "no entry function: %s", dlerror());
  /* POSIX guarantees dlsym's pointer converts to a function pointer; ISO C
   * has no cast for it. */
  ferry_backend_entry_fn entry;
  memcpy(&entry, &sym, sizeof entry);
  const ferry_backend *be = entry(FERRY_BACKEND_ABI_MAJOR);
  cr_assert_not_null(be);
  cr_assert_eq(be->init(&host), FERRY_OK);
  return be;
}

static ferry_status slow_fn(void *user) {
  struct timespec ts = {0, 50 * 1000000L};
  nanosleep(&ts, NULL);
  atomic_fetch_add((atomic_int *)user, 1);
  return FERRY_OK;
}

static ferry_status fail_fn(void *user) {
  (void)user;
  return FERRY_ERR_OUT_OF_RANGE;
}

Test(cpu_module, table_and_exports) {
  const ferry_backend *be = load();
  cr_assert_eq(be->abi_major, FERRY_BACKEND_ABI_MAJOR);
  cr_assert_eq(be->abi_minor, FERRY_BACKEND_ABI_MINOR);
  cr_assert_eq(be->struct_size, sizeof(ferry_backend));
  cr_assert_str_eq(be->name, "cpu");
  cr_assert_eq(be->flags, FERRY_BACKEND_FLAG_HOST_UNIFIED);
  cr_assert_not_null(be->op_copy);
  cr_assert_not_null(be->op_fill);
  cr_assert_not_null(be->op_host_fn);
  cr_assert_null(be->stream_wrap);
  cr_assert_null(be->stream_native);
  cr_assert_null(be->event_native);
  cr_assert_null(be->host_register);
  /* Internals stay hidden. */
  const char *internal[] = {"ferry_cpu_enqueue", "ferry_cpu_host",
                            "ferry_cpu_parallel_for", "ferry_cpu_op_copy",
                            "ferry_cpu_context_create"};
  for (size_t i = 0; i < sizeof internal / sizeof internal[0]; i++)
    cr_assert_null(dlsym(module, internal[i]), "%s is exported", internal[i]);

  int n = 0;
  cr_assert_eq(be->device_count(&n), FERRY_OK);
  cr_assert_eq(n, 1);
  ferry_device_info d = FERRY_DEVICE_INFO_INIT;
  cr_assert_eq(be->device_info(0, &d), FERRY_OK);
  cr_assert_str_eq(d.name, "cpu");
  cr_assert_gt(d.total_memory, 0);
  cr_assert_eq(d.base_address_align, 128);
  cr_assert_eq(d.host_unified_memory, 1);
  cr_assert_eq(d.usable, 1);
  cr_assert_str_eq(d.pci_bus_id, "");
  cr_assert_eq(be->device_info(1, &d), FERRY_ERR_OUT_OF_RANGE);
  cr_assert(strstr(last_message, "device 1") != NULL, "%s", last_message);
  be->fini();
  dlclose(module);
}

Test(cpu_module, context_params_checked) {
  const ferry_backend *be = load();
  ferry_be_context_params p = {sizeof p, 0, 0, "", NULL};
  ferry_be_context *ctx = NULL;
  p.cpuset = "0-3,x";
  cr_assert_eq(be->context_create(&p, &ctx), FERRY_ERR_BAD_FORMAT);
  cr_assert(strstr(last_message, "offset 4") != NULL, "%s", last_message);
  p.cpuset = "";
  p.device_index = 1;
  cr_assert_eq(be->context_create(&p, &ctx), FERRY_ERR_OUT_OF_RANGE);
  p.device_index = 0;
  p.num_threads = -1;
  cr_assert_eq(be->context_create(&p, &ctx), FERRY_ERR_INVALID_ARGUMENT);
  cr_assert_null(ctx, "output written on failure");
  /* A cpuset naming no CPU this process has falls back to its affinity. */
  p.num_threads = 0;
  p.cpuset = "100000-100010";
  cr_assert_eq(be->context_create(&p, &ctx), FERRY_OK, "%s", last_message);
  cr_assert_geq(be->context_num_threads(ctx), 1);
  be->context_destroy(ctx, 0);
  cr_assert_eq(atomic_load(&live_allocs), 0);
  be->fini();
  dlclose(module);
}

Test(cpu_module, streams_through_the_abi) {
  const ferry_backend *be = load();
  ferry_be_context_params p = {sizeof p, 0, 2, "", NULL};
  ferry_be_context *ctx = NULL;
  cr_assert_eq(be->context_create(&p, &ctx), FERRY_OK, "%s", last_message);
  cr_assert_eq(be->context_num_threads(ctx), 2);
  ferry_be_stream *s = NULL;
  cr_assert_eq(be->stream_create(ctx, (void *)(intptr_t)1, &s), FERRY_OK);
  ferry_be_buffer *buf = NULL;
  void *hp = NULL, *dp = NULL, *native = (void *)1;
  uint64_t n = (2u << 20) + 3;
  cr_assert_eq(
      be->buffer_alloc(ctx, FERRY_MEMORY_HOST, n, &buf, &hp, &dp, &native),
      FERRY_ERR_INVALID_ARGUMENT);
  cr_assert_eq(
      be->buffer_alloc(ctx, FERRY_MEMORY_DEVICE, n, &buf, &hp, &dp, &native),
      FERRY_OK);
  cr_assert_eq((uintptr_t)hp % 128, 0);
  cr_assert_eq(hp, dp);
  cr_assert_null(native);
  unsigned char *host_dst = malloc(n);
  memset(host_dst, 0xA5, n);
  ferry_be_memref dev = {buf, hp, 0, FERRY_MEMORY_DEVICE};
  ferry_be_memref hst = {NULL, host_dst, 0, FERRY_MEMORY_HOST};
  atomic_int count = 0;
  ferry_be_launch l1 = {1, "host_fn"}, l2 = {2, "fill"}, l3 = {3, "copy"},
                  l4 = {4, "host_fn"}, l5 = {5, "host_fn"};
  cr_assert_eq(be->op_host_fn(s, &l1, slow_fn, &count), FERRY_OK);
  cr_assert_eq(be->op_fill(s, &l2, &dev, 0x3c, n), FERRY_OK);
  cr_assert_eq(be->op_copy(s, &l3, &hst, &dev, n), FERRY_OK);
  cr_assert_eq(be->op_host_fn(s, &l4, fail_fn, NULL), FERRY_OK);
  cr_assert_eq(be->op_host_fn(s, &l5, slow_fn, &count), FERRY_OK);
  cr_assert_eq(be->stream_query(s), FERRY_ERR_NOT_READY);
  cr_assert_eq(be->stream_synchronize(s), FERRY_OK);
  cr_assert_eq(be->stream_query(s), FERRY_OK);
  cr_assert_eq(atomic_load(&count), 2);
  for (uint64_t i = 0; i < n; i++)
    cr_assert_eq(host_dst[i], 0x3c, "byte %llu", (unsigned long long)i);
  pthread_mutex_lock(&deferred_lock);
  cr_assert_eq(deferred.count, 1);
  cr_assert_eq(deferred.cookie, (void *)(intptr_t)1);
  cr_assert_eq(deferred.seq, 4);
  cr_assert_str_eq(deferred.op, "host_fn");
  cr_assert_eq(deferred.status, FERRY_ERR_OUT_OF_RANGE);
  cr_assert_str_eq(deferred.message,
                   "host function returned FERRY_ERR_OUT_OF_RANGE");
  pthread_mutex_unlock(&deferred_lock);

  /* stream_destroy returns at once; the cookie is released once, after. */
  cr_assert_eq(be->op_host_fn(s, &l1, slow_fn, &count), FERRY_OK);
  be->stream_destroy(s, 0);
  cr_assert_eq(atomic_load(&released[1]), 0, "released with work queued");
  cr_assert_eq(be->context_synchronize(ctx), FERRY_OK);
  cr_assert_eq(atomic_load(&count), 3);
  for (int i = 0; i < 100 && atomic_load(&released[1]) == 0; i++) {
    struct timespec ts = {0, 1000000L};
    nanosleep(&ts, NULL);
  }
  cr_assert_eq(atomic_load(&released[1]), 1);

  /* A stream the caller never destroyed is released by context_destroy. */
  ferry_be_stream *left = NULL;
  cr_assert_eq(be->stream_create(ctx, (void *)(intptr_t)2, &left), FERRY_OK);
  cr_assert_eq(be->op_host_fn(left, &l1, slow_fn, &count), FERRY_OK);
  be->buffer_free(ctx, buf, 0);
  be->context_destroy(ctx, 0);
  cr_assert_eq(atomic_load(&count), 4);
  cr_assert_eq(atomic_load(&released[1]), 1);
  cr_assert_eq(atomic_load(&released[2]), 1);
  cr_assert_eq(atomic_load(&live_allocs), 0, "%ld allocations leaked",
               atomic_load(&live_allocs));
  free(host_dst);
  be->fini();
  dlclose(module);
}

static ferry_status block_fn(void *user) {
  /* Holds the dispatcher until the parent process closes the pipe. */
  char c;
  while (read(*(int *)user, &c, 1) < 0) {
  }
  return FERRY_OK;
}

/* In a fork()ed child the threads are gone: the FORKED destroy paths must
 * return at once, freeing memory only. */
Test(cpu_module, destroy_in_forked_child) {
  const ferry_backend *be = load();
  ferry_be_context_params p = {sizeof p, 0, 2, "", NULL};
  ferry_be_context *ctx = NULL;
  cr_assert_eq(be->context_create(&p, &ctx), FERRY_OK, "%s", last_message);
  ferry_be_stream *s = NULL;
  cr_assert_eq(be->stream_create(ctx, (void *)(intptr_t)3, &s), FERRY_OK);
  ferry_be_event *e = NULL;
  cr_assert_eq(be->event_create(ctx, &e), FERRY_OK);
  ferry_be_buffer *buf = NULL;
  void *hp, *dp, *nat;
  cr_assert_eq(
      be->buffer_alloc(ctx, FERRY_MEMORY_DEVICE, 4099, &buf, &hp, &dp, &nat),
      FERRY_OK);
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  ferry_be_launch l = {1, "host_fn"};
  cr_assert_eq(be->op_host_fn(s, &l, block_fn, &fds[0]), FERRY_OK);
  cr_assert_eq(be->event_record(e, s), FERRY_OK);
  ferry_be_memref dev = {buf, hp, 0, FERRY_MEMORY_DEVICE};
  cr_assert_eq(be->op_fill(s, &l, &dev, 1, 4099), FERRY_OK);
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0) {
    alarm(5); /* a hang shows as a signal, not a stuck test */
    be->event_destroy(e, FERRY_BE_DESTROY_FORKED);
    be->buffer_free(ctx, buf, FERRY_BE_DESTROY_FORKED);
    be->stream_destroy(s, FERRY_BE_DESTROY_FORKED);
    be->context_destroy(ctx, FERRY_BE_DESTROY_FORKED);
    _exit(atomic_load(&released[3]) == 0 ? 0 : 3);
  }
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status), "child ended by signal %d",
            WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  cr_assert_eq(WEXITSTATUS(status), 0);
  /* The parent's objects are untouched and finish normally. */
  close(fds[1]);
  cr_assert_eq(be->event_synchronize(e), FERRY_OK);
  cr_assert_eq(be->stream_synchronize(s), FERRY_OK);
  cr_assert_eq(((unsigned char *)hp)[4098], 1);
  be->event_destroy(e, 0);
  be->buffer_free(ctx, buf, 0);
  be->stream_destroy(s, 0);
  be->context_destroy(ctx, 0);
  close(fds[0]);
  cr_assert_eq(atomic_load(&released[3]), 1);
  cr_assert_eq(atomic_load(&live_allocs), 0);
  be->fini();
  dlclose(module);
}
