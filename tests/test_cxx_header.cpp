// test_cxx_header.cpp - include/fusenet.h compiles as C++ (-std=c++11 -pedantic,
// warnings as errors) and its functions link and behave from C++: the
// extern "C" block, no C-only constructs in the header. Exit status 0 iff every
// check holds; each failure names itself on stderr.
#include <fusenet.h>

#include <cstdio>
#include <cstring>

static int failures = 0;

static void check(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "FAIL: %s\n", what);
        failures++;
    }
}

int main() {
    char want[32];
    std::snprintf(want, sizeof want, "%d.%d.%d", FUSENET_VERSION_MAJOR, FUSENET_VERSION_MINOR, FUSENET_VERSION_PATCH);
    check(std::strcmp(fusenet_version(), want) == 0, "fusenet_version() matches the header's macros");
    check(std::strcmp(fusenet_status_name(FUSENET_ERR_SHAPE), "FUSENET_ERR_SHAPE") == 0, "fusenet_status_name");

    fusenet_error err;
    fusenet_system_info info;
    check(fusenet_get_system_info(&info, &err) == FUSENET_OK && info.exact_mode == 1, "fusenet_get_system_info");

    fusenet_model_params mp = fusenet_model_default_params();
    mp.arch = FUSENET_ARCH_VGG16;
    fusenet_model *m = nullptr;
    check(fusenet_model_create(&mp, &m, &err) == FUSENET_OK && m != nullptr, "fusenet_model_create");
    check(fusenet_model_layer_count(m) == 19, "VGG16 without top has 19 layers (the input included)");
    size_t index = 0;
    check(fusenet_model_find_layer(m, "block5_conv3", &index, &err) == FUSENET_OK, "fusenet_model_find_layer");
    fusenet_layer_info li;
    check(fusenet_model_layer_info(m, index, 224, 224, &li, &err) == FUSENET_OK && li.h == 14 && li.w == 14 &&
              li.c == 512 && std::strcmp(li.type, "Conv2D") == 0,
          "block5_conv3 is a 14 x 14 x 512 Conv2D at 224 x 224");
    check(fusenet_model_find_layer(m, "block5_conv4", &index, &err) == FUSENET_ERR_UNKNOWN_LAYER &&
              err.status == FUSENET_ERR_UNKNOWN_LAYER && std::strstr(err.message, "block5_conv3") != nullptr,
          "an unknown layer is UNKNOWN_LAYER suggesting the closest name");

    fusenet_tap tap = {m, "block5_conv3"};
    fusenet_net_params np = fusenet_net_default_params();
    np.taps = &tap;
    np.n_taps = 1;
    np.threads = -1;
    fusenet_net *net = nullptr;
    check(fusenet_net_build(&np, &net, &err) == FUSENET_ERR_INVALID_ARG && net == nullptr, "threads -1 is refused");
    fusenet_dual_params dp = fusenet_dual_default_params();
    check(dp.net.batch == 1 && dp.net.fuse == 1 && dp.resnet_weights == nullptr, "dual defaults hold net defaults");
    fusenet_tensor t = {nullptr, 1, 224, 224, 3};
    check(fusenet_net_run(nullptr, &t, &err) == FUSENET_ERR_INVALID_ARG, "fusenet_net_run(NULL)");
    check(fusenet_net_step_count(nullptr) == 0, "fusenet_net_step_count(NULL)");
    fusenet_net_free(nullptr);
    fusenet_model_free(m);
    return failures ? 1 : 0;
}
