#!/usr/bin/env bash
# The CUDA checks and benchmarks in one call on a GPU machine (prepare with scripts/gpu_prepare.sh,
# carry .whl and .media). Writes each table to $OUT (or /tmp/gpu_check) and prints it.
#   1. tests/test_cuda.py, test_stylize.py, test_onnx_torch.py and test_fast.py on the device (graphed Adam == eager Adam, a
#      video render on CUDA);
#   2. scripts/cuda_vs_cpu.py: a 512 px render with the real network on CUDA and on the CPU,
#      fp32: final losses within 2%;
#   3. scripts/bench_stylizer.py: the per-iteration floor at 512 and 1080 px squares;
#   4. scripts/bench_host.py: the host's flow throughput per worker count;
#   5. scripts/bench.py with the real network: at 512 px every flow-worker count (auto, 1, 2, 4)
#      and Adam with and without CUDA graphs; at 1080 and 1920 px (the clip scaled up) the
#      default, Adam and Adam on graphs: busy fraction, s/later frame, ms/iter against the floor;
#   6. scripts/bench_fast.py: the fast engine's speed per frame and end to end at 1080 px.
#   7. scripts/bench_tiles.py: 512, 2048 and 3840 px, tiled (--tile 1024) and untiled.
#   8. scripts/bench_fast.py: the fast engine's network per runtime (onnxruntime on the CPU,
#      torch on the CPU and on CUDA: graphs, eager, fp16...) at 640, 1280 and 1920 px, then the
#      end-to-end stage table with the auto runtime at 640x360, 1280x720 and 1920x1080.
#   9. scripts/roofline.py: FLOPs and bytes per iteration at 512 and 1080x1920, the floor's and
#      the default stylizer iteration's ms, TFLOPS and share of the card's dense peak (issue 31).
# Budget: about 6 minutes on an H100/H200 (give the call 480 s; a second run fits in 15 minutes).
# STEPS="1 5 7" runs only those steps (default: all).
# REHEARSE=1 runs the same steps on this CPU machine at toy sizes (the .whl set is only checked
# to install for Python 3.12), so that no device minute goes to a typo.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
rehearse=${REHEARSE:-0}
if [ "$rehearse" = 1 ]; then
    dev=cpu; small=64; large="96 128"; frames=3; iters=4; preset="--config configs/preview.yaml"; devices=cpu,cpu
    python3 -m pip install -q --no-index --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --target /tmp/site-rehearse --upgrade .whl/*.whl || { echo "the .whl set does not install for 3.12"; exit 1; }
    export PYTHONPATH=$PWD
else
    dev=cuda; small=512; large="1080 1920"; frames=12; iters=30; preset=""; devices=cuda,cpu
    if compgen -G ".whl/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .whl/*.whl || exit 1
        export PYTHONPATH=/tmp/site:$PWD
    else
        export PYTHONPATH=$PWD
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
fi
steps=" ${STEPS:-1 2 3 4 5 6 7 8 9} "
step() { [[ "$steps" == *" $1 "* ]]; }
clip=${CLIP:-.media/bunny_640x360_24fps_aac.mp4}
style=${STYLE:-.media/starry_night.jpg}
python3 -c "import torch, av, cv2, onnxruntime as o; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'av', av.__version__, 'cv2', cv2.__version__, 'onnxruntime', o.__version__, o.get_available_providers(), 'cpus', __import__('os').cpu_count())" | tee -a "$out/device.txt"
step 1 && timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_stylize.py tests/test_onnx_torch.py tests/test_fast.py --tb=short -rf 2>&1 | tail -n 40 | tee "$out/tests.txt"
step 2 && timeout 90 python3 scripts/cuda_vs_cpu.py --clip "$clip" --style "$style" --size "$small" --iterations "$iters" \
    --devices "$devices" --model vgg19 2>&1 | tee "$out/cuda_vs_cpu.md"
step 3 && timeout 45 python3 scripts/bench_stylizer.py --device "$dev" --sizes "$small" ${large%% *} 2>&1 | tee "$out/bench_stylizer.md"
step 4 && timeout 30 python3 scripts/bench_host.py --style "$style" 2>&1 | tee "$out/bench_host.md"
graphs=$([ "$dev" = cuda ] && echo ",adam-graphs" || echo "")
step 5 && timeout 120 python3 scripts/bench.py --device "$dev" --model vgg19 --clip "$clip" --style "$style" $preset \
    --frames "$frames" --sizes "$small" \
    --variants "${SMALL_VARIANTS:-farneback,farneback-w1,farneback-w2,farneback-w4,adam$graphs}" 2>&1 | tee "$out/bench_small.md"
for size in ${LARGE:-$large}; do
    step 5 && timeout 150 python3 scripts/bench.py --device "$dev" --model vgg19 --clip "$clip" --style "$style" $preset \
        --frames "$frames" --sizes "$size" --variants "${LARGE_VARIANTS:-farneback,adam$graphs}" 2>&1 | tee "$out/bench_$size.md"
done
step 6 && timeout 60 python3 scripts/bench_fast.py --clip "$clip" --style "$style" --device auto --tables speed,render \
    --frames "$((frames * 4))" --render-sizes ${large%% *} --repeats 3 2>&1 | tee "$out/bench_fast.md"
# 7. scripts/bench_tiles.py: tiled against untiled up to 4K (issue 16): peak CUDA memory,
#    s/iteration, final loss and seam ratio.
tsizes=$([ "$rehearse" = 1 ] && echo "64 128" || echo "${TILE_SIZES:-512 2048 3840}")
ttile=$([ "$rehearse" = 1 ] && echo 96 || echo 1024)
step 7 && timeout 240 python3 scripts/bench_tiles.py --device "$dev" --model vgg19 --clip "$clip" --style "$style" \
    --sizes $tsizes --tile "$ttile" --margin "$([ "$rehearse" = 1 ] && echo 16 || echo 80)" \
    --untiled-max 3840 --iterations "$([ "$rehearse" = 1 ] && echo 3 || echo 10)" 2>&1 | tee "$out/bench_tiles.md"
step 8 && timeout 150 python3 scripts/bench_fast.py --clip "$clip" --style "$style" --device auto --tables runtimes \
    --runtimes "${RUNTIMES:-onnxruntime,torch-cpu,torch-cuda,torch-cuda-eager,torch-cuda-ops,torch-cuda-fp16,torch-cuda-bf16}" \
    --runtime-sizes ${RUNTIME_SIZES:-$([ "$rehearse" = 1 ] && echo "64 128" || echo "640 1280 1920")} --repeats 5 \
    --runtime-images "$out" 2>&1 | tee "$out/bench_fast_runtimes.md"
for preset in ${PRESETS:-medium}; do
    step 8 && timeout 260 python3 scripts/bench_fast.py --clip "$clip" --style "$style" --device auto --tables stages \
        --stage-flows "${STAGE_FLOWS:-lite}" --frames "$([ "$rehearse" = 1 ] && echo 6 || echo 48)" --preset "$preset" \
        --stage-sizes ${STAGE_SIZES:-$([ "$rehearse" = 1 ] && echo "64 128" || echo "640 1280 1920")} 2>&1 \
        | tee "$out/bench_fast_stages_$preset.md"
done
rsizes=$([ "$rehearse" = 1 ] && echo "64 96x128" || echo "${ROOF_SIZES:-512 1080x1920}")
step 9 && timeout 120 python3 scripts/roofline.py --device "$dev" --sizes $rsizes \
    --iterations "$([ "$rehearse" = 1 ] && echo 5 || echo 30)" 2>&1 | tee "$out/roofline.md"
