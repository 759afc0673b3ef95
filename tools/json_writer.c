/* See json_writer.h. */
#include "json_writer.h"

#include <stddef.h>

void json_init(json_writer *j, FILE *out) {
  j->out = out;
  j->depth = 0;
  j->has_items[0] = false;
}

static void indent(json_writer *j) {
  fputc('\n', j->out);
  for (int i = 0; i < j->depth; i++)
    fputs("  ", j->out);
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s) {
  unsigned char c = s[0];
  size_t n;
  unsigned min;
  unsigned cp;
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

static void write_string(FILE *f, const char *s) {
  fputc('"', f);
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char c = *p;
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc(c, f);
      p++;
    } else if (c == '\n') {
      fputs("\\n", f);
      p++;
    } else if (c == '\t') {
      fputs("\\t", f);
      p++;
    } else if (c == '\r') {
      fputs("\\r", f);
      p++;
    } else if (c < 0x20 || c == 0x7f) {
      fprintf(f, "\\u%04x", c);
      p++;
    } else if (c < 0x80) {
      fputc(c, f);
      p++;
    } else {
      size_t n = utf8_len(p);
      if (n == 0) {
        fputs("\\ufffd", f);
        p++;
      } else {
        fwrite(p, 1, n, f);
        p += n;
      }
    }
  }
  fputc('"', f);
}

static void item(json_writer *j, const char *key) {
  if (j->depth > 0) {
    if (j->has_items[j->depth])
      fputc(',', j->out);
    indent(j);
  }
  j->has_items[j->depth] = true;
  if (key != NULL) {
    write_string(j->out, key);
    fputs(": ", j->out);
  }
}

static void open_(json_writer *j, const char *key, char c) {
  item(j, key);
  fputc(c, j->out);
  if (j->depth + 1 < JSON_MAX_DEPTH)
    j->depth++;
  j->has_items[j->depth] = false;
}

static void close_(json_writer *j, char c) {
  bool had = j->has_items[j->depth];
  if (j->depth > 0)
    j->depth--;
  if (had)
    indent(j);
  fputc(c, j->out);
}

void json_object_begin(json_writer *j, const char *key) {
  open_(j, key, '{');
}

void json_object_end(json_writer *j) {
  close_(j, '}');
}

void json_array_begin(json_writer *j, const char *key) {
  open_(j, key, '[');
}

void json_array_end(json_writer *j) {
  close_(j, ']');
}

void json_string(json_writer *j, const char *key, const char *value) {
  item(j, key);
  if (value == NULL)
    fputs("null", j->out);
  else
    write_string(j->out, value);
}

void json_int(json_writer *j, const char *key, long long value) {
  item(j, key);
  fprintf(j->out, "%lld", value);
}

void json_bool(json_writer *j, const char *key, bool value) {
  item(j, key);
  fputs(value ? "true" : "false", j->out);
}

void json_null(json_writer *j, const char *key) {
  item(j, key);
  fputs("null", j->out);
}

void json_finish(json_writer *j) {
  fputc('\n', j->out);
  fflush(j->out);
}
