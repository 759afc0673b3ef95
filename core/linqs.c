/* LINQS datasets (Cora, CiteSeer, ...): <prefix>.content holds one paper a
 * line, "<id> <features...> <label>", ids being arbitrary strings mapped to
 * 0..N-1 in file order; <prefix>.cites holds "<cited> <citing>" pairs. The
 * graph is the citations made undirected (both directions, one copy of
 * each pair); citations naming unknown ids are counted and dropped,
 * self-loops are kept and counted, isolated nodes are counted. Nothing but
 * malformed text is fatal. Features become a feature table through
 * ferry_linqs_feature_table (table.h). */
#include "graph_internal.h"

#include <ferry/table.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* String ids -> indices: open addressing over the ids' strings. */
typedef struct id_map {
  char **keys; /* slots; NULL: empty */
  int64_t *vals;
  uint64_t slots;
} id_map;

static uint64_t str_hash(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static int map_grow(id_map *m) {
  uint64_t ns = m->slots ? m->slots * 2 : 4096;
  char **k = calloc(ns, sizeof *k);
  int64_t *v = calloc(ns, sizeof *v);
  if (k == NULL || v == NULL) {
    free(k);
    free(v);
    return -1;
  }
  for (uint64_t i = 0; i < m->slots; i++)
    if (m->keys[i]) {
      uint64_t h = str_hash(m->keys[i]) & (ns - 1);
      while (k[h])
        h = (h + 1) & (ns - 1);
      k[h] = m->keys[i];
      v[h] = m->vals[i];
    }
  free(m->keys);
  free(m->vals);
  m->keys = k;
  m->vals = v;
  m->slots = ns;
  return 0;
}

/* The slot of `key` (found or empty). */
static uint64_t map_slot(const id_map *m, const char *key) {
  uint64_t h = str_hash(key) & (m->slots - 1);
  while (m->keys[h] && strcmp(m->keys[h], key) != 0)
    h = (h + 1) & (m->slots - 1);
  return h;
}

static void map_free(id_map *m) {
  for (uint64_t i = 0; i < m->slots; i++)
    free(m->keys[i]);
  free(m->keys);
  free(m->vals);
}

/* Splits `line` in place on spaces/tabs; returns the field count (at most
 * max, -1 when there are more). */
static int64_t split(char *line, char **fields, int64_t max) {
  int64_t n = 0;
  char *p = line;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
      *p++ = '\0';
    if (*p == '\0')
      return n;
    if (n == max)
      return -1;
    fields[n++] = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
      p++;
  }
}

void ferry_linqs_destroy(ferry_linqs *data) {
  if (data == NULL)
    return;
  ferry_graph_destroy(data->graph);
  free(data->features);
  free(data->labels);
  if (data->class_names)
    for (int32_t i = 0; i < data->num_classes; i++)
      free(data->class_names[i]);
  free(data->class_names);
  free(data);
}

static char *join(const char *prefix, const char *suffix) {
  size_t a = strlen(prefix), b = strlen(suffix);
  char *s = malloc(a + b + 1);
  if (s) {
    memcpy(s, prefix, a);
    memcpy(s + a, suffix, b + 1);
  }
  return s;
}

#define OOM(func)                                                              \
  ferry__error(FERRY_ERR_OUT_OF_MEMORY, "%s: out of memory", func)

static ferry_status read_content(const char *path, ferry_linqs *d,
                                 id_map *ids) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return ferry__error(FERRY_ERR_IO, "ferry_linqs_load: cannot open '%s': %s",
                        path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  int64_t lineno = 0, cap_rows = 0, fields_max = 1 << 20;
  char **fields = malloc((size_t)fields_max * sizeof *fields);
  ferry_status st = fields ? FERRY_OK : OOM("ferry_linqs_load");
  while (st == FERRY_OK && getline(&line, &cap, f) >= 0) {
    lineno++;
    int64_t nf = split(line, fields, fields_max);
    if (nf == 0)
      continue;
    if (nf < 2) {
      st = ferry__error(FERRY_ERR_BAD_FORMAT,
                        "%s:%lld: expected '<id> <features...> <label>'", path,
                        (long long)lineno);
      break;
    }
    if (d->num_nodes == 0)
      d->num_features = nf - 2;
    else if (nf - 2 != d->num_features) {
      st = ferry__error(FERRY_ERR_BAD_FORMAT,
                        "%s:%lld: %lld features, the first line had %lld", path,
                        (long long)lineno, (long long)(nf - 2),
                        (long long)d->num_features);
      break;
    }
    if (d->num_nodes == cap_rows) {
      int64_t nc = cap_rows ? cap_rows * 2 : 1024;
      float *fe = realloc(
          d->features,
          (size_t)(nc * (d->num_features ? d->num_features : 1)) * sizeof *fe);
      if (fe == NULL) {
        st = OOM("ferry_linqs_load");
        break;
      }
      d->features = fe;
      int32_t *lb = realloc(d->labels, (size_t)nc * sizeof *lb);
      if (lb == NULL) {
        st = OOM("ferry_linqs_load");
        break;
      }
      d->labels = lb;
      cap_rows = nc;
    }
    int64_t row = d->num_nodes;
    for (int64_t j = 0; j < d->num_features; j++) {
      char *end;
      errno = 0;
      float x = strtof(fields[1 + j], &end);
      if (*end != '\0' || errno != 0) {
        st = ferry__error(FERRY_ERR_BAD_FORMAT,
                          "%s:%lld: feature %lld ('%s') is not a number", path,
                          (long long)lineno, (long long)j, fields[1 + j]);
        break;
      }
      d->features[row * d->num_features + j] = x;
    }
    if (st != FERRY_OK)
      break;
    /* Label: index of its name in order of first appearance. */
    const char *label = fields[nf - 1];
    int32_t c = 0;
    while (c < d->num_classes && strcmp(d->class_names[c], label) != 0)
      c++;
    if (c == d->num_classes) {
      char **cn =
          realloc(d->class_names, (size_t)(d->num_classes + 1) * sizeof *cn);
      if (cn == NULL) {
        st = OOM("ferry_linqs_load");
        break;
      }
      d->class_names = cn;
      if ((cn[c] = strdup(label)) == NULL) {
        st = OOM("ferry_linqs_load");
        break;
      }
      d->num_classes++;
    }
    d->labels[row] = c;
    if ((uint64_t)(d->num_nodes + 1) * 2 > ids->slots && map_grow(ids) != 0) {
      st = OOM("ferry_linqs_load");
      break;
    }
    uint64_t h = map_slot(ids, fields[0]);
    if (ids->keys[h]) {
      st = ferry__error(FERRY_ERR_BAD_FORMAT,
                        "%s:%lld: paper id '%s' appeared before (line of node "
                        "%lld)",
                        path, (long long)lineno, fields[0],
                        (long long)ids->vals[h]);
      break;
    }
    if ((ids->keys[h] = strdup(fields[0])) == NULL) {
      st = OOM("ferry_linqs_load");
      break;
    }
    ids->vals[h] = row;
    d->num_nodes++;
  }
  if (st == FERRY_OK && ferror(f))
    st = ferry__error(FERRY_ERR_IO, "%s: read error", path);
  if (st == FERRY_OK && d->num_nodes == 0)
    st = ferry__error(FERRY_ERR_BAD_FORMAT, "%s: no papers", path);
  free(fields);
  free(line);
  fclose(f);
  return st;
}

static int cmp_pair(const void *a, const void *b) {
  const int64_t *x = a, *y = b;
  if (x[0] != y[0])
    return (x[0] > y[0]) - (x[0] < y[0]);
  return (x[1] > y[1]) - (x[1] < y[1]);
}

ferry_status ferry_linqs_load(ferry_context *ctx,
                              const ferry_graph_options *opts,
                              const char *prefix, ferry_linqs **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(prefix);
  FERRY_CHECK_NULL(out);
  ferry_graph_options o;
  ferry_status st = ferry__graph_options(__func__, opts, &o);
  if (st != FERRY_OK)
    return st;
  o.symmetrize = 1;
  o.remove_duplicates = 1;
  o.remove_self_loops = 0;
  ferry_linqs *d = calloc(1, sizeof *d);
  char *content = join(prefix, ".content"), *cites = join(prefix, ".cites");
  id_map ids = {0};
  if (d == NULL || content == NULL || cites == NULL || map_grow(&ids) != 0) {
    st = OOM(__func__);
    goto done;
  }
  st = read_content(content, d, &ids);
  if (st != FERRY_OK)
    goto done;
  FILE *f = fopen(cites, "r");
  if (f == NULL) {
    st = ferry__error(FERRY_ERR_IO, "%s: cannot open '%s': %s", __func__, cites,
                      strerror(errno));
    goto done;
  }
  int64_t *pairs = NULL, np = 0, capp = 0;
  char *line = NULL;
  size_t cap = 0;
  int64_t lineno = 0;
  while (getline(&line, &cap, f) >= 0) {
    lineno++;
    char *fields[3];
    int64_t nf = split(line, fields, 3);
    if (nf == 0)
      continue;
    if (nf != 2) {
      st = ferry__error(FERRY_ERR_BAD_FORMAT,
                        "%s:%lld: expected '<cited id> <citing id>'", cites,
                        (long long)lineno);
      break;
    }
    d->citation_lines++;
    uint64_t a = map_slot(&ids, fields[0]), b = map_slot(&ids, fields[1]);
    if (ids.keys[a] == NULL || ids.keys[b] == NULL) {
      d->unknown_dropped++;
      continue;
    }
    if (np == capp) {
      capp = capp ? capp * 2 : 4096;
      int64_t *np2 = realloc(pairs, (size_t)capp * 2 * sizeof *np2);
      if (np2 == NULL) {
        st = OOM(__func__);
        break;
      }
      pairs = np2;
    }
    /* citing -> cited */
    pairs[2 * np] = ids.vals[b];
    pairs[2 * np + 1] = ids.vals[a];
    if (pairs[2 * np] == pairs[2 * np + 1])
      d->self_loops++;
    np++;
  }
  free(line);
  fclose(f);
  int64_t *src = NULL, *dst = NULL;
  if (st == FERRY_OK) {
    src = malloc((size_t)(np ? np : 1) * sizeof *src);
    dst = malloc((size_t)(np ? np : 1) * sizeof *dst);
    if (src == NULL || dst == NULL)
      st = OOM(__func__);
  }
  if (st == FERRY_OK) {
    for (int64_t i = 0; i < np; i++) {
      src[i] = pairs[2 * i];
      dst[i] = pairs[2 * i + 1];
    }
    /* Undirected pairs: order each pair, sort, count distinct; and mark
     * nodes touched by any citation. */
    bool *touched = calloc((size_t)d->num_nodes, 1);
    if (touched == NULL)
      st = OOM(__func__);
    for (int64_t i = 0; st == FERRY_OK && i < np; i++) {
      int64_t u = pairs[2 * i], v = pairs[2 * i + 1];
      touched[u] = touched[v] = true;
      if (u > v) {
        pairs[2 * i] = v;
        pairs[2 * i + 1] = u;
      }
    }
    if (st == FERRY_OK) {
      qsort(pairs, (size_t)np, 2 * sizeof *pairs, cmp_pair);
      for (int64_t i = 0; i < np; i++)
        if (i == 0 || cmp_pair(pairs + 2 * i, pairs + 2 * (i - 1)) != 0)
          d->undirected_edges++;
      for (int64_t v = 0; v < d->num_nodes; v++)
        d->isolated_nodes += !touched[v];
    }
    free(touched);
  }
  free(pairs);
  if (st == FERRY_OK)
    st = ferry__graph_from_edges(ctx, &o, __func__, d->num_nodes, src, dst, np,
                                 NULL, NULL, &d->graph);
  free(src);
  free(dst);
done:
  map_free(&ids);
  free(content);
  free(cites);
  if (st != FERRY_OK) {
    ferry_linqs_destroy(d);
    return st;
  }
  *out = d;
  return FERRY_OK;
}

ferry_status ferry_linqs_feature_table(ferry_context *ctx,
                                       const ferry_linqs *data,
                                       const ferry_table_options *opts,
                                       ferry_table **out) {
  FERRY_ENTER();
  FERRY_CHECK_NULL(ctx);
  FERRY_CHECK_NULL(data);
  FERRY_CHECK_NULL(out);
  if (data->num_features < 1)
    return ferry__error(FERRY_ERR_INVALID_ARGUMENT,
                        "%s: the dataset has no features", __func__);
  ferry_table *t = NULL;
  ferry_status st = ferry_table_create(ctx, (uint64_t)data->num_nodes,
                                       (uint64_t)data->num_features,
                                       FERRY_DTYPE_F32, opts, &t);
  if (st == FERRY_OK)
    st = ferry_table_write(t, 0, (uint64_t)data->num_nodes, data->features);
  if (st != FERRY_OK) {
    ferry_table_destroy(t);
    return st;
  }
  *out = t;
  return FERRY_OK;
}
