"""Writes types.tsv: for each tensor of the default model (GGUF name and dims), the type llama-quantize chose
under each file type, read from the files it wrote from our F32 export of the model.

usage: make_type_fixture.py DIR > types.tsv
  DIR holds ref_TYPE.gguf (llama-quantize f32.gguf ref_TYPE.gguf TYPE) and ref_TYPE_imatrix.gguf (with
  --imatrix), as verify_llamacpp.sh leaves them; columns TYPE and TYPE+imatrix.
"""
import os
import sys

import gguf

d = sys.argv[1]
columns = []
for f in sorted(os.listdir(d)):
    if f.startswith("ref_") and f.endswith(".gguf"):
        label = f[4:-5].replace("_imatrix", "+imatrix")
        columns.append((label, {t.name: t.tensor_type.name for t in gguf.GGUFReader(os.path.join(d, f)).tensors}))
first = gguf.GGUFReader(os.path.join(d, "f32.gguf"))
print("\t".join(["tensor", "dims"] + [c for c, _ in columns]))
for t in first.tensors:
    print("\t".join([t.name, "x".join(str(int(x)) for x in t.shape)] + [types[t.name] for _, types in columns]))
