"""Checks a checkpoint written by `./lowbit export hf` against the reference libraries (reference environment, not CI):
    /work/refvenv/bin/python lib/src/test/resources/hf/quantized/verify_export.py QUANTIZED_DIR HF_DIR
QUANTIZED_DIR is the lowbit directory that was exported; its dense weights are computed here from its documented layout
(QuantizedModelFiles: codes packed LSB-first, scales [rows][groups], integer zeros). Each linear of HF_DIR is
dequantized by the format's reference (compressed-tensors: transformers with CompressedTensorsConfig(dequantize=True);
AWQ: AutoAWQ's dequantize_gemm; GPTQ: GPTQModel's dequantize_weight as transcribed in make_fixtures.py) and must
equal ours exactly, as must every float tensor. Then transformers is asked to load HF_DIR on CPU, and the outcome printed.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as ref  # noqa: E402

ours_dir, hf_dir = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(ours_dir, "lowbit.json")))
ours = load_file(os.path.join(ours_dir, "model.safetensors"))
hf = load_file(os.path.join(hf_dir, "model.safetensors"))
qc = json.load(open(os.path.join(hf_dir, "config.json")))["quantization_config"]
method = qc["quant_method"]


def our_dense(name, info):
    g = info["grid"]
    bits, rows, cols = g["bits"], info["rows"], info["columns"]
    packed = ours[name + ".qweight"]
    bitstream = np.unpackbits(packed, bitorder="little")[: rows * cols * bits].reshape(-1, bits)
    codes = (bitstream.astype(np.int64) << np.arange(bits)).sum(1).reshape(rows, cols)
    scales = ours[name + ".scales"].astype(np.float64)
    zeros = ours[name + ".zeros"].astype(np.float64) if name + ".zeros" in ours else np.full(scales.shape, 2 ** (bits - 1))
    if name + ".g_idx" in ours:
        gi = ours[name + ".g_idx"]
    else:
        gi = np.arange(cols) // g["group_size"] if g["granularity"] == "group" else np.zeros(cols, dtype=np.int64)
    if scales.shape[0] == 1:
        scales, zeros = np.repeat(scales, rows, 0), np.repeat(zeros, rows, 0)
    return (scales[:, gi] * (codes - zeros[:, gi])).astype(np.float32)


def reference_dense():
    if method == "compressed-tensors":
        from transformers import AutoModelForCausalLM, CompressedTensorsConfig
        m = AutoModelForCausalLM.from_pretrained(hf_dir, quantization_config=CompressedTensorsConfig(dequantize=True),
                                                 dtype=torch.float32)
        sd = m.state_dict()
        return {k[: -len(".weight")]: v.numpy() for k, v in sd.items() if k[: -len(".weight")] in manifest["linears"]}
    out = {}
    for name in manifest["linears"]:
        if method == "awq":
            pu = ref.awq_packing_utils()
            d = pu.dequantize_gemm(torch.from_numpy(hf[name + ".qweight"]), torch.from_numpy(hf[name + ".qzeros"]),
                                   torch.from_numpy(hf[name + ".scales"].astype(np.float32)), qc["bits"], qc["group_size"])
            out[name] = d.T.contiguous().numpy()
        else:
            out[name] = ref.gptq_dequantize(hf[name + ".qweight"], hf[name + ".qzeros"],
                                            hf[name + ".scales"].astype(np.float32), hf[name + ".g_idx"], qc["bits"])[0]
    return out


dense = reference_dense()
worst, n = 0.0, 0
for name, info in manifest["linears"].items():
    a, b = our_dense(name, info), dense[name]
    assert a.shape == b.shape, (name, a.shape, b.shape)
    worst = max(worst, float(np.abs(a - b).max()))
    n += 1
floats = [k for k in ours if not any(k.startswith(l + ".") for l in manifest["linears"])]
same_floats = all(np.array_equal(ours[k], hf[k]) for k in floats)
print(f"{method}: {n} linears, max |ours - reference| = {worst}; {len(floats)} float tensors identical: {same_floats}")

try:
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(hf_dir, device_map="cpu")
    with torch.no_grad():
        lp = torch.log_softmax(m(torch.tensor([[1, 5, 9, 3, 30, 17]])).logits.float(), -1)
    print("transformers loads it on CPU:", type(m).__name__, "log-probs finite:", bool(torch.isfinite(lp).all()))
except Exception as e:  # report, the reference environment may lack the format's kernels
    print("transformers cannot load it on CPU:", type(e).__name__, str(e).splitlines()[0][:300])
