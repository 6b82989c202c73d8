#!/usr/bin/env python3
"""A random-weight Llama with the default model's shapes, as a Hugging Face safetensors directory: the GPU benchmarks'
model, made on the GPU machine (the 98 MB GGUF cannot travel there) by transformers itself.

    python3 environment/gpu/make_bench_model.py --tokenizer data/models/opt-125m-tokenizer --out /tmp/bench-model

SmolLM2-135M's shapes (hidden 576, MLP 1536, 30 blocks, 9 query heads and 3 KV heads of 64, tied embeddings, RoPE theta
100000, RMSNorm eps 1e-5); the vocabulary is the tokenizer's (OPT-125m's 50272 tokens instead of SmolLM2's 49152, whose
tokenizer does not travel either), so the logits cost about 2% more than the real model's. Weights are transformers'
own initialization (normal, std 0.02; norms 1) from seed 0, saved in float32. Timing does not depend on the values;
perplexity on such a model is about the vocabulary size, and lowbit's and transformers' must agree on it.
Prints one JSON line.
"""
import argparse
import json
import os
import time

import torch
import transformers
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM



def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", required=True, help="a Hugging Face tokenizer directory (OPT-125m's: vocab.json, merges.txt)")
    ap.add_argument("--out", required=True, help="new directory for the model")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if os.path.exists(a.out):
        raise SystemExit(f"{a.out} already exists")
    with open(os.path.join(a.tokenizer, "vocab.json"), encoding="utf-8") as f:
        vocab = len(json.load(f))
    # OPT's config says 50272: its embedding has rows past the last token of vocab.json, padded to a multiple of 8
    opt_config = os.path.join(a.tokenizer, "config.json")
    if os.path.exists(opt_config):
        with open(opt_config, encoding="utf-8") as f:
            vocab = max(vocab, json.load(f).get("vocab_size", vocab))
    config = LlamaConfig(vocab_size=vocab, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, head_dim=64, hidden_act="silu",
                         max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
                         tie_word_embeddings=True, bos_token_id=2, eos_token_id=2, pad_token_id=1,
                         initializer_range=0.02, torch_dtype="float32")
    t0 = time.perf_counter()
    torch.manual_seed(a.seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(a.out, safe_serialization=True)
    # saved by transformers (tokenizer.json and a tokenizer_config.json naming the class): the directory's config says
    # llama, and AutoTokenizer would otherwise look for a Llama tokenizer; lowbit reads the same tokenizer.json
    AutoTokenizer.from_pretrained(a.tokenizer).save_pretrained(a.out)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"model": a.out, "parameters": params, "vocab_size": vocab, "seed": a.seed, "dtype": "float32",
                      "torch": torch.__version__, "transformers": transformers.__version__,
                      "seconds": round(time.perf_counter() - t0, 2)}))


if __name__ == "__main__":
    main()
