#!/usr/bin/env bash
# The GPU check, run ON the GPU machine from the repository root with .gpu/ carried (made here by
# environment/gpu/pack.sh):
#
#     bash environment/gpu/check.sh            # the device tool: run(command=..., carry=[".gpu"], timeout_s=540)
#
# In order, each step under its own time limit (490 s in all, the unpacking aside), a failed step does not stop
# the next, and every log goes to $OUT (at most 8 files, what the device tool brings back):
#   1. the GPU (nvidia-smi) and the packed runtime; without a GPU it says so and exits 2
#   2. the GPU tests (JUnit, tag "gpu", lowbit.**.*GpuTest) with -Dlowbit.cuda.sync=true, so that a faulting kernel
#      is named by the launch that faulted rather than by a later synchronization
#   3. the benchmark model: random weights in the default model's shapes, made here by transformers
#   4. bench forward --device cuda (bf16 and fp32 weights) against transformers on torch CUDA in bf16, same windows
#   5. bench gptq --device cuda: one 2048x2048 layer against gptq.py's algorithm on torch CUDA, then the whole model
#   6. bench dequant: the fused dequantize-GEMM's GB/s and % of the memory bandwidth
#   7. summary.txt: the lines that matter from each step
# `bash environment/gpu/check.sh --cpu-selftest` runs the Java part on the CPU here (the packed runtime, the CPU tests
# of lowbit.cuda and lowbit.results, info on stories260K), to check the pack before a GPU is lent.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PACK="$ROOT/.gpu"
SELFTEST=0
[ "${1:-}" = "--cpu-selftest" ] && SELFTEST=1
WORK="${LOWBIT_GPU_WORK:-/tmp/lowbit-gpu}"
OUT="${OUT:-$WORK/out}"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
# the lines of a log matching a pattern, progress bars' carriage returns made line breaks, indented for the summary
# (from the match on: a progress bar on stderr may share the line)
pick() { tr '\r' '\n' < "$2" | grep -oE "($1).*" | sed 's/^/  /' | tee -a "$SUMMARY"; }

# step NAME SECONDS LOG COMMAND...: runs COMMAND under its limit, output to LOG (appended) and the terminal
step() {
    local name="$1" limit="$2" log="$3" rc
    shift 3
    echo "== $name (limit ${limit}s, at $(elapsed)s)" | tee -a "$log" >&2
    timeout -k 10 "$limit" "$@" >> "$log" 2>&1
    rc=$?
    case $rc in
        0) say "$name: ok ($(elapsed)s)" ;;
        124|137) say "$name: TIMED OUT after ${limit}s (see $(basename "$log"))" ;;
        *) say "$name: FAILED, exit $rc (see $(basename "$log"))" ;;
    esac
    return $rc
}

say "lowbit GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
[ -f "$PACK/MANIFEST" ] || { say "no .gpu/MANIFEST: run environment/gpu/pack.sh here and carry .gpu"; exit 2; }
say "pack: $(head -1 "$PACK/MANIFEST")"

# 1. The GPU
GPU_LOG="$OUT/gpu.txt"
: > "$GPU_LOG"
if [ "$SELFTEST" = 0 ]; then
    if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi >> "$GPU_LOG" 2>&1; then
        say "no GPU: nvidia-smi $(command -v nvidia-smi >/dev/null 2>&1 && echo 'found no device' || echo 'is not installed'); this check needs the GPU machine (environment/gpu/README.md)"
        exit 2
    fi
    say "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv,noheader 2>/dev/null | head -1)"
fi

# The packed runtime, unpacked once per machine (it stays while the machine is warm)
mkdir -p "$WORK"
if [ ! -f "$WORK/.unpacked" ] || [ "$(cat "$WORK/.unpacked")" != "$(cksum < "$PACK/MANIFEST")" ]; then
    rm -rf "$WORK/jre" "$WORK/test-classes" "$WORK/data"
    mkdir -p "$WORK/data"
    tar -C "$WORK" -xJf "$PACK/jre.tar.xz" && tar -C "$WORK" -xJf "$PACK/tests.tar.xz" && tar -C "$WORK/data" -xJf "$PACK/data.tar.xz" \
        || { say "could not unpack .gpu into $WORK"; exit 2; }
    cksum < "$PACK/MANIFEST" > "$WORK/.unpacked"
fi
JAVA="$WORK/jre/bin/java"
"$JAVA" -version >> "$GPU_LOG" 2>&1 || { say "the packed Java runtime does not start (see gpu.txt)"; exit 2; }
# PythonBaseline runs ROOT/.venv/bin/python ROOT/environment/SCRIPT: here that python is the machine's python3
FAKEROOT="$WORK/root"
mkdir -p "$FAKEROOT/.venv/bin"
ln -sfn "$ROOT/environment" "$FAKEROOT/environment"
PY="$(command -v python3 || true)"
# a script, not a link: python finds its virtualenv (the one with torch) from the path it is started by
[ -n "$PY" ] && printf '#!/bin/sh\nexec %s "$@"\n' "$PY" > "$FAKEROOT/.venv/bin/python" && chmod +x "$FAKEROOT/.venv/bin/python"
# cuBLAS for JCublas, if the jar uses it: PyPI's nvidia-cublas beside torch
CUBLAS_DIR="$([ -n "$PY" ] && "$PY" - <<'PYEOF' 2>/dev/null
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except Exception:
    roots = []
for r in roots:
    for lib in glob.glob(os.path.join(r, "**", "libcublas.so*"), recursive=True):
        print(os.path.dirname(lib)); raise SystemExit
PYEOF
)"
[ -n "$CUBLAS_DIR" ] && export LD_LIBRARY_PATH="$CUBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
DATA="$WORK/data"
CP="$PACK/lib/*"
FLAGS=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -XX:+UseParallelGC
       -Xmx24g -Dlowbit.data="$DATA" -Dlowbit.root="$FAKEROOT" -Dslf4j.internal.verbosity=ERROR)
# commands, not functions: timeout runs them
LOWBIT=("$JAVA" "${FLAGS[@]}" -cp "$CP" lowbit.cli.Main)
JUNIT=("$JAVA" "${FLAGS[@]}")

# 2. The tests
TEST_LOG="$OUT/tests.txt"
: > "$TEST_LOG"
REPORTS="$WORK/junit-reports"
rm -rf "$REPORTS"
if [ "$SELFTEST" = 1 ]; then
    step "CPU tests of lowbit.cuda and lowbit.results on the packed runtime" 300 "$TEST_LOG" \
        "${JUNIT[@]}" -cp "$PACK/junit-console.jar:$WORK/test-classes:$CP" org.junit.platform.console.ConsoleLauncher execute \
        --disable-banner --details=tree --exclude-tag gpu --select-package lowbit.cuda --exclude-classname '.*(KernelsBuiltTest|PtxSignatureDryRunTest)' --select-class lowbit.results.BackendTest \
        --select-class lowbit.results.RowTest --select-class lowbit.model.cuda.DeviceModelRefusalTest --reports-dir "$REPORTS"
    step "info on stories260K with the packed runtime" 60 "$TEST_LOG" \
        "${LOWBIT[@]}" info --model "$DATA/models/stories260K/stories260K.bin" --device cpu
    step "--device cuda without a GPU: one line, exit 2" 60 "$TEST_LOG" \
        bash -c '"$@"; [ $? -eq 2 ]' _ "${LOWBIT[@]}" info --model "$DATA/models/stories260K/stories260K.bin" --device cuda
else
    step "GPU tests (tag gpu, -Dlowbit.cuda.sync=true)" 120 "$TEST_LOG" \
        "${JUNIT[@]}" -Dlowbit.cuda.sync=true -cp "$PACK/junit-console.jar:$WORK/test-classes:$CP" org.junit.platform.console.ConsoleLauncher execute \
        --disable-banner --details=tree --include-tag gpu --select-package lowbit --include-classname '.*GpuTest' --reports-dir "$REPORTS"
fi
pick '^\[ *[0-9]+ (tests (found|successful|failed|skipped|aborted)|containers failed)' "$TEST_LOG"
grep -qE '^\[ +0 tests found' "$TEST_LOG" && say "  no test ran: are the *GpuTest classes in this build (git log), and was .gpu packed after it?"
grep -E '✘|MethodSource|=> ' "$TEST_LOG" | head -40 | sed 's/^/  /' >> "$SUMMARY"
[ -d "$REPORTS" ] && tar -C "$WORK" -czf "$OUT/junit-reports.tar.gz" junit-reports

if [ "$SELFTEST" = 1 ]; then
    say "self-test done in $(elapsed)s: the packed runtime works on the CPU; the GPU steps need the GPU machine"
    exit 0
fi

# 3. The benchmark model
MODEL="$WORK/bench-model"
MODEL_LOG="$OUT/model.txt"
: > "$MODEL_LOG"
if [ ! -f "$MODEL/model.safetensors" ]; then
    rm -rf "$MODEL"
    step "benchmark model (transformers, random weights in SmolLM2-135M's shapes)" 50 "$MODEL_LOG" \
        python3 "$ROOT/environment/gpu/make_bench_model.py" --tokenizer "$DATA/models/opt-125m-tokenizer" --out "$MODEL"
fi
step "lowbit reads the benchmark model" 20 "$MODEL_LOG" "${LOWBIT[@]}" info --model "$MODEL" --device cuda
pick '^(config|tensors|backend):|"parameters"' "$MODEL_LOG"

# 4. Forward pass against transformers (bf16 on both sides; then lowbit's fp32 weights)
FWD_LOG="$OUT/bench-forward.txt"
: > "$FWD_LOG"
TEXT="$DATA/wikitext-2-raw/wiki.test.raw"
step "bench forward --device cuda --weights bf16 (vs transformers bf16)" 60 "$FWD_LOG" \
    "${LOWBIT[@]}" bench forward --device cuda --weights bf16 --model "$MODEL" --seqlen 2048 --windows 4 --baseline auto
if ! grep -q '^transformers ' "$FWD_LOG"; then
    # the baseline did not run inside bench forward: the same script on the same windows, directly
    step "transformers on torch CUDA, bf16 (environment/bench_transformers.py)" 40 "$FWD_LOG" \
        python3 "$ROOT/environment/bench_transformers.py" --hf "$MODEL" --device cuda --dtype bf16 --text "$TEXT" --seqlen 2048 --windows 4
fi
step "bench forward --device cuda --weights fp32" 40 "$FWD_LOG" \
    "${LOWBIT[@]}" bench forward --device cuda --weights fp32 --model "$MODEL" --seqlen 2048 --windows 4 --baseline none
pick '^lowbit: |tokens/s|tokens_per_second|ratio' "$FWD_LOG"

# 5. GPTQ against the reference algorithm on torch CUDA: one 2048x2048 layer on 32 windows of 2048, then the whole
#    model on 16 (its calibration forward passes dominate and may run on the CPU: they are timed apart)
GPTQ_LOG="$OUT/bench-gptq.txt"
: > "$GPTQ_LOG"
step "bench gptq --device cuda --part layer (vs gptq.py on torch CUDA)" 60 "$GPTQ_LOG" \
    "${LOWBIT[@]}" bench gptq --device cuda --part layer --nsamples 32 --baseline auto
step "bench gptq --device cuda --part model" 60 "$GPTQ_LOG" \
    "${LOWBIT[@]}" bench gptq --device cuda --part model --model "$MODEL" --nsamples 16
pick '^lowbit: |(lowbit|torch) +(layer|model) ' "$GPTQ_LOG"

# 6. The fused dequantize-GEMM's bandwidth
DEQ_LOG="$OUT/bench-dequant.txt"
: > "$DEQ_LOG"
step "bench dequant (GB/s, % of peak)" 40 "$DEQ_LOG" "${LOWBIT[@]}" bench dequant
pick '^lowbit: |GB/s|peak' "$DEQ_LOG"

say "done in $(elapsed)s; logs: $(cd "$OUT" && ls | tr '\n' ' ')"
