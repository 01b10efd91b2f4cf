# Common compile flags for every trnsim target.
add_library(trnsim_flags INTERFACE)
target_compile_options(trnsim_flags INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wno-missing-field-initializers)
if(TRNSIM_WERROR)
  target_compile_options(trnsim_flags INTERFACE -Werror)
endif()
# GCC 12's -Wrestrict fires inside libstdc++'s std::string at -O2/-O3 on correct code (GCC
# bug 105651), which -Werror turns into a failed build.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(trnsim_flags INTERFACE -Wno-restrict)
endif()
if(TRNSIM_SANITIZE)
  target_compile_options(trnsim_flags INTERFACE -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(trnsim_flags INTERFACE -fsanitize=address,undefined)
endif()
if(TRNSIM_BUILD_FUZZ)
  # Coverage instrumentation for libFuzzer in every library; the fuzz targets themselves add
  # -fsanitize=fuzzer (the runtime with main) in fuzz/CMakeLists.txt. UBSan findings abort, so
  # libFuzzer stops and saves the input instead of printing a report and fuzzing on.
  target_compile_options(trnsim_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                         -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(trnsim_flags INTERFACE -fsanitize=address,undefined)
endif()

# trnsim_layer(NAME DEPS dep... PRIVATE_DEPS dep...): one static library per folder of
# src/trnsim, sources globbed so a new file in a layer needs no CMake edit (re-globbed at
# every build thanks to CONFIGURE_DEPENDS).
function(trnsim_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS;PRIVATE_DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  if(NOT srcs)
    # A layer with headers only so far: CMake refuses a static library without sources, so
    # give it a generated, empty one. It stays a STATIC library, so target_sources() and
    # PRIVATE links in the layer's CMakeLists keep working, and the first real .cpp replaces
    # this file at the next build.
    set(placeholder ${CMAKE_CURRENT_BINARY_DIR}/trnsim_${name}_placeholder.cpp)
    file(CONFIGURE OUTPUT ${placeholder}
         CONTENT "// Generated: layer ${name} has no .cpp yet.\nnamespace trnsim::detail {\nint ${name}LayerPlaceholder() { return 0; }\n}  // namespace trnsim::detail\n")
    set(srcs ${placeholder})
  endif()
  add_library(trnsim_${name} STATIC ${srcs})
  target_include_directories(trnsim_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(trnsim_${name} PUBLIC ${ARG_DEPS} PRIVATE trnsim_flags ${ARG_PRIVATE_DEPS})
endfunction()

# trnsim_gtest(LAYER DEPS ...): one GoogleTest executable per tests/<layer> folder.
# Every test carries its layer as a label. A test whose suite or name contains "Slow"
# (TEST(Bf16Slow, AllFp32Values)) belongs to the slow tier: `make test` skips it with
# `ctest -E Slow`, `make test-slow` runs it with `ctest -R Slow`.
function(trnsim_gtest layer)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${layer}/*.cpp)
  if(NOT srcs)
    return()
  endif()
  add_executable(test_${layer} ${srcs})
  target_link_libraries(test_${layer} PRIVATE ${ARG_DEPS} GTest::gtest_main trnsim_flags)
  target_compile_definitions(test_${layer} PRIVATE TRNSIM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  gtest_discover_tests(test_${layer} DISCOVERY_MODE PRE_TEST PROPERTIES LABELS ${layer})
endfunction()
