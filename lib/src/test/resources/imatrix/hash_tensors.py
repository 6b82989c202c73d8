"""Writes quantized.json (see make_fixture.sh): for a few tensors, the sha256 of the bytes llama-quantize wrote
with reference.gguf as its --imatrix (type by type, llama-quantize --pure), of the same without an imatrix, and
of the F32 weights it quantized. Usage: hash_tensors.py OUT.json F32.gguf TYPE=FILE [TYPE=FILE ...]"""
import hashlib
import json
import sys

from gguf import GGUFReader

TENSORS = ("blk.0.attn_k.weight", "blk.29.attn_output.weight", "blk.0.ffn_down.weight", "blk.29.ffn_down.weight")


def tensors(path):
    return {t.name: t for t in GGUFReader(path).tensors}


def sha(t):
    return hashlib.sha256(t.data.tobytes()).hexdigest()


out = {"f32": {}, "quantized": []}
f32 = tensors(sys.argv[2])
for name in TENSORS:
    out["f32"][name] = sha(f32[name])
for arg in sys.argv[3:]:
    label, path = arg.split("=", 1)
    q = tensors(path)
    for name in TENSORS:
        t = q[name]
        # llama-quantize falls back from a K type where the row (576) is not a multiple of 256: keep what it wrote
        out["quantized"].append({"file": label, "tensor": name, "type": t.tensor_type.name, "sha256": sha(t)})
with open(sys.argv[1], "w") as f:
    json.dump(out, f, indent=1)
