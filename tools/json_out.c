#include "json_out.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>

void json_out_init(json_out *j, FILE *file) {
  j->file = file;
  j->depth = 0;
  j->count[0] = 0;
  j->failed = 0;
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s) {
  unsigned char c = s[0];
  size_t n;
  unsigned min, cp;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    min = 0x80;
    cp = c & 0x1fu;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    min = 0x800;
    cp = c & 0x0fu;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    min = 0x10000;
    cp = c & 0x07u;
  } else {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

static void write_escaped(FILE *f, const char *s) {
  fputc('"', f);
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char c = *p;
    size_t n = 1;
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc(c, f);
    } else if (c == '\n') {
      fputs("\\n", f);
    } else if (c == '\t') {
      fputs("\\t", f);
    } else if (c == '\r') {
      fputs("\\r", f);
    } else if (c < 0x20 || c == 0x7f) {
      fprintf(f, "\\u%04x", c);
    } else if (c < 0x80) {
      fputc(c, f);
    } else if ((n = utf8_len(p)) == 0) {
      fputs("\\ufffd", f); /* not UTF-8: keep the output parseable */
      n = 1;
    } else {
      fwrite(p, 1, n, f);
    }
    p += n;
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
