"""Compares the tensors of two GGUF files byte for byte (names, types, dims, data), with the gguf package.

usage: compare_gguf.py OURS.gguf THEIRS.gguf   -> one summary line; exit 1 when any tensor differs
"""
import sys
from collections import Counter

import gguf


def tensors(path):
    r = gguf.GGUFReader(path)
    return {t.name: t for t in r.tensors}


ours, theirs = tensors(sys.argv[1]), tensors(sys.argv[2])
problems = []
if set(ours) != set(theirs):
    problems.append(f"names differ: only ours {sorted(set(ours) - set(theirs))[:5]}, only theirs {sorted(set(theirs) - set(ours))[:5]}")
same = 0
for name in sorted(set(ours) & set(theirs)):
    a, b = ours[name], theirs[name]
    if a.tensor_type != b.tensor_type:
        problems.append(f"{name}: type {a.tensor_type.name} vs {b.tensor_type.name}")
    elif list(a.shape) != list(b.shape):
        problems.append(f"{name}: dims {list(a.shape)} vs {list(b.shape)}")
    elif a.data.tobytes() != b.data.tobytes():
        ra, rb = a.data.reshape(-1).view('uint8'), b.data.reshape(-1).view('uint8')
        problems.append(f"{name} ({a.tensor_type.name}): {int((ra != rb).sum())} of {ra.size} bytes differ")
    else:
        same += 1
types = Counter(t.tensor_type.name for t in theirs.values())
print(f"{sys.argv[1]} vs {sys.argv[2]}: {same}/{len(theirs)} tensors identical; types {dict(types)}")
for p in problems[:10]:
    print("  " + p)
if len(problems) > 10:
    print(f"  ... {len(problems) - 10} more")
sys.exit(1 if problems else 0)
