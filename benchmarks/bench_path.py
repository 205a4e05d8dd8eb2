"""Path and CV speed (issue 15): the 13-point warm-started path and 5-fold blocked CV on the
engine benchmark's K = 1,000 x 30, p = 10 instance.

Baselines run side by side:
- one ``mio_lmer`` fit at k = K/10 (the target: the whole path in <= 3x its time);
- the same 13 caps as independent ``mio_lmer`` calls (design and statistics rebuilt at every
  cap, as the authors' R package does at every budget).

The one fit and the path are timed in one process, interleaved (medians of 7 rounds by
default), so both see the same load.  Writes ``results/path.md`` and ``results/path.csv``.
Run: ``python benchmarks/bench_path.py`` (``--path-only``: the first two rows, about 10 s).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import make_intercept_data  # noqa: E402

import mixmio  # noqa: E402
from _common import timed, write_tables  # noqa: E402
from mixmio.api.path import FRACTIONS  # noqa: E402


def frame(K=1000, rows=30, p=10, frac=0.1, effect=2.0, seed=0):
    problem, gamma, codes = make_intercept_data(K, rows, p, frac, effect, random_state=seed)
    df = pd.DataFrame(problem.X[:, 1:], columns=[f"x{i}" for i in range(1, p)])
    df["g"] = codes
    df["y"] = problem.y
    formula = "y ~ " + " + ".join(df.columns[: p - 1]) + " + (1 | g)"
    return df, formula, gamma


def interleaved(fns: dict, repeats: int) -> tuple[dict, dict, dict]:
    """Median and least seconds of each function over ``repeats`` rounds, each round calling
    every function once in turn (so the baseline and the path see the same machine load),
    and each function's last result."""
    times: dict = {name: [] for name in fns}
    last: dict = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            last[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return ({n: statistics.median(t) for n, t in times.items()},
            {n: min(t) for n, t in times.items()}, last)


def main(repeats: int = 7, path_only: bool = False) -> None:
    df, formula, gamma = frame()
    K = 1000
    grid = sorted({min(K, int(np.floor(f * K + 0.5))) for f in FRACTIONS})
    rows = []
    mixmio.mio_lmer(formula, df, k=100)  # imports and first-call costs outside the timings
    mixmio.lmer_path(formula, df, k=[0, 100])

    med, least, last = interleaved({"one": lambda: mixmio.mio_lmer(formula, df, k=100),
                                    "path": lambda: mixmio.lmer_path(formula, df)}, repeats)
    t_one, fit, t_path, path = med["one"], last["one"], med["path"], last["path"]
    rows.append({"task": "one mio_lmer fit, k = 100", "median_s": t_one, "min_s": least["one"],
                 "fits": 1, "certified": int(fit.status == "optimal"), "ratio_to_one_fit": 1.0})
    cert = int((path.table["status"] == "optimal").sum())
    rows.append({"task": "lmer_path, 13 caps (warm-started, design built once)",
                 "median_s": t_path, "min_s": least["path"], "fits": len(path.fits),
                 "certified": cert, "ratio_to_one_fit": t_path / t_one})

    def independent():
        return [mixmio.mio_lmer(formula, df, k=k) for k in grid]

    if path_only:
        fits = independent()
        worst = max(abs(f.objective - path.fits[k].objective) / abs(f.objective)
                    for k, f in zip(grid, fits, strict=True))
        _write(rows, path, gamma, repeats, worst, None, None)
        return
    t_ind, fits = timed(independent, repeats)
    rows.append({"task": "13 independent mio_lmer fits (rebuilt per cap)", "median_s": t_ind,
                 "fits": len(fits), "certified": sum(f.status == "optimal" for f in fits),
                 "ratio_to_one_fit": t_ind / t_one})
    worst = max(abs(f.objective - path.fits[k].objective) / abs(f.objective)
                for k, f in zip(grid, fits, strict=True))

    cv_repeats = min(repeats, 3)
    t_cv, cv = timed(lambda: mixmio.cv_lmer(formula, df, cv="blocked", folds=5,
                                            random_state=0), cv_repeats)
    rows.append({"task": "cv_lmer, 5-fold blocked, 13 caps, predict_new='soft'",
                 "median_s": t_cv, "fits": 5 * 13 + 1,
                 "certified": int(cv.table["n_certified"].sum()
                                  + (cv.fit.status == "optimal")),
                 "ratio_to_one_fit": t_cv / t_one})
    t_cv2, cv2 = timed(lambda: mixmio.cv_lmer(formula, df, cv="blocked", folds=5,
                                              random_state=0, n_jobs=2), cv_repeats)
    rows.append({"task": "cv_lmer, as above, n_jobs=2", "median_s": t_cv2, "fits": 5 * 13 + 1,
                 "certified": int(cv2.table["n_certified"].sum()
                                  + (cv2.fit.status == "optimal")),
                 "ratio_to_one_fit": t_cv2 / t_one})
    _write(rows, path, gamma, repeats, worst, cv, cv.table.equals(cv2.table))


def _write(rows, path, gamma, repeats, worst, cv, same) -> None:
    table = pd.DataFrame(rows)
    per_k = path.table[["k", "status", "gap", "time", "n_selected"]]
    truth = int(np.sum(gamma != 0))
    notes = (f"Instance: `make_intercept_data(1000, 30, 10, 0.1, 2.0)` of bench_engine.py "
             f"(K = 1,000 clusters x 30 rows, p = 10, {truth} clusters deviate by 2 sigma). "
             f"One fit and path timed in the same process, interleaved: medians (and least) "
             f"of {repeats} rounds; the other rows medians of {repeats} ({min(repeats, 3)} for "
             f"CV). Targets (issue 15): path <= 3x one fit; CV <= 15 s.\n\n"
             f"Path objectives equal the independent fits' to {worst:.1e} (relative).")
    if cv is not None:
        notes += (f" CV tables identical for n_jobs = 1 and 2: {same}. CV chose k = "
                  f"{cv.k_best} (1-SE rule: {cv.k_1se}).")
    notes += "\n\nPer cap of the last path run:\n\n" + per_k.to_markdown(index=False)
    if cv is not None:
        notes += ("\n\nCV table:\n\n"
                  + cv.table[["k", "mean", "se", "n_certified"]].to_markdown(index=False))
    print(table.to_string())
    print(notes)
    write_tables("path", table, "Path over k and cross-validation: speed", notes)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--path-only", action="store_true",
                    help="only the one fit and the path (and the independent fits' objectives)")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    t0 = time.perf_counter()
    main(args.repeats, args.path_only)
    print(f"total {time.perf_counter() - t0:.1f} s")
