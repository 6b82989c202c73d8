"""Checks that re-running a committed notebook reproduces the numbers in its committed outputs.

    .venv/bin/python environment/check_reproducible.py [NOTEBOOK ...]   (default: notebooks/01-quickstart.ipynb)

Run by `./lowbit test`. The notebook prints its numbers as `RESULT name=value` lines (lowbit.notebook.Lab.result).
This re-executes a copy with the parameters recorded in its metadata when it was run (run_notebooks.py writes
them), and fails when a committed RESULT is missing from the re-run, a new one appears, or any value differs by
more than 1e-9 relative. A notebook with no RESULT lines in its outputs fails too: there would be nothing to check.
"""
import math
import pathlib
import re
import sys

import nbformat

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run_notebooks  # noqa: E402

RESULT = re.compile(r"^RESULT ([^=\s]+)=(\S+)$", re.M)
RTOL = 1e-9


def results(nb):
    found = {}
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stdout":
                for name, value in RESULT.findall(o.get("text", "")):
                    found[name] = float(value)
    return found


def compare(expected, actual):
    """Problems, one line each; empty when the runs agree."""
    problems = []
    for name, want in expected.items():
        if name not in actual:
            problems.append(f"{name}: committed {want!r}, missing from the re-run")
            continue
        got = actual[name]
        same = (math.isnan(want) and math.isnan(got)) or want == got or \
            abs(got - want) <= RTOL * max(abs(want), abs(got))
        if not same:
            problems.append(f"{name}: committed {want!r}, re-run {got!r} (relative difference "
                            f"{abs(got - want) / max(abs(want), abs(got), 1e-300):.3g} > {RTOL})")
    problems += [f"{name}: re-run printed {v!r}, not in the committed outputs" for name, v in actual.items()
                 if name not in expected]
    return problems


def check(path):
    committed = nbformat.read(path, as_version=4)
    expected = results(committed)
    if not expected:
        return [f"{path.name}: no RESULT lines in the committed outputs (run ./lowbit notebooks --in-place first)"]
    params = committed.metadata.get("lowbit", {}).get("parameters", {})
    print(f"== re-running {path.name} with {params or 'its own parameters'}: {len(expected)} committed results",
          file=sys.stderr, flush=True)
    log = run_notebooks.ROOT / "results" / "notebooks" / (path.stem + ".reproducibility.kernel.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    nb, error = run_notebooks.execute(path, params, 3600, log)
    if error:
        return [error + f"\n  (the kernel's log: {run_notebooks.rel(log)})"]
    problems = compare(expected, results(nb))
    for name in sorted(expected):
        print(f"   {name}: committed {expected[name]!r}", file=sys.stderr)
    return [f"{path.name}: {p}" for p in problems]


def main():
    paths = [pathlib.Path(p) for p in sys.argv[1:]] or [run_notebooks.NOTEBOOKS / "01-quickstart.ipynb"]
    problems = []
    for p in paths:
        problems += check(p)
    if problems:
        print("check_reproducible: the re-run does not reproduce the committed outputs:\n  " + "\n  ".join(problems),
              file=sys.stderr)
        print(f"reproducibility: 0 passed, {len(paths)} failed")
        return 1
    print(f"reproducibility: {len(paths)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
