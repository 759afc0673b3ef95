# Warnings and sanitizers applied to every ferry target through
# ferry_target_defaults(<target>).
function(ferry_target_defaults target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes>
    # Messages are built with bounded snprintf into fixed buffers on purpose
    # (truncating a long path in an error text is fine); GCC's truncation
    # heuristic flags them differently at each optimisation level.
    $<$<AND:$<COMPILE_LANGUAGE:C>,$<C_COMPILER_ID:GNU>>:-Wno-format-truncation>
    # C++: only the GPU emulator's kernels (tests/gpu_emu), which are CUDA
    # sources with `#pragma unroll`.
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wshadow -Wno-unknown-pragmas>
    $<$<AND:$<COMPILE_LANGUAGE:C,CXX>,$<BOOL:${FERRY_WERROR}>>:-Werror>)
  if(FERRY_SANITIZE)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=${FERRY_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all>)
    target_link_options(${target} PRIVATE -fsanitize=${FERRY_SANITIZE})
  endif()
endfunction()
