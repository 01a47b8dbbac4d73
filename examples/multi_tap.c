/* multi_tap.c - three taps from two networks, resized to 10x10 and fused.
 *
 * The general API: load each model once (reading only the weights the taps
 * need), build one net with any taps of any models, run it. The Keras
 * equivalent:
 *
 *   a = resnet.get_layer('conv3_block4_out').output   # 28x28x512 at 224x224
 *   b = resnet.get_layer('conv4_block6_out').output   # 14x14x1024
 *   c = vgg.get_layer('block5_conv3').output          # 14x14x512
 *   fused = concatenate([Resizing(10, 10)(t) for t in (a, b, c)])  # 10x10x2048
 *
 * usage: multi_tap RESNET.h5 VGG.h5 IMAGE
 */
#include <stdio.h>
#include <stdlib.h>

#include "fusenet.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s RESNET.h5 VGG.h5 IMAGE\n", argv[0]);
        return 2;
    }
    const char *resnet_layers[2] = {"conv3_block4_out", "conv4_block6_out"};
    const char *vgg_layers[1] = {"block5_conv3"};
    fusenet_error err;
    fusenet_model *resnet = NULL, *vgg = NULL;
    fusenet_net *net = NULL;
    float *image = NULL;
    int rc = 1;

    fusenet_model_params mp = fusenet_model_default_params();
    mp.arch = FUSENET_ARCH_RESNET50;
    mp.needed_layers = resnet_layers; /* read only what these layers depend on */
    mp.n_needed = 2;
    if (fusenet_model_load(argv[1], &mp, &resnet, &err) != FUSENET_OK) goto fail;
    mp.arch = FUSENET_ARCH_VGG16;
    mp.needed_layers = vgg_layers;
    mp.n_needed = 1;
    if (fusenet_model_load(argv[2], &mp, &vgg, &err) != FUSENET_OK) goto fail;

    fusenet_tap taps[3] = {{resnet, resnet_layers[0]}, {resnet, resnet_layers[1]}, {vgg, vgg_layers[0]}};
    fusenet_net_params np = fusenet_net_default_params(); /* batch 1, 224x224, fuse, bilinear */
    np.taps = taps;
    np.n_taps = 3;
    np.size = FUSENET_SIZE_EXPLICIT;
    np.out_h = 10;
    np.out_w = 10;
    if (fusenet_net_build(&np, &net, &err) != FUSENET_OK) goto fail;
    /* The net has its own copies of the weights: the models can go. */
    fusenet_model_free(resnet);
    fusenet_model_free(vgg);
    resnet = vgg = NULL;

    image = malloc(224 * 224 * 3 * sizeof *image);
    if (!image) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    fusenet_image_params ip = fusenet_image_default_params();
    if (fusenet_image_load(argv[3], &ip, image, &err) != FUSENET_OK) goto fail;
    fusenet_tensor in = {image, 1, 224, 224, 3}, t, fused;
    if (fusenet_net_run(net, &in, &err) != FUSENET_OK) goto fail;

    int channel = 0;
    for (size_t i = 0; i < 3; i++) {
        if (fusenet_net_tap_output(net, i, &t, &err) != FUSENET_OK) goto fail;
        printf("%-17s (%d, %d, %d, %d)  -> fused channels %d..%d\n", taps[i].layer, t.n, t.h, t.w, t.c, channel,
               channel + t.c - 1);
        channel += t.c;
    }
    if (fusenet_net_output(net, &fused, &err) != FUSENET_OK) goto fail;
    printf("fused:            (%d, %d, %d, %d)\n", fused.n, fused.h, fused.w, fused.c);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "%s\n", err.message);
done:
    free(image);
    fusenet_net_free(net);
    fusenet_model_free(resnet);
    fusenet_model_free(vgg);
    return rc;
}
