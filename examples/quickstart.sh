#!/usr/bin/env bash
# Installs the dependencies, builds libfusenet and computes the fused feature map
# (ResNet50 conv4_block6_out + VGG16 block5_conv3) of the bundled example image.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target fusenet_cli >/dev/null

MODELS=${FUSENET_MODELS:-models}
RESNET=$MODELS/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5
VGG=$MODELS/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
if [ -f "$RESNET" ] && [ -f "$VGG" ]; then
    echo "Using the official Keras weights in $MODELS."
else
    echo "The official Keras weights are not in $MODELS/ (see models/README.md: models/fetch_weights.sh gets them)."
    echo "Running on SEEDED RANDOM weights written in the official file layout instead: the numbers below are not ImageNet features."
    RESNET=build/random_resnet50_notop.h5
    VGG=build/random_vgg16_notop.h5
    ./build/fusenet make-weights --model resnet50 --seed 1 --output "$RESNET"
    ./build/fusenet make-weights --model vgg16 --seed 2 --output "$VGG"
fi
./build/fusenet fuse --resnet-weights "$RESNET" --vgg-weights "$VGG" \
    --images examples/data/example.jpg --output build/example_fused.npy --stats
echo "Wrote build/example_fused.npy (NHWC float32)."
