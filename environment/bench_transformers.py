#!/usr/bin/env python3
"""CPU throughput of Hugging Face transformers on the perplexity workload, the baseline for lowbit's runtime.

    pip install torch transformers gguf numpy
    python environment/bench_transformers.py --gguf data/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --text data/wikitext-2-raw/wiki.test.raw --seqlen 2048 --windows 2 --threads 2

The GGUF is dequantized to float32 by transformers and run in float32 with transformers' default
attention (attn_implementation="sdpa"), which is what a user gets. The text is read whole and tokenized
once; windows are the first non-overlapping seqlen-token windows (GPTQ perplexity protocol). One extra
window (the one after the timed ones) is run first as warm-up and not timed. Prints one JSON line.
"""
import argparse
import json
import math
import os
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", required=True, help="path to the .gguf model file")
    ap.add_argument("--text", required=True, help="plain-text file, e.g. wiki.test.raw")
    ap.add_argument("--seqlen", type=int, default=2048)
    ap.add_argument("--windows", type=int, default=2, help="timed windows")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--attn", default="sdpa", help="attn_implementation (default: transformers' sdpa)")
    args = ap.parse_args()
    if args.seqlen < 2 or args.windows < 1 or args.threads < 1:
        ap.error("seqlen must be >= 2, windows and threads >= 1")

    torch.set_num_threads(args.threads)
    directory, name = os.path.split(os.path.abspath(args.gguf))
    tok = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation=args.attn)
    model.eval()
    with open(args.text, encoding="utf-8") as f:
        ids = tok(f.read()).input_ids
    available = len(ids) // args.seqlen
    if available < args.windows + 1:
        raise SystemExit(f"{args.text} has {len(ids)} tokens: {available} windows of {args.seqlen}, "
                         f"need {args.windows} + 1 for warm-up")
    windows = [torch.tensor([ids[i * args.seqlen:(i + 1) * args.seqlen]]) for i in range(args.windows + 1)]

    def nll(window):
        logprobs = torch.log_softmax(model(window).logits[0].float(), dim=-1)
        return -float(logprobs[:-1].gather(1, window[0, 1:, None]).double().sum())

    with torch.inference_mode():
        nll(windows[args.windows])
        start = time.perf_counter()
        total = math.fsum(nll(w) for w in windows[:args.windows])
        seconds = time.perf_counter() - start

    tokens = args.windows * args.seqlen
    print(json.dumps({"backend": "transformers", "torch": torch.__version__,
                      "transformers": transformers.__version__, "attn_implementation": args.attn,
                      "dtype": "float32", "threads": args.threads, "seqlen": args.seqlen,
                      "windows": args.windows, "tokens": tokens, "seconds": round(seconds, 3),
                      "tokens_per_second": round(tokens / seconds, 2), "nll_sum": total,
                      "ppl": math.exp(total / (args.windows * (args.seqlen - 1)))}))


if __name__ == "__main__":
    main()
