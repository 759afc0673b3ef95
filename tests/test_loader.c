/* The plugin loader: discovery, every rejection with its reason, duplicates,
 * the minimum device capability, dispatch into empty slots, strict and
 * fall-through backend requests, and the cpu backend's MODULE build. Each
 * test runs in its own process, so each sets FERRY_PLUGIN_PATH before its
 * first ferry call. */
#include "harness.h"

#include <criterion/redirect.h>
#include <dlfcn.h>
#include <ferry/backend.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void use_stub_dirs(const char *dirs) {
  const char *root = getenv("FERRY_STUB_DIR");
  cr_assert_not_null(root, "FERRY_STUB_DIR is not set (run through ctest)");
  char path[4096] = "";
  char *copy = strdup(dirs), *save = NULL;
  for (char *d = strtok_r(copy, ":", &save); d;
       d = strtok_r(NULL, ":", &save)) {
    size_t len = strlen(path);
    snprintf(path + len, sizeof path - len, "%s%s/%s", len ? ":" : "", root, d);
  }
  free(copy);
  cr_assert_eq(setenv("FERRY_PLUGIN_PATH", path, 1), 0);
}

/* The info of the first backend named `name`, asserting it exists. */
static ferry_backend_info find_backend(const char *name, int nth) {
  int n = 0;
  FERRY_OK_(ferry_backend_count(&n));
  for (int i = 0; i < n; i++) {
    ferry_backend_info info = FERRY_BACKEND_INFO_INIT;
    FERRY_OK_(ferry_backend_get_info(i, &info));
    if (strcmp(info.name, name) == 0 && nth-- == 0)
      return info;
  }
  cr_assert_fail("backend %s not listed", name);
  ferry_backend_info none = FERRY_BACKEND_INFO_INIT;
  return none;
}

Test(loader, every_rejection_keeps_its_reason_and_the_rest_loads) {
  use_stub_dirs("reject");
  setenv("FERRY_STUB_DEVICES", "10de:0000:01:00.0:9.0", 1);
  static const struct {
    const char *name, *reason;
  } expect[] = {
      {"badabi", "ABI major 99"},
      {"short", "short table"},
      {"flags", "unknown flags"},
      {"initfails", "init fails on purpose"},
      {"wrongname", "names itself 'someone-else'"},
      {"nulltable", "returned NULL"},
      {"noentry", "missing entry symbol ferry_backend_noentry_entry"},
  };
  for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
    ferry_backend_info info = find_backend(expect[i].name, 0);
    cr_expect_eq(info.available, 0, "%s should be rejected", expect[i].name);
    cr_expect(strstr(info.reason, expect[i].reason) != NULL,
              "%s: reason '%s' lacks '%s'", expect[i].name, info.reason,
              expect[i].reason);
  }
  ferry_backend_info good = find_backend("good", 0);
  cr_expect_eq(good.available, 1, "good: %s", good.reason);
  cr_expect_eq(good.abi_major, FERRY_BACKEND_ABI_MAJOR);
  cr_expect_eq(good.device_count, 1);
  /* A table of ABI 1.0 (an older minor version) loads. */
  ferry_backend_info abi10 = find_backend("abi10", 0);
  cr_expect_eq(abi10.available, 1, "abi10: %s", abi10.reason);
  cr_expect_eq(abi10.abi_minor, 0u);
  ferry_backend_info cpu = find_backend("cpu", 0);
  cr_expect_eq(cpu.available, 1);
  cr_expect_str_eq(cpu.path, "(built in)");

  /* A strict request for a rejected backend fails with that reason. */
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = "short";
  ferry_context *ctx = NULL;
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_NO_BACKEND);
  FERRY_EXPECT_MESSAGE("short table");
  cr_expect_null(ctx);
}

Test(loader, first_plugin_of_a_name_wins_and_duplicates_are_reported) {
  use_stub_dirs("dup1:dup2");
  setenv("FERRY_STUB_DEVICES", "10de:0000:01:00.0:9.0", 1);
  ferry_backend_info first = find_backend("stub", 0);
  ferry_backend_info second = find_backend("stub", 1);
  cr_expect_eq(first.available, 1, "%s", first.reason);
  cr_expect(strstr(first.path, "/dup1/") != NULL, "%s", first.path);
  cr_expect_eq(second.available, 0);
  cr_expect(strstr(second.reason, "duplicate") != NULL, "%s", second.reason);
  cr_expect(strstr(second.reason, "/dup1/") != NULL, "%s", second.reason);
}

Test(loader, devices_below_the_minimum_capability_are_rejected) {
  use_stub_dirs("good");
  setenv("FERRY_STUB_DEVICES", "10de:0000:01:00.0:7.0,10de:0000:02:00.0:9.0",
         1);
  ferry_device_info old = FERRY_DEVICE_INFO_INIT, ok = FERRY_DEVICE_INFO_INIT;
  FERRY_OK_(ferry_backend_get_device_info("stub", 0, &old));
  FERRY_OK_(ferry_backend_get_device_info("stub", 1, &ok));
  cr_expect_eq(old.usable, 0);
  cr_expect(strstr(old.reason, "below") && strstr(old.reason, "7.5"), "%s",
            old.reason);
  cr_expect_str_eq(old.pci_bus_id, "0000:01:00.0");
  cr_expect_eq(ok.usable, 1);

  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = "stub";
  o.device_index = 0;
  ferry_context *ctx = NULL;
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_DEVICE_TOO_OLD);
  FERRY_EXPECT_MESSAGE("7.5");
  o.device_index = 1;
  FERRY_OK_(ferry_context_create(&o, &ctx));
  ferry_context_info info = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &info));
  cr_expect_str_eq(info.backend, "stub");
  cr_expect_eq(info.device_index, 1);
  ferry_context_destroy(ctx);
}

Test(loader, a_backend_whose_devices_are_all_too_old_is_unavailable) {
  use_stub_dirs("good");
  setenv("FERRY_STUB_DEVICES", "10de:0000:01:00.0:6.1", 1);
  ferry_backend_info info = find_backend("stub", 0);
  cr_expect_eq(info.available, 0);
  cr_expect(strstr(info.reason, "no usable device") != NULL, "%s", info.reason);
}

Test(loader, empty_op_slots_dispatch_to_unsupported) {
  use_stub_dirs("good");
  setenv("FERRY_STUB_DEVICES", "10de:0000:01:00.0:9.0", 1);
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = "stub";
  ferry_context *ctx = NULL;
  FERRY_OK_(ferry_context_create(&o, &ctx));
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  ferry_buffer *a = NULL, *b = NULL;
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, 64, &a));
  FERRY_OK_(ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, 64, &b));
  FERRY_EXPECT(ferry_buffer_copy_async(s, a, 0, b, 0, 64),
               FERRY_ERR_UNSUPPORTED);
  FERRY_EXPECT_MESSAGE("stub");
  FERRY_EXPECT(ferry_buffer_fill_async(s, a, 0, 0, 64), FERRY_ERR_UNSUPPORTED);
  FERRY_EXPECT(ferry_stream_enqueue_host_fn(s, NULL, NULL),
               FERRY_ERR_NULL_POINTER);
  void *native = NULL;
  FERRY_EXPECT(ferry_stream_native_handle(s, &native), FERRY_ERR_UNSUPPORTED);
  FERRY_EXPECT(ferry_stream_wrap_native(ctx, &native, &s),
               FERRY_ERR_UNSUPPORTED);
  FERRY_OK_(ferry_stream_synchronize(s));
  ferry_buffer_destroy(a);
  ferry_buffer_destroy(b);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

static ferry_status noop_fn(void *user) {
  (void)user;
  return FERRY_OK;
}

Test(loader, host_fn_dispatch_to_an_empty_slot_is_unsupported) {
  use_stub_dirs("good");
  setenv("FERRY_STUB_DEVICES", "10de:0000:01:00.0:9.0", 1);
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = "stub";
  ferry_context *ctx = NULL;
  FERRY_OK_(ferry_context_create(&o, &ctx));
  ferry_stream *s = NULL;
  FERRY_OK_(ferry_stream_create(ctx, &s));
  FERRY_EXPECT(ferry_stream_enqueue_host_fn(s, noop_fn, NULL),
               FERRY_ERR_UNSUPPORTED);
  ferry_stream_destroy(s);
  ferry_context_destroy(ctx);
}

Test(loader, strict_names_fail_and_lists_fall_through) {
  use_stub_dirs("good");
  unsetenv("FERRY_STUB_DEVICES"); /* the stub has no device now */
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  ferry_context *ctx = NULL;
  o.backend = "no-such-backend";
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_NO_BACKEND);
  FERRY_EXPECT_MESSAGE("no-such-backend");
  o.backend = "stub";
  FERRY_EXPECT(ferry_context_create(&o, &ctx), FERRY_ERR_NO_DEVICE);
  FERRY_EXPECT_MESSAGE("stub");
  o.backend = "no-such-backend,stub,cpu";
  FERRY_OK_(ferry_context_create(&o, &ctx));
  ferry_context_info info = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &info));
  cr_expect_str_eq(info.backend, "cpu");
  ferry_context_destroy(ctx);
}

Test(loader, the_environment_names_the_backend_unless_the_options_do) {
  use_stub_dirs("good");
  setenv("FERRY_STUB_DEVICES", "10de:0000:01:00.0:9.0", 1);
  setenv("FERRY_BACKEND", "stub", 1);
  ferry_context *ctx = NULL;
  FERRY_OK_(ferry_context_create(NULL, &ctx));
  ferry_context_info info = FERRY_CONTEXT_INFO_INIT;
  FERRY_OK_(ferry_context_get_info(ctx, &info));
  cr_expect_str_eq(info.backend, "stub");
  ferry_context_destroy(ctx);
  ferry_context_options o = FERRY_CONTEXT_OPTIONS_INIT;
  o.backend = "cpu"; /* options before environment */
  FERRY_OK_(ferry_context_create(&o, &ctx));
  FERRY_OK_(ferry_context_get_info(ctx, &info));
  cr_expect_str_eq(info.backend, "cpu");
  ferry_context_destroy(ctx);
  setenv("FERRY_BACKEND", "no-such-backend", 1);
  FERRY_EXPECT(ferry_context_create(NULL, &ctx), FERRY_ERR_NO_BACKEND);
}

Test(loader, relative_plugin_paths_are_ignored) {
  /* The working directory is never searched: a relative entry is dropped. */
  setenv("FERRY_PLUGIN_PATH", "tests/plugins/good", 1);
  int n = 0;
  FERRY_OK_(ferry_backend_count(&n));
  cr_expect_eq(n, 1, "only the built-in cpu backend, found %d", n);
}

Test(loader, tracing_reports_what_was_tried) {
  use_stub_dirs("reject");
  setenv("FERRY_TRACE", "1", 1);
  cr_redirect_stderr();
  int n = 0;
  FERRY_OK_(ferry_backend_count(&n));
  fflush(stderr);
  FILE *f = cr_get_redirected_stderr();
  char buf[16384];
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  buf[len] = '\0';
  cr_expect(strstr(buf, "trying") != NULL, "trace output: %s", buf);
  cr_expect(strstr(buf, "short table") != NULL, "trace output: %s", buf);
}

Test(loader, the_cpu_module_build_exposes_a_valid_table) {
  const char *build = getenv("FERRY_BUILD_DIR");
  cr_assert_not_null(build);
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/plugins/cpu/libferry-cpu.so", build);
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  cr_assert_not_null(dl, "dlopen %s: %s", path, dlerror());
  void *addr = dlsym(dl, "ferry_backend_cpu_entry");
  cr_assert_not_null(addr, "no entry symbol");
  ferry_backend_entry_fn entry;
  memcpy(&entry, &addr, sizeof entry);
  const ferry_backend *be = entry(FERRY_BACKEND_ABI_MAJOR);
  cr_assert_not_null(be);
  cr_expect_eq(be->abi_major, FERRY_BACKEND_ABI_MAJOR);
  cr_expect_geq(be->struct_size, sizeof(ferry_backend));
  cr_expect_str_eq(be->name, "cpu");
  cr_expect_eq(be->flags & ~(uint32_t)FERRY_BACKEND_FLAGS_KNOWN, 0u);
  /* Only the entry is exported: core symbols never leak into plugins. */
  cr_expect_null(dlsym(dl, "ferry_context_create"));
  dlclose(dl);
}
