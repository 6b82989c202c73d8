"""Golden gradients for lowbit.train.TrainableModel (TrainableModelGradientTest).

Loads the tiny checkpoints in ../tiny with transformers in float32 (eager attention), runs a fixed batch of two
windows (W1 and W2 below, or a case's own), takes the mean next-token cross-entropy over both windows' scored positions (T-1 each), or, for the
"-distill" case, the mean over all positions of KL(p_teacher || p_student) with the teacher = the same checkpoint with
model.norm.weight x 1.5 and model.layers.0.input_layernorm.weight x 0.5 (exact in float32), backpropagates, and writes:
  <case>.bin    every parameter's gradient, float32 little-endian, in named_parameters() order (tied embeddings once)
  grads.json    per case: model dir, loss kind, loss, and each tensor's name, element count and offset in the .bin;
                "adamw": torch.optim.AdamW on two small tensors (one with weight decay, one without) over four steps of
                given gradients, with the values after each step

Regenerate (from the repository root): /work/refvenv/bin/python lib/src/test/resources/train/make_fixtures.py
(torch 2.15.0, transformers 5.24.0).
"""
import json
import pathlib

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

HERE = pathlib.Path(__file__).resolve().parent
TINY = HERE.parent / "tiny"
W1 = [1, 5, 9, 33, 17, 2, 60, 44, 8, 3, 21, 7]
W2 = [4, 40, 12, 6, 30, 11, 0, 19, 25, 50, 13, 2]
# windows of 45 tokens (not a multiple of 4 or of a vector's lanes) reach the vectorized attention paths
LONG = [[(7 * t + 3) % 192 for t in range(45)], [(11 * t * t + 5) % 192 for t in range(45)]]
CASES = [("llama", "llama", "next", None), ("smollm-like-f16", "smollm-like-f16", "next", None),
         ("qwen2", "qwen2", "next", None), ("qwen3", "qwen3", "next", None), ("llama-distill", "llama", "distill", None),
         ("smollm-like-f16-long", "smollm-like-f16", "next", LONG)]


def load(name):
    m = AutoModelForCausalLM.from_pretrained(TINY / name, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    return m


def adamw():
    a = torch.tensor([0.5, -1.25, 2.0, 0.0, 3.5])
    b = torch.tensor([1.0, -0.75, 0.25])
    pa, pb = torch.nn.Parameter(a.clone()), torch.nn.Parameter(b.clone())
    opt = torch.optim.AdamW([{"params": [pa], "weight_decay": 0.1}, {"params": [pb], "weight_decay": 0.0}],
                            lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    grads = [([0.3, -0.2, 0.0, 1e-3, -4.0], [0.5, 0.5, -2.0]), ([0.1, 0.2, -0.3, 0.0, 2.0], [-0.5, 0.25, 1.0]),
             ([-0.6, 0.05, 0.4, -1e-3, 1.0], [0.0, 0.5, -0.125]), ([0.2, -0.2, 0.2, 0.5, -0.5], [1.5, -1.0, 0.75])]
    lrs = [0.01, 0.02, 0.005, 0.01]
    steps = []
    for (ga, gb), lr in zip(grads, lrs):
        pa.grad, pb.grad = torch.tensor(ga), torch.tensor(gb)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        steps.append({"lr": lr, "grad_a": ga, "grad_b": gb, "a": pa.detach().tolist(), "b": pb.detach().tolist()})
    return {"a": a.tolist(), "b": b.tolist(), "weight_decay_a": 0.1, "steps": steps}


def main():
    torch.manual_seed(0)
    index = {"windows": [W1, W2], "cases": {}}
    for case, model_dir, kind, windows in CASES:
        ids = torch.tensor(windows or [W1, W2])
        model = load(model_dir)
        logits = model(input_ids=ids).logits.float()
        if kind == "next":
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="mean")
        else:
            teacher = load(model_dir)
            with torch.no_grad():
                teacher.model.norm.weight.mul_(1.5)
                teacher.model.layers[0].input_layernorm.weight.mul_(0.5)
                t_logits = teacher(input_ids=ids).logits.float()
            s = F.log_softmax(logits, -1).reshape(-1, logits.shape[-1])
            t = F.log_softmax(t_logits, -1).reshape(-1, logits.shape[-1])
            loss = F.kl_div(s, t, log_target=True, reduction="sum") / s.shape[0]
        loss.backward()
        tensors, blobs, offset = [], [], 0
        for name, p in model.named_parameters():
            g = p.grad.detach().float().contiguous().reshape(-1)
            tensors.append({"name": name, "count": g.numel(), "offset": offset})
            blobs.append(g.numpy().astype("<f4").tobytes())
            offset += g.numel()
        (HERE / f"{case}.bin").write_bytes(b"".join(blobs))
        index["cases"][case] = {"model": model_dir, "loss_kind": kind, "loss": loss.item(), "tensors": tensors}
        if windows:
            index["cases"][case]["windows"] = windows
        print(case, kind, loss.item(), offset, "values")
    index["adamw"] = adamw()
    (HERE / "grads.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
