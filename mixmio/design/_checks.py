"""Checks on a design before any fitting: rank of X, response type, missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg as la

from mixmio._checks import dtype_class
from mixmio.errors import (
    DataError,
    DataTypeError,
    RankDeficientError,  # noqa: F401  (defined in mixmio.errors)
)


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
        raise DataError(f"non-finite values (inf or NaN) in {what} {cols} (rows per column); "
                         "they come from the data or from a transformation such as np.log(0). "
                         "Drop or fix those rows, or change the transformation.")


def check_response(data: pd.DataFrame, response: str) -> None:
    """A response that names a column must be numeric (or boolean)."""
    name = response.strip().strip("`")
    if name in data.columns:
        dt = data[name].dtype
        if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt)):
            raise DataTypeError(
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


def _unhashable(series: pd.Series):
    """Index label and type of the first cell of an object column that is unhashable (a
    list, dict, set or array in a cell), or None."""
    if series.dtype != object:
        return None
    try:
        pd.unique(series)  # hashes every cell in C; only a failure needs the row
        return None
    except TypeError:
        pass
    for label, v in series.items():
        try:
            hash(v)
        except TypeError:
            return label, type(v).__name__
    return None


def _numbers_as_object(series: pd.Series) -> bool:
    """An object column whose non-missing cells are all numbers (not bools)."""
    return series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in (
        "integer", "floating", "mixed-integer-float", "decimal")


def check_columns(data: pd.DataFrame, columns: list[str], groups: set[str],
                  bare: set[str]) -> dict[str, object]:
    """Refuse columns a formula cannot use, naming them; return every column's dtype.

    ``groups`` are the grouping factors (any hashable values are levels, datetimes
    included); ``bare`` the variables used as they are (not inside ``C()`` or a function),
    which must not be numbers stored as ``object`` (formulaic would make one dummy per
    value).  Complex columns are refused everywhere, datetime and timedelta columns except
    as grouping factors, and unhashable cells (a list in a cell) everywhere.
    """
    dtypes = {}
    for c in columns:
        s = data[c]  # one column: as_frame refuses duplicate names
        kind = dtype_class(s.dtype)
        dtypes[c] = s.dtype
        if kind == "complex":
            raise DataTypeError(f"column '{c}' is complex ({s.dtype}); a model matrix is real. "
                                f"Use its real part (np.real) or modulus (np.abs) explicitly.")
        if kind in ("datetime", "timedelta") and c not in groups:
            raise DataTypeError(
                f"column '{c}' has dtype {s.dtype}, which a formula cannot use as a number or "
                "a factor. Convert it first: e.g. (data['{c}'] - data['{c}'].min()) / "
                "pd.Timedelta(days=1) for days elapsed, or .astype(str) for a factor."
                .replace("{c}", c))
        bad = _unhashable(s)
        if bad is not None:
            raise DataTypeError(f"column '{c}' holds a {bad[1]} in row {bad[0]!r}: cells must be "
                                "single values (numbers or labels), not containers")
        if c in bare and c not in groups and _numbers_as_object(s):
            raise DataTypeError(
                f"column '{c}' has dtype object but holds numbers (often after a NaN or a "
                f"stray value in a CSV); used as it is it would become a factor with one "
                f"dummy per value. Convert it: data['{c}'] = pd.to_numeric(data['{c}']), or "
                f"write C({c}) in the formula to use it as a factor.")
    return dtypes
