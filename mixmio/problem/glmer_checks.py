"""Checks of mio_glmer's response, weights and fixed design, all before any solve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mixmio import _runtime
from mixmio.errors import (
    ArgumentError,
    ColumnNotFoundError,
    DataError,
    DataTypeError,
    SeparationError,
)
from mixmio.problem import family as fam

__all__ = ["check_family", "resolve_weights", "check_response", "check_separation"]


def check_family(family) -> str:
    if not isinstance(family, str) or family not in fam.FAMILIES:
        raise ArgumentError(f"family must be 'binomial' or 'poisson', got {family!r}")
    return family


def resolve_weights(weights, data: pd.DataFrame, na_action: str
                    ) -> tuple[pd.Series | None, pd.DataFrame, int]:
    """``weights`` (None, a column name, or one value per row of ``data``) as a Series on
    ``data``'s index; rows with a missing weight are dropped (and counted) under
    ``na_action="drop"`` and refused under ``"raise"``.  Returns (weights, data, n dropped)."""
    if weights is None:
        return None, data, 0
    if isinstance(weights, str):
        if weights not in data.columns:
            raise ColumnNotFoundError(f"weights={weights!r} names no column of data; the "
                                      f"columns are {list(map(str, data.columns))}")
        w = data[weights]
    else:
        arr = np.asarray(weights)
        if arr.ndim != 1 or len(arr) != len(data):
            raise ArgumentError(f"weights must be a column name or one value per row of data "
                                f"({len(data)} rows), got shape {arr.shape}")
        w = pd.Series(arr, index=data.index)
    if not pd.api.types.is_numeric_dtype(w) or pd.api.types.is_bool_dtype(w):
        raise DataTypeError(f"weights must be numeric, got dtype {w.dtype}")
    w = w.astype(float)
    na = w.isna().to_numpy()
    if na.any():
        if na_action == "raise":
            raise DataError(f"weights have {int(na.sum())} missing value(s) (first at row "
                            f"{w.index[na][0]!r}); drop those rows or pass na_action='drop'")
        data, w = data.loc[~na], w.loc[~na]
    bad = ~np.isfinite(w.to_numpy()) | (w.to_numpy() <= 0)
    if bad.any():
        raise DataError(f"weights must be positive and finite; {int(bad.sum())} are not (first "
                        f"at row {w.index[bad][0]!r}: {w[bad].iloc[0]!r})")
    return w, data, int(na.sum())


def _rows(index, mask) -> str:
    labels = list(index[mask][:5])
    more = "" if mask.sum() <= 5 else f" and {int(mask.sum()) - 5} more"
    return f"{labels}{more}"


def check_response(family: str, y: np.ndarray, w: np.ndarray | None, index, response: str
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The response as (y, weights) of the GlmmProblem: successes and trials (binomial) or
    counts and prior weights (poisson).  Raises DataError naming the rows that break the
    family's rules."""
    y = np.asarray(y, dtype=float)
    weights = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    if family == "poisson":
        neg = y < 0
        if neg.any():
            raise DataError(f"family='poisson' needs counts >= 0; {response} is negative at "
                            f"rows {_rows(index, neg)}")
        frac = np.abs(y - np.round(y)) > 1e-8
        if frac.any():
            raise DataError(f"family='poisson' needs whole counts; {response} is not an integer "
                            f"at rows {_rows(index, frac)} (e.g. {y[frac][0]!r}). Model a rate "
                            "with counts and offset(np.log(exposure))")
        return y, weights
    if w is None:
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise DataError(f"family='binomial' without weights needs a 0/1 response; "
                            f"{response} has other values at rows {_rows(index, bad)} (e.g. "
                            f"{y[bad][0]!r}). For k successes out of n trials give the "
                            "proportion k/n as the response and weights=n, as lme4's glmer")
        return y, weights
    over = y > 1
    if over.any():
        raise DataError(f"with weights (trials), the binomial response is the proportion of "
                        f"successes, as in lme4's glmer; {response} exceeds 1 at rows "
                        f"{_rows(index, over)}: successes above the trials (or counts given "
                        "instead of proportions: divide by the trials)")
    if (y < 0).any():
        raise DataError(f"the binomial response is a proportion in [0, 1]; {response} is "
                        f"negative at rows {_rows(index, y < 0)}")
    succ = y * weights
    frac = np.abs(succ - np.round(succ)) > 1e-6 * np.maximum(1.0, weights)
    if frac.any():
        raise DataError(f"proportion x trials is not a whole number of successes at rows "
                        f"{_rows(index, frac)} (e.g. {y[frac][0]!r} x {weights[frac][0]!r}); "
                        "check the weights are the numbers of trials")
    return np.round(succ), weights


def check_separation(family: str, X: np.ndarray, y: np.ndarray, w: np.ndarray,
                     names: list[str]) -> None:
    """Raise SeparationError when the fixed effects alone have no finite optimum.

    The cluster effects carry a ridge, so only a direction d of beta can make the loss fall
    forever: one with x_i'd <= 0 on rows at the lower boundary (y = 0), x_i'd >= 0 on rows at
    the upper one (binomial y = trials) and x_i'd = 0 elsewhere.  LP (HiGHS): maximise the
    sum of |x_i'd| over the boundary rows in that cone, -1 <= d <= 1; X has full column rank
    (checked by the design stage), so a positive optimum is such a direction and 0 proves
    there is none."""
    import highspy

    lower = y <= 0
    upper = (y >= w) if family == "binomial" else np.zeros_like(lower)
    s = np.where(lower, -1.0, np.where(upper, 1.0, 0.0))
    if not np.any(s):
        return
    n, p = X.shape
    eq = s == 0
    if eq.sum() >= p and np.linalg.matrix_rank(X[eq]) == p:
        return  # x_i'd = 0 on rows spanning R^p: only d = 0
    h = _runtime.highs()
    h.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    c = -(s @ X)  # minimise -sum s_i x_i'd
    h.addVars(p, -np.ones(p), np.ones(p))
    h.changeColsCost(p, np.arange(p, dtype=np.int32), c.astype(float))
    lo = np.where(s > 0, 0.0, np.where(s < 0, -inf, 0.0))
    hi = np.where(s > 0, inf, 0.0)
    A = np.ascontiguousarray(X, dtype=float)
    starts = np.arange(0, n * p, p, dtype=np.int32)
    index = np.tile(np.arange(p, dtype=np.int32), n)
    h.addRows(n, lo, hi, n * p, starts, index, A.ravel())
    h.run()
    val = -h.getInfo().objective_function_value
    if val > 1e-7 * max(1.0, float(np.abs(X).sum(axis=1).max())):
        d = np.asarray(h.getSolution().col_value)
        cols = [names[j] for j in np.flatnonzero(np.abs(d) > 1e-7)]
        what = ("the 0/1 outcomes (or 0 and all trials)" if family == "binomial"
                else "the zero counts")
        raise SeparationError(
            f"the fixed effects {cols} separate {what}: along a direction of these columns "
            "the likelihood rises forever, so their estimates are infinite (no finite "
            "optimum). Remove or merge those columns, or move the variable into a random "
            "term, whose effects carry the ridge")
