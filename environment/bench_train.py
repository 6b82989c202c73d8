#!/usr/bin/env python3
"""CPU training-step throughput of PyTorch on a Llama-family model: the baseline for `./lowbit bench train`.

    pip install torch transformers gguf
    python environment/bench_train.py --model data/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --ids /tmp/window.txt --threads 2 --repeats 3

--model is a .gguf file (transformers dequantizes it to float32 through the gguf package, the same values
lowbit's loader produces: `./lowbit ppl` and transformers agree on the default model's perplexity to 3e-5
relative) or a Hugging Face checkpoint directory. --ids holds the token ids of one window, whitespace-separated,
written by lowbit so that both sides see the same tokens (no second tokenizer in the loop).

Timed, each after one untimed warm-up, median of --repeats, with torch.set_num_threads(--threads):
  forward   next-token loss under torch.inference_mode() (what lowbit's forward-only figure does);
  step      zero_grad(set_to_none=True), the loss with labels=ids (mean cross-entropy of token t+1 given 0..t),
            loss.backward(), every parameter trainable;
  step_qat  the same with the token embeddings and lm_head frozen (requires_grad False), as QAT keeps them in float.
float32 and transformers' default attention (sdpa), as a user gets; no activation checkpointing (PyTorch's default).
peak_rss_bytes is this process's peak resident memory (VmHWM), loading included. Prints one JSON line.
"""
import argparse
import json
import os
import resource
import statistics
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def load(path):
    if path.endswith(".gguf"):
        directory, name = os.path.split(os.path.abspath(path))
        return AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def peak_rss_bytes():
    # VmHWM belongs to this process's address space; getrusage's ru_maxrss survives exec, so when the JVM starts us it
    # reports the JVM's peak instead of ours. ru_maxrss only off Linux.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(fn, repeats):
    fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a .gguf file or a Hugging Face checkpoint directory")
    ap.add_argument("--ids", required=True, help="file with one window's token ids, whitespace-separated")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each, after one warm-up; the median is reported")
    args = ap.parse_args()
    if args.threads < 1 or args.repeats < 1:
        ap.error("--threads and --repeats must be >= 1")
    with open(args.ids, encoding="ascii") as f:
        ids = [int(t) for t in f.read().split()]
    if len(ids) < 2:
        ap.error(f"--ids {args.ids}: need at least 2 token ids, got {len(ids)}")

    torch.set_num_threads(args.threads)
    model = load(args.model)
    model.train()  # Llama has no dropout; train() only matches how a training step runs
    window = torch.tensor([ids])
    params = list(model.parameters())

    def forward():
        with torch.inference_mode():
            return float(model(window, labels=window).loss)

    def step():
        model.zero_grad(set_to_none=True)
        loss = model(window, labels=window).loss
        loss.backward()
        return loss.item()

    forward_loss = forward()
    forward_seconds, forward_all = timed(forward, args.repeats)
    step_loss = step()
    step_seconds, step_all = timed(step, args.repeats)

    frozen = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    for p in params:
        p.requires_grad_(id(p) not in frozen)
    qat_seconds, qat_all = timed(step, args.repeats)

    tokens = len(ids)
    print(json.dumps({
        "backend": "torch", "torch": torch.__version__, "transformers": transformers.__version__,
        "attn_implementation": model.config._attn_implementation, "dtype": "float32", "threads": torch.get_num_threads(),
        "seqlen": tokens, "repeats": args.repeats,
        "loss": forward_loss, "step_loss": step_loss,
        "forward_seconds": forward_seconds, "step_seconds": step_seconds, "step_qat_seconds": qat_seconds,
        "forward_seconds_all": forward_all, "step_seconds_all": step_all, "step_qat_seconds_all": qat_all,
        "forward_tokens_per_second": tokens / forward_seconds, "step_tokens_per_second": tokens / step_seconds,
        "step_qat_tokens_per_second": tokens / qat_seconds,
        "peak_rss_bytes": peak_rss_bytes(),
    }))


if __name__ == "__main__":
    main()
