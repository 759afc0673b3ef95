/* ferry_table_from_npy: a table from a NumPy .npy file. The host paths (cpu,
 * STAGED) map the file and read it in place; DEVICE maps it and copies it to
 * the device; ZEROCOPY reads it with chunked pread into NUMA-bound memory
 * (a mapped file cannot be pinned for the device), reporting progress. */
#include "table_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Headers are short; NumPy pads them to 64 B. 1 MiB covers any sane one. */
#define NPY_HEADER_MAX (UINT64_C(1) << 20)
#define NPY_CHUNK (UINT64_C(64) << 20)

static ferry_status read_all(int fd, char *dst, uint64_t size, uint64_t off,
                             const char *path, ferry_table_progress_fn progress,
                             void *user) {
  uint64_t done = 0;
  while (done < size) {
    uint64_t want = size - done < NPY_CHUNK ? size - done : NPY_CHUNK;
    ssize_t got = pread(fd, dst + done, (size_t)want, (off_t)(off + done));
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return ferry__error(FERRY_ERR_IO, "reading '%s': %s", path,
                          strerror(errno));
    if (got == 0)
      return ferry__error(FERRY_ERR_BAD_FORMAT,
                          "'%s' is truncated: it ended while being read", path);
    done += (uint64_t)got;
    if (progress != NULL)
      progress(done, size, user);
  }
  return FERRY_OK;
}

static ferry_status load(ferry_table *t, int fd, const char *path,
                         const ferry__npy_header *h, uint64_t file_size,
                         const ferry_table_options *o) {
  if (t->path == FERRY_GATHER_PATH_ZEROCOPY) {
    ferry_status st = ferry__table_alloc_host(t);
    if (st == FERRY_OK)
      st = read_all(fd, t->host, t->bytes, h->data_offset, path, o->progress,
                    o->progress_user);
    if (st == FERRY_OK)
      st = ferry__table_place_host(t);
    return st;
  }
  void *map = mmap(NULL, (size_t)file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED)
    return ferry__error(errno == ENOMEM ? FERRY_ERR_OUT_OF_MEMORY
                                        : FERRY_ERR_IO,
                        "mapping '%s': %s", path, strerror(errno));
  t->map = map;
  t->map_len = file_size;
  if (t->path == FERRY_GATHER_PATH_DEVICE) {
    ferry_status st = ferry__table_place_device(t);
    if (st == FERRY_OK)
      st = ferry__table_device_copy(t, 0, t->rows, (char *)map + h->data_offset,
                                    true, o->progress, o->progress_user);
    /* The device holds the rows now: drop the map. */
    munmap(map, (size_t)file_size);
    t->map = NULL;
    t->map_len = 0;
    return st;
  }
  t->file_mapped = true;
  t->host = (char *)map + h->data_offset;
  if (o->progress != NULL)
    o->progress(t->bytes, t->bytes, o->progress_user);
  return ferry__table_place_host(t);
}

ferry_status ferry_table_from_npy(ferry_context *ctx, const char *path,
                                  const ferry_table_options *opts,
                                  ferry_table **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(path);
  FERRY_CHECK_NULL(out);
  ferry_table_options o;
  ferry_status st = ferry__table_check_options(__func__, opts, &o);
  if (st != FERRY_OK)
    return st;
  st = ferry__context_check(ctx);
  if (st != FERRY_OK)
    return st;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ferry__error(FERRY_ERR_IO, "%s: cannot open '%s': %s", __func__,
                        path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    int e = errno;
    close(fd);
    return ferry__error(FERRY_ERR_IO, "%s: '%s' is not a regular file%s%s",
                        __func__, path, e ? ": " : "", e ? strerror(e) : "");
  }
  uint64_t file_size = (uint64_t)sb.st_size;
  uint64_t hmax = file_size < NPY_HEADER_MAX ? file_size : NPY_HEADER_MAX;
  char *hbuf = malloc(hmax ? (size_t)hmax : 1);
  if (hbuf == NULL) {
    close(fd);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        __func__);
  }
  st = read_all(fd, hbuf, hmax, 0, path, NULL, NULL);
  ferry__npy_header h;
  if (st == FERRY_OK)
    st = ferry__npy_parse(hbuf, hmax, file_size, o.npy_u2_is_bf16 != 0, &h);
  free(hbuf);
  ferry_table *t = NULL;
  if (st == FERRY_OK)
    st = ferry__table_new(__func__, ctx, h.rows, h.cols, h.dtype, &o, &t);
  if (st == FERRY_OK)
    st = load(t, fd, path, &h, file_size, &o);
  close(fd);
  if (st != FERRY_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ferry_last_error());
    ferry_table_destroy(t);
    return ferry__error(st, "%s: '%s': %s", __func__, path, msg);
  }
  *out = t;
  return FERRY_OK;
}
