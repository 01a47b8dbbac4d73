/* dual_features.c - the Keras reference program, written in C with libfusenet:
 *
 *   resnet = ResNet50(include_top=False, weights='imagenet')
 *   vgg = VGG16(include_top=False, weights='imagenet')
 *   a = resnet.get_layer('conv4_block6_out').output
 *   b = vgg.get_layer('block5_conv3').output
 *   fused = concatenate([Resizing(...)(a), Resizing(...)(b)], axis=-1)
 *
 * usage: dual_features RESNET.h5 VGG.h5 IMAGE
 */
#include <stdio.h>
#include <stdlib.h>

#include "fusenet.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s RESNET.h5 VGG.h5 IMAGE\n", argv[0]);
        return 2;
    }
    fusenet_error err;
    fusenet_dual_params p = fusenet_dual_default_params(); /* 224x224, batch 1, bilinear, smaller H/W */
    p.resnet_weights = argv[1];
    p.vgg_weights = argv[2];
    fusenet_net *net;
    if (fusenet_build_dual(&p, &net, &err) != FUSENET_OK) {
        fprintf(stderr, "build: %s\n", err.message);
        return 1;
    }

    float *image = malloc(224 * 224 * 3 * sizeof *image);
    fusenet_image_params ip = fusenet_image_default_params(); /* like keras.utils.load_img + preprocess_input */
    int rc = 1;
    if (!image) goto done;
    if (fusenet_image_load(argv[3], &ip, image, &err) != FUSENET_OK) {
        fprintf(stderr, "image: %s\n", err.message);
        goto done;
    }
    fusenet_tensor in = {image, 1, 224, 224, 3}, a, b, fused;
    if (fusenet_net_run(net, &in, &err) != FUSENET_OK || fusenet_net_tap_output(net, 0, &a, &err) != FUSENET_OK ||
        fusenet_net_tap_output(net, 1, &b, &err) != FUSENET_OK || fusenet_net_output(net, &fused, &err) != FUSENET_OK) {
        fprintf(stderr, "run: %s\n", err.message);
        goto done;
    }
    printf("conv4_block6_out: (%d, %d, %d, %d)\n", a.n, a.h, a.w, a.c);
    printf("block5_conv3:     (%d, %d, %d, %d)\n", b.n, b.h, b.w, b.c);
    printf("fused:            (%d, %d, %d, %d)\n", fused.n, fused.h, fused.w, fused.c);
    double sum = 0;
    size_t count = (size_t)fused.n * fused.h * fused.w * fused.c;
    for (size_t i = 0; i < count; i++) sum += fused.data[i];
    printf("fused mean: %g\n", sum / (double)count);
    rc = 0;
done:
    free(image);
    fusenet_net_free(net);
    return rc;
}
