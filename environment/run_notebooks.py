"""Executes lowbit's notebooks headlessly on the "lowbit" Jupyter kernel and exports each to HTML.

    .venv/bin/python environment/run_notebooks.py [--small] [--in-place] [-p NAME=JAVA_EXPR ...] [NAMES ...]

Run through `./lowbit notebooks`, which builds the jar and sets up the kernel first. Each notebook takes its
parameters from the one cell tagged "parameters"; overrides are injected as a cell right after it (tagged
"injected-parameters", as papermill does) that reassigns the variables with Java expressions. --small uses the
CI-size overrides of notebooks/small-parameters.json. NAMES select notebooks by name or number prefix
("01", "01-quickstart"). Executed notebooks and their HTML go to results/notebooks/ (results/notebooks/small/
with --small); --in-place writes the executed notebook back over the source, to refresh the committed outputs.
Any cell error fails the run, naming the notebook and the cell.
"""
import argparse
import json
import pathlib
import re
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "lowbit"
INJECTED = "injected-parameters"


def notebooks(names):
    found = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if not p.name.startswith("."))
    if not names:
        return found
    chosen = []
    for n in names:
        match = [p for p in found if p.stem == n or p.stem.startswith(n + "-") or p.name == n]
        if not match:
            sys.exit(f"run_notebooks: no notebook '{n}' in {NOTEBOOKS} (have: {', '.join(p.stem for p in found)})")
        chosen += [p for p in match if p not in chosen]
    return chosen


def parameters_cell(nb, path):
    idx = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(idx) != 1:
        sys.exit(f"run_notebooks: {path.name} must have exactly one cell tagged 'parameters', has {len(idx)}")
    return idx[0]


def inject(nb, path, overrides):
    """Drops an earlier injected cell, then adds one after the parameters cell when there are overrides."""
    nb.cells = [c for c in nb.cells if INJECTED not in c.get("metadata", {}).get("tags", [])]
    at = parameters_cell(nb, path)
    if overrides:
        source = "// Parameters injected by environment/run_notebooks.py\n" + "".join(
            f"{name} = {expr};\n" for name, expr in overrides.items())
        cell = nbformat.v4.new_code_cell(source.rstrip("\n"))
        cell.metadata["tags"] = [INJECTED]
        nb.cells.insert(at + 1, cell)


def small_overrides(path):
    table = json.loads((NOTEBOOKS / "small-parameters.json").read_text())
    return dict(table.get(path.stem, {}))


def execute(path, overrides, timeout):
    """Returns the executed notebook, and the error message (None when every cell ran)."""
    nb = nbformat.read(path, as_version=4)
    inject(nb, path, overrides)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nb.metadata["lowbit"] = {"parameters": overrides, "executed_by": "environment/run_notebooks.py"}
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, startup_timeout=120,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Java (lowbit)", "language": "java"}
    try:
        client.execute()
        return nb, None
    except CellExecutionError as e:
        failed = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                       and any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        if failed is None:
            return nb, f"{path.name}: a cell failed: {e}"
        cell = nb.cells[failed]
        err = next(o for o in cell.outputs if o.get("output_type") == "error")
        source = "\n".join("    " + line for line in cell.source.splitlines()[:12])
        trace = "\n".join("    " + re.sub(r"\x1b\[[0-9;]*m", "", line) for line in err.get("traceback", [])[:8])
        return nb, (f"{path.name}: cell {failed} (execution count {cell.execution_count}) failed: "
                    f"{err.get('ename', '')}: {err.get('evalue', '')}\n{trace}\n  the cell:\n{source}")
    except Exception as e:  # kernel died, timeout: still name the notebook
        return nb, f"{path.name}: execution stopped: {type(e).__name__}: {e}"


def export_html(nb, target):
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    target.write_text(html, encoding="utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    ap.add_argument("--small", action="store_true", help="CI-size parameters from notebooks/small-parameters.json")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=JAVA_EXPR",
                    help="override a parameter, e.g. -p WINDOWS=8 -p 'MODEL=\"default\"'")
    ap.add_argument("--in-place", action="store_true", help="write the executed notebook over its source")
    ap.add_argument("--out", default=str(ROOT / "results" / "notebooks"), help="output folder")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds one cell may take")
    args = ap.parse_args()
    if args.in_place and args.small:
        sys.exit("run_notebooks: --in-place is for refreshing the committed outputs, not with --small")
    out = pathlib.Path(args.out) / ("small" if args.small else "")
    out.mkdir(parents=True, exist_ok=True)
    errors = []
    for path in notebooks(args.names):
        overrides = small_overrides(path) if args.small else {}
        for p in args.param:
            name, sep, expr = p.partition("=")
            if not sep or not name.strip():
                sys.exit(f"run_notebooks: -p takes NAME=JAVA_EXPR, got '{p}'")
            overrides[name.strip()] = expr
        t0 = time.time()
        print(f"== {path.name}" + (f" with {overrides}" if overrides else ""), file=sys.stderr, flush=True)
        nb, error = execute(path, overrides, args.timeout)
        nbformat.write(nb, out / path.name)
        export_html(nb, out / (path.stem + ".html"))
        if args.in_place and error is None:
            nbformat.write(nb, path)
        print(f"   {'FAILED' if error else 'ok'} in {time.time() - t0:.0f} s -> {out / (path.stem + '.html')}",
              file=sys.stderr, flush=True)
        if error:
            print(error, file=sys.stderr, flush=True)
            errors.append(error.splitlines()[0])
    if errors:
        print(f"run_notebooks: {len(errors)} notebook(s) failed:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
