/* The host row gather shared by the cpu backend's op_gather
 * (cpu_gather.c) and the core's STAGED path (core/table_staged.c): header
 * only, so that both the cpu plugin build and libferry compile it without
 * either calling the other.
 *
 * One call copies rows ids[begin..end) to consecutive out rows, prefetching
 * every cache line of the rows a few KB ahead (ids are random: the hardware
 * prefetcher cannot guess the next row, and a row's lines are all needed).
 * f16/bf16 rows may be widened to f32. An id outside [0, rows) zero-fills
 * its row and is reported as the first bad position.
 *
 * Outputs much larger than the last-level cache are written with
 * non-temporal stores: ordinary stores read every out line before writing
 * it (read-for-ownership) and evict table lines, so a gather moved 3 bytes
 * per payload byte where glibc's memcpy (the limit it is judged against,
 * which streams above a threshold of the same order) moves 2. It pays for
 * rows of 512 B and more (numbers at FERRY_GATHER_STREAM_MIN_ROW). Small
 * outputs keep ordinary stores: their reader usually finds them in cache.
 * Software prefetch gains little here (the out-of-order core already
 * overlaps consecutive rows' loads: streaming with / without prefetch,
 * 4 KB rows 0.76 / 0.69, 512 B 0.49 / 0.46); FERRY_GATHER_PREFETCH_BYTES
 * sets the distance (0: none) for tuning on other machines. */
#ifndef FERRY_CPU_GATHER_ROWS_H
#define FERRY_CPU_GATHER_ROWS_H

#include <ferry/backend.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define FERRY_GATHER_STREAM 1
#else
#define FERRY_GATHER_STREAM 0
#endif

#define FERRY_GATHER_LINE 64
/* Bytes in flight ahead of the copy: 4 KB (64 lines) keep the core's line
 * fill buffers and the L2's queue busy without more prefetches queueing
 * behind them (4-8 rows of 512 B measured best on the 2-core VM). */
#define FERRY_GATHER_PREFETCH_BYTES (4u << 10)
#define FERRY_GATHER_PREFETCH_MAX_ROWS 32u
/* Outputs of at least this many bytes (and at least the LLC) are streamed
 * (rows of whole lines on a cpu with AVX-512F; ordinary stores otherwise).
 * FERRY_GATHER_STREAM_BYTES overrides the threshold (the tests use it to
 * stream small outputs). */
#define FERRY_GATHER_STREAM_MIN_BYTES (UINT64_C(32) << 20)
/* Rows narrower than this keep ordinary stores. Ratios to the pool copy,
 * streaming / ordinary, in-process interleaved runs (11 reps, medians) on
 * the loaded 2-core VM, 192 MB table: 256 B 0.42 / 0.53, 512 B 0.49 /
 * 0.47, 1 KB 0.49 / 0.43, 2 KB 0.60 / 0.46, 4 KB 0.76 / 0.62. */
#define FERRY_GATHER_STREAM_MIN_ROW 512u

typedef struct ferry_gather_rows {
  /* The table: pieces of piece_rows rows each (host memrefs). */
  const ferry_be_memref *pieces;
  uint32_t num_pieces;
  uint64_t piece_rows;
  uint64_t rows, cols, row_bytes, out_row_bytes;
  ferry_dtype dtype, out_dtype;
  const void *ids;
  bool ids64;
  unsigned ahead; /* rows prefetched ahead (ferry_gather_rows_plan) */
  bool stream;    /* non-temporal stores where out's alignment allows */
} ferry_gather_rows;

/* Fill `ahead` and `stream` for a gather writing `out_bytes` in all. */
static inline void ferry_gather_rows_plan(ferry_gather_rows *g,
                                          uint64_t out_bytes) {
  uint64_t bytes = FERRY_GATHER_PREFETCH_BYTES;
  const char *pf = getenv("FERRY_GATHER_PREFETCH_BYTES");
  if (pf != NULL && pf[0] != '\0')
    bytes = strtoull(pf, NULL, 10);
  if (bytes == 0) {
    g->ahead = 0; /* no software prefetch */
  } else {
    uint64_t ahead = bytes / g->row_bytes;
    g->ahead = ahead < 1 ? 1u
               : ahead > FERRY_GATHER_PREFETCH_MAX_ROWS
                   ? FERRY_GATHER_PREFETCH_MAX_ROWS
                   : (unsigned)ahead;
  }
  g->stream = false;
#if FERRY_GATHER_STREAM
  if (g->out_dtype != g->dtype || g->row_bytes % FERRY_GATHER_LINE != 0 ||
      g->row_bytes < FERRY_GATHER_STREAM_MIN_ROW ||
      !__builtin_cpu_supports("avx512f"))
    return;
  uint64_t min = FERRY_GATHER_STREAM_MIN_BYTES;
#ifdef _SC_LEVEL3_CACHE_SIZE
  long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (llc > 0 && (uint64_t)llc > min)
    min = (uint64_t)llc;
#endif
  const char *env = getenv("FERRY_GATHER_STREAM_BYTES");
  if (env != NULL && env[0] != '\0')
    min = strtoull(env, NULL, 10);
  g->stream = out_bytes >= min;
#else
  (void)out_bytes;
#endif
}

static inline int64_t ferry_gather_rows_id(const ferry_gather_rows *g,
                                           uint64_t i) {
  return g->ids64 ? ((const int64_t *)g->ids)[i]
                  : (int64_t)((const int32_t *)g->ids)[i];
}

/* The row's address, or NULL when the id is out of range. */
static inline const char *ferry_gather_rows_at(const ferry_gather_rows *g,
                                               int64_t id) {
  if (id < 0 || (uint64_t)id >= g->rows)
    return NULL;
  uint64_t r = (uint64_t)id;
  const ferry_be_memref *m = g->pieces;
  if (g->num_pieces > 1) {
    m += r / g->piece_rows;
    r %= g->piece_rows;
  }
  return (const char *)m->ptr + m->offset + r * g->row_bytes;
}

static inline float ferry_gather_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
  if (e == 0 && m == 0) {
    bits = sign;
  } else if (e == 0) { /* subnormal: normalise into f32's range */
    uint32_t exp = 113;
    while ((m & 0x400u) == 0) {
      m <<= 1;
      exp--;
    }
    bits = sign | (exp << 23) | ((m & 0x3ffu) << 13);
  } else if (e == 31) { /* inf, NaN (payload kept) */
    bits = sign | 0x7f800000u | (m << 13);
  } else {
    bits = sign | ((e + 112) << 23) | (m << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static inline void ferry_gather_rows_convert(const ferry_gather_rows *g,
                                             float *dst, const char *src) {
  const uint16_t *h = (const uint16_t *)src;
  if (g->dtype == FERRY_DTYPE_F16) {
    for (uint64_t c = 0; c < g->cols; c++)
      dst[c] = ferry_gather_f16_to_f32(h[c]);
  } else {
    for (uint64_t c = 0; c < g->cols; c++) {
      uint32_t bits = (uint32_t)h[c] << 16;
      memcpy(&dst[c], &bits, sizeof bits);
    }
  }
}

#if FERRY_GATHER_STREAM
/* One row of whole cache lines with 64 B non-temporal stores; d is 64 B
 * aligned. Narrower streaming stores (16 B SSE2, 32 B AVX2) were slower
 * than memcpy on the 2-core VM (1.49 and 2.09 GB/s against 2.06 for
 * memcpy and 2.37 for 64 B, 512 B rows, interleaved runs): a line must be
 * written by one store to leave its write-combining buffer whole. */
__attribute__((target("avx512f"))) static inline void
ferry_gather_rows_stream(char *d, const char *s, uint64_t bytes) {
  for (uint64_t o = 0; o < bytes; o += 64)
    _mm512_stream_si512((void *)(d + o),
                        _mm512_loadu_si512((const void *)(s + o)));
}
#endif

static inline void ferry_gather_rows_prefetch(const ferry_gather_rows *g,
                                              uint64_t i) {
  const char *p = ferry_gather_rows_at(g, ferry_gather_rows_id(g, i));
  if (p == NULL)
    return;
  for (uint64_t off = 0; off < g->row_bytes; off += FERRY_GATHER_LINE)
    __builtin_prefetch(p + off, 0, 3);
  /* A row not starting on a line boundary ends in one more line. */
  __builtin_prefetch(p + g->row_bytes - 1, 0, 3);
}

/* Rows ids[begin..end) into dst (dst holds row `begin`). Returns the first
 * bad position in [begin, end), or UINT64_MAX. */
static inline uint64_t ferry_gather_rows_run(const ferry_gather_rows *g,
                                             uint64_t begin, uint64_t end,
                                             char *dst) {
  bool same = g->out_dtype == g->dtype;
  /* Rows of whole lines written at line boundaries only (streaming and
   * ordinary stores to one line would flush its buffer half-written). */
  bool stream = g->stream && same && (uintptr_t)dst % FERRY_GATHER_LINE == 0;
  uint64_t bad = UINT64_MAX;
  uint64_t warm = end - begin > g->ahead ? begin + g->ahead : end;
  for (uint64_t i = begin; i < warm; i++)
    ferry_gather_rows_prefetch(g, i);
  for (uint64_t i = begin; i < end; i++) {
    if (g->ahead != 0 && i + g->ahead < end)
      ferry_gather_rows_prefetch(g, i + g->ahead);
    char *d = dst + (i - begin) * g->out_row_bytes;
    const char *s = ferry_gather_rows_at(g, ferry_gather_rows_id(g, i));
    if (s == NULL) {
      memset(d, 0, g->out_row_bytes);
      if (bad == UINT64_MAX)
        bad = i;
    } else if (!same) {
      ferry_gather_rows_convert(g, (float *)(void *)d, s);
#if FERRY_GATHER_STREAM
    } else if (stream) {
      ferry_gather_rows_stream(d, s, g->row_bytes);
#endif
    } else {
      memcpy(d, s, g->row_bytes);
    }
  }
#if FERRY_GATHER_STREAM
  /* Streaming stores are weakly ordered: make them visible before the
   * range counts as done. */
  if (stream)
    _mm_sfence();
#endif
  return bad;
}

#endif /* FERRY_CPU_GATHER_ROWS_H */
