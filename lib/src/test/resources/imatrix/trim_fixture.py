"""Keeps the entries of blocks 0 and 29 of llama-imatrix's two outputs (see make_fixture.sh), byte for byte the
values llama-imatrix wrote: the GGUF rewritten with the gguf package (same metadata, same tensor shapes), the legacy
.dat with its own layout (int32 n_entries; per entry int32 len, name, int32 ncall, int32 nval, float32 values; then
int32 chunk count, int32 len, dataset name)."""
import json
import struct
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter, GGUFValueType

KEEP = ("blk.0.", "blk.29.")


def trim_gguf(src, dst):
    r = GGUFReader(src)
    w = GGUFWriter(dst, arch="imatrix", use_temp_file=False)
    # GGUFWriter always writes general.architecture first; llama.cpp's loader ignores it
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        if vtype == GGUFValueType.STRING:
            w.add_string(name, bytes(field.parts[field.data[0]]).decode())
        elif vtype == GGUFValueType.UINT32:
            w.add_uint32(name, int(field.parts[field.data[0]][0]))
        elif vtype == GGUFValueType.ARRAY and field.types[1] == GGUFValueType.STRING:
            w.add_array(name, [bytes(field.parts[i]).decode() for i in field.data])
        else:
            raise SystemExit(f"unexpected metadata {name} {field.types}")
    for t in r.tensors:
        if t.name.startswith(KEEP):
            # reader shapes are ne0-first; numpy wants the reverse
            data = np.array(t.data, dtype=np.float32).reshape(tuple(int(d) for d in reversed(t.shape)))
            w.add_tensor(t.name, data, raw_shape=tuple(int(d) for d in reversed(t.shape)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def trim_dat(src, dst):
    b = open(src, "rb").read()
    (n,) = struct.unpack_from("<i", b, 0)
    off = 4
    kept = []
    for _ in range(n):
        (ln,) = struct.unpack_from("<i", b, off)
        start = off
        name = b[off + 4:off + 4 + ln].decode()
        off += 4 + ln
        ncall, nval = struct.unpack_from("<ii", b, off)
        off += 8 + 4 * nval
        if name.startswith(KEEP):
            kept.append(b[start:off])
    with open(dst, "wb") as f:
        f.write(struct.pack("<i", len(kept)))
        for e in kept:
            f.write(e)
        f.write(b[off:])  # chunk count and dataset name


def expected(gguf_file, dat_file, dst):
    """What llama-quantize's load_imatrix hands the quantizer for a few tensors, computed here from both files
    (float32 arithmetic as in tools/quantize/quantize.cpp: GGUF sums / count, legacy values / ncall)."""
    r = GGUFReader(gguf_file)
    t = {x.name: x for x in r.tensors}
    meta = {
        "chunk_count": int(r.fields["imatrix.chunk_count"].parts[-1][0]),
        "chunk_size": int(r.fields["imatrix.chunk_size"].parts[-1][0]),
        "datasets": [bytes(r.fields["imatrix.datasets"].parts[i]).decode() for i in r.fields["imatrix.datasets"].data],
        "entries": sum(1 for x in r.tensors if x.name.endswith(".in_sum2")),
        "tensors": {},
    }
    b = open(dat_file, "rb").read()
    (n,) = struct.unpack_from("<i", b, 0)
    off = 4
    dat = {}
    for _ in range(n):
        (ln,) = struct.unpack_from("<i", b, off)
        name = b[off + 4:off + 4 + ln].decode()
        off += 4 + ln
        ncall, nval = struct.unpack_from("<ii", b, off)
        dat[name] = (ncall, np.frombuffer(b, dtype="<f4", count=nval, offset=off + 8))
        off += 8 + 4 * nval
    meta["dat_entries"] = n
    meta["dat_chunk_count"], ln = struct.unpack_from("<ii", b, off)
    meta["dat_dataset"] = b[off + 8:off + 8 + ln].decode()
    for name in ("blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.29.attn_output.weight"):
        sums = np.array(t[name + ".in_sum2"].data, dtype=np.float32).ravel()
        count = np.float32(round(float(np.array(t[name + ".counts"].data).ravel()[0])))
        ncall, values = dat[name]
        meta["tensors"][name] = {
            "count": int(count),
            "ncall": ncall,
            "gguf_importance": [float(v) for v in (sums / count).astype(np.float32)],
            "dat_importance": [float(v) for v in (values / np.float32(ncall)).astype(np.float32)],
        }
    with open(dst, "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    trim_gguf(sys.argv[1], sys.argv[3])
    trim_dat(sys.argv[2], sys.argv[4])
    expected(sys.argv[3], sys.argv[4], sys.argv[5])
