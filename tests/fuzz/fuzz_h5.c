/* fuzz_h5.c - libFuzzer target for the HDF5 weights reader (src/io/h5.c) and the
 * weight binding of fusenet_model_load (src/graph/model.c), on raw bytes: each input
 * is written to the scratch file as is and checked by h5f_check_file (see
 * fuzz_h5_check.h).
 *
 * Most mutations of an HDF5 file break HDF5's own structures, so this target
 * mainly exercises libhdf5: with the 1.10 releases it finds crashes, hangs and
 * leaks inside libhdf5 within seconds (tests/fuzz/run.sh triages them).
 * fuzz_h5_keras.c keeps the files valid HDF5 and fuzzes the Keras layout. */
#include "fuzz_h5_check.h"

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
    h5f_open_scratch();
    h5f_write_scratch(data, size);
    h5f_check_file(size > 0 && (data[size - 1] & 1));
    return 0;
}
