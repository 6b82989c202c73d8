"""One-off check (not CI) that the gguf Python package agrees with these fixtures.

QuantizeTest proves that lowbit's Quantize writes exactly the bytes in TYPE[.imatrix].bin and that lowbit's
Dequantize turns them into exactly TYPE[.imatrix].dequant.f32, so comparing gguf-py against those files
compares it against lowbit. For every type gguf-py handles: gguf.quants.dequantize of the bytes must equal
the dequantized floats bit for bit, and where gguf-py can quantize, its bytes (it has no importance-weighted
routines) are compared with the reference-path bytes.

Run from this folder: /path/to/python check_gguf_py.py
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

ROWS, COLS = 6, 512
TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]

x = np.fromfile("input.f32", dtype="<f4").reshape(ROWS, COLS)
ok = True
for name in TYPES:
    qtype = GGMLQuantizationType[name]
    for suffix in ("", ".imatrix"):
        raw = np.fromfile(f"{name}{suffix}.bin", dtype=np.uint8).reshape(ROWS, -1)
        want = np.fromfile(f"{name}{suffix}.dequant.f32", dtype="<f4").reshape(ROWS, COLS)
        got = dequantize(raw, qtype).astype(np.float32).reshape(ROWS, COLS)
        same = np.array_equal(got.view(np.uint32), want.view(np.uint32))
        ok &= same
        diff = np.abs(got.astype(np.float64) - want).max()
        print(f"dequantize {name}{suffix}: {'bit-identical' if same else f'DIFFERS (max abs diff {diff:g})'}")
    try:
        mine = quantize(x, qtype)
    except NotImplementedError:
        print(f"quantize   {name}: gguf-py has no quantizer for this type (nothing to compare)")
        continue
    same = np.array_equal(mine.reshape(-1).view(np.uint8), np.fromfile(f"{name}.bin", dtype=np.uint8))
    print(f"quantize   {name}: {'byte-identical' if same else 'DIFFERS'}")
    ok &= same
sys.exit(0 if ok else 1)
