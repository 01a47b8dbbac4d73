# Sharded runs (tests/slurm):
#   shard_merge   embed --shard K/N and merge without Slurm (shards.py): merged output
#                 byte-identical to an unsharded embed for N = 1, 3, 8; done files checked
#                 with numpy and zlib; reruns, --strict, bad options and hostile shard
#                 directories (tests/BAD_INPUTS.md)
#   slurm_shards  the same on a real Slurm (run.sh): a single-node Slurm on localhost
#                 started and stopped by the test, examples/slurm/embed.sbatch as an
#                 array of 3 shards, one task cancelled while it runs, the array
#                 resubmitted, merge.sbatch after it (afterok), the merge compared byte for
#                 byte with an unsharded embed. Needs root, slurm-wlm and munge
#                 (tests/install-deps.sh); where Slurm cannot start it says why and is
#                 reported as skipped (exit 77), never as passed.
# Both need /usr/bin/python3 with numpy and PIL.
if(TARGET fusenet_cli AND EXISTS /usr/bin/python3)
  add_test(NAME shard_merge COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/slurm/shards.py
    --fusenet $<TARGET_FILE:fusenet_cli> --workdir ${CMAKE_CURRENT_BINARY_DIR}/shard_merge)
  set_tests_properties(shard_merge PROPERTIES LABELS cli TIMEOUT 600)
  if(NOT FUSENET_SANITIZE)
    add_test(NAME slurm_shards COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm/run.sh
      $<TARGET_FILE:fusenet_cli> ${CMAKE_CURRENT_BINARY_DIR}/slurm_shards)
    set_tests_properties(slurm_shards PROPERTIES LABELS slurm TIMEOUT 600 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
  endif()
endif()
