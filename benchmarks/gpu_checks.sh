#!/usr/bin/env bash
# The checks and benchmarks that need a CUDA GPU, for a short lease of a GPU machine:
#   bash benchmarks/gpu_checks.sh OUT_DIR [STEP ...]
# Steps, in order of importance (default: all), with the time each took on an H200 (2026-11-26):
#   tests      tests/test_cuda.py: CUDA against CPU, bf16 against fp32, fused Adam, bf16 training, tf32 and
#              channels-last training, fp32 one-step sampling                                        (~25 s)
#   fast       CIFAR-10 preset images/s, GDD and GDD-I, faithful and with the opt-in fast discriminator
#              (fast_d), all rows in one process (one cuDNN warm-up; the fast rows compile each backbone's
#              features and heads), each row's R1 iteration apart and its operator profile          (~450 s)
#   fastcompile  faithful GDD-I and GDD against fast_d with the generator's backbone compiled too (mode
#              fast+compile), with profiles: over 580 s from a cold inductor cache (the generator's compile
#              alone takes minutes), so run it twice on the same warm machine; the second reuses the cache
#   iteration  CIFAR-10 preset images/s, GDD-I then GDD (bf16 G, fp32 projected D, TF32 off, batch 64):
#              ~8 s set-up and ~70 s warm-up (cuDNN autotuning) per method, then 16 timed iterations (~210 s)
#   tf32       the same GDD-I iteration with the opt-in --tf32 and --channels-last                    (~100 s)
#   generator  generator forward / forward+backward, CIFAR-10 and ImageNet widths, fp32 and bf16         (~150 s)
#   sampling   one-step against Heun-35 images/s at CIFAR-10 width, batch 256                          (~90 s)
#   compile    GDD-I iteration with the generator's backbone compiled                                   (~200 s)
# All of them take longer than one 10-minute call, so split them over two calls. Each step runs under its own time
# limit so that one slow step cannot take the others' time; a failed step is reported and the next one runs.
# Needs python3 with torch, torchvision, timm, safetensors and pytest (PYTHON overrides the interpreter).
set -uo pipefail
out=${1:?usage: gpu_checks.sh OUT_DIR [tests fast fastcompile iteration tf32 generator sampling compile]}
shift
steps=${*:-tests fast iteration tf32 generator sampling compile}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
b=benchmarks
cifar=(--widths cifar10 --device cuda --bf16 --batch 64 --iterations 16)

step() {
  local limit=$1 started=$SECONDS
  shift
  echo "== $* (limit ${limit}s)"
  timeout "$limit" "$@" || echo "!! exit $? after $((SECONDS - started))s: $*"
  echo "== took $((SECONDS - started))s"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$py -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__)"
for s in $steps; do
  case $s in
    tests) step 120 $py -m pytest -q -p no:cacheprovider tests/test_cuda.py ;;
    fast) step 560 $py $b/bench_iteration.py "${cifar[@]}" --methods gdd,gdd-i --modes faithful,fast --in-process --profile --out "$out/iteration-cifar10-cuda-fast.json" ;;
    fastcompile) step 580 $py $b/bench_iteration.py "${cifar[@]}" --methods gdd-i,gdd --modes faithful,fast+compile --in-process --profile --out "$out/iteration-cifar10-cuda-fastcompile.json" ;;
    iteration) step 260 $py $b/bench_iteration.py "${cifar[@]}" --methods gdd-i,gdd --out "$out/iteration-cifar10-cuda.json" ;;
    tf32) step 130 $py $b/bench_iteration.py "${cifar[@]}" --methods gdd-i --tf32 --channels-last --out "$out/iteration-cifar10-cuda-tf32.json" ;;
    generator) step 200 $py $b/bench_generator.py --widths cifar10,imagenet-64 --variants fp32,bf16 --device cuda --batch 32 --repeats 5 --out "$out/generator-cuda.json" ;;
    sampling) step 120 $py $b/bench_sampling.py --widths cifar10 --device cuda --batch 256 --repeats 3 --out "$out/sampling-cuda.json" ;;
    compile) step 260 $py $b/bench_iteration.py "${cifar[@]}" --methods gdd-i --compile --out "$out/iteration-cifar10-cuda-compile.json" ;;
    *) echo "unknown step $s (tests fast fastcompile iteration tf32 generator sampling compile)"; exit 2 ;;
  esac
done
echo "== steps done in ${SECONDS}s"
