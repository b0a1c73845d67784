#!/usr/bin/env bash
# The CUDA checks and benchmarks in one call on a GPU machine (prepare with scripts/gpu_prepare.sh,
# carry .whl and .media). Writes each table to $OUT (or /tmp/gpu_check) and prints it.
#   1. tests/test_cuda.py + tests/test_stylize.py on the device (graphed Adam == eager Adam);
#   2. scripts/bench_stylizer.py: the per-iteration floor at 512 and 1080 px squares;
#   3. scripts/bench_host.py: the host's flow throughput per worker count (the auto setting
#      beside a GPU is up to 4) and the host work left on the stylizer's path;
#   4. scripts/bench.py: end to end at 512, 1080 and 1920 px (the clip scaled up past its
#      640x360), every variant: busy fraction, s/later frame, ms/iter against the floor.
# About 6 minutes on an H200: give the call 540 s.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
clip=${CLIP:-.media/bunny_640x360_24fps_aac.mp4}
style=${STYLE:-.media/starry_night.jpg}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
python3 -c "import torch, av, cv2; print('torch', torch.__version__, 'av', av.__version__, 'cv2', cv2.__version__, 'cpus', __import__('os').cpu_count())" | tee -a "$out/device.txt"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_stylize.py 2>&1 | tee "$out/tests.txt"
timeout 90 python3 scripts/bench_stylizer.py --device cuda --sizes 512 1080 2>&1 | tee "$out/bench_stylizer.md"
timeout 60 python3 scripts/bench_host.py --style "$style" 2>&1 | tee "$out/bench_host.md"
timeout 330 python3 scripts/bench.py --device cuda --clip "$clip" --style "$style" --sizes 512 1080 1920 2>&1 | tee "$out/bench.md"
