/*
 * ferry: Feature tables and zero-copy gather (see docs/table.md).
 *
 * Included by <ferry/ferry.h>; may also be included on its own.
 */
#ifndef FERRY_TABLE_H
#define FERRY_TABLE_H

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* FERRY_TABLE_H */
