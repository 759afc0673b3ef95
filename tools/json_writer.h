/* A small streaming JSON writer for ferry-info: nesting, commas and string
 * escaping (control characters, quotes, backslashes, and invalid UTF-8 as
 * U+FFFD), so that the output always parses. */
#ifndef FERRY_TOOLS_JSON_WRITER_H
#define FERRY_TOOLS_JSON_WRITER_H

#include <stdbool.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

typedef struct json_writer {
  FILE *out;
  int depth;
  bool has_items[JSON_MAX_DEPTH]; /* a comma is due before the next item */
} json_writer;

void json_init(json_writer *j, FILE *out);
/* `key` is the member name inside an object, NULL inside an array or at the
 * top level. */
void json_object_begin(json_writer *j, const char *key);
void json_object_end(json_writer *j);
void json_array_begin(json_writer *j, const char *key);
void json_array_end(json_writer *j);
/* value NULL writes null. */
void json_string(json_writer *j, const char *key, const char *value);
void json_int(json_writer *j, const char *key, long long value);
void json_bool(json_writer *j, const char *key, bool value);
void json_null(json_writer *j, const char *key);
/* Ends the document with a newline. */
void json_finish(json_writer *j);

#endif /* FERRY_TOOLS_JSON_WRITER_H */
