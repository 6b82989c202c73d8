#!/usr/bin/env bash
# Runs every CUDA kernel on the CPU under cuda_emu.h (one fiber per CUDA thread, adversarial scheduling orders, guarded
# buffers) and compares it with a plain loop restating its Java CPU twin: one line per kernel and case, non-zero exit on
# any mismatch, fault, or test that fails to build. Usage: run.sh [KERNELS] (default: the kernels/ above this directory).
# EMULATE_TESTS="quant gemm" runs only those tests.
# Checks indexing, bounds, synchronization and arithmetic order; says nothing of the GPU's speed or of nvcc's code
# (contraction into FMAs, approximate intrinsics): only a GPU run (environment/gpu/check.sh) checks those.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kernels=$(cd "${1:-$here/..}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The kernels are copied, never edited in place; the one rewrite: dynamic shared memory, whose "extern __shared__ T x[]"
# has no C++ equivalent, becomes a pointer to the launch's emulated buffer.
for f in "$kernels"/*.cu "$kernels"/*.cuh; do
    [ -e "$f" ] || continue
    sed -E 's/extern[[:space:]]+__shared__[[:space:]]+(.*[^[:space:]])[[:space:]]+([A-Za-z_][A-Za-z_0-9]*)[[:space:]]*\[\][[:space:]]*;/\1* \2 = reinterpret_cast<\1*>(emu::dynamic_shared());/' \
        "$f" > "$tmp/$(basename "$f")"
done
status=0
for test in ${EMULATE_TESTS:-selftest forward attention gemm gemm_tc logits quant dequant_gemm gptq_awq}; do
    src="$here/${test}_test.cpp"
    [ -e "$src" ] || continue
    # the kernel files the test includes must exist in KERNELS
    missing=$(grep -oE '#include "[a-z_]+\.cu"' "$src" | sed -E 's/.*"(.*)"/\1/' | while read -r k; do [ -e "$tmp/$k" ] || echo "$k"; done)
    if [ -n "$missing" ]; then
        echo "FAIL $test: $kernels lacks $missing"
        status=1
        continue
    fi
    if ! g++ -std=c++20 -O1 -ffp-contract=off -pthread ${EMULATE_CXXFLAGS:-} -Wall -Wno-unknown-pragmas -Wno-unused-variable -Wno-unused-function \
        -I"$here/include" -I"$here" -I"$tmp" -include "$here/cuda_emu.h" "$src" -o "$tmp/$test" 2> "$tmp/$test.log"; then
        echo "FAIL $test: does not build under the emulation"
        sed -n 1,30p "$tmp/$test.log"
        status=1
        continue
    fi
    "$tmp/$test" || status=1
done
[ $status -eq 0 ] && echo "emulation: every kernel matches its CPU twin" || echo "emulation: FAILED"
exit $status
