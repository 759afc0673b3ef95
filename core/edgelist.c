/* Graphs from edge lists: caller arrays, .npy (E, 2) files and text files.
 * One builder (ferry__graph_from_edges) makes the CSR by counting sort:
 * rows are sources, and a row keeps its edges in list order, each original
 * edge followed by its reverse when symmetrising; removing duplicates sorts
 * each row. */
#include "graph_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void report(ferry_progress_fn fn, void *user, const char *stage,
                   double done) {
  if (fn)
    fn(user, stage, done);
}

ferry_status ferry__graph_from_edges(ferry_context *ctx,
                                     const ferry_graph_options *opts,
                                     const char *func, int64_t num_nodes,
                                     const int64_t *src, const int64_t *dst,
                                     int64_t num_edges,
                                     ferry_progress_fn progress, void *user,
                                     ferry_graph **out) {
  const int sym = opts->symmetrize != 0;
  const int noloop = opts->remove_self_loops != 0;
  int64_t *cursor = calloc((size_t)num_nodes + 1, sizeof *cursor);
  if (cursor == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        func);
  /* Degrees, then exclusive offsets in cursor[0..num_nodes]. */
  for (int64_t i = 0; i < num_edges; i++) {
    int64_t u = src[i], v = dst[i];
    if (noloop && u == v)
      continue;
    cursor[u + 1]++;
    if (sym && u != v) /* a self-loop is its own reverse */
      cursor[v + 1]++;
  }
  for (int64_t v = 0; v < num_nodes; v++)
    cursor[v + 1] += cursor[v];
  int64_t total = cursor[num_nodes];
  report(progress, user, "count", 1.0);

  if (!opts->remove_duplicates) {
    ferry__graph_build b;
    ferry_status st = ferry__graph_begin(ctx, opts, num_nodes, total, &b);
    if (st != FERRY_OK) {
      free(cursor);
      return st;
    }
    memcpy(b.offsets, cursor, ((size_t)num_nodes + 1) * sizeof *cursor);
    const ferry_dtype dt = opts->id_dtype;
    int64_t step = num_edges / 16 + 1;
    for (int64_t i = 0; i < num_edges; i++) {
      int64_t u = src[i], v = dst[i];
      if (noloop && u == v)
        continue;
      ferry__col_set(b.cols, dt, cursor[u]++, v);
      if (sym && u != v)
        ferry__col_set(b.cols, dt, cursor[v]++, u);
      if (i % step == 0)
        report(progress, user, "scatter", (double)i / (double)num_edges);
    }
    report(progress, user, "scatter", 1.0);
    free(cursor);
    return ferry__graph_end(&b, out);
  }

  /* Duplicates: scatter to int64, sort and unique each row, then copy. */
  int64_t *tmp = malloc((size_t)(total > 0 ? total : 1) * sizeof *tmp);
  int64_t *start = malloc(((size_t)num_nodes + 1) * sizeof *start);
  if (tmp == NULL || start == NULL) {
    free(tmp);
    free(start);
    free(cursor);
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of host memory",
                        func);
  }
  memcpy(start, cursor, ((size_t)num_nodes + 1) * sizeof *start);
  for (int64_t i = 0; i < num_edges; i++) {
    int64_t u = src[i], v = dst[i];
    if (noloop && u == v)
      continue;
    tmp[cursor[u]++] = v;
    if (sym && u != v)
      tmp[cursor[v]++] = u;
  }
  /* Compact in place: row v's unique ids move down to its new start. */
  int64_t w = 0;
  for (int64_t v = 0; v < num_nodes; v++) {
    int64_t a = start[v], e = start[v + 1];
    qsort(tmp + a, (size_t)(e - a), sizeof *tmp, cmp_i64);
    start[v] = w;
    for (int64_t i = a; i < e; i++)
      if (i == a || tmp[i] != tmp[i - 1])
        tmp[w++] = tmp[i];
  }
  start[num_nodes] = w;
  free(cursor);
  report(progress, user, "deduplicate", 1.0);
  ferry__graph_build b;
  ferry_status st = ferry__graph_begin(ctx, opts, num_nodes, w, &b);
  if (st != FERRY_OK) {
    free(tmp);
    free(start);
    return st;
  }
  memcpy(b.offsets, start, ((size_t)num_nodes + 1) * sizeof *start);
  for (int64_t i = 0; i < w; i++)
    ferry__col_set(b.cols, opts->id_dtype, i, tmp[i]);
  free(tmp);
  free(start);
  return ferry__graph_end(&b, out);
}

ferry_status ferry_graph_create_from_edges(
    ferry_context *ctx, const ferry_graph_options *opts, int64_t num_nodes,
    const int64_t *src, const int64_t *dst, int64_t num_edges,
    ferry_graph **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(out);
  ferry_graph_options o;
  ferry_status st = ferry__graph_options(__func__, opts, &o);
  if (st != FERRY_OK)
    return st;
  if (num_nodes < 0 || num_edges < 0)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: argument '%s' is negative", __func__,
                        num_nodes < 0 ? "num_nodes" : "num_edges");
  if (num_edges > 0 && (src == NULL || dst == NULL))
    return ferry__error(FERRY_ERR_NULL_POINTER,
                        "%s: argument '%s' is NULL with %lld edges", __func__,
                        src == NULL ? "src" : "dst", (long long)num_edges);
  for (int64_t i = 0; i < num_edges; i++)
    if (src[i] < 0 || src[i] >= num_nodes || dst[i] < 0 || dst[i] >= num_nodes)
      return ferry__error(FERRY_ERR_OUT_OF_RANGE,
                          "%s: edge %lld (%lld -> %lld) names a node outside "
                          "[0, %lld)",
                          __func__, (long long)i, (long long)src[i],
                          (long long)dst[i], (long long)num_nodes);
  return ferry__graph_from_edges(ctx, &o, __func__, num_nodes, src, dst,
                                 num_edges, NULL, NULL, out);
}

/* ---- files --------------------------------------------------------------- */

typedef struct edge_vec {
  int64_t *src, *dst;
  int64_t n, cap;
} edge_vec;

static int edge_push(edge_vec *v, int64_t a, int64_t b) {
  if (v->n == v->cap) {
    int64_t cap = v->cap ? v->cap * 2 : 1024;
    int64_t *s = realloc(v->src, (size_t)cap * sizeof *s);
    if (s == NULL)
      return -1;
    v->src = s;
    int64_t *d = realloc(v->dst, (size_t)cap * sizeof *d);
    if (d == NULL)
      return -1;
    v->dst = d;
    v->cap = cap;
  }
  v->src[v->n] = a;
  v->dst[v->n] = b;
  v->n++;
  return 0;
}

/* Reads a .npy header; on success *data_offset, *word (4 or 8), *rows. */
static ferry_status npy_header(const char *path, FILE *f, long *data_offset,
                               int *word, int64_t *rows) {
  unsigned char pre[10];
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        "%s: not a .npy file (bad magic at byte 0)", path);
  unsigned major = pre[6];
  size_t hlen;
  long base;
  if (major == 1) {
    hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
    base = 10;
  } else {
    unsigned char more[2];
    if (fread(more, 1, 2, f) != 2)
      return ferry__error(FERRY_ERR_BAD_FORMAT,
                          "%s: truncated .npy header at byte 10", path);
    hlen = (size_t)pre[8] | ((size_t)pre[9] << 8) | ((size_t)more[0] << 16) |
           ((size_t)more[1] << 24);
    base = 12;
  }
  if (hlen > 65536)
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        "%s: .npy header of %zu bytes is implausible", path,
                        hlen);
  char *h = calloc(1, hlen + 1);
  if (h == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  if (fread(h, 1, hlen, f) != hlen) {
    free(h);
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        "%s: truncated .npy header at byte %ld", path, base);
  }
  ferry_status st = FERRY_OK;
  if (strstr(h, "'<i8'") || strstr(h, "'int64'"))
    *word = 8;
  else if (strstr(h, "'<i4'") || strstr(h, "'int32'"))
    *word = 4;
  else
    st = ferry__error(FERRY_ERR_BAD_FORMAT,
                      "%s: .npy dtype is not little-endian int32/int64 "
                      "(header: %s)",
                      path, h);
  if (st == FERRY_OK && strstr(h, "'fortran_order': True"))
    st = ferry__error(FERRY_ERR_BAD_FORMAT,
                      "%s: .npy array is in Fortran order; save it C-ordered",
                      path);
  const char *sh = st == FERRY_OK ? strstr(h, "'shape':") : NULL;
  long long r = -1, c = -1;
  if (st == FERRY_OK &&
      (sh == NULL || sscanf(sh, "'shape': (%lld, %lld)", &r, &c) != 2 ||
       c != 2 || r < 0))
    st = ferry__error(FERRY_ERR_BAD_FORMAT,
                      "%s: .npy shape must be (E, 2) (header: %s)", path, h);
  free(h);
  if (st != FERRY_OK)
    return st;
  *rows = r;
  *data_offset = base + (long)hlen;
  return FERRY_OK;
}

static ferry_status load_npy(const char *path, FILE *f, edge_vec *v) {
  long off = 0;
  int word = 8;
  int64_t rows = 0;
  ferry_status st = npy_header(path, f, &off, &word, &rows);
  if (st != FERRY_OK)
    return st;
  v->src = malloc((size_t)(rows ? rows : 1) * 8u);
  v->dst = malloc((size_t)(rows ? rows : 1) * 8u);
  if (v->src == NULL || v->dst == NULL)
    return ferry__error(FERRY_ERR_OUT_OF_MEMORY,
                        "%s: out of memory for %lld edges", path,
                        (long long)rows);
  unsigned char buf[16];
  for (int64_t i = 0; i < rows; i++) {
    if (fread(buf, 1, (size_t)word * 2, f) != (size_t)word * 2)
      return ferry__error(FERRY_ERR_BAD_FORMAT,
                          "%s: truncated: the header promises %lld edges, "
                          "the data ends at edge %lld (byte %lld)",
                          path, (long long)rows, (long long)i,
                          (long long)(off + i * word * 2));
    if (word == 8) {
      memcpy(&v->src[i], buf, 8);
      memcpy(&v->dst[i], buf + 8, 8);
    } else {
      int32_t a, b;
      memcpy(&a, buf, 4);
      memcpy(&b, buf + 4, 4);
      v->src[i] = a;
      v->dst[i] = b;
    }
  }
  v->n = rows;
  return FERRY_OK;
}

/* Parses one id at *p; returns 0 or -1. */
static int parse_id(const char **p, int64_t *out) {
  const char *s = *p;
  while (*s == ' ' || *s == '\t' || *s == ',')
    s++;
  if (!isdigit((unsigned char)*s) && *s != '-')
    return -1;
  errno = 0;
  char *end;
  long long x = strtoll(s, &end, 10);
  if (end == s || errno != 0)
    return -1;
  if (*end != '\0' && *end != ' ' && *end != '\t' && *end != ',' &&
      *end != '\r' && *end != '\n')
    return -1;
  *out = x;
  *p = end;
  return 0;
}

static ferry_status load_text(const char *path, FILE *f, edge_vec *v) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int64_t lineno = 0;
  ferry_status st = FERRY_OK;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    const char *p = line;
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p == '#' || *p == '%' || *p == '\n' || *p == '\r' || *p == '\0')
      continue;
    int64_t a, b;
    if (parse_id(&p, &a) != 0 || parse_id(&p, &b) != 0) {
      st = ferry__error(FERRY_ERR_BAD_FORMAT,
                        "%s:%lld: expected two integer node ids", path,
                        (long long)lineno);
      break;
    }
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
      p++;
    if (*p != '\0') {
      st = ferry__error(FERRY_ERR_BAD_FORMAT,
                        "%s:%lld: unexpected text after two node ids", path,
                        (long long)lineno);
      break;
    }
    if (edge_push(v, a, b) != 0) {
      st = ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
      break;
    }
  }
  free(line);
  if (st == FERRY_OK && ferror(f))
    st = ferry__error(FERRY_ERR_IO, "%s: read error", path);
  return st;
}

ferry_status ferry_graph_load_edge_list(ferry_context *ctx,
                                        const ferry_graph_options *opts,
                                        const char *path, int64_t num_nodes,
                                        ferry_graph **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(path);
  FERRY_CHECK_NULL(out);
  ferry_graph_options o;
  ferry_status st = ferry__graph_options(__func__, opts, &o);
  if (st != FERRY_OK)
    return st;
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return ferry__error(FERRY_ERR_IO, "%s: cannot open '%s': %s", __func__,
                        path, strerror(errno));
  unsigned char magic[6] = {0};
  size_t got = fread(magic, 1, 6, f);
  rewind(f);
  edge_vec v = {0};
  if (got == 6 && memcmp(magic, "\x93NUMPY", 6) == 0)
    st = load_npy(path, f, &v);
  else
    st = load_text(path, f, &v);
  fclose(f);
  int64_t maxid = -1;
  for (int64_t i = 0; st == FERRY_OK && i < v.n; i++) {
    if (v.src[i] < 0 || v.dst[i] < 0) {
      st = ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "%s: edge %lld has a negative id", path, (long long)i);
      break;
    }
    if (v.src[i] > maxid)
      maxid = v.src[i];
    if (v.dst[i] > maxid)
      maxid = v.dst[i];
  }
  if (st == FERRY_OK) {
    if (num_nodes <= 0)
      num_nodes = maxid + 1;
    else if (maxid >= num_nodes)
      st = ferry__error(FERRY_ERR_OUT_OF_RANGE,
                        "%s: id %lld is not below num_nodes %lld", path,
                        (long long)maxid, (long long)num_nodes);
  }
  if (st == FERRY_OK)
    st = ferry__graph_from_edges(ctx, &o, __func__, num_nodes, v.src, v.dst,
                                 v.n, NULL, NULL, out);
  free(v.src);
  free(v.dst);
  return st;
}
