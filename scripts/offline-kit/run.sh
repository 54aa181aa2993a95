#!/usr/bin/env bash
# Runs the GPU bench on an offline machine from a kit made by scripts/offline-kit/pack.sh. Run it in the
# repository's root (a checkout or copy of the tree); it unpacks node_modules/ and the llama-server build there.
#
#   scripts/offline-kit/run.sh KIT_DIR [RESULTS_DIR]
#
# Prints, and writes to RESULTS_DIR as each part ends: the GPU (nvidia-smi), llama.cpp's native batched loop
# (llama-batched-bench) on the generated 1B-shape GGUF as the reference, then `npm run bench` on the same model with
# 1, 8 and 32 streams (BENCH_MODEL, BENCH_STREAMS and BENCH_* settings in the environment override). The CUDA
# runtime libraries (libcudart, libcublas 13) come from the system or, when the loader does not know them, from a
# Python nvidia-* wheel tree.
set -uo pipefail
kit=$(cd "${1:?usage: run.sh KIT_DIR [RESULTS_DIR]}" && pwd)
results=${2:-$kit/results}
mkdir -p "$results"
results=$(cd "$results" && pwd)
started=$(date +%s)
stamp() { echo "[$(($(date +%s) - started)) s] $*" >&2; }

# Unpacked once: a second run (another BENCH_MODEL) in the same tree starts at once.
if [ ! -x "$kit/node" ] || [ ! -d node_modules/node-llama-cpp ] || [ ! -d "$(cat "$kit/llama-server-dir")" ]; then
  xz -d -c "$kit/node.xz" > "$kit/node" && chmod +x "$kit/node"
  xz -d -c "$kit/kit.tar.xz" | tar -xf -
fi
export PATH="$kit:$PATH"
ls_dir=$(pwd)/$(cat "$kit/llama-server-dir")
stamp "unpacked: node $(node --version), llama-server in $ls_dir"

if ! ldconfig -p | grep -q 'libcublas\.so\.13'; then
  cublas=$(find /usr/local/cuda*/ -name 'libcublas.so.13' 2>/dev/null | head -1)
  [ -n "$cublas" ] || cublas=$(find / -xdev -name 'libcublas.so.13' -path '*nvidia*' 2>/dev/null | head -1)
  if [ -n "$cublas" ]; then
    libs=$(dirname "$cublas")
    for lib in $(find "$(dirname "$(dirname "$libs")")" -maxdepth 3 -type d -name lib 2>/dev/null); do libs="$libs:$lib"; done
    export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    stamp "CUDA libraries from $(dirname "$(dirname "$(dirname "$cublas")")")"
  fi
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv | tee "$results/gpu.csv"

export BENCH_MODEL=${BENCH_MODEL:-1b} BENCH_STREAMS=${BENCH_STREAMS:-1,8,32} BENCH_SPECULATIVE=${BENCH_SPECULATIVE:-0}
# Pulling is a CPU and disk matter, measured on the CPU machines: not on lent GPU time.
export BENCH_PULL=${BENCH_PULL:-0}
export BENCH_REPS=${BENCH_REPS:-5} BENCH_SCHEDULING_REPS=${BENCH_SCHEDULING_REPS:-3}
export AI_SERVER_BENCH_DIR=${AI_SERVER_BENCH_DIR:-/tmp/ai-server-bench}
export AI_SERVER_LLAMA_SERVER=$ls_dir/llama-server BENCH_LLAMA_SERVER=$ls_dir/llama-server
# The native reference first (a minute at most): a lease cut short still brings back the numbers to compare with.
model=$(node --import tsx bench/generate-model.ts | tail -1)
stamp "native reference: llama-batched-bench on $model"
"$ls_dir/llama-batched-bench" -m "$model" -ngl 999 -c 32768 -b 2048 -ub 512 -npp 512 -ntg 128 -npl "$BENCH_STREAMS" 2>&1 |
  tee "$results/batched-bench.log" | grep -E '^\|' | tee "$results/batched-bench.md"

stamp "bench: BENCH_MODEL=$BENCH_MODEL BENCH_STREAMS=$BENCH_STREAMS"
node --import tsx bench/run.ts 2> >(tee "$results/bench.log" >&2) | tee "$results/bench.md"
stamp "done"
