/* A program outside the ferry tree, built against an installed ferry (once
 * with find_package, once with pkg-config): it must compile from the
 * installed headers alone, link the installed libferry, and run. It copies a
 * pattern host -> buffer -> buffer -> host on the cpu backend and checks it,
 * then lists the backends the installed loader found (with their files, so
 * the test can see they come from the installed prefix). */
#include <ferry/backend.h> /* the plugin ABI header must stand alone too */
#include <ferry/ferry.h>

#include <stdio.h>
#include <string.h>

#define N 4099 /* prime: no size a copy could get right by accident */

static int fail(const char *what, ferry_status st) {
  fprintf(stderr, "consumer: %s failed: %s: %s\n", what,
          ferry_status_string(st), ferry_last_error());
  return 1;
}

static int check_copy(ferry_context *ctx) {
  unsigned char in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = (unsigned char)(i * 7 + 3);
  memset(out, 0xA5, sizeof out);

  ferry_buffer *a = NULL, *b = NULL;
  ferry_stream *s = NULL;
  ferry_status st;
  int rc = 1;
  if ((st = ferry_buffer_create(ctx, FERRY_MEMORY_HOST, N, &a)) != FERRY_OK)
    rc = fail("ferry_buffer_create(a)", st);
  else if ((st = ferry_buffer_create(ctx, FERRY_MEMORY_DEVICE, N, &b)) !=
           FERRY_OK)
    rc = fail("ferry_buffer_create(b)", st);
  else if ((st = ferry_stream_create(ctx, &s)) != FERRY_OK)
    rc = fail("ferry_stream_create", st);
  else if ((st = ferry_buffer_write_async(s, a, 0, in, N)) != FERRY_OK)
    rc = fail("ferry_buffer_write_async", st);
  else if ((st = ferry_buffer_copy_async(s, b, 0, a, 0, N)) != FERRY_OK)
    rc = fail("ferry_buffer_copy_async", st);
  else if ((st = ferry_buffer_read_async(s, b, 0, out, N)) != FERRY_OK)
    rc = fail("ferry_buffer_read_async", st);
  else if ((st = ferry_stream_synchronize(s)) != FERRY_OK)
    rc = fail("ferry_stream_synchronize", st);
  else if (memcmp(in, out, N) != 0)
    fprintf(stderr, "consumer: the copied bytes differ from the input\n");
  else
    rc = 0;
  ferry_stream_destroy(s);
  ferry_buffer_destroy(b);
  ferry_buffer_destroy(a);
  return rc;
}

int main(void) {
  if (ferry_get_api_version() != FERRY_API_VERSION) {
    fprintf(stderr, "consumer: header API version %06x, library %06x\n",
            (unsigned)FERRY_API_VERSION, ferry_get_api_version());
    return 1;
  }
  ferry_context_options opts = FERRY_CONTEXT_OPTIONS_INIT;
  opts.backend = "cpu";
  ferry_context *ctx = NULL;
  ferry_status st = ferry_context_create(&opts, &ctx);
  if (st != FERRY_OK)
    return fail("ferry_context_create(cpu)", st);

  ferry_context_info info = FERRY_CONTEXT_INFO_INIT;
  int rc = check_copy(ctx);
  if (rc == 0 && (st = ferry_context_get_info(ctx, &info)) != FERRY_OK)
    rc = fail("ferry_context_get_info", st);
  if (rc == 0 && (st = ferry_context_synchronize(ctx)) != FERRY_OK)
    rc = fail("ferry_context_synchronize", st);
  ferry_context_destroy(ctx);
  if (rc != 0)
    return rc;
  printf("backend: %s\n", info.backend);

  int count = 0;
  if ((st = ferry_backend_count(&count)) != FERRY_OK)
    return fail("ferry_backend_count", st);
  for (int i = 0; i < count; i++) {
    ferry_backend_info bi = FERRY_BACKEND_INFO_INIT;
    if ((st = ferry_backend_get_info(i, &bi)) != FERRY_OK)
      return fail("ferry_backend_get_info", st);
    printf("plugin: %s %s\n", bi.name, bi.path);
  }
  printf("copy: ok\n");
  return 0;
}
