/*
 * ferry: The fused Adan optimizer step (see docs/adan.md).
 *
 * Included by <ferry/ferry.h>; may also be included on its own.
 */
#ifndef FERRY_ADAN_H
#define FERRY_ADAN_H

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* FERRY_ADAN_H */
