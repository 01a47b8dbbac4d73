#!/usr/bin/env bash
# Downloads the official Keras ResNet50 and VGG16 weight files (with and without
# the top) into this folder and verifies their MD5 hashes, as Keras' get_file
# does. A file whose hash does not match is deleted and the script fails.
#   usage: models/fetch_weights.sh [notop|top|all]   (default: notop)
set -euo pipefail
cd "$(dirname "$0")"
which=${1:-notop}
base_resnet=https://storage.googleapis.com/tensorflow/keras-applications/resnet
base_vgg=https://storage.googleapis.com/tensorflow/keras-applications/vgg16
# file  md5  url
files_notop="
resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 4d473c1dd8becc155b73f8504c6f6626 $base_resnet
vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 6d6bbae143d832006294945121d1f1fc $base_vgg"
files_top="
resnet50_weights_tf_dim_ordering_tf_kernels.h5 2cb95161c43110f7111970584f804107 $base_resnet
vgg16_weights_tf_dim_ordering_tf_kernels.h5 64373286793e3c8b2b4e3219cbf3544b $base_vgg"
case "$which" in
    notop) list=$files_notop ;;
    top) list=$files_top ;;
    all) list="$files_notop$files_top" ;;
    *) echo "usage: $0 [notop|top|all]" >&2; exit 2 ;;
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
