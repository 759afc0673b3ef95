#include "results.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void copy_text(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src != NULL ? src : "");
}

void bench_results_free(bench_results *r) {
  free(r->items);
  r->items = NULL;
  r->count = r->capacity = 0;
}

bench_result *bench_results_add(bench_results *r, const char *op,
                                const char *backend, const char *device,
                                const char *method) {
  if (r->count == r->capacity) {
    size_t cap = r->capacity ? 2 * r->capacity : 32;
    bench_result *items = realloc(r->items, cap * sizeof *items);
    if (items == NULL) {
      fprintf(stderr, "ferry-bench: out of memory for results\n");
      return NULL;
    }
    r->items = items;
    r->capacity = cap;
  }
  bench_result *res = &r->items[r->count++];
  memset(res, 0, sizeof *res);
  copy_text(res->op, sizeof res->op, op);
  copy_text(res->backend, sizeof res->backend, backend);
  copy_text(res->device, sizeof res->device, device);
  copy_text(res->method, sizeof res->method, method);
  res->median_s = res->gbps = NAN;
  res->limit_gbps = res->ratio = NAN;
  return res;
}

static bench_param *new_param(bench_result *res, const char *key) {
  for (int i = 0; i < res->nparams; i++)
    if (strcmp(res->params[i].key, key) == 0)
      return &res->params[i];
  if (res->nparams == BENCH_MAX_PARAMS)
    return NULL; /* a programming error caught by the record's review */
  bench_param *p = &res->params[res->nparams++];
  memset(p, 0, sizeof *p);
  p->key = key;
  return p;
}

void bench_param_int(bench_result *res, const char *key, int64_t value) {
  bench_param *p = new_param(res, key);
  if (p != NULL) {
    p->is_string = 0;
    p->value = value;
  }
}

void bench_param_string(bench_result *res, const char *key, const char *text) {
  bench_param *p = new_param(res, key);
  if (p != NULL) {
    p->is_string = 1;
    copy_text(p->text, sizeof p->text, text);
  }
}

int64_t bench_param_get(const bench_result *res, const char *key,
                        int64_t fallback) {
  for (int i = 0; i < res->nparams; i++)
    if (!res->params[i].is_string && strcmp(res->params[i].key, key) == 0)
      return res->params[i].value;
  return fallback;
}

void bench_results_print_header(FILE *f) {
  fprintf(f, "%-8s %-10s %-22s %10s %4s %11s %9s %9s %6s\n", "backend", "op",
          "method", "MiB", "thr", "median ms", "GB/s", "limit", "ratio");
}

void bench_results_print_row(FILE *f, const bench_result *res) {
  double mib = (double)bench_param_get(res, "bytes", 0) / (1024.0 * 1024.0);
  char limit[16] = "-", ratio[16] = "-";
  if (isfinite(res->limit_gbps))
    snprintf(limit, sizeof limit, "%.2f", res->limit_gbps);
  if (isfinite(res->ratio))
    snprintf(ratio, sizeof ratio, "%.2f%s", res->ratio, res->judged ? "" : "*");
  fprintf(f, "%-8s %-10s %-22s %10.1f %4lld %11.3f %9.2f %9s %6s\n",
          res->backend, res->op, res->method, mib,
          (long long)bench_param_get(res, "threads", 0), 1e3 * res->median_s,
          res->gbps, limit, ratio);
}

void bench_results_write_json(json_out *j, const char *key,
                              const bench_results *r) {
  json_begin_array(j, key);
  for (size_t i = 0; i < r->count; i++) {
    const bench_result *res = &r->items[i];
    json_begin_object(j, NULL);
    json_string(j, "op", res->op);
    json_string(j, "backend", res->backend);
    json_string(j, "device", res->device);
    json_string(j, "method", res->method);
    json_begin_object(j, "params");
    for (int k = 0; k < res->nparams; k++) {
      const bench_param *p = &res->params[k];
      if (p->is_string)
        json_string(j, p->key, p->text);
      else
        json_int(j, p->key, p->value);
    }
    json_end_object(j);
    json_int(j, "reps", res->reps);
    json_number(j, "median_s", res->median_s);
    json_number(j, "gbps", res->gbps);
    json_number(j, "limit_gbps", res->limit_gbps);
    json_number(j, "ratio", res->ratio);
    json_bool(j, "judged", res->judged);
    if (res->rate_key[0] != '\0')
      json_number(j, res->rate_key, res->rate);
    json_end_object(j);
  }
  json_end_array(j);
}

/* A CSV field: quoted, with quotes doubled (RFC 4180). */
static void csv_text(FILE *f, const char *text) {
  fputc('"', f);
  for (const char *c = text; *c; c++) {
    if (*c == '"')
      fputc('"', f);
    fputc(*c, f);
  }
  fputc('"', f);
}

/* A number, empty where NaN (no limit). */
static void csv_number(FILE *f, double v) {
  if (isfinite(v))
    fprintf(f, ",%.9g", v);
  else
    fputc(',', f);
}

int bench_results_write_csv(const char *path, const bench_results *r) {
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    fprintf(stderr, "ferry-bench: cannot write %s: %s\n", path,
            strerror(errno));
    return -1;
  }
  fprintf(f, "op,backend,device,method,params,reps,median_s,gbps,limit_gbps,"
             "ratio,judged,rate_key,rate\n");
  for (size_t i = 0; i < r->count; i++) {
    const bench_result *res = &r->items[i];
    char params[BENCH_MAX_PARAMS * 64] = "";
    size_t used = 0;
    for (int k = 0; k < res->nparams && used < sizeof params; k++) {
      const bench_param *p = &res->params[k];
      int n = p->is_string
                  ? snprintf(params + used, sizeof params - used, "%s%s=%s",
                             k ? ";" : "", p->key, p->text)
                  : snprintf(params + used, sizeof params - used, "%s%s=%lld",
                             k ? ";" : "", p->key, (long long)p->value);
      if (n < 0)
        break;
      used += (size_t)n;
    }
    csv_text(f, res->op);
    fputc(',', f);
    csv_text(f, res->backend);
    fputc(',', f);
    csv_text(f, res->device);
    fputc(',', f);
    csv_text(f, res->method);
    fputc(',', f);
    csv_text(f, params);
    fprintf(f, ",%d", res->reps);
    csv_number(f, res->median_s);
    csv_number(f, res->gbps);
    csv_number(f, res->limit_gbps);
    csv_number(f, res->ratio);
    fprintf(f, ",%d,", res->judged);
    csv_text(f, res->rate_key);
    if (res->rate_key[0] != '\0')
      csv_number(f, res->rate);
    else
      fputc(',', f);
    fputc('\n', f);
  }
  if (ferror(f) | (fclose(f) != 0)) {
    fprintf(stderr, "ferry-bench: writing %s failed\n", path);
    return -1;
  }
  return 0;
}
