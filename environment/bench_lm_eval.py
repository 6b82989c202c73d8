#!/usr/bin/env python3
"""lm-evaluation-harness's HF backend timed on the items `./lowbit bench eval` scores: the baseline of
that benchmark.

    python environment/bench_lm_eval.py --gguf data/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --tasks piqa,hellaswag --limit 200 --threads 2 --data-dir data

prints one JSON object per task on stdout (everything else goes to stderr):

    {"task": "piqa", "items": 200, "requests": 400, "seconds": 12.3, "items_per_second": 16.2,
     "load_seconds": 4.1, "threads": 2, "lm_eval": "0.4.13", "torch": "...", "transformers": "..."}

The model is the GGUF loaded by transformers (dequantized to float32, eager attention) and wrapped in
lm-eval's HFLM with its defaults for a local run: batch size 1, CPU, float32. The items are the first
`--limit` of the shared files, mapped back to the original datasets' fields by the same code that makes
the goldens (environment/fixtures/make_lm_eval_golden.py), and scored by lm-eval's own task pipeline.
`seconds` is the wall time of lm-eval's `evaluator.evaluate` (building the requests, tokenizing, every
forward pass, the metrics); `wall_seconds` adds what `simple_evaluate` does around it (seeding, collecting
environment and tokenizer information: ~15 s here); `load_seconds` is loading the model and wrapping
it, once, counted in neither.

OMP_WAIT_POLICY defaults to PASSIVE here: with OpenMP's spinning wait, two torch threads on a 2-core
machine that other processes also use ran ~16x slower than one thread (8 s per piqa request instead of
0.4 s) or stalled; passive waiting gives lm-eval its best figure there. Set the variable to override.
"""
import argparse
import contextlib
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported: see above

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
import make_lm_eval_golden as golden  # noqa: E402  (the shared-file mapping, one copy)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", required=True, help="the GGUF checkpoint, loaded by transformers")
    ap.add_argument("--tasks", default="piqa,hellaswag", help="comma-separated: " + ",".join(golden.TASKS))
    ap.add_argument("--limit", type=int, default=200, help="the first N items of each task")
    ap.add_argument("--threads", type=int, required=True, help="torch.set_num_threads")
    ap.add_argument("--data-dir", default="data", help="the data directory (tasks/, hellaswag/)")
    args = ap.parse_args()
    tasks = args.tasks.split(",")
    unknown = [t for t in tasks if t not in golden.DOCS]
    if unknown:
        ap.error(f"unknown task {unknown[0]!r}; known: {', '.join(golden.TASKS)}")
    if args.limit < 1:
        ap.error(f"--limit must be at least 1, got {args.limit}")
    if not os.path.isfile(args.gguf):
        ap.error(f"--gguf {args.gguf}: no such file")

    import torch
    from importlib.metadata import version
    import transformers
    import lm_eval.evaluator

    evaluate_seconds = []
    inner_evaluate = lm_eval.evaluator.evaluate

    def timed_evaluate(*a, **kw):
        start = time.perf_counter()
        try:
            return inner_evaluate(*a, **kw)
        finally:
            evaluate_seconds.append(time.perf_counter() - start)

    lm_eval.evaluator.evaluate = timed_evaluate  # simple_evaluate looks it up in the module at call time

    built = {}
    with contextlib.redirect_stdout(sys.stderr):
        # The data is read before the model is loaded, so that a missing or malformed file is the
        # one-line error shown, at once.
        for name in tasks:
            try:
                built[name], _files = golden.build_task(name, args.data_dir)
            except (OSError, ValueError) as e:
                ap.error(f"{name}: {e}")
        start = time.perf_counter()
        model, tok = golden.load_model(args.gguf, args.threads)
        lm = golden.hflm(model, tok)
        load_seconds = time.perf_counter() - start
    for name in tasks:
        with contextlib.redirect_stdout(sys.stderr):
            task = built[name]
            start = time.perf_counter()
            res = golden.run_task(lm, task, args.limit)
            wall = time.perf_counter() - start
        seconds = evaluate_seconds.pop()
        samples = res["samples"][name]
        print(json.dumps({"task": name, "items": len(samples),
                          "requests": sum(len(s["resps"]) for s in samples),
                          "seconds": round(seconds, 3), "items_per_second": round(len(samples) / seconds, 3),
                          "wall_seconds": round(wall, 3), "load_seconds": round(load_seconds, 3),
                          "threads": torch.get_num_threads(), "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
                          "lm_eval": version("lm_eval"), "torch": torch.__version__,
                          "transformers": transformers.__version__}), flush=True)


if __name__ == "__main__":
    main()
