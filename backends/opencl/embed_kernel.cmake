# Turns one OpenCL C file into a C source holding its text, at build time:
#   cmake -DSOURCE=<file.cl> -DOUTPUT=<file.c> -DSYMBOL=<name> -P embed_kernel.cmake
# The text becomes a byte array rather than a string literal: -Wpedantic
# rejects string literals longer than C11's 4095-character minimum.
foreach(var SOURCE OUTPUT SYMBOL)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_kernel.cmake: -D${var}=... is required")
  endif()
endforeach()
file(READ "${SOURCE}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR size "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# 12 bytes a line (CMake regexes have no {n} repeat).
string(REPEAT "0x[0-9a-f][0-9a-f]," 12 line)
string(REGEX REPLACE "(${line})" "\\1\n    " bytes "${bytes}")
get_filename_component(name "${SOURCE}" NAME)
file(WRITE "${OUTPUT}"
"/* Generated from kernels/${name} by embed_kernel.cmake: do not edit. */
#include <stddef.h>

static const unsigned char text[] = {
    ${bytes}0x00};
const char *const ${SYMBOL} = (const char *)text;
const size_t ${SYMBOL}_size = ${size};
")
