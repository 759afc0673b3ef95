/* NumPy .npy headers (format versions 1, 2 and 3): the magic, the header
 * length, and the Python dict literal naming descr, fortran_order and
 * shape. Only what a feature table can be is accepted: 2-D, C order, '<f4',
 * '<f2', or '<u2' read as bf16 when the caller says so. Each refusal names
 * what was wrong. */
#include "table_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && isspace((unsigned char)*p))
    p++;
  return p;
}

/* The value after 'key': in the dict [p, end), or NULL. */
static const char *find_value(const char *p, const char *end, const char *key) {
  size_t klen = strlen(key);
  for (const char *q = p; q + klen + 2 <= end; q++) {
    if ((*q == '\'' || *q == '"') && q[klen + 1] == *q &&
        memcmp(q + 1, key, klen) == 0) {
      const char *v = skip_ws(q + klen + 2, end);
      if (v >= end || *v != ':')
        return NULL;
      return skip_ws(v + 1, end);
    }
  }
  return NULL;
}

ferry_status ferry__npy_parse(const char *buf, uint64_t len, uint64_t file_size,
                              bool u2_is_bf16, ferry__npy_header *out) {
  if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        "not a .npy file: the magic string \\x93NUMPY is "
                        "missing");
  unsigned major = (unsigned char)buf[6];
  uint64_t hlen, start;
  if (major == 1) {
    hlen = (unsigned char)buf[8] | ((uint64_t)(unsigned char)buf[9] << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (len < 12)
      return ferry__error(FERRY_ERR_BAD_FORMAT,
                          ".npy header: truncated before its length");
    hlen = 0;
    for (int i = 0; i < 4; i++)
      hlen |= (uint64_t)(unsigned char)buf[8 + i] << (8 * i);
    start = 12;
  } else {
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy header: format version %u is not 1, 2 or 3",
                        major);
  }
  if (start + hlen > len || start + hlen > file_size)
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy header: %llu bytes announced, but the file "
                        "ends first (truncated?)",
                        (unsigned long long)hlen);
  const char *p = buf + start, *end = buf + start + hlen;
  p = skip_ws(p, end);
  if (p >= end || *p != '{')
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy header: not a dict literal (no '{')");

  const char *d = find_value(p, end, "descr");
  if (d == NULL || (*d != '\'' && *d != '"'))
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy header: no 'descr' string (corrupt header)");
  const char *dq = memchr(d + 1, *d, (size_t)(end - d - 1));
  if (dq == NULL)
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy header: unterminated 'descr' string");
  size_t dlen = (size_t)(dq - d - 1);
  const char *ds = d + 1;
  ferry_dtype dtype = FERRY_DTYPE_INVALID;
  if (dlen == 3 && memcmp(ds, "<f4", 3) == 0)
    dtype = FERRY_DTYPE_F32;
  else if (dlen == 3 && memcmp(ds, "<f2", 3) == 0)
    dtype = FERRY_DTYPE_F16;
  else if (dlen == 3 && memcmp(ds, "<u2", 3) == 0) {
    if (!u2_is_bf16)
      return ferry__error(FERRY_ERR_BAD_FORMAT,
                          ".npy dtype '<u2' is read only as bf16: set "
                          "opts->npy_u2_is_bf16");
    dtype = FERRY_DTYPE_BF16;
  } else
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy dtype '%.*s' is unsupported; a table is '<f4', "
                        "'<f2' or '<u2' (bf16)",
                        (int)(dlen > 32 ? 32 : dlen), ds);

  const char *f = find_value(p, end, "fortran_order");
  if (f == NULL)
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy header: no 'fortran_order' (corrupt header)");
  if ((size_t)(end - f) >= 4 && memcmp(f, "True", 4) == 0)
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy array is Fortran-ordered; a table needs C "
                        "order (np.ascontiguousarray)");
  if ((size_t)(end - f) < 5 || memcmp(f, "False", 5) != 0)
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy header: 'fortran_order' is neither True nor "
                        "False (corrupt header)");

  const char *s = find_value(p, end, "shape");
  if (s == NULL || *s != '(')
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy header: no 'shape' tuple (corrupt header)");
  uint64_t dims[3];
  int ndim = 0;
  s++;
  for (;;) {
    s = skip_ws(s, end);
    if (s < end && *s == ')')
      break;
    if (s >= end || !isdigit((unsigned char)*s))
      return ferry__error(FERRY_ERR_BAD_FORMAT,
                          ".npy header: malformed 'shape' tuple");
    uint64_t v = 0;
    while (s < end && isdigit((unsigned char)*s)) {
      if (v > (UINT64_MAX - 9) / 10)
        return ferry__error(FERRY_ERR_BAD_FORMAT,
                            ".npy header: a dimension overflows");
      v = v * 10 + (uint64_t)(*s - '0');
      s++;
    }
    if (ndim < 3)
      dims[ndim] = v;
    ndim++;
    s = skip_ws(s, end);
    if (s < end && *s == ',')
      s++;
    else if (s >= end || *s != ')')
      return ferry__error(FERRY_ERR_BAD_FORMAT,
                          ".npy header: malformed 'shape' tuple");
  }
  if (ndim != 2)
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy array is %d-D; a table is 2-D (rows, cols)",
                        ndim);
  if (dims[1] == 0)
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy array has 0 columns; a row needs at least one");
  uint64_t esize = ferry_dtype_size(dtype), bytes;
  if (__builtin_mul_overflow(dims[0], dims[1], &bytes) ||
      __builtin_mul_overflow(bytes, esize, &bytes))
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy header: the shape's size overflows");
  uint64_t data = start + hlen;
  if (file_size < data || file_size - data < bytes)
    return ferry__error(FERRY_ERR_BAD_FORMAT,
                        ".npy file is truncated: %llu data bytes expected, "
                        "%llu present",
                        (unsigned long long)bytes,
                        (unsigned long long)(file_size - data));
  out->rows = dims[0];
  out->cols = dims[1];
  out->dtype = dtype;
  out->data_offset = data;
  return FERRY_OK;
}
