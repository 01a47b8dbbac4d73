# libFuzzer targets (tests/fuzz/fuzz_*.c), built only with -DFUSENET_FUZZ=ON in
# a tree configured with clang (CC=clang); tests/fuzz/run.sh configures such a
# tree, builds the targets and runs each one for a bounded time.
#
# The library sources are compiled once more into fusenet_fuzzlib with
# -fsanitize=fuzzer-no-link (coverage for the fuzzer) and ASan + UBSan; the
# targets link it with -fsanitize=fuzzer. oneDNN, libhdf5 (used only to write)
# and libc are not instrumented. Each target is also a CTest test (label "fuzz") that replays
# its committed corpus and regression inputs without fuzzing.
option(FUSENET_FUZZ "Build the libFuzzer targets of tests/fuzz (needs clang)" OFF)

if(FUSENET_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "FUSENET_FUZZ needs clang as the C compiler (configure with CC=clang)")
  endif()
  set(_fn_fuzz_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)

  add_library(fusenet_fuzzlib STATIC ${FUSENET_SOURCES} ${FUSENET_TOOLS_SOURCES})
  target_include_directories(fusenet_fuzzlib
    PUBLIC ${PROJECT_SOURCE_DIR}/include ${FUSENET_INTERNAL_DIRS} ${PROJECT_SOURCE_DIR}/src/tools
    PRIVATE ${HDF5_C_INCLUDE_DIRS} ${STB_INCLUDE_DIR})
  target_compile_definitions(fusenet_fuzzlib PRIVATE _POSIX_C_SOURCE=200809L ${HDF5_C_DEFINITIONS})
  target_compile_options(fusenet_fuzzlib PRIVATE ${FUSENET_WARNINGS} -ffp-contract=off
    -fsanitize=fuzzer-no-link ${_fn_fuzz_san})
  target_link_libraries(fusenet_fuzzlib PUBLIC DNNL::dnnl ${HDF5_C_LIBRARIES} ZLIB::ZLIB JPEG::JPEG PkgConfig::LIBZIP OpenMP::OpenMP_C m)

  foreach(_fn_t npy image h5 h5_keras calib keras3 zip)
    add_executable(fuzz_${_fn_t} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${_fn_t}.c)
    target_include_directories(fuzz_${_fn_t} PRIVATE ${HDF5_C_INCLUDE_DIRS})
    target_compile_definitions(fuzz_${_fn_t} PRIVATE _POSIX_C_SOURCE=200809L ${HDF5_C_DEFINITIONS})
    target_compile_options(fuzz_${_fn_t} PRIVATE ${FUSENET_WARNINGS} -fsanitize=fuzzer ${_fn_fuzz_san})
    target_link_options(fuzz_${_fn_t} PRIVATE -fsanitize=fuzzer ${_fn_fuzz_san})
    target_link_libraries(fuzz_${_fn_t} PRIVATE fusenet_fuzzlib)

    set(_fn_dirs)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${_fn_t})
      list(APPEND _fn_dirs ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${_fn_t})
    endif()
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/regressions/${_fn_t})
      list(APPEND _fn_dirs ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/regressions/${_fn_t})
    endif()
    # -runs=0: execute every input of the directories once, fuzz nothing, write nothing.
    if(_fn_dirs)
      add_test(NAME fuzz_${_fn_t}_replay COMMAND fuzz_${_fn_t} -runs=0 -rss_limit_mb=2048 -timeout=10 ${_fn_dirs})
      set_tests_properties(fuzz_${_fn_t}_replay PROPERTIES LABELS fuzz TIMEOUT 300)
    endif()
  endforeach()
  unset(_fn_dirs)

  # The tools' JSON reader (done files of sharded runs) on its own: compiled in here.
  add_executable(fuzz_json ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_json.c ${PROJECT_SOURCE_DIR}/src/tools/json.c)
  target_include_directories(fuzz_json PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src/tools)
  target_compile_definitions(fuzz_json PRIVATE _POSIX_C_SOURCE=200809L)
  target_compile_options(fuzz_json PRIVATE ${FUSENET_WARNINGS} -fsanitize=fuzzer ${_fn_fuzz_san})
  target_link_options(fuzz_json PRIVATE -fsanitize=fuzzer ${_fn_fuzz_san})
  add_test(NAME fuzz_json_replay COMMAND fuzz_json -runs=0 -timeout=10 ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/json)
  set_tests_properties(fuzz_json_replay PROPERTIES LABELS fuzz TIMEOUT 300)
  unset(_fn_fuzz_san)
endif()
