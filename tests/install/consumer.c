/* A program that uses an installed libfusenet the way any user would: only
 * <fusenet.h>, found through pkg-config or find_package(fusenet). */
#include <fusenet.h>

#include <stdio.h>

int main(void) {
    printf("version %s (header %d.%d.%d)\n", fusenet_version(), FUSENET_VERSION_MAJOR,
           FUSENET_VERSION_MINOR, FUSENET_VERSION_PATCH);

    fusenet_error err;
    fusenet_model_params mp = fusenet_model_default_params();
    mp.arch = FUSENET_ARCH_RESNET50;
    fusenet_model *model = NULL;
    if (fusenet_model_create(&mp, &model, &err) != FUSENET_OK) {
        fprintf(stderr, "fusenet_model_create: %s\n", err.message);
        return 1;
    }
    printf("resnet50 layers %zu\n", fusenet_model_layer_count(model));

    size_t index = 0;
    fusenet_layer_info info;
    if (fusenet_model_find_layer(model, "conv4_block6_out", &index, &err) != FUSENET_OK ||
        fusenet_model_layer_info(model, index, 224, 224, &info, &err) != FUSENET_OK) {
        fprintf(stderr, "conv4_block6_out: %s\n", err.message);
        fusenet_model_free(model);
        return 1;
    }
    printf("%s %s %dx%dx%d\n", info.name, info.type, (int)info.h, (int)info.w, (int)info.c);
    fusenet_model_free(model);

    fusenet_model *missing = NULL;
    fusenet_status st = fusenet_model_load("no-such-dir/no-such-weights.h5", &mp, &missing, &err);
    printf("missing file %s\n", fusenet_status_name(st));
    if (st == FUSENET_OK) {
        fusenet_model_free(missing);
        return 1;
    }
    return 0;
}
