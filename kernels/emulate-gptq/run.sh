#!/usr/bin/env bash
# Runs kernels/gptq.cu and kernels/awq.cu on the CPU under an emulation of CUDA's execution model (common.cuh here: one
# std::thread per CUDA thread, barriers for __syncthreads/__syncwarp) and compares every kernel with a plain loop of the
# same arithmetic (bit for bit for GPTQ's, 1e-5 relative for AWQ's float sums). It checks indexing, bounds and
# synchronization without a GPU; it says nothing about the GPU's speed or its compiler, which only a GPU run can check
# (lib/src/test/java/lowbit/cuda/*GpuTest.java).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$here/common.cuh" "$here/gptq_awq_test.cpp" "$tmp/"
# dynamic shared memory becomes a global array: "extern __shared__" would read "extern static" under the emulation
for k in gptq awq; do sed 's/extern __shared__/extern/' "$here/../$k.cu" > "$tmp/$k.cu"; done
g++ -std=c++20 -O1 -ffp-contract=off -pthread -I"$tmp" "$tmp/gptq_awq_test.cpp" -o "$tmp/emu"
"$tmp/emu"
