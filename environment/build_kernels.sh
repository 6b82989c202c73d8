#!/usr/bin/env bash
# Compiles kernels/*.cu to PTX (kernels/build/ptx/NAME.ptx, packed into the jar as lowbit/cuda/ptx/NAME.ptx) with
# nvcc from PyPI, then assembles each PTX for Hopper with ptxas as a check (registers, spills and shared memory per
# kernel in kernels/build/ptxas.txt). No GPU is needed. Only kernels whose source is newer than their PTX are rebuilt.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

# compute_80: PTX for Ampere and newer, so the driver JIT-compiles it for Hopper (H100/H200) and later chips; the
# kernels use bf16 tensor-core MMA (sm_80) and nothing Hopper-only.
ARCH=compute_80
CHECK_ARCH=sm_90
REQ="$ROOT/environment/requirements-cuda.txt"
STAMP="$VENV/.requirements-cuda.sha256"
NV="$VENV/lib/python$("$VENV/bin/python" -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')/site-packages/nvidia/cu13"

[ -x "$VENV/bin/python" ] || die "build_kernels: no .venv (run ./lowbit setup)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(sha256sum "$REQ" | cut -d' ' -f1)" ] || [ ! -x "$NV/bin/nvcc" ]; then
    echo "== installing CUDA's compiler (nvcc, from PyPI) into .venv" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$REQ" \
        || die "pip install -r environment/requirements-cuda.txt failed (is PyPI reachable?)"
    sha256sum "$REQ" | cut -d' ' -f1 > "$STAMP"
fi
command -v g++ >/dev/null || die "build_kernels: nvcc needs a host C++ compiler (g++): apt-get install g++"

OUT="$ROOT/kernels/build/ptx"
mkdir -p "$OUT"
built=0
for src in kernels/*.cu; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .cu)
    ptx="$OUT/$name.ptx"
    if [ -f "$ptx" ] && [ "$ptx" -nt "$src" ] && [ -z "$(find kernels -maxdepth 1 -name '*.cuh' -newer "$ptx" -print -quit)" ]; then continue; fi
    "$NV/bin/nvcc" -ptx -arch="$ARCH" -std=c++17 -O3 -lineinfo -Ikernels "$src" -o "$ptx.tmp" \
        || { rm -f "$ptx.tmp"; die "nvcc could not compile $src (see above)"; }
    "$NV/bin/ptxas" -arch="$CHECK_ARCH" -O3 -v --warn-on-spills "$ptx.tmp" -o /dev/null 2> "$OUT/$name.ptxas.txt" \
        || { cat "$OUT/$name.ptxas.txt" >&2; rm -f "$ptx.tmp"; die "ptxas rejected $src's PTX for $CHECK_ARCH (see above)"; }
    mv "$ptx.tmp" "$ptx"
    built=$((built + 1))
done
# the PTX of a deleted kernel source must not stay in the jar
for ptx in "$OUT"/*.ptx; do
    [ -e "$ptx" ] || continue
    [ -f "kernels/$(basename "$ptx" .ptx).cu" ] || rm -f "$ptx" "${ptx%.ptx}.ptxas.txt"
done
cat "$OUT"/*.ptxas.txt > "$ROOT/kernels/build/ptxas.txt" 2>/dev/null || true
[ "$built" -eq 0 ] || echo "== compiled $built CUDA kernel file(s) to PTX ($ARCH) in kernels/build/ptx" >&2
