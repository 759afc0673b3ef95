/* Per-process state: the pid ferry first ran in (fork detection), tracing and
 * environment access. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_once_t pid_once = PTHREAD_ONCE_INIT;
static pid_t first_pid;
static int trace_on;

static void record_pid(void) {
  first_pid = getpid();
  const char *t = ferry__getenv("FERRY_TRACE");
  trace_on = t != NULL && strcmp(t, "0") != 0 && *t != '\0';
}

const char *ferry__getenv(const char *name) {
  return secure_getenv(name);
}

bool ferry__forked(void) {
  pthread_once(&pid_once, record_pid);
  return getpid() != first_pid;
}

ferry_status ferry__enter(const char *func) {
  ferry__clear_error();
  if (ferry__forked())
    return ferry__error(FERRY_ERR_FORKED,
                        "%s: called in a fork()ed child; ferry objects belong "
                        "to the parent process (only destroy calls are allowed "
                        "here, and they free host memory only)",
                        func);
  return FERRY_OK;
}

void ferry__trace(const char *who, const char *fmt, ...) {
  pthread_once(&pid_once, record_pid);
  if (!trace_on)
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  /* The one place the library writes to a stream: opt-in tracing. */
  fprintf(stderr, "ferry[%s]: %s\n", who, line);
}

unsigned ferry_get_api_version(void) {
  return FERRY_API_VERSION;
}
