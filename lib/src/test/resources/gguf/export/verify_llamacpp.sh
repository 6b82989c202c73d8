#!/usr/bin/env bash
# Checks `./lowbit export gguf` against llama.cpp itself (reference environment, not CI):
#  (a) llama-quantize and our export of the same F32 GGUF give byte-identical tensors, per type, with and
#      without an importance matrix; (b) llama-perplexity gives the same numbers on both files; (c) llama.cpp
#      loads and runs every exported file.
# usage: verify_llamacpp.sh [WORKDIR]   (from the repository root; LLAMA_BIN, PY, CHUNKS, TYPES may be set)
set -uo pipefail
ROOT=$(git rev-parse --show-toplevel)
HERE=$ROOT/lib/src/test/resources/gguf/export
LLAMA_BIN=${LLAMA_BIN:-/work/llamacpp/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin}
PY=${PY:-/work/refvenv/bin/python}
CHUNKS=${CHUNKS:-4}
TYPES=${TYPES:-"Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_M Q4_K_S Q4_K_M Q5_K_M Q6_K"}
WORK=${1:-$(mktemp -d)}
export LD_LIBRARY_PATH=$LLAMA_BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
TEXT=$ROOT/data/wikitext-2-raw/wiki.test.raw
mkdir -p "$WORK"; cd "$WORK" || exit 2
fail=0
lowbit() { (cd "$ROOT" && ./lowbit "$@"); }

echo "== F32 source written by our export"
rm -f f32.gguf
lowbit export gguf --model default --type F32 --out "$WORK/f32.gguf" 2>/dev/null | tail -1 || exit 2

echo "== importance matrix from llama-imatrix (F32 model, $CHUNKS chunks of 512 tokens of the C4 calibration slice)"
if [ ! -f imatrix.gguf ]; then
  "$PY" -c 'import json, sys; print("\n\n".join(json.loads(l)["text"] for l in open(sys.argv[1])))' \
    "$ROOT/data/c4/c4_en_train00000_first1000.jsonl" > calib.txt || exit 2
  "$LLAMA_BIN/llama-imatrix" -m f32.gguf -f calib.txt --chunks "$CHUNKS" -c 512 -o imatrix.gguf >imatrix.log 2>&1 \
    || { echo "llama-imatrix failed, see $WORK/imatrix.log"; exit 2; }
fi

run_pair() { # TYPE SUFFIX [imatrix args...]
  local t=$1 s=$2; shift 2
  local ref=ref_$t$s.gguf ours=ours_$t$s.gguf
  rm -f "$ref" "$ours"
  if [ -n "${1:-}" ]; then
    "$LLAMA_BIN/llama-quantize" --imatrix imatrix.gguf f32.gguf "$ref" "$t" 2 >"ref_$t$s.log" 2>&1 || { echo "llama-quantize $t failed"; fail=1; return; }
    lowbit export gguf --model "$WORK/f32.gguf" --type "$t" --imatrix "$WORK/imatrix.gguf" --out "$WORK/$ours" >"ours_$t$s.log" 2>&1 || { echo "export $t$s failed:"; tail -2 "ours_$t$s.log"; fail=1; return; }
  else
    "$LLAMA_BIN/llama-quantize" f32.gguf "$ref" "$t" 2 >"ref_$t$s.log" 2>&1 || { echo "llama-quantize $t failed"; fail=1; return; }
    lowbit export gguf --model "$WORK/f32.gguf" --type "$t" --out "$WORK/$ours" >"ours_$t$s.log" 2>&1 || { echo "export $t$s failed:"; tail -2 "ours_$t$s.log"; fail=1; return; }
  fi
  echo "-- $t$s: llama-quantize $(grep -o '[0-9]* of [0-9]* tensor(s) required fallback' "ref_$t$s.log" || echo 'no fallback'); ours: $(grep -c '^fallback:' "ours_$t$s.log") fallback line(s)"
  "$PY" "$HERE/compare_gguf.py" "$ours" "$ref" || fail=1
}

echo "== (a) tensor data, ours vs llama-quantize"
for t in $TYPES; do run_pair "$t" ""; done
for t in $TYPES; do run_pair "$t" "_imatrix" imatrix; done

echo "== (b) llama-perplexity, $CHUNKS chunks of WikiText-2 test, ours vs llama-quantize's"
ppl() { "$LLAMA_BIN/llama-perplexity" -m "$1" -f "$TEXT" --chunks "$CHUNKS" -c 512 -t 2 2>&1 | grep -o 'Final estimate: PPL = [0-9.]* +/- [0-9.]*' ; }
for f in ours_*.gguf; do
  r=${f/ours_/ref_}
  a=$(ppl "$f"); b=$(ppl "$r")
  echo "$f: $a | $r: $b"
  [ "$a" = "$b" ] && [ -n "$a" ] || { echo "   DIFFERENT"; fail=1; }
done

echo "== (c) llama-completion runs every exported file"
for f in f32.gguf ours_*.gguf; do
  out=$("$LLAMA_BIN/llama-completion" -m "$f" -p "The capital of France is" -n 8 --temp 0 -no-cnv -t 2 2>/dev/null | tr '\n' ' ')
  [ -n "$out" ] || { echo "$f: no output"; fail=1; continue; }
  echo "$f: $out"
done
echo "== done: $([ $fail = 0 ] && echo 'all equal' || echo 'DIFFERENCES above')"
exit $fail
