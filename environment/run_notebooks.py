"""Executes lowbit's notebooks headlessly on the "lowbit" Jupyter kernel and exports each to HTML.

    .venv/bin/python environment/run_notebooks.py [--small] [--in-place] [-p NAME=JAVA_EXPR ...] [NAMES ...]

Run through `./lowbit notebooks`, which builds the jar and sets up the kernel first. Each notebook takes its
parameters from the one cell tagged "parameters"; overrides are injected as a cell right after it (tagged
"injected-parameters", as papermill does) that reassigns the variables with Java expressions. --small uses the
CI-size overrides of notebooks/small-parameters.json. NAMES select notebooks by name or number prefix
("01", "01-quickstart"). Executed notebooks and their HTML go to results/notebooks/ (results/notebooks/small/
with --small); --in-place writes the executed notebook back over the source, to refresh the committed outputs.
Any cell error fails the run, naming the notebook and the cell. A notebook that prints a `SKIPPED reason` line
(lowbit.notebook.Lab.skip) is reported as skipped with its reason. The kernel's own log (launcher, JVM warnings)
goes to NAME.kernel.log beside the outputs, and is shown only when the notebook fails.

Figures are Plotly's MIME type (application/vnd.plotly.v1+json), drawn in JupyterLab by the plotly package's
extension; the exported HTML draws them with the plotly.js of that package, inlined once per page.
"""
import argparse
import functools
import html
import json
import pathlib
import re
import subprocess
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
PLOTLY_MIME = "application/vnd.plotly.v1+json"
SKIPPED = re.compile(r"^SKIPPED (.+)$", re.M)


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


@functools.lru_cache(maxsize=None)
def code_version():
    """The commit the outputs are made with, "-dirty" when tracked files differ from it (as lowbit's CodeVersion);
    read once, when the first notebook starts, so edits during a long run do not mark the later notebooks."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--"], capture_output=True).returncode != 0
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def execute(path, overrides, timeout, log=None):
    """Returns the executed notebook, and the error message (None when every cell ran). The kernel's stdout and
    stderr go to the file `log` (a path), or to this process's when it is None."""
    nb = nbformat.read(path, as_version=4)
    inject(nb, path, overrides)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nb.metadata["lowbit"] = {"parameters": overrides, "executed_by": "environment/run_notebooks.py",
                             "code_version": code_version()}
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, startup_timeout=120,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Java (lowbit)", "language": "java"}
    sink = open(log, "w", encoding="utf-8") if log else None
    try:
        client.execute(**({"stdout": sink, "stderr": sink} if sink else {}))
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
    finally:
        if sink:
            sink.close()


def skipped(nb):
    """The reason a notebook gave for skipping its work (a `SKIPPED reason` line on stdout), or None."""
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stdout":
                m = SKIPPED.search(o.get("text", ""))
                if m:
                    return m.group(1).strip()
    return None


def plotly_js():
    """The plotly.js that the plotly package (the JupyterLab extension's package) ships, or None without it."""
    try:
        import plotly
    except ImportError:
        return None
    js = pathlib.Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return js.read_text(encoding="utf-8") if js.is_file() else None


def with_html_figures(nb):
    """A copy of the notebook whose Plotly outputs also carry HTML that draws them, plotly.js inlined once: nbconvert
    renders no Plotly MIME type itself. The committed notebooks keep only the MIME data."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    library = plotly_js()
    n = 0
    for c in nb.cells:
        for o in c.get("outputs", []):
            fig = o.get("data", {}).get(PLOTLY_MIME)
            if fig is None:
                continue
            div = f"lowbit_export_fig_{n}"
            data = json.dumps(fig).replace("</", "<\\/")
            script = "" if n > 0 or library is None else "<script>" + library.replace("</script", "<\\/script") + "</script>\n"
            o["data"]["text/html"] = (script + f'<div id="{div}"></div>\n<script>(function () {{ var f = {data}; '
                                      f'Plotly.newPlot("{div}", f.data, f.layout); }})();</script>'
                                      if library else "<p>" + html.escape(o["data"].get("text/plain", "")) + "</p>")
            n += 1
    return nb


def export_html(nb, target):
    page, _ = HTMLExporter(template_name="lab").from_notebook_node(with_html_figures(nb))
    target.write_text(page, encoding="utf-8")


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
    summary = {"ok": 0, "skipped": 0, "failed": 0}
    for path in notebooks(args.names):
        overrides = small_overrides(path) if args.small else {}
        for p in args.param:
            name, sep, expr = p.partition("=")
            if not sep or not name.strip():
                sys.exit(f"run_notebooks: -p takes NAME=JAVA_EXPR, got '{p}'")
            overrides[name.strip()] = expr
        t0 = time.time()
        print(f"== {path.name}" + (f" with {overrides}" if overrides else ""), file=sys.stderr, flush=True)
        log = out / (path.stem + ".kernel.log")
        nb, error = execute(path, overrides, args.timeout, log)
        nbformat.write(nb, out / path.name)
        export_html(nb, out / (path.stem + ".html"))
        if args.in_place and error is None:
            nbformat.write(nb, path)
        reason = None if error else skipped(nb)
        status = "FAILED" if error else f"skipped ({reason})" if reason else "ok"
        summary["failed" if error else "skipped" if reason else "ok"] += 1
        print(f"   {status} in {time.time() - t0:.0f} s -> {rel(out / (path.stem + '.html'))}", file=sys.stderr, flush=True)
        if error:
            print(error, file=sys.stderr, flush=True)
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:] if log.is_file() else []
            if tail:
                print(f"  the kernel's log ({rel(log)}), last lines:\n    " + "\n    ".join(tail), file=sys.stderr, flush=True)
            errors.append(error.splitlines()[0])
    print(f"notebooks: {summary['ok']} ok, {summary['skipped']} skipped, {summary['failed']} failed", file=sys.stderr)
    if errors:
        print(f"run_notebooks: {len(errors)} notebook(s) failed:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    return 0


def rel(p):
    """A path relative to the checkout when it is inside it: what this prints should not depend on the machine."""
    try:
        return str(pathlib.Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


if __name__ == "__main__":
    sys.exit(main())
