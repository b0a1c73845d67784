#!/usr/bin/env bash
# The CUDA checks and benchmarks in one call on a GPU machine (prepare with scripts/gpu_prepare.sh,
# carry .whl and .media). Writes into $OUT (or /tmp/gpu_check) and prints:
#   1. the tests that use the device (the gpu-marked ones, the stylizer's, the fast engine's and
#      its torch runtime's): tests.txt;
#   2. the benchmark scenarios a GPU changes, in one process with --device cuda (the roofline at
#      512 px and 1080p, K chains, the render's stages against the bare network at 512, 1080 and
#      1920 px, the fast engine's runtimes and stages, tiles up to 4K): gpu.json, its tables in
#      benchmarks.txt.
#   3. (only when asked: STEPS="3") the whole suite on the device, for a second call: suite.txt.
# Budget: at most 200 + 260 s (the steps' time limits; the JSON is written after each scenario, so a
# step cut short keeps what it measured): give the call 480 s, and a second run fits in 15 minutes.
# STEPS="2" runs only that step (default: 1 and 2).
# REHEARSE=1 runs the same steps on this CPU machine with --smoke (and the .whl set is only checked
# to install for Python 3.12), so that no device minute goes to a typo.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
rehearse=${REHEARSE:-0}
if [ "$rehearse" = 1 ]; then
    dev=cpu; smoke="--smoke"; media=""
    python3 -m pip install -q --no-index --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --target /tmp/site-rehearse --upgrade .whl/*.whl || { echo "the .whl set does not install for 3.12"; exit 1; }
    export PYTHONPATH=$PWD
else
    dev=cuda; smoke=""; media="--clip ${CLIP:-.media/bunny_640x360_24fps_aac.mp4} --style ${STYLE:-.media/starry_night.jpg}"
    if compgen -G ".whl/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .whl/*.whl || exit 1
        export PYTHONPATH=/tmp/site:$PWD
    else
        export PYTHONPATH=$PWD
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
fi
steps=" ${STEPS:-1 2} "
tests="tests/test_cuda.py tests/test_stylize.py tests/test_onnx_torch.py tests/test_fast.py"
step() { [[ "$steps" == *" $1 "* ]]; }
python3 -c "import torch, av, cv2, onnxruntime as o; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'av', av.__version__, 'cv2', cv2.__version__, 'onnxruntime', o.__version__, o.get_available_providers(), 'cpus', __import__('os').cpu_count())" | tee -a "$out/device.txt"
step 1 && timeout 200 python3 -m pytest -m "not slow" -q -p no:cacheprovider --tb=short -rf $tests 2>&1 \
    | tail -n 60 | tee "$out/tests.txt"
scenarios=${SCENARIOS:-roofline chains-network chains-render render fast-runtimes fast-stages tiles}
# (the render's variants that a GPU changes; every size of each)
step 2 && timeout 260 python3 -m benchmarks run $scenarios --device "$dev" --in-process $smoke $media \
    --set variants="${VARIANTS:-farneback,adam,adam-graphs}" --json "$out/gpu.json" 2>&1 | tee "$out/benchmarks.txt"
step 3 && timeout 590 python3 -m pytest -m "not slow" -q -p no:cacheprovider --tb=short -rf 2>&1 \
    | tail -n 80 | tee "$out/suite.txt"
