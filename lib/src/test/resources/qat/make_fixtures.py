"""Golden fixtures for lowbit.quant.qat (FakeQuantTest).

Regenerate from the repository root with the reference environment (torch 2.x, CPU):
    /work/refvenv/bin/python lib/src/test/resources/qat/make_fixtures.py
It writes fixtures.json beside this script.

FakeQuant: torch.fake_quantize_per_tensor_affine / torch.fake_quantize_per_channel_affine with autograd
(their backward is the straight-through estimator: dy where clamp is not active, 0 outside). Per-group is
per-channel on the matrix reshaped to [rows * cols / g][g], the usual way to express groups in torch.

LSQ (Esser et al., "Learned Step Size Quantization", ICLR 2020, eq. 1-3 and section 2.2):
    v_hat = round(clip(v / s, -Qn, Qp)) * s
    d v_hat / d s = -v/s + round(v/s)   inside,  -Qn  if v/s <= -Qn,  Qp  if v/s >= Qp
    the step-size gradient is multiplied by g = 1 / sqrt(N * Qp).
  written with the paper authors' grad_scale / round_pass detach trick, so autograd computes it; torch's
  clamp with scalar bounds passes no gradient at the bounds themselves, which is the paper's strict
  -Qn < v/s < Qp (dx = 0 and ds = -Qn or Qp exactly at a bound). torch's own LSQ op (torch._fake_quantize_learnable_per_tensor_affine)
  is NOT the paper: it decides "inside" on the rounded code, so v/s in (Qp, Qp + 0.5] counts as inside
  there; we follow the paper and test against this implementation of it.
PACT (Choi et al., "PACT: Parameterized Clipping Activation", 2018, eq. 1-3):
    y = clip(x, 0, alpha);  y_q = round(y * (2^k - 1) / alpha) * alpha / (2^k - 1)
    d y_q / d x = 1 for 0 <= x < alpha else 0 (STE);  d y_q / d alpha = 1 for x >= alpha else 0.
"""
import json
import math
import os

import torch

torch.manual_seed(16)
ROWS, COLS = 4, 8


def fl(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def fake_quant_case(name, gran, bits, symmetric, group, x, scale, zero):
    qmin, qmax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if symmetric else (0, (1 << bits) - 1)
    x = x.clone().float().requires_grad_(True)
    dy = torch.randn(ROWS, COLS)
    if gran == "tensor":
        y = torch.fake_quantize_per_tensor_affine(x, float(scale[0]), int(zero[0]), qmin, qmax)
    else:
        xv = x if gran == "channel" else x.reshape(-1, group)
        y = torch.fake_quantize_per_channel_affine(
            xv, torch.tensor(scale, dtype=torch.float32), torch.tensor(zero, dtype=torch.int32), 0, qmin, qmax)
        y = y.reshape(ROWS, COLS)
    y.backward(dy)
    return dict(name=name, granularity=gran, bits=bits, symmetric=symmetric, groupSize=group, rows=ROWS,
                cols=COLS, scale=fl(torch.tensor(scale, dtype=torch.float32)), zero=[int(z) for z in zero],
                x=fl(x), dy=fl(dy), y=fl(y), dx=fl(x.grad))


def grad_scale(t, g):
    # value exactly t (t - t*g + t*g need not round back to t), gradient scaled by g
    return t.detach() + (t * g - (t * g).detach())


def round_pass(t):
    return (t.round() - t).detach() + t


def lsq_case(name, bits, signed, x, s):
    qn, qp = ((1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    g = 1.0 / math.sqrt(x.numel() * qp)
    x = x.clone().float().requires_grad_(True)
    s = torch.tensor(s, dtype=torch.float32, requires_grad=True)
    dy = torch.randn(x.shape)
    ss = grad_scale(s, g)
    y = round_pass(torch.clamp(x / ss, -qn, qp)) * ss
    y.backward(dy)
    return lsq_record(name, bits, signed, s, x, dy, y)


def lsq_record(name, bits, signed, s, x, dy, y):
    return dict(name=name, bits=bits, signed=signed, s=float(s.item()), x=fl(x), dy=fl(dy), y=fl(y),
                dx=fl(x.grad), ds=float(s.grad.item()))


class PactFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha, bits):
        ctx.save_for_backward(x, alpha)
        n = float((1 << bits) - 1)
        y = torch.minimum(torch.clamp(x, min=0.0), alpha)
        return torch.round(y * (n / alpha)) * (alpha / n)

    @staticmethod
    def backward(ctx, dy):
        x, alpha = ctx.saved_tensors
        inside = (x >= 0) & (x < alpha)
        return dy * inside, (dy * (x >= alpha)).sum(), None


def pact_case(name, bits, x, alpha):
    x = x.clone().float().requires_grad_(True)
    a = torch.tensor(alpha, dtype=torch.float32, requires_grad=True)
    dy = torch.randn(x.shape)
    y = PactFn.apply(x, a, bits)
    y.backward(dy)
    return dict(name=name, bits=bits, alpha=float(a.item()), x=fl(x), dy=fl(dy), y=fl(y), dx=fl(x.grad),
                dalpha=float(a.grad.item()))


# x / 0.25 lands on exact ties (k + 0.5) and exactly on the clip bounds -3 and 12 for zero point 3.
ties = torch.tensor([-3.5, -3.0, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5,
                     3.5, 4.5, 11.5, 12.0, 12.5, 13.0, -4.0, 0.0,
                     5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.0, -2.0,
                     -3.25, 12.25, 12.75, 1.0, -1.0, 14.0, 100.0, -100.0]).reshape(ROWS, COLS) * 0.25
rand = torch.randn(ROWS, COLS)
# Values near ties where float x * (1/s) and x / s round to different codes for s = 0.3 (found by searching
# float32 neighbours of (k + 0.5) * s): they pin torch's multiply-by-inverse order.
inverse_order = torch.cat([torch.tensor([-2.25, -1.649999976158142, -0.7500000596046448, 0.7500000596046448,
                                         1.649999976158142, 2.25]), rand.reshape(-1)[6:]]).reshape(ROWS, COLS)
cases = [
    fake_quant_case("tensor-asym4-ties", "tensor", 4, False, 0, ties, [0.25], [3]),
    fake_quant_case("tensor-sym8", "tensor", 8, True, 0, rand * 3, [0.021], [0]),
    fake_quant_case("tensor-sym4-inverse-order", "tensor", 4, True, 0, inverse_order, [0.3], [0]),
    fake_quant_case("tensor-sym2", "tensor", 2, True, 0, rand, [0.37], [0]),
    fake_quant_case("channel-asym3", "channel", 3, False, 0, rand, [0.3, 0.17, 0.55, 0.09], [2, 5, 0, 7]),
    fake_quant_case("channel-sym4-ties", "channel", 4, True, 0, ties, [0.25, 0.5, 0.125, 0.25], [0, 0, 0, 0]),
    fake_quant_case("group4-asym4", "group", 4, False, 4, rand * 2,
                    [0.11, 0.23, 0.05, 0.31, 0.19, 0.07, 0.41, 0.13], [8, 3, 15, 0, 7, 9, 1, 12]),
    fake_quant_case("group2-sym6", "group", 6, True, 2, rand,
                    [0.013 * (i + 1) for i in range(16)], [0] * 16),
]
# LSQ: x / 0.25 ties and exact bounds for 4-bit signed (-8, 7) and unsigned (0, 15).
lsq_ties = torch.tensor([-8.0, -8.5, -7.5, 7.0, 7.5, 6.5, 0.5, -0.5,
                         1.5, 2.5, 15.0, 15.5, 14.5, -3.2, 3.3, 0.0]) * 0.25
lsq = [
    lsq_case("lsq-signed4-ties", 4, True, lsq_ties, 0.25),
    lsq_case("lsq-unsigned4-ties", 4, False, lsq_ties, 0.25),
    lsq_case("lsq-signed3", 3, True, torch.randn(64), 0.3),
    lsq_case("lsq-unsigned8", 8, False, torch.randn(64).abs() * 2, 0.013),
]
pact_x = torch.tensor([-1.0, 0.0, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, -0.2, 0.2142857, 1.9999])
pact = [
    pact_case("pact4-bounds", 4, pact_x, 2.0),
    pact_case("pact2", 2, torch.randn(64) * 2, 1.3),
    pact_case("pact8", 8, torch.randn(64) * 3, 4.7),
]
out = dict(torch=torch.__version__, fakeQuant=cases, lsq=lsq, pact=pact)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures.json"), "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", len(cases), "fake-quant,", len(lsq), "lsq,", len(pact), "pact cases")
