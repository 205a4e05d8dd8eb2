"""Command line: ``python -m mixmio fit DATA.csv "FORMULA" -k 10`` and ``python -m mixmio demo``."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

DEMO_DATA = "exam"
DEMO_FORMULA = "normexam ~ standLRT + sex + (1 | school)"
DEMO_K = 6
DEMO_B = 100


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m mixmio", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a sparse mixed model and print its summary")
    fit.add_argument("data", help="CSV file (or the name of a shipped data set)")
    fit.add_argument("formula", help='lme4 formula, e.g. "y ~ x + (1 | g)"')
    fit.add_argument("-k", type=int, default=None, help="cap on non-zero cluster deviations")
    fit.add_argument("--sep", default=",", help="CSV field separator (default ',')")
    fit.add_argument("--solver", default="auto")
    fit.add_argument("--time-limit", type=float, default=None)
    fit.add_argument("--na-action", default="drop", choices=["drop", "raise"])
    fit.add_argument("--design-only", action="store_true", help="describe the design, no fit")
    sub.add_parser("demo", help=f"fit {DEMO_FORMULA!r} on the shipped {DEMO_DATA} data")
    return ap


def _read(path: str, sep: str) -> pd.DataFrame:
    from mixmio import datasets

    if path.lower() in datasets.available():
        return datasets.load(path)
    return pd.read_csv(path, sep=sep)


def run(argv: list[str] | None = None) -> str:
    args = _parser().parse_args(argv)
    from mixmio.design import build_design

    if args.command == "demo":
        from mixmio import datasets

        data, formula, k, solver, tl, na, design_only = (
            datasets.load(DEMO_DATA), DEMO_FORMULA, DEMO_K, "auto", None, "drop", False)
        header = (f"mixmio demo: which of 65 London schools differ? {formula} on the shipped "
                  f"'{DEMO_DATA}' data (mlmRev), at most k = {k} deviating schools\n\n")
    else:
        data, formula, k = _read(args.data, args.sep), args.formula, args.k
        solver, tl, na, design_only = args.solver, args.time_limit, args.na_action, args.design_only
        header = ""
    from mixmio.api.lmer import mio_lmer

    if design_only or k is None:
        note = "" if design_only else "\n(no -k given: the design only, nothing fitted)"
        return header + build_design(formula, data, na_action=na).describe() + note
    fit = mio_lmer(formula, data, k=k, solver=solver, time_limit=tl, na_action=na,
                   random_state=0)
    if args.command == "demo":
        boot = fit.bootstrap(B=DEMO_B, random_state=0, progress=False)
        return header + str(fit.with_bootstrap(boot).summary()) + "\n" + str(boot.report())
    return header + str(fit.summary())


def main(argv: list[str] | None = None) -> int:
    try:
        print(run(argv))
    except BrokenPipeError:  # output piped into head and the like: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 0
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
