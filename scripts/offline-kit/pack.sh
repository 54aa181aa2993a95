#!/usr/bin/env bash
# Packs what `npm run bench` needs on an offline Linux x64 machine with an NVIDIA GPU and no Node.js (a rented or
# lent GPU box without network): Node itself, the production node_modules plus tsx (the bench runs TypeScript),
# node-llama-cpp's Linux x64 CPU and CUDA prebuilts only, and a llama-server (+ llama-batched-bench) built here
# against the CUDA variant. The repository's own files travel separately (a checkout or a copy of the tree).
#
#   scripts/offline-kit/pack.sh OUT_DIR [LIBGGML_CUDA_SO]
#
# LIBGGML_CUDA_SO replaces node-llama-cpp's libggml-cuda.so in both node_modules and the llama-server build: the
# shipped one (3.21.1) has GPU code for sm_86/89/120/121 only and PTX a CUDA 13.0 driver cannot load (see the
# README's GPU section), and is ~124 MB compressed. Give a build for the card (e.g. its GPU code recompiled for
# sm_90 with the local ptxas). Without it the kit is CPU-only.
# Writes OUT_DIR/node.xz and OUT_DIR/kit.tar.xz (node_modules/ and .cache/llama-server/<tag>-cuda/); keep both
# under 64 MiB together if they must travel in one piece. Unpack and run with scripts/offline-kit/run.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: pack.sh OUT_DIR [LIBGGML_CUDA_SO]}
cuda_lib=${2:-}
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ -z "$cuda_lib" ] || cuda_lib=$(cd "$(dirname "$cuda_lib")" && pwd)/$(basename "$cuda_lib")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nlc=@node-llama-cpp
cpu_bins=node_modules/$nlc/linux-x64/bins/linux-x64
cuda_bins=node_modules/$nlc/linux-x64-cuda/bins/linux-x64-cuda

# 1. The llama-server build for the CUDA variant (prebuilt method: links node-llama-cpp's libraries, no CUDA
#    toolkit needed here), with llama-batched-bench, into a private directory.
ls_dir=$tmp/build
if [ -n "$cuda_lib" ]; then
  AI_SERVER_LLAMA_SERVER_VARIANT=linux-x64-cuda AI_SERVER_LLAMA_SERVER_DIR=$ls_dir \
    node "$root/scripts/build-llama-server.mjs" --method=prebuilt --with-bench --force >&2
else
  AI_SERVER_LLAMA_SERVER_DIR=$ls_dir node "$root/scripts/build-llama-server.mjs" --method=prebuilt --with-bench --force >&2
fi
tag=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).tag)' "$ls_dir/build-info.json")
ls_rel=.cache/llama-server/$tag-kit

# 2. node_modules: production dependencies and tsx, from this checkout's install (hard links, then pruned).
mkdir -p "$tmp/kit/.cache/llama-server"
cp "$root/package.json" "$root/package-lock.json" "$tmp/kit/"
cp -al "$root/node_modules" "$tmp/kit/node_modules"
(cd "$tmp/kit" && npm prune --omit=dev --ignore-scripts --offline --no-audit --no-fund >&2)
for dev in tsx esbuild @esbuild/linux-x64; do
  mkdir -p "$(dirname "$tmp/kit/node_modules/$dev")"
  [ -e "$tmp/kit/node_modules/$dev" ] || cp -al "$root/node_modules/$dev" "$tmp/kit/node_modules/$dev"
done
cd "$tmp/kit/node_modules"
rm -rf $nlc/linux-arm64 $nlc/linux-armv7l $nlc/linux-x64-cuda-ext $nlc/linux-x64-vulkan $nlc/mac-* $nlc/win-* \
  node-llama-cpp/llama/gitRelease.bundle better-sqlite3/deps better-sqlite3/src typescript  # typescript: an optional peer of node-llama-cpp
find . -type d -empty -delete
cd "$tmp/kit"
if [ -n "$cuda_lib" ]; then
  rm -f "$cuda_bins/libggml-cuda.so"
  cp "$cuda_lib" "$cuda_bins/libggml-cuda.so"
else
  rm -rf "node_modules/$nlc/linux-x64-cuda"
fi
mv "$ls_dir" "$ls_rel"
[ -z "$cuda_lib" ] || cp "$cuda_lib" "$ls_rel/libggml-cuda.so"

# 3. Identical files (the CUDA package repeats the CPU backends; the llama-server build copies the libraries it
#    links) become hard links, which tar stores once.
dedupe() { # dedupe REFERENCE_DIR DIR: files of DIR equal to the same name in REFERENCE_DIR become links to it
  [ -d "$1" ] && [ -d "$2" ] || return 0
  for f in "$2"/*; do
    b=$(basename "$f")
    if [ -f "$1/$b" ] && [ -f "$f" ] && cmp -s "$1/$b" "$f"; then ln -f "$1/$b" "$f"; fi
  done
}
dedupe "$cpu_bins" "$cuda_bins"
dedupe "$cuda_bins" "$ls_rel"
dedupe "$cpu_bins" "$ls_rel"

tar -cf - node_modules .cache | xz -T0 -9 > "$out/kit.tar.xz"
cp "$(command -v node)" "$tmp/node"
strip "$tmp/node" 2>/dev/null || true
xz -T0 -9 -c "$tmp/node" > "$out/node.xz"
echo "$ls_rel" > "$out/llama-server-dir"
du -b "$out/kit.tar.xz" "$out/node.xz" >&2
