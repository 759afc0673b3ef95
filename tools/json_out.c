#include "json_out.h"

#include <inttypes.h>
#include <math.h>

void json_out_init(json_out *j, FILE *file) {
  j->file = file;
  j->depth = 0;
  j->count[0] = 0;
  j->failed = 0;
}

static void write_escaped(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"':
      fputs("\\\"", f);
      break;
    case '\\':
      fputs("\\\\", f);
      break;
    case '\n':
      fputs("\\n", f);
      break;
    case '\t':
      fputs("\\t", f);
      break;
    case '\r':
      fputs("\\r", f);
      break;
    default:
      if (*p < 0x20)
        fprintf(f, "\\u%04x", *p);
      else
        fputc(*p, f);
    }
  }
  fputc('"', f);
}

/* Separator, indentation and key of the next member. */
static void member(json_out *j, const char *key) {
  if (j->depth == 0 && j->count[0] > 0)
    j->failed = 1; /* a second top-level value */
  if (j->count[j->depth]++ > 0)
    fputc(',', j->file);
  if (j->depth > 0) {
    fputc('\n', j->file);
    for (int i = 0; i < j->depth; i++)
      fputs("  ", j->file);
  }
  if (key != NULL) {
    write_escaped(j->file, key);
    fputs(": ", j->file);
  }
}

static void open_level(json_out *j, const char *key, char bracket) {
  member(j, key);
  fputc(bracket, j->file);
  if (j->depth + 1 >= JSON_OUT_MAX_DEPTH) {
    j->failed = 1;
    return;
  }
  j->depth++;
  j->count[j->depth] = 0;
}

static void close_level(json_out *j, char bracket) {
  if (j->depth == 0) {
    j->failed = 1;
    return;
  }
  int had_members = j->count[j->depth] > 0;
  j->depth--;
  if (had_members) {
    fputc('\n', j->file);
    for (int i = 0; i < j->depth; i++)
      fputs("  ", j->file);
  }
  fputc(bracket, j->file);
}

void json_begin_object(json_out *j, const char *key) {
  open_level(j, key, '{');
}

void json_end_object(json_out *j) {
  close_level(j, '}');
}

void json_begin_array(json_out *j, const char *key) {
  open_level(j, key, '[');
}

void json_end_array(json_out *j) {
  close_level(j, ']');
}

void json_string(json_out *j, const char *key, const char *value) {
  member(j, key);
  if (value == NULL)
    fputs("null", j->file);
  else
    write_escaped(j->file, value);
}

void json_number(json_out *j, const char *key, double value) {
  member(j, key);
  if (isfinite(value))
    fprintf(j->file, "%.9g", value);
  else
    fputs("null", j->file);
}

void json_int(json_out *j, const char *key, int64_t value) {
  member(j, key);
  fprintf(j->file, "%" PRId64, value);
}

void json_bool(json_out *j, const char *key, int value) {
  member(j, key);
  fputs(value ? "true" : "false", j->file);
}

void json_null(json_out *j, const char *key) {
  member(j, key);
  fputs("null", j->file);
}

int json_out_finish(json_out *j) {
  fputc('\n', j->file);
  if (j->depth != 0 || j->count[0] != 1)
    j->failed = 1;
  if (fflush(j->file) != 0 || ferror(j->file))
    j->failed = 1;
  return j->failed ? -1 : 0;
}
