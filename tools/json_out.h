/* A small streaming JSON writer shared by ferry's programs (ferry-bench,
 * ferry-info): objects and arrays nest, commas and indentation are handled
 * here, strings are escaped (control characters, quotes, backslashes, and
 * invalid UTF-8 as U+FFFD) so the output always parses, and non-finite
 * numbers are written as null (JSON has no NaN). */
#ifndef FERRY_TOOLS_JSON_OUT_H
#define FERRY_TOOLS_JSON_OUT_H

#include <stdint.h>
#include <stdio.h>

#define JSON_OUT_MAX_DEPTH 16

typedef struct json_out {
  FILE *file;
  int depth;
  int count[JSON_OUT_MAX_DEPTH]; /* members written at each level */
  int failed; /* nesting misuse or a write error; see json_out_finish */
} json_out;

void json_out_init(json_out *j, FILE *file);
/* Every function takes `key`: the member's name inside an object, NULL at
 * the top level and inside arrays. */
void json_begin_object(json_out *j, const char *key);
void json_end_object(json_out *j);
void json_begin_array(json_out *j, const char *key);
void json_end_array(json_out *j);
void json_string(json_out *j, const char *key,
                 const char *value); /* NULL: null */
void json_number(json_out *j, const char *key,
                 double value); /* NaN/inf: null */
void json_int(json_out *j, const char *key, int64_t value);
void json_bool(json_out *j, const char *key, int value);
void json_null(json_out *j, const char *key);
/* Ends the document; 0 when it is complete and was written, -1 otherwise. */
int json_out_finish(json_out *j);

#endif /* FERRY_TOOLS_JSON_OUT_H */
