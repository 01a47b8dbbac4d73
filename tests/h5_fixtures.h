/* h5_fixtures.h - attribute writers shared by the HDF5 reader tests (test_h5.c,
 * test_h5_formats.c): they write Keras' name lists with the libhdf5 C API.
 * Include after cmocka.h and hdf5.h. */
#ifndef FN_TEST_H5_FIXTURES_H
#define FN_TEST_H5_FIXTURES_H

/* A 1-D string attribute: fixed-length NUL-padded (size = longest name) or
 * variable-length. */
static void fx_strings(hid_t obj, const char *name, const char *const *v, size_t n, int variable) {
    hsize_t dim = n;
    hid_t space = H5Screate_simple(1, &dim, NULL);
    hid_t type = H5Tcopy(H5T_C_S1);
    assert_true(space >= 0 && type >= 0);
    if (variable) {
        assert_true(H5Tset_size(type, H5T_VARIABLE) >= 0);
        hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(a >= 0);
        assert_true(H5Awrite(a, type, v) >= 0);
        H5Aclose(a);
    } else {
        size_t max = 1;
        for (size_t i = 0; i < n; i++)
            if (strlen(v[i]) > max) max = strlen(v[i]);
        char *buf = calloc(n ? n : 1, max);
        assert_non_null(buf);
        for (size_t i = 0; i < n; i++) memcpy(buf + i * max, v[i], strlen(v[i]));
        assert_true(H5Tset_size(type, max) >= 0);
        assert_true(H5Tset_strpad(type, H5T_STR_NULLPAD) >= 0);
        hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(a >= 0);
        assert_true(H5Awrite(a, type, buf) >= 0);
        H5Aclose(a);
        free(buf);
    }
    H5Tclose(type);
    H5Sclose(space);
}

/* The empty weight_names of a weightless layer: zero-length 1-D float64. */
static void fx_empty(hid_t obj, const char *name) {
    hsize_t zero = 0;
    double dummy = 0;
    hid_t space = H5Screate_simple(1, &zero, NULL);
    hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, H5T_NATIVE_DOUBLE, &dummy) >= 0);
    H5Aclose(a);
    H5Sclose(space);
}

#endif
