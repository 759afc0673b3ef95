/*
 * ferry: Graphs, neighbor sampling and the hard-batch selector (see docs/sampler.md).
 *
 * Included by <ferry/ferry.h>; may also be included on its own.
 */
#ifndef FERRY_GRAPH_H
#define FERRY_GRAPH_H

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* FERRY_GRAPH_H */
