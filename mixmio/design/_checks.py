"""Checks on a design before any fitting: rank of X, response type, missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg as la


class RankDeficientError(ValueError):
    """X does not have full column rank; the message names the aliased columns."""

    def __init__(self, message: str, aliased: list[str]):
        self.aliased = aliased
        super().__init__(message)


def check_rank(X: pd.DataFrame, tol: float = 1e-7) -> None:
    """Raise :class:`RankDeficientError` naming aliased columns, as lme4's lFormula does."""
    p = X.shape[1]
    if p == 0:
        return
    A = X.to_numpy(dtype=float)
    # unit-norm columns first: the rank must not depend on the columns' units
    norms = np.linalg.norm(A, axis=0)
    _, R, piv = la.qr(A / np.where(norms > 0, norms, 1.0), mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    rank = int(np.sum(d > tol * max(d[0], 1e-300))) if len(d) else 0
    if rank == p and A.shape[0] >= p:
        return
    names = list(X.columns)
    kept = [names[j] for j in piv[:rank]]
    aliased = [names[j] for j in piv[rank:]]
    lines = []
    K = A[:, piv[:rank]]
    for j in piv[rank:]:
        coef, *_ = np.linalg.lstsq(K, A[:, j], rcond=None)
        combo = " + ".join(f"{c:.4g}*{kept[i]}" for i, c in enumerate(coef) if abs(c) > 1e-8)
        lines.append(f"  {names[j]} = {combo or '0'}")
    raise RankDeficientError(
        f"the fixed-effects design X is rank deficient: rank of X = {rank} < ncol(X) = {p}.\n"
        f"Aliased columns (each a combination of the columns kept):\n" + "\n".join(lines) +
        "\nRemove them from the formula (or fix the data) and fit again.",
        aliased,
    )


def check_finite(what: str, names: list[str], values: np.ndarray) -> None:
    """Raise naming the columns of ``values`` (n x len(names)) with inf or NaN entries: they
    come from the data (inf) or from a transformation such as ``np.log(0)``."""
    values = np.asarray(values, dtype=float).reshape(len(values), -1)
    bad = ~np.isfinite(values)
    if bad.any():
        cols = {names[j]: int(bad[:, j].sum()) for j in np.flatnonzero(bad.any(axis=0))}
        raise ValueError(f"non-finite values (inf or NaN) in {what} {cols} (rows per column); "
                         "they come from the data or from a transformation such as np.log(0). "
                         "Drop or fix those rows, or change the transformation.")


def check_response(data: pd.DataFrame, response: str) -> None:
    """A response that names a column must be numeric (or boolean)."""
    name = response.strip().strip("`")
    if name in data.columns:
        dt = data[name].dtype
        if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt)):
            raise TypeError(
                f"the response '{name}' must be numeric, but its dtype is {dt}. "
                f"Convert it first, e.g. data['{name}'] = pd.to_numeric(data['{name}'])."
            )


def missing_rows(data: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Boolean mask of rows with a missing value in any of ``columns`` and counts per column."""
    if not columns:
        return np.zeros(len(data), dtype=bool), {}
    na = data[columns].isna()
    counts = {c: int(v) for c, v in na.sum().items() if v}
    return na.any(axis=1).to_numpy(), counts
