"""Golden fixture for lowbit.tensor.WeightFormat.toBf16: float32 bits -> the bfloat16 bits torch's .to(torch.bfloat16) gives.

Regenerate: /work/refvenv/bin/python lib/src/test/resources/bf16/make_bf16_golden.py > lib/src/test/resources/bf16/bf16_rounding.tsv
(from the repository root). Columns: float32 bits (hex), bf16 bits (hex), what the case checks.
"""
import struct

import numpy as np
import torch

cases = []


def add(bits, why):
    cases.append((bits & 0xFFFFFFFF, why))


def f2b(f):
    return struct.unpack("<I", struct.pack("<f", f))[0]


# exact bf16 values stay as they are
for b in (0x3F80, 0xBF80, 0x4049, 0x0001, 0x0080, 0x7F7F, 0xFF7F):
    add(b << 16, "exact bf16 value")
# ties (lower half exactly 0x8000): to even, down when the kept part is even, up when it is odd
for hi in (0x3F80, 0x3F81, 0xBF80, 0xBF81, 0x4000, 0x4001, 0x0000, 0x0001, 0x007F, 0x7F7E):
    add((hi << 16) | 0x8000, "tie: to even")
# just below and just above a tie
for hi in (0x3F80, 0x3F81, 0xC2F6):
    add((hi << 16) | 0x7FFF, "below a tie: down")
    add((hi << 16) | 0x8001, "above a tie: up")
# a carry through the mantissa into the exponent
add(0x3FFFFFFF, "carry into the exponent")
add(0x3FFF8000, "tie with odd kept part: carry into the exponent")
# float32 subnormals and the smallest normals
for bits in (0x00000001, 0x00008000, 0x00008001, 0x00018000, 0x0000FFFF, 0x007FFFFF, 0x007F8000, 0x00800000,
             0x80000001, 0x807FFFFF, 0x80008000):
    add(bits, "subnormal")
# zeros
add(0x00000000, "positive zero")
add(0x80000000, "negative zero")
# infinities
add(0x7F800000, "+inf")
add(0xFF800000, "-inf")
# past bf16's largest finite value (0x7F7F0000 = 3.3895e38): to infinity at and past the tie
add(0x7F7F7FFF, "largest finite: below the tie, stays finite")
add(0x7F7F8000, "largest finite: tie, rounds to infinity")
add(0x7F7FFFFF, "float32 max: to infinity")
add(0xFF7FFFFF, "-float32 max: to -infinity")
# NaNs: quiet, signalling (payload only in the low half), negative
for bits in (0x7FC00000, 0x7F800001, 0x7FBFFFFF, 0xFFC00000, 0xFF800001, 0x7FC00001, 0x7FFFFFFF):
    add(bits, "NaN")
# ordinary values across magnitudes
rng = np.random.default_rng(20260)
vals = np.concatenate([rng.standard_normal(40) * 10.0 ** rng.integers(-30, 30, 40), rng.standard_normal(40) * 0.02])
for v in vals.astype(np.float32):
    add(f2b(float(v)), "random")

bits = np.array([c[0] for c in cases], dtype=np.uint32)
x = torch.from_numpy(bits.view(np.float32).copy())
y = x.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
print("# float32_bits\tbf16_bits\tcase   (torch %s, .to(torch.bfloat16) on the CPU)" % torch.__version__)
for (b, why), o in zip(cases, y):
    print("%08x\t%04x\t%s" % (b, int(o), why))
