/*
 * ferry: Fused LayerNorm and RMSNorm, forward and backward (see docs/norm.md).
 *
 * Included by <ferry/ferry.h>; may also be included on its own.
 */
#ifndef FERRY_NORM_H
#define FERRY_NORM_H

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* FERRY_NORM_H */
