/* archs.c - the registry of architectures: how to build each one and what its
 * official weight files look like. Adding a model: its builder (a new
 * models/NAME.c, read side by side with keras/applications/NAME.py), a
 * fusenet_arch value (include/fusenet.h) and its row here. */
#include "models.h"

const fn_arch_info fusenet__archs[] = {
    {FUSENET_ARCH_RESNET50, "resnet50", "ResNet50", fusenet__build_resnet50, 0, "conv1_conv"},
    {FUSENET_ARCH_VGG16, "vgg16", "VGG16", fusenet__build_vgg16, 1, "block1_conv1"},
    /* Deeper variants after the shallower ones: the wrong-file check reads the rows backwards. */
    {FUSENET_ARCH_RESNET101, "resnet101", "ResNet101", fusenet__build_resnet101, 0, "conv4_block23_1_conv"},
    {FUSENET_ARCH_RESNET152, "resnet152", "ResNet152", fusenet__build_resnet152, 0, "conv3_block8_1_conv"},
    {FUSENET_ARCH_VGG19, "vgg19", "VGG19", fusenet__build_vgg19, 1, "block5_conv4"},
};
const int fusenet__n_archs = (int)(sizeof fusenet__archs / sizeof fusenet__archs[0]);

const fn_arch_info *fusenet__arch(fusenet_arch arch) {
    for (int i = 0; i < fusenet__n_archs; i++)
        if (fusenet__archs[i].arch == arch) return &fusenet__archs[i];
    return NULL;
}
