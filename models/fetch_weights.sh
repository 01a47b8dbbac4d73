#!/usr/bin/env bash
# Downloads the official Keras ResNet50 and VGG16 weight files (with and without
# the top) into this folder and verifies their MD5 hashes, as Keras' get_file
# does. A file whose hash does not match is deleted and the script fails.
#   usage: models/fetch_weights.sh [notop|top|all|family]   (default: notop)
#   family: ResNet101, ResNet152 and VGG19, with and without the top
set -euo pipefail
cd "$(dirname "$0")"
which=${1:-notop}
base_resnet=https://storage.googleapis.com/tensorflow/keras-applications/resnet
base_vgg=https://storage.googleapis.com/tensorflow/keras-applications/vgg16
base_vgg19=https://storage.googleapis.com/tensorflow/keras-applications/vgg19
# file  md5  url
files_notop="
resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 4d473c1dd8becc155b73f8504c6f6626 $base_resnet
vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 6d6bbae143d832006294945121d1f1fc $base_vgg"
files_top="
resnet50_weights_tf_dim_ordering_tf_kernels.h5 2cb95161c43110f7111970584f804107 $base_resnet
vgg16_weights_tf_dim_ordering_tf_kernels.h5 64373286793e3c8b2b4e3219cbf3544b $base_vgg"
# keras/applications/resnet.py WEIGHTS_HASHES, vgg19.py file_hash
files_family="
resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5 88cf7a10940856eca736dc7b7e228a21 $base_resnet
resnet101_weights_tf_dim_ordering_tf_kernels.h5 f1aeb4b969a6efcfb50fad2f0c20cfc5 $base_resnet
resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5 ee4c566cf9a93f14d82f913c2dc6dd0c $base_resnet
resnet152_weights_tf_dim_ordering_tf_kernels.h5 100835be76be38e30d865e96f2aaae62 $base_resnet
vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 253f8cb515780f3b799900260a226db6 $base_vgg19
vgg19_weights_tf_dim_ordering_tf_kernels.h5 cbe5617147190e668d6c5d5026f83318 $base_vgg19"
case "$which" in
    notop) list=$files_notop ;;
    top) list=$files_top ;;
    all) list="$files_notop$files_top" ;;
    family) list=$files_family ;;
    *) echo "usage: $0 [notop|top|all|family]" >&2; exit 2 ;;
esac
fetch() {
    if command -v curl >/dev/null; then curl -fL --retry 3 -o "$2" "$1"
    elif command -v wget >/dev/null; then wget -O "$2" "$1"
    else echo "fetch_weights: need curl or wget" >&2; exit 1; fi
}
status=0
while read -r file md5 base; do
    [ -n "$file" ] || continue
    if [ -f "$file" ] && [ "$(md5sum "$file" | cut -d' ' -f1)" = "$md5" ]; then
        echo "$file: present, md5 ok"
        continue
    fi
    echo "$file: downloading"
    fetch "$base/$file" "$file.part"
    got=$(md5sum "$file.part" | cut -d' ' -f1)
    if [ "$got" != "$md5" ]; then
        echo "$file: md5 $got does not match the published $md5; refusing it" >&2
        rm -f "$file.part"
        status=1
        continue
    fi
    mv "$file.part" "$file"
    echo "$file: md5 ok"
done <<< "$list"
exit $status
