"""Golden scale/zero-point fixtures from torch.ao.quantization's observers for ObserversTest.

Regenerate: /work/refvenv/bin/python lib/src/test/resources/observers/make_fixtures.py
Writes observers.json beside this script: the float32 batches (as exact float lists), and for each case the
observer's min/max state after all batches and its calculate_qparams() result.
"""
import json
import os

import numpy as np
import torch
from torch.ao.quantization.observer import (HistogramObserver, MinMaxObserver,
                                            MovingAverageMinMaxObserver)

rng = np.random.default_rng(16)


def f32(a):
    return np.asarray(a, dtype=np.float32)


# Fixed batches. Heavy-tailed: Student-t with 2 degrees of freedom; all-positive: exponential (post-ReLU/GELU-like);
# widening: each batch extends the range on both sides so the histogram's incremental range extension runs.
datasets = {
    "normal": [f32(rng.normal(0.3, 1.0, 1500)) for _ in range(4)],
    "heavy": [f32(rng.standard_t(2, 2000)) for _ in range(3)],
    "positive": [f32(rng.exponential(1.5, 1200) + 0.25) for _ in range(3)],
    "widening": [f32(rng.uniform(-1 - i, 0.5 + 2 * i, 1000)) for i in range(4)],
    # a few large outliers on a normal body: the L2 search trims most of the histogram's range here
    "outliers": [f32(np.concatenate([rng.normal(0, 1, 1500), [40.0 * (i + 1), -15.0 * (i + 1)]])) for i in range(3)],
    # a constant first batch (min == max: histc widens its range by 1, and combining takes the single-value path)
    "constant_first": [f32(np.full(300, 0.75)), f32(rng.normal(0, 2, 1500))],
}

schemes = {
    "quint8_affine": dict(dtype=torch.quint8, qscheme=torch.per_tensor_affine),
    "qint8_symmetric": dict(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric),
    "quint8_symmetric": dict(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric),
    "quint4_affine": dict(dtype=torch.quint8, qscheme=torch.per_tensor_affine, quant_min=0, quant_max=15),
    "qint4_symmetric": dict(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, quant_min=-8, quant_max=7),
}

observers = {
    "minmax": lambda kw: MinMaxObserver(**kw),
    "ema": lambda kw: MovingAverageMinMaxObserver(averaging_constant=0.01, **kw),
    "histogram": lambda kw: HistogramObserver(bins=2048, **kw),
}

cases = []
for data_name, batches in datasets.items():
    for obs_name, make in observers.items():
        for scheme_name, kw in schemes.items():
            obs = make(kw)
            for b in batches:
                obs(torch.from_numpy(b))
            scale, zp = obs.calculate_qparams()
            case = dict(data=data_name, observer=obs_name, scheme=scheme_name,
                        quant_min=int(obs.quant_min), quant_max=int(obs.quant_max),
                        min_val=float(obs.min_val), max_val=float(obs.max_val),
                        scale=float(scale[0]), zero_point=int(zp[0]))
            if obs_name == "histogram":
                lo, hi = obs._non_linear_param_search()
                case["search_min"] = float(lo)
                case["search_max"] = float(hi)
                if scheme_name == "quint8_affine":  # the histogram does not depend on the scheme
                    case["histogram"] = [float(v) for v in obs.histogram]
            cases.append(case)

# The search on dense histograms, where it trims hundreds of bins (on the sparse histograms of the batches above it
# stops after one): torch's histogram buffer and min/max set directly, then _non_linear_param_search.
grid = np.linspace(-1, 1, 2048)
dense = {
    "laplace": np.exp(-np.abs(grid * 20)) * 1e4,
    "normal": np.exp(-(grid * 6) ** 2 / 2) * 1e3 + 0.01,
    "student_t": (1 + (grid * 50) ** 2 / 2) ** -1.5 * 1e5,
}
searches = []
for name, h in dense.items():
    obs = HistogramObserver(bins=2048)
    obs.histogram.copy_(torch.tensor(h, dtype=torch.float32))
    obs.min_val.copy_(torch.tensor(-3.0))
    obs.max_val.copy_(torch.tensor(5.0))
    lo, hi = obs._non_linear_param_search()
    scale, zp = obs.calculate_qparams()
    searches.append(dict(name=name, min_val=-3.0, max_val=5.0, histogram="@H:" + name + "@",
                         search_min=float(lo), search_max=float(hi), scale=float(scale[0]), zero_point=int(zp[0])))

# PercentileObserver has no torch.ao counterpart: its reference is numpy.percentile (linear interpolation) over
# every observed value, of |x| for the symmetric clip and of x at 100-p and p for the affine tails.
percentiles = []
for data_name, batches in datasets.items():
    allx = np.concatenate(batches).astype(np.float64)
    for p in (99.0, 99.99, 99.999, 100.0):
        percentiles.append(dict(data=data_name, p=p,
                                abs=float(np.percentile(np.abs(allx), p)),
                                low=float(np.percentile(allx, 100.0 - p)),
                                high=float(np.percentile(allx, p))))

# Batches are written as the shortest decimal that round-trips each float32 (str of np.float32), to keep the file small.
out = dict(torch=torch.__version__, numpy=np.__version__, datasets="@DATASETS@", cases=cases, searches=searches, percentiles=percentiles)
text = json.dumps(out, separators=(",", ":"))
batches_json = "{" + ",".join(
    json.dumps(k) + ":[" + ",".join("[" + ",".join(str(np.float32(v)) for v in b) + "]" for b in bs) + "]"
    for k, bs in datasets.items()) + "}"
text = text.replace('"@DATASETS@"', batches_json)
for name, h in dense.items():
    text = text.replace('"@H:' + name + '@"', "[" + ",".join(str(v) for v in np.float32(h)) + "]")
json.loads(text)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "observers.json"), "w") as f:
    f.write(text + "\n")
print(len(cases), "cases", len(percentiles), "percentile rows")
