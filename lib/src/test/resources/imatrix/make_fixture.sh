#!/usr/bin/env bash
# Regenerates the importance-matrix fixtures with llama.cpp (reference environment only, not CI):
#   LLAMA=/path/to/llama.cpp PY=/path/to/python-with-gguf lib/src/test/resources/imatrix/make_fixture.sh
# llama.cpp: the tree vendored by llama-cpp-python 0.3.36, built with cmake (build/bin holds llama-imatrix and libllama.so).
# Writes, next to this script:
#   tokens.txt        llama.cpp's tokens of calibration.txt (what llama-imatrix evaluates), one per line
#   reference.gguf    llama-imatrix -c 128 --chunks 2 on the default model's weights in F32 (llama-quantize
#                     --allow-requantize to F32: the Q4_1 weights dequantized exactly), GGUF format, trimmed to blocks 0 and 29.
#                     F32 because ggml multiplies Q4_1 weights by activations rounded to Q8_1, which moves the sums of
#                     the deeper blocks by up to 6%; our runtime multiplies in float, as ggml does with F32 weights.
#                     The KV cache in F32 too (-ctk f32 -ctv f32, and no flash attention): its default F16 cache rounds
#                     the keys and values, which moves the attention outputs by up to 8e-4.
#   reference.dat     the same run in the legacy format (--output-format dat), trimmed the same way
#   expected.json     metadata and, for three tensors, the importances llama-quantize derives from each file
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../../.." && pwd)
LLAMA=${LLAMA:-/work/llamacpp/llama_cpp_python-0.3.36/vendor/llama.cpp}
PY=${PY:-/work/refvenv/bin/python}
model="$root/data/models/SmolLM2-135M-Instruct.Q4_1.gguf"
bin="$LLAMA/build/bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gcc -O2 -o "$tmp/tokenize" "$here/tokenize.c" -I"$LLAMA/include" -I"$LLAMA/ggml/include" -L"$bin" -lllama -Wl,-rpath,"$bin"
"$tmp/tokenize" "$model" "$here/calibration.txt" 2>/dev/null > "$here/tokens.txt"

"$bin/llama-quantize" --allow-requantize "$model" "$tmp/f32.gguf" F32 > "$tmp/quantize.log" 2>&1

# one thread: the sums are then accumulated in one fixed order
cd "$here"
"$bin/llama-imatrix" -m "$tmp/f32.gguf" -f calibration.txt -c 128 --chunks 2 --no-ppl -t 1 -ctk f32 -ctv f32 -fa off -o "$tmp/full.gguf" > "$tmp/gguf.log" 2>&1
"$bin/llama-imatrix" -m "$tmp/f32.gguf" -f calibration.txt -c 128 --chunks 2 --no-ppl -t 1 -ctk f32 -ctv f32 -fa off --output-format dat -o "$tmp/full.dat" > "$tmp/dat.log" 2>&1
"$PY" "$here/trim_fixture.py" "$tmp/full.gguf" "$tmp/full.dat" "$here/reference.gguf" "$here/reference.dat" "$here/expected.json"
