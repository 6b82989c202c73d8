#!/usr/bin/env python3
"""GPTQ on one square linear layer with PyTorch on the CPU or a CUDA GPU: the baseline for `./lowbit bench gptq`.

    pip install torch
    python environment/bench_gptq_layer.py --columns 2048 --windows 128 --seqlen 2048 --bits 4 --group 128 --threads 2
    python environment/bench_gptq_layer.py --device cuda ...   # as gptq.py runs: float32 on torch.cuda

The algorithm is IST-DASLab/gptq's (add_batch as a running average, fasterquant with lazy batches of 128,
percdamp 0.01, asymmetric min-max grid) in float32 as the reference runs it, on random inputs of the
same sizes lowbit's benchmark uses (generation is not timed; on the GPU every timed part ends with
torch.cuda.synchronize()). Prints one JSON line with the time spent in
Hessian accumulation, the Cholesky factorizations and the column loop.
"""
import argparse
import json
import math
import time

import torch


def find_params(w, maxq):
    xmin = torch.minimum(w.min(1)[0], torch.zeros(w.shape[0], device=w.device))
    xmax = torch.maximum(w.max(1)[0], torch.zeros(w.shape[0], device=w.device))
    both = (xmin == 0) & (xmax == 0)
    xmin[both], xmax[both] = -1, 1
    scale = (xmax - xmin) / maxq
    return scale.unsqueeze(1), torch.round(-xmin / scale).unsqueeze(1)


def quantize(x, scale, zero, maxq):
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--columns", type=int, default=2048)
    ap.add_argument("--windows", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=2048)
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group", type=int, default=128, help="-1: per channel")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gptq_layer.py --device cuda: torch " + torch.__version__ + " sees no CUDA GPU "
                         "(a CPU-only wheel, or no driver); install a CUDA build of torch or use --device cpu")
    dev = torch.device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    n, maxq, blocksize = a.columns, 2 ** a.bits - 1, 128
    W = torch.randn(n, n).to(dev) * 0.02
    spread = (1 + (torch.arange(n) % 97) / 16.0).to(dev)
    H = torch.zeros(n, n, device=dev)
    nsamples, hessian = 0, 0.0
    for _ in range(a.windows):
        x = torch.randn(a.seqlen, n, device=dev) * spread + torch.randn(a.seqlen, 8, device=dev).repeat(1, n // 8) * 0.5
        sync()
        t0 = time.perf_counter()
        H *= nsamples / (nsamples + 1)
        nsamples += 1
        inp = math.sqrt(2 / nsamples) * x.t()
        H += inp.matmul(inp.t())
        sync()
        hessian += time.perf_counter() - t0

    t0 = time.perf_counter()
    scale, zero = find_params(W, maxq)
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H[range(n), range(n)] += 0.01 * torch.mean(torch.diag(H))
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    sync()
    cholesky = time.perf_counter() - t0

    t0 = time.perf_counter()
    Q = torch.zeros_like(W)
    for i1 in range(0, n, blocksize):
        i2 = min(i1 + blocksize, n)
        W1, Err1, Hinv1 = W[:, i1:i2].clone(), torch.zeros(n, i2 - i1, device=dev), Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            if a.group != -1 and (i1 + i) % a.group == 0:
                scale, zero = find_params(W[:, i1 + i:i1 + i + a.group], maxq)
            w, d = W1[:, i], Hinv1[i, i]
            q = quantize(w.unsqueeze(1), scale, zero, maxq).flatten()
            Q[:, i1 + i] = q
            err = (w - q) / d
            W1[:, i:] -= err.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    sync()
    loop = time.perf_counter() - t0
    print(json.dumps({"hessian_seconds": hessian, "cholesky_seconds": cholesky, "loop_seconds": loop,
                      "total_seconds": hessian + cholesky + loop, "torch": torch.__version__, "threads": a.threads,
                      "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}))


if __name__ == "__main__":
    main()
