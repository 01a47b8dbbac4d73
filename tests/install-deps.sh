#!/usr/bin/env bash
# Installs everything libfusenet needs to build and test, from Debian 12's packages.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config \
    libdnnl-dev ocl-icd-opencl-dev libhdf5-dev hdf5-tools zlib1g-dev libjpeg62-turbo-dev libzip-dev libstb-dev libcmocka-dev \
    clang libclang-rt-14-dev valgrind \
    python3 python3-numpy python3-h5py python3-torch python3-torchvision python3-pil \
    slurm-wlm munge >/dev/null
