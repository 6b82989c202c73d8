#!/usr/bin/env python3
"""Throughput of Hugging Face transformers on the perplexity workload, the baseline for lowbit's runtime.

    pip install torch transformers gguf numpy
    python environment/bench_transformers.py --gguf data/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --text data/wikitext-2-raw/wiki.test.raw --seqlen 2048 --windows 2 --threads 2
    python environment/bench_transformers.py --hf DIR --text ... --device cuda --dtype bf16

The model is a GGUF file (--gguf, dequantized by transformers) or a Hugging Face safetensors directory (--hf, what a
GPU run loads). It runs in --dtype (float32 by default; bf16 holds the weights in bfloat16, and the logits are taken to
float32 before the log-softmax) on --device (cpu by default; cuda: the first GPU, timed between torch.cuda.synchronize()
calls) with transformers' default attention (attn_implementation="sdpa"), which is what a user gets. The text is read
whole and tokenized once; windows are the first non-overlapping seqlen-token windows (GPTQ perplexity protocol). One
extra window (the one after the timed ones) is run first as warm-up and not timed. Prints one JSON line.
"""
import argparse
import json
import math
import os
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--gguf", help="path to the .gguf model file")
    source.add_argument("--hf", help="a Hugging Face model directory (config.json, *.safetensors, tokenizer files)")
    ap.add_argument("--text", required=True, help="plain-text file, e.g. wiki.test.raw")
    ap.add_argument("--seqlen", type=int, default=2048)
    ap.add_argument("--windows", type=int, default=2, help="timed windows")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--attn", default="sdpa", help="attn_implementation (default: transformers' sdpa)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    args = ap.parse_args()
    if args.seqlen < 2 or args.windows < 1 or args.threads < 1:
        ap.error("seqlen must be >= 2, windows and threads >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no GPU (torch %s, CUDA build %s)" % (torch.__version__, torch.version.cuda))
    dtype = DTYPES[args.dtype]

    torch.set_num_threads(args.threads)
    if args.gguf:
        directory, name = os.path.split(os.path.abspath(args.gguf))
        tok = AutoTokenizer.from_pretrained(directory, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=dtype, attn_implementation=args.attn)
    else:
        tok = AutoTokenizer.from_pretrained(args.hf)
        model = AutoModelForCausalLM.from_pretrained(args.hf, dtype=dtype, attn_implementation=args.attn)
    model.to(args.device)
    model.eval()
    with open(args.text, encoding="utf-8") as f:
        ids = tok(f.read()).input_ids
    available = len(ids) // args.seqlen
    if available < args.windows + 1:
        raise SystemExit(f"{args.text} has {len(ids)} tokens: {available} windows of {args.seqlen}, "
                         f"need {args.windows} + 1 for warm-up")
    windows = [torch.tensor([ids[i * args.seqlen:(i + 1) * args.seqlen]], device=args.device) for i in range(args.windows + 1)]

    def nll(window):
        logprobs = torch.log_softmax(model(window).logits[0].float(), dim=-1)
        return -float(logprobs[:-1].gather(1, window[0, 1:, None]).double().sum())

    def synchronize():
        if args.device == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        nll(windows[args.windows])
        synchronize()
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        # float() of each window's sum synchronizes too; the explicit call makes the end of the timing exact
        total = math.fsum(nll(w) for w in windows[:args.windows])
        synchronize()
        seconds = time.perf_counter() - start

    tokens = args.windows * args.seqlen
    out = {"backend": "transformers", "torch": torch.__version__,
           "transformers": transformers.__version__, "attn_implementation": args.attn,
           "device": args.device, "dtype": str(dtype).replace("torch.", ""), "threads": args.threads, "seqlen": args.seqlen,
           "windows": args.windows, "tokens": tokens, "seconds": round(seconds, 3),
           "tokens_per_second": round(tokens / seconds, 2), "nll_sum": total,
           "ppl": math.exp(total / (args.windows * (args.seqlen - 1)))}
    if args.device == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
        out["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
