/* FERRY_API marks the public symbols of libferry, which is built with hidden
 * visibility by default so that nothing else leaks into its ABI. */
#ifndef FERRY_EXPORT_H
#define FERRY_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define FERRY_API __attribute__((visibility("default")))
#else
#define FERRY_API
#endif

#endif /* FERRY_EXPORT_H */
