# ferry_add_plugin(<name> SOURCES ... [LINK ...])
# Builds backends/<name> as a MODULE library libferry-<name>.so in the build
# tree's <libdir>/ferry/ (and installs it there). Its only export is
# ferry_backend_<name>_entry (version script); it never links libferry.
function(ferry_add_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;LINK" ${ARGN})
  set(target ferry-${name})
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX "lib" OUTPUT_NAME "ferry-${name}"
    LIBRARY_OUTPUT_DIRECTORY ${FERRY_PLUGIN_BUILD_DIR})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  ferry_target_defaults(${target})
  set(vs ${CMAKE_CURRENT_BINARY_DIR}/${target}.map)
  file(WRITE ${vs} "{ global: ferry_backend_${name}_entry; local: *; };\n")
  target_link_options(${target} PRIVATE "LINKER:--version-script=${vs}" "LINKER:--no-undefined")
  target_link_libraries(${target} PRIVATE ${P_LINK})
  install(TARGETS ${target} LIBRARY DESTINATION ${FERRY_PLUGIN_INSTALL_DIR} COMPONENT runtime)
endfunction()
