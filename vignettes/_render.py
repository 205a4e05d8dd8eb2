"""Render jupytext percent-format vignettes to Markdown with PNG figures, without Jupyter.

    python vignettes/_render.py                 # every vignette -> vignettes/rendered/
    python vignettes/_render.py ny_hai --fast   # one vignette, fast mode (small B, short grids)
    python vignettes/_render.py ny_hai --out /tmp/r

A vignette is a ``.py`` file in jupytext's percent format: ``# %%`` starts a code cell and
``# %% [markdown]`` a Markdown cell whose lines start with ``# ``.  Open one as a notebook with
``jupytext --to notebook vignettes/NAME.py``, or run it as a script.  Here each code cell runs in
one shared namespace with stdout captured, as a notebook kernel would.  Figures left open after
a cell are saved as ``rendered/NAME_files/NAME_N.png``, linked from the Markdown, and closed.

Fast mode sets ``MIXMIO_VIGNETTE_FAST=1``; vignettes read it through ``FAST`` (see
``vignettes/README.md``) to shrink bootstrap replicates and grids, so the test suite can run
them in seconds.  The rendered files committed in ``vignettes/rendered/`` are full runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
CELL = re.compile(r"^# %%(.*)$")


def cells(source: str) -> list[tuple[str, str]]:
    """Split percent-format source into ``(kind, text)`` cells; kind is code or markdown.

    Text before the first ``# %%`` is a code cell (module docstring, imports)."""
    out: list[tuple[str, list[str]]] = [("code", [])]
    for line in source.splitlines():
        m = CELL.match(line)
        if m:
            kind = "markdown" if "[markdown]" in m.group(1) else "code"
            out.append((kind, []))
            title = m.group(1).replace("[markdown]", "").strip()
            if kind == "code" and title:
                out[-1][1].append(f"# {title}")
            continue
        out[-1][1].append(line)
    result = []
    for kind, lines in out:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        text = "\n".join(lines).strip("\n")
        if text.strip():
            result.append((kind, text))
    return result


def _docstring_markdown(code: str) -> tuple[str | None, str]:
    """A leading module docstring becomes the page's Markdown introduction."""
    m = re.match(r'^\s*"""(.*?)"""\s*\n?', code, flags=re.S)
    if not m:
        return None, code
    doc = m.group(1).strip().splitlines()
    intro = "# " + doc[0] + ("\n\n" + "\n".join(doc[1:]).strip() if len(doc) > 1 else "")
    return intro, code[m.end():]


def render(path: Path, out_dir: Path, fast: bool = False) -> tuple[Path, str]:
    """Run one vignette cell by cell; write ``out_dir/NAME.md`` and its PNG figures.

    Returns the Markdown path and the concatenated printed output (for tests).  A cell that
    raises stops the run with the traceback, as a notebook would."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = path.stem
    fig_dir = out_dir / f"{name}_files"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("*.png"):
        old.unlink()
    os.environ["MIXMIO_VIGNETTE_FAST"] = "1" if fast else "0"
    ns: dict = {"__name__": "__main__", "__file__": str(path)}
    md: list[str] = []
    printed: list[str] = []
    n_fig = 0
    sys.path.insert(0, str(path.parent))
    t0 = time.perf_counter()
    try:
        for i, (kind, text) in enumerate(cells(path.read_text())):
            if kind == "markdown":
                md.append(text)
                continue
            if i == 0:
                intro, text = _docstring_markdown(text)
                if intro:
                    md.append(intro)
                if not text.strip():
                    continue
            md.append("```python\n" + text.strip("\n") + "\n```")
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                try:
                    exec(compile(text, f"{path.name} cell {i}", "exec"), ns)
                except Exception:
                    printed.append(buf.getvalue())
                    raise RuntimeError(f"{path.name}: cell {i} failed\n{traceback.format_exc()}"
                                       f"\nprinted so far:\n{''.join(printed)[-3000:]}") from None
            text_out = buf.getvalue()
            printed.append(text_out)
            if text_out.strip():
                md.append("```text\n" + text_out.rstrip("\n") + "\n```")
            for num in plt.get_fignums():
                n_fig += 1
                png = fig_dir / f"{name}_{n_fig}.png"
                plt.figure(num).savefig(png, dpi=90, bbox_inches="tight")
                md.append(f"![figure {n_fig}]({fig_dir.name}/{png.name})")
            plt.close("all")
    finally:
        sys.path.remove(str(path.parent))
    elapsed = time.perf_counter() - t0
    md.append(f"---\n*Rendered by `make vignettes` ({'fast mode, ' if fast else ''}"
              f"{elapsed:.0f} s).*")
    out = out_dir / f"{name}.md"
    out.write_text("\n\n".join(md) + "\n")
    if n_fig == 0:
        fig_dir.rmdir()
    return out, "".join(printed)


def vignettes() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="vignette names (default: all)")
    ap.add_argument("--fast", action="store_true", help="fast mode (small B, short grids)")
    ap.add_argument("--out", type=Path, default=HERE / "rendered")
    args = ap.parse_args(argv)
    paths = vignettes() if not args.names else [HERE / f"{n.removesuffix('.py')}.py"
                                                 for n in args.names]
    for p in paths:
        if not p.exists():
            ap.error(f"no vignette {p.name} in {HERE}")
    args.out.mkdir(parents=True, exist_ok=True)
    for p in paths:
        t = time.perf_counter()
        out, _ = render(p, args.out, fast=args.fast)
        print(f"{p.name} -> {out} ({time.perf_counter() - t:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
