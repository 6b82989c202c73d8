"""Golden fixtures for lowbit's Hugging Face quantized layouts (GptqLayout, AwqLayout, CompressedTensorsLayout).

Run in the reference environment (not CI):
    /work/refvenv/bin/python lib/src/test/resources/hf/quantized/make_fixtures.py lib/src/test/resources/hf/quantized

layouts.safetensors holds, per case NAME, the inputs (NAME.codes U8 [out, in], NAME.scales F32 [out, groups] holding
fp16 values, NAME.zeros U8 [out, groups] unless symmetric, NAME.g_idx I32 [in]), the tensors the reference packing writes
(NAME/m.qweight, NAME/m.weight_packed, ...), and NAME.dense F32 [out, in], the reference library's own dequantization
of those packed tensors; the header's __metadata__ maps NAME to the quantization_config. The generator asserts that the
reference unpacking gives back the inputs. The references:
  compressed-tensors: the installed package (pip install compressed-tensors): PackedQuantizationCompressor.compress
    packs, .decompress dequantizes (float32 scales, so the result is exact);
  AWQ: AutoAWQ 0.2.9 (pip install --no-deps autoawq): awq/utils/packing_utils.py's dequantize_gemm unpacks; the packing
    is WQLinear_GEMM.from_linear's loop, transcribed below (from_linear needs a float linear and CUDA-era imports);
  GPTQ: AutoGPTQ/GPTQModel cannot be installed here (CUDA extension builds), so their code is transcribed: the packing
    is AutoGPTQ's QuantLinear.pack loop (v1: zeros stored minus one), the unpacking GPTQModel 7.7's
    PackableQuantLinear.dequantize_weight for 2/4/8 bits after its convert_gptq_v1_to_v2_format (adds one to each zero).
ct_model/ is a tiny Llama checkpoint compressed by compressed-tensors (ModelCompressor), ct_model_dense.safetensors its
decompression by compressed-tensors.
"""
import importlib.util
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

rng = np.random.default_rng(15)


def fp16_scales(shape):
    return rng.uniform(0.002, 0.05, size=shape).astype(np.float16).astype(np.float32)


def case(out, inp, bits, g, sym, actorder=False):
    groups = 1 if g < 0 else -(-inp // g)
    codes = rng.integers(0, 2 ** bits, size=(out, inp)).astype(np.uint8)
    scales = fp16_scales((out, groups))
    zeros = None if sym else rng.integers(1, 2 ** bits, size=(out, groups)).astype(np.uint8)   # GPTQ v1 cannot hold 0
    if actorder:
        perm = rng.permutation(inp)
        g_idx = np.empty(inp, dtype=np.int32)
        g_idx[perm] = np.arange(inp) // g
    else:
        g_idx = (np.arange(inp) // g if g > 0 else np.zeros(inp)).astype(np.int32)
    return codes, scales, zeros, g_idx


def zero_or_fixed(zeros, bits, shape):
    return np.full(shape, 2 ** (bits - 1), dtype=np.int64) if zeros is None else zeros.astype(np.int64)


# ---- GPTQ: AutoGPTQ's pack loop (v1), GPTQModel's unpack ----
def autogptq_pack_rows(intweight, bits):
    """AutoGPTQ QuantLinear.pack's loop over the rows of intweight [n, cols] (uint32): 32 / b codes per word, or for 3
    bits 32 codes in 3 words, codes 10 and 21 straddling two."""
    out = np.zeros((intweight.shape[0] // 32 * bits, intweight.shape[1]), dtype=np.uint32)
    i = row = 0
    while row < out.shape[0]:
        if bits in (2, 4, 8):
            for j in range(i, i + 32 // bits):
                out[row] |= intweight[j] << (bits * (j - i))
            i += 32 // bits
            row += 1
        else:
            for j in range(i, i + 10):
                out[row] |= intweight[j] << (3 * (j - i))
            i += 10
            out[row] |= intweight[i] << 30
            row += 1
            out[row] |= (intweight[i] >> 2) & 1
            i += 1
            for j in range(i, i + 10):
                out[row] |= intweight[j] << (3 * (j - i) + 1)
            i += 10
            out[row] |= intweight[i] << 31
            row += 1
            out[row] |= (intweight[i] >> 1) & 0x3
            i += 1
            for j in range(i, i + 10):
                out[row] |= intweight[j] << (3 * (j - i) + 2)
            i += 10
            row += 1
    return out


def gptq_pack(codes, zeros, bits):
    qweight = autogptq_pack_rows(codes.T.astype(np.uint32), bits)                  # intweight [in, out]
    z = ((zeros.T.astype(np.int64) - 1) & (2 ** bits - 1)).astype(np.uint32)    # [groups, out], v1: minus one
    qzeros = autogptq_pack_rows(np.ascontiguousarray(z.T), bits).T                # the same loop along the outputs
    return np.ascontiguousarray(qweight).view(np.int32), np.ascontiguousarray(qzeros).view(np.int32)


def gptq_dequantize(qweight, qzeros, scales, g_idx, bits):
    """GPTQModel 7.7 PackableQuantLinear.dequantize_weight; v1 zeros plus one (convert_gptq_v1_to_v2_format: a word-wide
    add for 2/4/8 bits, its _correct_gptq_v1_qzeros for 3, here one added to each unpacked zero)."""
    qweight, qzeros = torch.from_numpy(qweight), torch.from_numpy(qzeros.copy())
    maxq = 2 ** bits - 1
    if bits in (2, 4, 8):
        per = 32 // bits
        qzeros += sum(1 << (bits * k) for k in range(per))   # 0x55555555, 0x11111111, 0x01010101: below 2^31
        wf = torch.arange(0, 32, bits, dtype=torch.int32).unsqueeze(0)
        zeros = torch.bitwise_right_shift(torch.unsqueeze(qzeros, 2).expand(-1, -1, per), wf.unsqueeze(0)).to(torch.int16)
        zeros = torch.bitwise_and(zeros, maxq).reshape(qzeros.shape[0], -1)[:, :scales.shape[1]]
        weight = torch.bitwise_and(torch.bitwise_right_shift(torch.unsqueeze(qweight, 1).expand(-1, per, -1),
                                                             wf.unsqueeze(-1)).to(torch.int16), maxq)
    else:
        wf = torch.tensor([[0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 0], [0, 1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31],
                           [0, 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 0]], dtype=torch.int32).reshape(1, 3, 12)
        zeros = qzeros.reshape(qzeros.shape[0], qzeros.shape[1] // 3, 3, 1).expand(-1, -1, -1, 12)
        zeros = torch.bitwise_right_shift(zeros, wf.unsqueeze(0))
        zeros[:, :, 0, 10] = (zeros[:, :, 0, 10] & 0x3) | (torch.bitwise_left_shift(zeros[:, :, 1, 0], 2) & 0x4)
        zeros[:, :, 1, 11] = (zeros[:, :, 1, 11] & 0x1) | (torch.bitwise_left_shift(zeros[:, :, 2, 0], 1) & 0x6)
        zeros = zeros & 0x7
        zeros = torch.cat([zeros[:, :, 0, :11], zeros[:, :, 1, 1:12], zeros[:, :, 2, 1:11]], dim=2).reshape(scales.shape) + 1
        weight = qweight.reshape(qweight.shape[0] // 3, 3, 1, qweight.shape[1]).expand(-1, -1, 12, -1)
        weight = torch.bitwise_right_shift(weight, wf.unsqueeze(-1)) & 0x7
        weight[:, 0, 10] = (weight[:, 0, 10] & 0x3) | (torch.bitwise_left_shift(weight[:, 1, 0], 2) & 0x4)
        weight[:, 1, 11] = (weight[:, 1, 11] & 0x1) | (torch.bitwise_left_shift(weight[:, 2, 0], 1) & 0x6)
        weight = weight & 0x7
        weight = torch.cat([weight[:, 0, :11], weight[:, 1, 1:12], weight[:, 2, 1:11]], dim=1)
    weight = weight.reshape(weight.shape[0] * weight.shape[1], weight.shape[2])
    g = torch.from_numpy(g_idx).long()
    s = torch.from_numpy(scales)
    return (s[g] * (weight - zeros[g]).to(torch.float32)).T.contiguous().numpy(), weight.T.numpy(), zeros.T.numpy()


# ---- AWQ: WQLinear_GEMM.from_linear's loop, AutoAWQ's dequantize_gemm ----
def awq_pack(codes, zeros):
    intweight = codes.T.astype(np.uint32)                       # [in, out]
    order_map = [0, 2, 4, 6, 1, 3, 5, 7]
    qweight = np.zeros((intweight.shape[0], intweight.shape[1] // 8), dtype=np.uint32)
    for col in range(intweight.shape[1] // 8):
        for i in range(8):
            qweight[:, col] |= intweight[:, col * 8 + order_map[i]] << (i * 4)
    z = zeros.T.astype(np.uint32)                               # [groups, out]
    qzeros = np.zeros((z.shape[0], z.shape[1] // 8), dtype=np.uint32)
    for col in range(z.shape[1] // 8):
        for i in range(8):
            qzeros[:, col] |= z[:, col * 8 + order_map[i]] << (i * 4)
    return qweight.view(np.int32), qzeros.view(np.int32)


def awq_packing_utils():
    spec = importlib.util.find_spec("awq")
    path = os.path.join(spec.submodule_search_locations[0], "utils", "packing_utils.py")
    s = importlib.util.spec_from_file_location("awq_packing_utils", path)
    m = importlib.util.module_from_spec(s)
    s.loader.exec_module(m)   # only torch; awq/__init__ would import transformers-4 era modules
    return m


tensors, meta, checks = {}, {}, []


def put_inputs(name, codes, scales, zeros, g_idx):
    tensors[name + ".codes"] = torch.from_numpy(codes)
    tensors[name + ".scales"] = torch.from_numpy(scales)
    if zeros is not None:
        tensors[name + ".zeros"] = torch.from_numpy(zeros)
    tensors[name + ".g_idx"] = torch.from_numpy(g_idx)


def gptq_case(name, out, inp, bits, g, sym, actorder=False):
    codes, scales, zeros, g_idx = case(out, inp, bits, g, sym, actorder)
    groups = scales.shape[1]
    z = zero_or_fixed(zeros, bits, (out, groups))
    qweight, qzeros = gptq_pack(codes, z, bits)
    dense, wcodes, wzeros = gptq_dequantize(qweight, qzeros, scales.T.copy(), g_idx, bits)
    assert np.array_equal(wcodes, codes) and np.array_equal(wzeros, z), name
    put_inputs(name, codes, scales, zeros, g_idx)
    tensors[name + "/m.qweight"] = torch.from_numpy(qweight)
    tensors[name + "/m.qzeros"] = torch.from_numpy(qzeros)
    tensors[name + "/m.scales"] = torch.from_numpy(scales.T.copy()).to(torch.float16)
    tensors[name + "/m.g_idx"] = torch.from_numpy(g_idx)
    tensors[name + ".dense"] = torch.from_numpy(dense)
    meta[name] = json.dumps({"quant_method": "gptq", "bits": bits, "group_size": g, "sym": sym, "desc_act": actorder,
                             "checkpoint_format": "gptq"})


def awq_case(name, out, inp, g, sym):
    codes, scales, zeros, g_idx = case(out, inp, 4, g, sym)
    z = zero_or_fixed(zeros, 4, scales.shape)
    qweight, qzeros = awq_pack(codes, z)
    pu = awq_packing_utils()
    iw, iz = pu.unpack_awq(torch.from_numpy(qweight), torch.from_numpy(qzeros), 4)
    iw, iz = pu.reverse_awq_order(iw, iz, 4)
    assert np.array_equal(torch.bitwise_and(iw, 15).T.numpy(), codes) and np.array_equal(torch.bitwise_and(iz, 15).T.numpy(), z), name
    dense = pu.dequantize_gemm(torch.from_numpy(qweight), torch.from_numpy(qzeros), torch.from_numpy(scales.T.copy()), 4, g)
    put_inputs(name, codes, scales, zeros, g_idx)
    tensors[name + "/m.qweight"] = torch.from_numpy(qweight)
    tensors[name + "/m.qzeros"] = torch.from_numpy(qzeros)
    tensors[name + "/m.scales"] = torch.from_numpy(scales.T.copy()).to(torch.float16)
    tensors[name + ".dense"] = dense.T.contiguous().to(torch.float32)
    meta[name] = json.dumps({"quant_method": "awq", "bits": 4, "group_size": g, "zero_point": True, "version": "gemm"})


def ct_config(bits, g, sym):
    return {"config_groups": {"group_0": {"format": "pack-quantized", "targets": ["Linear"], "input_activations": None,
                                          "output_activations": None,
                                          "weights": {"num_bits": bits, "type": "int", "symmetric": sym,
                                                      "strategy": "group" if g > 0 else "channel",
                                                      "group_size": g if g > 0 else None, "dynamic": False,
                                                      "actorder": None, "observer": "minmax"}}},
            "format": "pack-quantized", "ignore": ["lm_head"], "quant_method": "compressed-tensors",
            "quantization_status": "compressed"}


def ct_case(name, out, inp, bits, g, sym):
    from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
    from compressed_tensors.quantization import QuantizationScheme
    codes, scales, zeros, g_idx = case(out, inp, bits, g, sym)
    cfg = ct_config(bits, g, sym)
    scheme = QuantizationScheme.model_validate(cfg["config_groups"]["group_0"])
    z = zero_or_fixed(zeros, bits, scales.shape)
    # the dense weight on the grid: compress re-quantizes it to exactly these codes
    gi = torch.from_numpy(g_idx).long()
    s = torch.from_numpy(scales)[:, gi]
    zz = torch.from_numpy(z)[:, gi].to(torch.float32)
    dense_in = (torch.from_numpy(codes.astype(np.float32)) - zz) * s
    sd = {"weight": dense_in, "weight_scale": torch.from_numpy(scales)}
    if not sym:
        sd["weight_zero_point"] = torch.from_numpy(z - 2 ** (bits - 1)).to(torch.int8)
    packed = PackedQuantizationCompressor.compress(sd, scheme)
    back = PackedQuantizationCompressor.decompress(dict(packed), scheme)
    assert torch.equal(back["weight"], dense_in), name
    put_inputs(name, codes, scales, zeros, g_idx)
    for k, v in packed.items():
        tensors[name + "/m." + k] = v.contiguous()
    tensors[name + ".dense"] = back["weight"].to(torch.float32).contiguous()
    meta[name] = json.dumps(cfg)




def ct_model(out_dir, dense_file):
    """A tiny Llama quantized (asymmetric 4-bit, groups of 32) and compressed by compressed-tensors as llm-compressor
    does (apply_quantization_config, qparams from each group's min and max, ModelCompressor with pack-quantized), then
    loaded by transformers with dequantize=True: its dense linears and log-probs of TOKENS are the reference."""
    from transformers import AutoModelForCausalLM, CompressedTensorsConfig, LlamaConfig, LlamaForCausalLM
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (QuantizationArgs, QuantizationConfig, QuantizationScheme,
                                                 apply_quantization_config)
    from compressed_tensors.quantization.utils import calculate_qparams
    torch.manual_seed(15)
    cfg = LlamaConfig(vocab_size=32, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=128)
    model = LlamaForCausalLM(cfg).to(torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    args = QuantizationArgs(num_bits=4, type="int", symmetric=False, strategy="group", group_size=32)
    apply_quantization_config(model, QuantizationConfig(
        config_groups={"group_0": QuantizationScheme(targets=["Linear"], weights=args)}, ignore=["lm_head"]))
    for _, m in model.named_modules():
        if hasattr(m, "weight_scale"):
            g = m.weight.data.reshape(m.weight.shape[0], -1, 32)
            s, z = calculate_qparams(g.amin(-1), g.amax(-1), args)
            m.weight_scale.data.copy_(s.reshape(m.weight_scale.shape))
            m.weight_zero_point.data.copy_(z.reshape(m.weight_zero_point.shape))
    comp = ModelCompressor.from_pretrained_model(model, "pack-quantized")
    comp.compress_model(model)
    model.save_pretrained(out_dir)
    comp.update_config(out_dir)
    loaded = AutoModelForCausalLM.from_pretrained(out_dir, quantization_config=CompressedTensorsConfig(dequantize=True),
                                                  dtype=torch.float32)
    ref = {k: v.detach().clone().contiguous() for k, v in loaded.state_dict().items() if k.endswith("_proj.weight")}
    with torch.no_grad():
        ref["log_probs"] = torch.log_softmax(loaded(torch.tensor([TOKENS])).logits.float(), -1)[0].contiguous()
    save_file(ref, dense_file)

TOKENS = [1, 5, 9, 3, 30, 17, 2, 8, 21, 4, 11]

if __name__ == "__main__":
    OUT = sys.argv[1]
    gptq_case("gptq_w4g32_asym", 64, 128, 4, 32, False)
    gptq_case("gptq_w4g32_sym_actorder", 64, 128, 4, 32, True, actorder=True)
    gptq_case("gptq_w2g16_asym", 32, 64, 2, 16, False)
    gptq_case("gptq_w8_channel_sym", 32, 64, 8, -1, True)
    gptq_case("gptq_w3g32_asym", 64, 128, 3, 32, False)
    gptq_case("gptq_w3g64_sym_actorder", 32, 128, 3, 64, True, actorder=True)
    awq_case("awq_w4g32_asym", 64, 128, 32, False)
    awq_case("awq_w4g64_sym", 32, 128, 64, True)
    ct_case("ct_w4g32_sym", 64, 128, 4, 32, True)
    ct_case("ct_w4g32_asym", 64, 128, 4, 32, False)
    ct_case("ct_w3g32_asym", 40, 96, 3, 32, False)
    ct_case("ct_w6g16_sym", 24, 48, 6, 16, True)
    ct_case("ct_w8_channel_asym", 16, 64, 8, -1, False)
    ct_case("ct_w5g16_asym", 20, 80, 5, 16, False)
    save_file({k: v.clone().contiguous() for k, v in tensors.items()}, os.path.join(OUT, "layouts.safetensors"), metadata=meta)
    print("wrote", len(meta), "cases")
    ct_model(os.path.join(OUT, "ct_model"), os.path.join(OUT, "ct_model_dense.safetensors"))
    print("wrote ct_model")
