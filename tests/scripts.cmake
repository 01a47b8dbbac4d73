# Script-driven tests: conformance of the fusenet CLI against the independent
# PyTorch reference in tests/ref (Debian's python3 with torch, h5py, numpy).
set(FUSENET_REF_PYTHON /usr/bin/python3 CACHE FILEPATH
  "Python interpreter with torch, h5py and numpy for the conformance tests")

set(_fn_ref_ok FALSE)
if(NOT EXISTS ${FUSENET_REF_PYTHON})
  message(STATUS "conformance_pytorch: ${FUSENET_REF_PYTHON} not found; test not registered")
elseif(NOT TARGET fusenet_cli)
  message(STATUS "conformance_pytorch: no fusenet_cli target; test not registered")
else()
  execute_process(COMMAND ${FUSENET_REF_PYTHON} -c "import torch, h5py, numpy"
    RESULT_VARIABLE _fn_ref_rc OUTPUT_QUIET ERROR_QUIET)
  if(_fn_ref_rc EQUAL 0)
    set(_fn_ref_ok TRUE)
  else()
    message(STATUS "conformance_pytorch: ${FUSENET_REF_PYTHON} lacks torch/h5py/numpy; test not registered")
  endif()
endif()

if(_fn_ref_ok)
  add_test(NAME conformance_pytorch
    COMMAND ${FUSENET_REF_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/conformance.py
      --fusenet $<TARGET_FILE:fusenet_cli>
      --workdir ${CMAKE_CURRENT_BINARY_DIR}/conformance)
  set_tests_properties(conformance_pytorch PROPERTIES LABELS conformance TIMEOUT 1200)

  # The reference checked on its own: parameter totals, shapes, naive numpy layers, resize formulas.
  add_test(NAME reference_selfcheck
    COMMAND ${FUSENET_REF_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/torch_ref.py selfcheck)
  set_tests_properties(reference_selfcheck PROPERTIES LABELS conformance TIMEOUT 300)
endif()
unset(_fn_ref_ok)
unset(_fn_ref_rc)

# int8 fidelity (issue #10 item 3): our int8 against our fp32 and PyTorch's FX int8 on the same
# weights and held-out images (tests/ref/int8_fidelity.py, 96x96). Skipped (77) where `fusenet info`
# offers no int8 mode. Label fidelity: part of the release suite (tests/run.sh runs every label).
if(EXISTS ${FUSENET_REF_PYTHON} AND TARGET fusenet_cli)
  execute_process(COMMAND ${FUSENET_REF_PYTHON} -c "import torch, h5py, numpy, PIL"
    RESULT_VARIABLE _fn_int8_rc OUTPUT_QUIET ERROR_QUIET)
  if(_fn_int8_rc EQUAL 0)
    add_test(NAME int8_fidelity
      COMMAND ${FUSENET_REF_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/int8_fidelity.py
        --fusenet $<TARGET_FILE:fusenet_cli> --workdir ${CMAKE_CURRENT_BINARY_DIR}/int8_fidelity)
    set_tests_properties(int8_fidelity PROPERTIES LABELS fidelity TIMEOUT 900 SKIP_RETURN_CODE 77)
  else()
    message(STATUS "int8_fidelity: ${FUSENET_REF_PYTHON} lacks torch/h5py/numpy/PIL; test not registered")
  endif()
  unset(_fn_int8_rc)
endif()
