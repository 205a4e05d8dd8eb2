"""Command line: ``mixmio fit DATA "FORMULA" -k 10``, ``mixmio lm|glm|glmer|clr|path|cv ...``,
``mixmio demo``.  ``DATA`` is a delimited text file, ``-`` for standard input, or the name of a
shipped data set.  Exit status: 0 on success, 1 when the fit fails (bad formula, unknown column,
solver error), 2 for a usage error (unknown option, malformed ``-k``).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

DEMO_DATA = "exam"
DEMO_FORMULA = "normexam ~ standLRT + sex + (1 | school)"
DEMO_K = 6
DEMO_B = 100
FORMATS = ("text", "markdown", "json", "csv")
#: separators tried when the file's extension does not name one
SEPARATORS = (",", "\t", ";", "|")


class UsageError(Exception):
    """A malformed argument: exit status 2, like argparse's own errors."""


# ---------------------------------------------------------------------------------------------
# arguments


def parse_k(text: str, *, many: bool = False):
    """``-k``: an integer (``5``), or caps per random-effect column (``1|g=5,x|g=2``); a pair
    ``W:B`` is an asymmetric cap (``1|g=3:0``); ``cv`` chooses k by cross-validation.  With
    ``many`` (``path``, ``cv``): a list of integers (``0,1,2,5``).

    >>> parse_k("5"), parse_k("1|g=5,x|g=2:0")
    (5, {'1|g': 5, 'x|g': (2, 0)})
    >>> parse_k("0,2,4", many=True)
    [0, 2, 4]
    """
    text = text.strip()
    try:
        if many:
            return [int(v) for v in text.split(",")]
        if text == "cv" or "=" not in text:
            return text if text == "cv" else int(text)
        caps: dict[str, int | tuple[int, int]] = {}
        for item in text.split(","):
            label, _, value = item.partition("=")
            if not label.strip() or not value.strip():
                raise ValueError(item)
            parts = [int(v) for v in value.split(":")]
            if len(parts) > 2:
                raise ValueError(item)
            caps[label.strip()] = parts[0] if len(parts) == 1 else (parts[0], parts[1])
        return caps
    except ValueError:
        want = "a comma-separated list of integers, e.g. 0,1,2,5" if many else (
            "an integer (5), caps per column (1|g=5,x|g=2), a pair W:B (1|g=3:0) or cv")
        raise UsageError(f"-k {text!r}: expected {want}") from None


def _common(p: argparse.ArgumentParser, *, k: str | None = "cap on non-zero cluster deviations",
            k_required: bool = False) -> None:
    p.add_argument("data", help="delimited text file, - for standard input, or a shipped data set")
    p.add_argument("formula", help='model formula, e.g. "y ~ x + (1 | g)"')
    if k is not None:
        p.add_argument("-k", default=None, required=k_required, help=k)
    p.add_argument("--sep", default=None,
                   help="field separator (default: from the extension, .tsv -> tab, else "
                        "sniffed from the header among , tab ; |)")
    p.add_argument("--solver", default="auto")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per fit")
    p.add_argument("--na-action", default="drop", choices=["drop", "raise"])
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--format", default="text", choices=FORMATS, help="output format")


def _parser() -> argparse.ArgumentParser:
    from mixmio import __version__

    ap = argparse.ArgumentParser(prog="mixmio", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-V", "--version", action="version", version=f"mixmio {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", aliases=["lmer"], help="sparse linear mixed model (mio_lmer)")
    _common(fit)
    fit.add_argument("--design-only", action="store_true", help="describe the design, no fit")
    glmer = sub.add_parser("glmer", help="sparse generalised linear mixed model (mio_glmer)")
    _common(glmer, k_required=True)
    glmer.add_argument("--family", default="binomial", choices=["binomial", "poisson"])
    lm = sub.add_parser("lm", help="best-subset linear regression (mio_lm)")
    _common(lm, k="cap on selected columns (default: none)")
    glm = sub.add_parser("glm", help="best-subset logistic regression (mio_glm)")
    _common(glm, k="cap on selected columns (default: none)")
    clr = sub.add_parser("clr", help="clusterwise LAD regression, unknown clusters (mio_clr)")
    _common(clr, k=None)
    clr.add_argument("-K", "--clusters", type=int, required=True, help="number of clusters")
    path = sub.add_parser("path", help="warm-started path over k (lmer_path)")
    _common(path, k="caps, e.g. 0,1,2,5 (default: lmer_path's grid)")
    cv = sub.add_parser("cv", help="choose k by cross-validation (cv_lmer)")
    _common(cv, k="caps, e.g. 0,1,2,5 (default: lmer_path's grid)")
    cv.add_argument("--cv", default="blocked", choices=["blocked", "within"])
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--rule", default="min", choices=["min", "1se"])
    demo = sub.add_parser("demo", help=f"fit {DEMO_FORMULA!r} on the shipped {DEMO_DATA} data")
    demo.add_argument("--format", default="text", choices=FORMATS, help="output format")
    return ap


# ---------------------------------------------------------------------------------------------
# data


def sniff_sep(name: str, head: str) -> str:
    """The field separator: tab for ``.tsv``/``.tab`` files, comma for ``.csv`` files whose
    header holds a comma, else the candidate that occurs most often in the header line.

    >>> sniff_sep("a.txt", "y;x;g\\n1;2;3"), sniff_sep("-", "y\\tx\\n"), sniff_sep("a.csv", "y,x")
    (';', '\\t', ',')
    """
    ext = Path(name).suffix.lower()
    if ext in (".tsv", ".tab"):
        return "\t"
    header = head.splitlines()[0] if head else ""
    if ext == ".csv" and "," in header:
        return ","
    counts = {s: header.count(s) for s in SEPARATORS}
    best = max(SEPARATORS, key=lambda s: counts[s])
    return best if counts[best] > 0 else ","


def read_data(source: str, sep: str | None, stdin=None) -> tuple[pd.DataFrame, str]:
    """(data, separator used) from a file, ``-`` (standard input) or a shipped data set."""
    from mixmio import datasets

    if source != "-" and source.lower() in datasets.available() and not Path(source).exists():
        return datasets.load(source), ","
    if source == "-":
        text = (stdin or sys.stdin).read()
    else:
        try:
            text = Path(source).read_text()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no file {source!r} (and no shipped data set of that name; shipped: "
                f"{', '.join(datasets.available())})") from None
    used = sep if sep is not None else sniff_sep(source, text[:4096])
    return pd.read_csv(io.StringIO(text), sep=used), used


def _hint(data: pd.DataFrame, used: str) -> str:
    """A hint when the data came in as one column: the separator was probably wrong."""
    if data.shape[1] != 1:
        return ""
    col = str(data.columns[0])
    for s in SEPARATORS:
        if s != used and s in col:
            shown = "\\t" if s == "\t" else s
            return (f"\nhint: the data has one column, {col!r}; its fields look separated by "
                    f"{shown!r}: pass --sep '{shown}'")
    return ""


# ---------------------------------------------------------------------------------------------
# output


def _render_fit(fit, fmt: str) -> str:
    summary = fit.summary()
    if fmt == "text":
        return str(summary)
    if fmt == "markdown":
        return summary.to_markdown()
    tables = summary.tables
    if fmt == "csv":
        frames = [t.reset_index().assign(table=name) for name, t in tables.items()]
        return pd.concat(frames, ignore_index=True).to_csv(index=False).rstrip("\n")
    info = {a: _plain(getattr(fit, a, None)) for a in
            ("status", "gap", "objective", "best_bound", "solver", "nobs")}
    info["tables"] = {name: json.loads(t.to_json(orient="split")) for name, t in tables.items()}
    return json.dumps(info, indent=2)


def _render_frame(frame: pd.DataFrame, fmt: str, title: str = "") -> str:
    if fmt == "csv":
        return frame.to_csv().rstrip("\n")
    if fmt == "json":
        return frame.to_json(orient="split", indent=2)
    body = frame.to_markdown() if fmt == "markdown" else frame.to_string()
    return f"{title}\n\n{body}" if title else body


def _plain(v):
    try:
        return v.item() if hasattr(v, "item") else v
    except (ValueError, TypeError):
        return str(v)


# ---------------------------------------------------------------------------------------------
# commands


def _fit_kw(args) -> dict:
    return dict(solver=args.solver, time_limit=args.time_limit, na_action=args.na_action,
                random_state=args.random_state)


def _cmd_lmer(args, data) -> str:
    import mixmio

    k = args.k
    if args.design_only or k is None:
        note = "" if args.design_only else "\n(no -k given: the design only, nothing fitted)"
        return mixmio.build_design(args.formula, data, na_action=args.na_action).describe() + note
    return _render_fit(mixmio.mio_lmer(args.formula, data, k=k, **_fit_kw(args)), args.format)


def _cmd_glmer(args, data) -> str:
    import mixmio

    fit = mixmio.mio_glmer(args.formula, data, k=args.k, family=args.family,
                           **_fit_kw(args))
    return _render_fit(fit, args.format)


def _cmd_lm(args, data) -> str:
    import mixmio

    k = args.k
    return _render_fit(mixmio.mio_lm(args.formula, data, k=k, **_fit_kw(args)), args.format)


def _cmd_glm(args, data) -> str:
    import mixmio

    k = args.k
    return _render_fit(mixmio.mio_glm(args.formula, data, k=k, **_fit_kw(args)), args.format)


def _cmd_clr(args, data) -> str:
    import mixmio

    return _render_fit(mixmio.mio_clr(args.formula, data, args.clusters, **_fit_kw(args)),
                       args.format)


def _cmd_path(args, data) -> str:
    import mixmio

    k = args.k
    kw = _fit_kw(args)
    kw.pop("random_state")  # the path is deterministic given its warm starts
    path = mixmio.lmer_path(args.formula, data, k=k, **kw)
    return _render_frame(path.table, args.format, title=f"lmer_path: {args.formula}")


def _cmd_cv(args, data) -> str:
    import mixmio

    k = args.k
    cv = mixmio.cv_lmer(args.formula, data, k=k, cv=args.cv, folds=args.folds, rule=args.rule,
                        **_fit_kw(args))
    title = f"cv_lmer ({args.cv}, {args.folds} folds, rule {args.rule}): k_best = {cv.k_best}"
    return _render_frame(cv.table, args.format, title=title)


def _cmd_demo(args) -> str:
    import mixmio

    data = mixmio.datasets.load(DEMO_DATA)
    fit = mixmio.mio_lmer(DEMO_FORMULA, data, k=DEMO_K, random_state=0)
    boot = fit.bootstrap(B=DEMO_B, random_state=0, progress=False)
    if args.format != "text":
        return _render_fit(fit.with_bootstrap(boot), args.format)
    header = (f"mixmio demo: which of 65 London schools differ? {DEMO_FORMULA} on the shipped "
              f"'{DEMO_DATA}' data (mlmRev), at most k = {DEMO_K} deviating schools\n\n")
    return header + str(fit.with_bootstrap(boot).summary()) + "\n" + str(boot.report())


COMMANDS: dict[str, Callable] = {"fit": _cmd_lmer, "lmer": _cmd_lmer, "glmer": _cmd_glmer,
                                 "lm": _cmd_lm, "glm": _cmd_glm, "clr": _cmd_clr,
                                 "path": _cmd_path, "cv": _cmd_cv}


def run(argv: list[str] | None = None, stdin=None) -> str:
    """Run one command and return what it prints (raises on error; :func:`main` maps errors to
    exit statuses)."""
    ap = _parser()
    args = ap.parse_args(argv)
    if args.command == "demo":
        return _cmd_demo(args)
    # -k parsed once, before reading the data: a malformed -k is a usage error
    text = getattr(args, "k", None)
    args.k = None if text is None else parse_k(text, many=args.command in ("path", "cv"))
    data, used = read_data(args.data, args.sep, stdin)
    try:
        return COMMANDS[args.command](args, data)
    except (ValueError, KeyError) as exc:
        hint = _hint(data, used)
        if hint:
            msg = exc.args[0] if exc.args else str(exc)
            raise type(exc)(f"{msg}{hint}") from exc
        raise


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # the user's call is the command line: no file and line of mixmio's or runpy's
    print(f"mixmio: {category.__name__}: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point: print the command's output; exit 0, 1 (the fit failed) or 2 (usage)."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            print(run(argv))
        except UsageError as exc:
            print(f"mixmio: error: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # output piped into head and the like: stop quietly
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"mixmio: error: {msg}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
