# Command-line robustness (tests/cli):
#   cli_hostile   the catalogue of bad inputs against every fusenet subcommand
#                 (hostile.py: one line on stderr naming the culprit, non-zero
#                 status, no crash, no output file left behind)
#   cli_taps      --tap MODEL:WEIGHTS:LAYER (taps.py): the short form's output bit for
#                 bit, three and four taps against numpy resize + concat of single taps
#   cli_valgrind  memcheck on the tool's main paths and on failing runs of the
#                 catalogue (valgrind.sh; not in sanitizer builds)
# Both need a Python with numpy, h5py and PIL (Debian: python3-numpy,
# python3-h5py, python3-pil).
set(FUSENET_CLI_PYTHON /usr/bin/python3 CACHE FILEPATH
  "Python interpreter with numpy, h5py and PIL for the tests in tests/cli")

set(_fn_cli_ok FALSE)
if(NOT TARGET fusenet_cli)
  message(STATUS "cli tests: no fusenet_cli target; not registered")
elseif(NOT EXISTS ${FUSENET_CLI_PYTHON})
  message(STATUS "cli tests: ${FUSENET_CLI_PYTHON} not found; not registered")
else()
  execute_process(COMMAND ${FUSENET_CLI_PYTHON} -c "import numpy, h5py, PIL"
    RESULT_VARIABLE _fn_cli_rc OUTPUT_QUIET ERROR_QUIET)
  if(_fn_cli_rc EQUAL 0)
    set(_fn_cli_ok TRUE)
  else()
    message(STATUS "cli tests: ${FUSENET_CLI_PYTHON} lacks numpy/h5py/PIL; not registered")
  endif()
endif()

if(_fn_cli_ok)
  set(_fn_cli_args --fusenet $<TARGET_FILE:fusenet_cli> --workdir ${CMAKE_CURRENT_BINARY_DIR}/cli_hostile)
  if(FUSENET_SANITIZE)
    # ASan reserves terabytes of shadow memory: no address-space limit; its
    # reports exit with a status of their own, which fails the case.
    list(APPEND _fn_cli_args --no-as-limit --checker-status 86)
  endif()
  add_test(NAME cli_hostile COMMAND ${FUSENET_CLI_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cli/hostile.py ${_fn_cli_args})
  set_tests_properties(cli_hostile PROPERTIES LABELS cli TIMEOUT 600)
  # --tap MODEL:WEIGHTS:LAYER: bit for bit the short form; several taps against numpy resize + concat
  add_test(NAME cli_taps COMMAND ${FUSENET_CLI_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cli/taps.py
    --fusenet $<TARGET_FILE:fusenet_cli> --workdir ${CMAKE_CURRENT_BINARY_DIR}/cli_taps)
  set_tests_properties(cli_taps PROPERTIES LABELS cli TIMEOUT 900)
  if(FUSENET_SANITIZE)
    set_tests_properties(cli_hostile PROPERTIES ENVIRONMENT
      "ASAN_OPTIONS=detect_leaks=1:exitcode=86;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86")
  endif()

  find_program(FUSENET_VALGRIND valgrind)
  if(FUSENET_VALGRIND AND NOT FUSENET_SANITIZE)
    add_test(NAME cli_valgrind COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/valgrind.sh
      $<TARGET_FILE:fusenet_cli> ${CMAKE_CURRENT_BINARY_DIR}/cli_valgrind)
    set_tests_properties(cli_valgrind PROPERTIES LABELS valgrind TIMEOUT 1200)
  elseif(NOT FUSENET_VALGRIND)
    message(STATUS "cli_valgrind: valgrind not found; not registered")
  endif()
endif()
unset(_fn_cli_ok)
unset(_fn_cli_rc)
unset(_fn_cli_args)

# 'fusenet CMD --help' lists that command's options and no other command's;
# 'fusenet --help' lists the commands.
if(TARGET fusenet_cli)
  foreach(_fn_help "layers;--summary;--alpha" "tap;--layer NAME;--resnet-weights" "fuse;--resnet-layer;--model"
                   "bench;--profile;--output" "embed;--strict;--query" "similar;--embeddings;--batch"
                   "viz;--output-size;--seed" "make-weights;--seed;--threads")
    list(GET _fn_help 0 _fn_cmd)
    list(GET _fn_help 1 _fn_own)
    list(GET _fn_help 2 _fn_foreign)
    add_test(NAME cli_help_${_fn_cmd} COMMAND fusenet_cli ${_fn_cmd} --help)
    set_tests_properties(cli_help_${_fn_cmd} PROPERTIES LABELS cli
      PASS_REGULAR_EXPRESSION "usage: fusenet ${_fn_cmd} .*\n  ${_fn_own}"
      FAIL_REGULAR_EXPRESSION "\n  ${_fn_foreign} ")
  endforeach()
  # --tap MODEL:WEIGHTS:LAYER: an option of the commands with a fused net only
  foreach(_fn_cmd fuse bench embed similar)
    add_test(NAME cli_help_tap_${_fn_cmd} COMMAND fusenet_cli ${_fn_cmd} --help)
    set_tests_properties(cli_help_tap_${_fn_cmd} PROPERTIES LABELS cli
      PASS_REGULAR_EXPRESSION "usage: fusenet ${_fn_cmd} .*\n  --tap MODEL:WEIGHTS:LAYER +a tap of the fused net"
      FAIL_REGULAR_EXPRESSION "\n  --weights ")
  endforeach()
  foreach(_fn_cmd tap viz layers)
    add_test(NAME cli_help_no_tap_${_fn_cmd} COMMAND fusenet_cli ${_fn_cmd} --help)
    set_tests_properties(cli_help_no_tap_${_fn_cmd} PROPERTIES LABELS cli
      PASS_REGULAR_EXPRESSION "usage: fusenet ${_fn_cmd} "
      FAIL_REGULAR_EXPRESSION "\n  --tap ")
  endforeach()
  add_test(NAME cli_help COMMAND fusenet_cli --help)
  set_tests_properties(cli_help PROPERTIES LABELS cli
    PASS_REGULAR_EXPRESSION "commands:\n  layers .*\n  make-weights .*\n  version ")
endif()
unset(_fn_help)
unset(_fn_cmd)
unset(_fn_own)
unset(_fn_foreign)

# 'fusenet info': its fields against independent values, and fast mode as it reports it.
if(TARGET fusenet_cli)
  add_test(NAME cli_info COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/info.sh $<TARGET_FILE:fusenet_cli> ${dnnl_VERSION}
    ${CMAKE_CURRENT_BINARY_DIR}/cli_info)
  set_tests_properties(cli_info PROPERTIES LABELS cli TIMEOUT 300)
endif()

# 'fusenet layers --summary' totals equal Keras' published ones (keras.io/api/applications).
if(TARGET fusenet_cli)
  foreach(_fn_sum "resnet101;42,658,176" "resnet152;58,370,944" "vgg19;20,024,384")
    list(GET _fn_sum 0 _fn_model)
    list(GET _fn_sum 1 _fn_total)
    add_test(NAME cli_summary_${_fn_model} COMMAND fusenet_cli layers --model ${_fn_model} --summary)
    set_tests_properties(cli_summary_${_fn_model} PROPERTIES LABELS cli
      PASS_REGULAR_EXPRESSION "\nTotal params: ${_fn_total}\n")
  endforeach()
endif()
unset(_fn_sum)
unset(_fn_model)
unset(_fn_total)
