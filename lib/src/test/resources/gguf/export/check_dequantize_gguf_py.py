"""Compares the gguf package's dequantization of every tensor of a GGUF file, bit for bit, with lowbit's (DumpDequantized.java)."""
import sys, numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
r = GGUFReader(sys.argv[1]); ours = np.fromfile(sys.argv[2], dtype='<f4'); o = 0; bad = 0; types = set()
for t in r.tensors:
    n = int(t.n_elements); x = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
    y = ours[o:o+n]; o += n; types.add(t.tensor_type.name)
    if not np.array_equal(x.view(np.uint32), y.view(np.uint32)): bad += 1; print('differs', t.name, t.tensor_type.name)
print(sys.argv[1].split('/')[-1], 'tensors', len(r.tensors), 'differing', bad, 'types', sorted(types), 'all read' if o == len(ours) else 'LENGTH MISMATCH')
