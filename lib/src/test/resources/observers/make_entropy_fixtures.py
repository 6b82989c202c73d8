"""Golden amax fixtures for EntropyObserver: TensorRT's entropy calibration (NVIDIA pytorch-quantization).

Regenerate: /work/refvenv/bin/python lib/src/test/resources/observers/make_entropy_fixtures.py
Writes entropy.json beside this script.

pytorch-quantization cannot be installed here: PyPI's "pytorch-quantization" 2.2.1 is a placeholder whose setup.py
fails ("RuntimeError: Bad params"; the real wheels live on NVIDIA's own index). So the two routines that decide amax
are transcribed below, statement for statement, from NVIDIA/TensorRT
tools/pytorch-quantization/pytorch_quantization/calib/histogram.py (HistogramCalibrator.collect with its default
torch_hist=True, and _compute_amax_entropy), running on the real torch.histc / torch.linspace / torch.arange and
numpy / scipy.stats.entropy. Nothing else of the package is involved in an entropy amax.
"""
import json
import os
from collections import Counter

import numpy as np
import torch
from scipy.stats import entropy


class HistogramCalibrator:
    """HistogramCalibrator(num_bits, axis=None, unsigned, num_bins=2048, skip_zeros=False, torch_hist=True)."""

    def __init__(self, num_bits, unsigned, num_bins=2048):
        self._num_bits = num_bits
        self._unsigned = unsigned
        self._num_bins = num_bins
        self._calib_bin_edges = None
        self._calib_hist = None

    def collect(self, x):
        if torch.min(x) < 0.:
            x = x.abs()
        x = x.float()
        with torch.no_grad():
            x_max = x.max()
            if self._calib_bin_edges is None and self._calib_hist is None:
                self._calib_hist = torch.histc(x, bins=self._num_bins, min=0, max=x_max)
                self._calib_bin_edges = torch.linspace(0, x_max, self._num_bins + 1)
            else:
                if x_max > self._calib_bin_edges[-1]:
                    width = self._calib_bin_edges[1] - self._calib_bin_edges[0]
                    self._num_bins = int((x_max / width).ceil().item())
                    self._calib_bin_edges = torch.arange(0, x_max + width, width, device=x.device)
                hist = torch.histc(x, bins=self._num_bins, min=0, max=self._calib_bin_edges[-1])
                hist[:self._calib_hist.numel()] += self._calib_hist
                self._calib_hist = hist

    def compute_amax_entropy(self, stride=1, start_bin=128):
        calib_hist = self._calib_hist.int().cpu().numpy()
        calib_bin_edges = self._calib_bin_edges.cpu().numpy()
        return _compute_amax_entropy(calib_hist, calib_bin_edges, self._num_bits, self._unsigned, stride, start_bin)


def _compute_amax_entropy(calib_hist, calib_bin_edges, num_bits, unsigned, stride=1, start_bin=128):
    bins = calib_hist[:]
    bins[0] = bins[1]
    total_data = np.sum(bins)
    divergences = []
    arguments = []
    nbins = 1 << (num_bits - 1 + int(unsigned))
    starting = start_bin
    stop = len(bins)
    new_density_counts = np.zeros(nbins, dtype=np.float64)
    for i in range(starting, stop + 1, stride):
        new_density_counts.fill(0)
        space = np.linspace(0, i, num=nbins + 1)
        digitized_space = np.digitize(range(i), space) - 1
        digitized_space[bins[:i] == 0] = -1
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density_counts[digitized] += bins[idx]
        counter = Counter(digitized_space)
        for key, val in counter.items():
            if key != -1:
                new_density_counts[key] = new_density_counts[key] / val
        new_density = np.zeros(i, dtype=np.float64)
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density[idx] = new_density_counts[digitized]
        total_counts_new = np.sum(new_density) + np.sum(bins[i:])
        reference_density = np.array(bins[:len(digitized_space)])
        reference_density[-1] += np.sum(bins[i:])
        total_counts_old = np.sum(reference_density)
        if round(total_counts_new) != total_data or round(total_counts_old) != total_data:
            raise RuntimeError("Count mismatch")
        # the reference's _normalize_distr rebinds a local and changes nothing; scipy's entropy normalizes both
        ent = entropy(reference_density, new_density)
        divergences.append(ent)
        arguments.append(i)
    divergences = np.array(divergences)
    last_argmin = len(divergences) - 1 - np.argmin(divergences[::-1])
    calib_amax = calib_bin_edges[last_argmin * stride + starting]
    return float(calib_amax), divergences


rng = np.random.default_rng(1616)


def f32(a):
    return np.asarray(a, dtype=np.float32)


def relu_like(n):
    x = rng.normal(0, 1, n)
    x[rng.random(n) < 0.7] = 0.0
    return x


# Each case is a list of batches (one collect() each). Later batches with a larger max grow the histogram.
datasets = {
    "normal": [f32(rng.normal(0.2, 1.0, 4000))],
    "student_t": [f32(rng.standard_t(3, 5000))],
    "outliers": [f32(np.concatenate([rng.normal(0, 1, 4000), [30.0, -45.0, 60.0]]))],
    "many_zeros": [f32(relu_like(5000))],
    "normal_growing": [f32(rng.normal(0, 1 + 0.5 * i, 3000)) for i in range(3)],
    "student_t_batches": [f32(rng.standard_t(2.5, 2500)) for _ in range(4)],
    "outlier_later": [f32(rng.normal(0, 1, 3000)), f32(np.concatenate([rng.normal(0, 1, 3000), [9.0]])),
                      f32(rng.normal(0, 0.5, 3000))],
    "zeros_growing": [f32(relu_like(2000) * (1 + 0.5 * i)) for i in range(3)],
}

# The reference's search is O(bins^2) Python loops: grown histograms (more than 2048 bins) are run for the signed
# grids only, to keep the generator to minutes.
grows = {"normal_growing", "student_t_batches", "outlier_later", "zeros_growing"}
cases = []
for name, batches in datasets.items():
    for bits in (8, 4):
        for unsigned in ((False,) if name in grows else (False, True)):
            calib = HistogramCalibrator(bits, unsigned)
            for b in batches:
                calib.collect(torch.from_numpy(b))
            amax, div = calib.compute_amax_entropy()
            case = dict(data=name, bits=bits, unsigned=unsigned, amax=amax, bins=int(calib._calib_hist.numel()),
                        edges=int(calib._calib_bin_edges.numel()))
            if bits == 8 and not unsigned:
                case["divergences"] = [float(v) if np.isfinite(v) else None for v in div]
            cases.append(case)
            print(name, bits, unsigned, case["bins"], amax, flush=True)

out = dict(torch=torch.__version__, numpy=np.__version__, datasets="@DATASETS@", cases=cases)
text = json.dumps(out, separators=(",", ":"))
batches_json = "{" + ",".join(
    json.dumps(k) + ":[" + ",".join("[" + ",".join(str(np.float32(v)) for v in b) + "]" for b in bs) + "]"
    for k, bs in datasets.items()) + "}"
text = text.replace('"@DATASETS@"', batches_json)
json.loads(text)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "entropy.json"), "w") as f:
    f.write(text + "\n")
print(len(cases), "cases")
