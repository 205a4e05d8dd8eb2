"""A warm-started path of mio_lmer fits over the caps k."""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixmio.errors import ArgumentError, ArgumentTypeError
from mixmio.results.path import PathResult, selected_keys, z_keys

if TYPE_CHECKING:
    pass


#: the seed paper's sparsity fractions (share of the clusters allowed to deviate)
FRACTIONS = (0.0, 0.1, 0.2, 0.25, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.75, 0.8, 0.9, 1.0)

#: the keyword arguments of mio_lmer a path (and a CV) passes through
LMER_ARGS = ("k_fixed", "ridge", "solver", "time_limit", "mip_gap", "refit", "warm_start",
             "random_state", "na_action", "verbose", "constraints")


def check_lmer_args(kwargs: Mapping[str, Any], where: str, allowed=LMER_ARGS,
                    to: str = "mio_lmer") -> dict:
    """The keyword arguments a path or CV passes on to ``to``; refuses any other."""
    bad = sorted(set(kwargs) - set(allowed))
    if bad:
        raise ArgumentTypeError(f"{where} got unexpected keyword argument(s) {bad}; it passes "
                                f"these on to {to}: {list(allowed)}")
    return dict(kwargs)


def _as_cap(v, what: str) -> int:
    if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral):
        raise ArgumentTypeError(f"{what} must be an integer cap, got {v!r}")
    return int(v)


def default_grid(sizes: Mapping[str, int]) -> list[dict[str, int]]:
    """The caps round(f K) of every column for the seed paper's fractions f (capped at K)."""
    return [{lab: min(K, int(np.floor(f * K + 0.5))) for lab, K in sizes.items()}
            for f in FRACTIONS]


def resolve_grid(design, k) -> list[tuple[Any, dict[str, int]]]:
    """``[(key, caps by column label)]`` of the path, sorted by total cap, duplicates removed.

    ``k``: None (the default fractions of every column's number of clusters), a list of ints
    (each caps every random-effect column, as ``mio_lmer(k=int)``), or a dict ``{label: list
    or int}`` (lists of one length, ints held fixed along the path).  The key is the int when
    one int caps every column, else the tuple of caps in column order.
    """
    labels = design.column_labels
    if not labels:
        raise ArgumentError("a path over k needs a random term such as (1 | g); for a model "
                            "without one use mixmio.mio_lm")
    sizes = {lab: design.block_of(lab)[0].n_levels for lab in labels}
    if k is None:
        points = default_grid(sizes)
    elif isinstance(k, Mapping):
        from mixmio.problem.build import cap_key

        spec = {cap_key(lab): v for lab, v in k.items()}
        unknown = [lab for lab in spec if lab not in sizes]
        if unknown:
            raise ArgumentError(f"k names no random-effect column {unknown}; the columns are "
                                f"{labels}")
        lens = {len(v) for v in spec.values() if isinstance(v, Sequence)
                and not isinstance(v, str)}
        if len(lens) > 1:
            raise ArgumentError(f"the lists of caps in k must have one length, got {sorted(lens)}")
        n = lens.pop() if lens else 1
        points = []
        for i in range(n):
            pt = {}
            for lab, v in spec.items():
                vi = v[i] if isinstance(v, Sequence) and not isinstance(v, str) else v
                pt[lab] = _as_cap(vi, f"k[{lab!r}]")
            points.append(pt)
    elif isinstance(k, Sequence) and not isinstance(k, str):
        points = [{lab: _as_cap(v, "every entry of k") for lab in labels} for v in k]
    else:
        raise ArgumentTypeError("k of a path must be None (the default grid), a list of ints or "
                                f"a dict of lists keyed by column label, got {k!r}")
    if not points:
        raise ArgumentError("the grid of caps k is empty; give at least one cap (or k=None for "
                            "the default grid)")
    for pt in points:
        for lab, v in pt.items():
            if not 0 <= v <= sizes[lab]:
                raise ArgumentError(f"cap {v} on '{lab}' is out of range: it must be in "
                                    f"[0, {sizes[lab]}] (the number of levels of "
                                    f"'{design.block_of(lab)[0].group}')")
    single = isinstance(k, Sequence) and not isinstance(k, Mapping | str)
    out, seen = [], set()
    for pt in sorted(points, key=lambda d: (sum(d.values()), tuple(d.values()))):
        vals = tuple(pt.values())
        if vals in seen:
            continue
        seen.add(vals)
        out.append((vals[0] if single or len(vals) == 1 else vals, pt))
    return out


def path_from_prepared(prepared, grid, settings: dict, formula: str,
                       fit_one=None) -> PathResult:
    """The path on a prepared design (shared by :func:`lmer_path` and the CV folds)."""
    if fit_one is None:  # mio_lmer's; mio_glmer passes its own (same signature)
        from mixmio.api._lmer import lmer_fit as fit_one

    fits: dict = {}
    caps: dict = {}
    rows = []
    prev = None
    prev_sel: dict = {}
    multi = len(prepared.design.column_labels) > 1
    keys = z_keys(prepared.design)

    def name(kk):  # the table's cluster label: the level, or "column: level"
        return f"{kk[0]}: {kk[1]}" if multi else kk[1]

    for key, pt in grid:
        t0 = time.perf_counter()
        fit = fit_one(prepared, pt, settings, base=None if prev is None else prev.problem,
                        warm=None if prev is None else prev.solution)
        wall = time.perf_counter() - t0
        sel = selected_keys(fit, keys)
        rows.append({"k": key, "objective": fit.objective, "best_bound": fit.best_bound,
                     "gap": fit.gap, "status": fit.status, "time": wall,
                     "n_selected": len(sel),
                     "entered": [name(kk) for kk in sel if kk not in prev_sel],
                     "left": [name(kk) for kk in prev_sel if kk not in sel]})
        fits[key] = fit
        caps[key] = dict(pt)
        prev, prev_sel = fit, sel
    return PathResult(formula, fits, caps, pd.DataFrame(rows))


def lmer_path(formula: str, data: pd.DataFrame,
              k: Sequence[int] | Mapping[str, Sequence[int] | int] | None = None,
              **mio_lmer_args) -> PathResult:
    """Fit :func:`mixmio.mio_lmer` over a grid of caps, warm-started along the path.

    The design is built once; each cap's problem reuses its arrays (so the exact engines'
    per-cluster statistics are built once too) and starts from the previous cap's support.
    Every point is certified as a single fit is (``status``, ``gap`` per row of ``table``).

    Parameters
    ----------
    formula, data : as in :func:`mixmio.mio_lmer`.
    k : None (default): the seed paper's sparsity fractions {0, .1, .2, .25, 1/3, .4, .5,
        .6, 2/3, .75, .8, .9, 1} times the number of clusters K of every random-effect
        column (rounded, capped at K); a list of ints (each caps every column); or a dict
        ``{"1|school": [0, 5, 10], "x|school": 2}`` (lists of one length, ints held fixed).
        The path runs in increasing total cap.
    **mio_lmer_args : ``k_fixed``, ``ridge``, ``solver``, ``time_limit`` (per cap),
        ``mip_gap``, ``refit``, ``warm_start``, ``random_state``, ``na_action``,
        ``verbose``, ``constraints``.

    Examples
    --------
    >>> import mixmio
    >>> exam = mixmio.datasets.load("Exam")
    >>> path = mixmio.lmer_path("normexam ~ standLRT + (1 | school)", exam, k=[0, 5, 10])
    >>> list(path.table["n_selected"]), bool((path.table["status"] == "optimal").all())
    ([0, 5, 10], True)
    >>> path.fits[5].status
    'optimal'
    """
    from mixmio._checks import as_frame
    from mixmio.api._lmer import lmer_prepare, lmer_settings

    kw = check_lmer_args(mio_lmer_args, "lmer_path")
    na_action = kw.pop("na_action", "drop")
    constraints = kw.pop("constraints", ())
    data = as_frame(data)
    settings = lmer_settings(**kw)
    prepared = lmer_prepare(formula, data, na_action, constraints)
    grid = resolve_grid(prepared.design, k)
    return path_from_prepared(prepared, grid, settings, formula)
