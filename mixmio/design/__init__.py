"""The design stage: FormulaSpec + DataFrame -> :class:`Design` (y, X, sparse Z, blocks).

Z is built term by term.  Within a term with ``q`` columns and ``K`` levels, column ``j`` of
the term and level ``l`` is Z column ``start + j * K + l``: every term column (the unit an ℓ0
cap applies to) is one contiguous block of K columns.

>>> import pandas as pd
>>> from mixmio.datasets import load
>>> d = build_design("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
>>> d.Z.shape, [b.labels for b in d.blocks]
((180, 36), [['1|Subject', 'Days|Subject']])
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mixmio._checks import as_frame, check_choice, dtype_class
from mixmio._runtime import user_stacklevel
from mixmio.design._checks import (
    RankDeficientError,
    check_columns,
    check_finite,
    check_rank,
    check_response,
    missing_rows,
)
from mixmio.design._grouping import grouping_codes, level_keys, map_codes
from mixmio.design._materialize import (
    bare_variables,
    evaluate_offset,
    materialize,
    required_columns,
)
from mixmio.errors import ColumnNotFoundError, DataError, DataTypeError
from mixmio.formula import FormulaSpec, RandomTerm, parse_formula

__all__ = ["Design", "NewDesign", "RandomBlock", "RankDeficientError", "build_design"]


@dataclass(frozen=True, eq=False)
class RandomBlock:
    """One random-effects term of a design.

    ``codes`` holds every row's level (integer, so the incidence A is implicit); ``values``
    the term's own columns (n x q); ``labels`` the cap keys of its columns (``1|school``,
    ``x1|school``); ``z_slice`` its columns of Z.

    Examples
    --------
    >>> import mixmio
    >>> d = mixmio.build_design("Reaction ~ Days + (Days | Subject)",
    ...                         mixmio.datasets.load("sleepstudy"))
    >>> b = d.blocks[0]
    >>> b.group, b.columns, b.labels, b.z_slice
    ('Subject', ['Intercept', 'Days'], ['1|Subject', 'Days|Subject'], slice(0, 36, None))
    """

    term: RandomTerm
    group: str
    levels: pd.Index
    codes: np.ndarray
    columns: list[str]
    labels: list[str]
    values: np.ndarray
    z_slice: slice
    model_spec: object = field(repr=False, default=None)

    @property
    def label(self) -> str:
        """The term's label, ``expr|group``.

        Examples
        --------
        >>> import mixmio
        >>> d = mixmio.build_design("Reaction ~ Days + (Days | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> b = d.blocks[0]
        >>> b.label
        'Days|Subject'
        """
        return f"{self.term.expr}|{self.group}"

    @property
    def n_levels(self) -> int:
        """Number of levels (clusters) of the grouping factor.

        Examples
        --------
        >>> import mixmio
        >>> d = mixmio.build_design("Reaction ~ Days + (Days | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> b = d.blocks[0]
        >>> b.n_levels
        18
        """
        return len(self.levels)

    @property
    def q(self) -> int:
        """Number of the term's own columns (intercept and slopes).

        Examples
        --------
        >>> import mixmio
        >>> d = mixmio.build_design("Reaction ~ Days + (Days | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> b = d.blocks[0]
        >>> b.q
        2
        """
        return len(self.columns)

    def column_slice(self, j: int) -> slice:
        """Z columns of term column ``j`` (all levels).

        Examples
        --------
        >>> import mixmio
        >>> d = mixmio.build_design("Reaction ~ Days + (Days | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> b = d.blocks[0]
        >>> b.column_slice(1)
        slice(18, 36, None)
        """
        start = self.z_slice.start + j * self.n_levels
        return slice(start, start + self.n_levels)

    def cluster_sizes(self) -> np.ndarray:
        """Number of rows of every level, in level order.

        Examples
        --------
        >>> import mixmio
        >>> d = mixmio.build_design("Reaction ~ Days + (Days | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> b = d.blocks[0]
        >>> b.cluster_sizes()[:3].tolist()
        [10, 10, 10]
        """
        return np.bincount(self.codes, minlength=self.n_levels)


@dataclass(frozen=True, eq=False)
class NewDesign:
    """X and Z for new rows, with the levels that training never saw.

    ``unseen`` maps a grouping factor to its new levels, ``unseen_rows`` to a boolean mask of
    the rows holding them.  ``complete`` is the mask of newdata's rows that X, Z and the
    other arrays describe (all rows unless :meth:`Design.transform` was asked to skip rows
    with missing values).  Per random block (in ``Design.blocks`` order), ``codes`` holds
    every row's training level code (-1: unseen) and ``term_values`` the term's own columns;
    ``level_keys`` maps a grouping factor to every row's level label.  Made by
    :meth:`Design.transform`.

    Examples
    --------
    >>> import warnings, mixmio
    >>> data = mixmio.datasets.load("sleepstudy")
    >>> d = mixmio.build_design("Reaction ~ Days + (1 | Subject)", data)
    >>> new = data.head(2).assign(Subject=[308, 999])
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     nd = d.transform(new)
    >>> nd.unseen, nd.unseen_rows["Subject"].tolist()
    ({'Subject': ['999']}, [False, True])
    >>> nd.codes[0].tolist(), nd.level_keys["Subject"].tolist()
    ([0, -1], ['308', '999'])
    """

    X: pd.DataFrame
    Z: sp.csc_matrix
    offset: np.ndarray
    unseen: dict[str, list[str]]
    unseen_rows: dict[str, np.ndarray]
    complete: np.ndarray | None = None
    codes: tuple[np.ndarray, ...] = ()
    term_values: tuple[np.ndarray, ...] = ()
    level_keys: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Design:
    """Everything later stages need, as arrays and labels.

    Attributes: ``y`` (float array), ``X`` (DataFrame, formulaic column names), ``Z``
    (sparse CSC), ``z_columns`` (group, level, term of every Z column), ``blocks`` (one
    :class:`RandomBlock` per random term), ``offset``, ``n_dropped`` and ``dropped_rows``
    (index labels of rows removed for missing values), ``na_action`` (as given to
    :func:`build_design`) and ``data`` (the training rows used, every column of the data, for
    cluster-level features at prediction; a copy-on-write view, so later edits of the
    caller's frame do not reach it).  Built by :func:`build_design`.

    Examples
    --------
    >>> import mixmio
    >>> d = mixmio.build_design("Reaction ~ Days + (Days | Subject)",
    ...                         mixmio.datasets.load("sleepstudy"))
    >>> d
    Design(n=180, p=2, random_columns=36, terms=['Days|Subject'])
    >>> list(d.X.columns), d.Z.shape, d.column_labels
    (['Intercept', 'Days'], (180, 36), ['1|Subject', 'Days|Subject'])
    """

    spec: FormulaSpec
    y: np.ndarray
    X: pd.DataFrame
    Z: sp.csc_matrix
    blocks: tuple[RandomBlock, ...]
    offset: np.ndarray
    n_dropped: int
    dropped_rows: pd.Index
    row_index: pd.Index
    na_counts: dict[str, int]
    model_spec: object = field(repr=False, default=None)
    column_dtypes: dict[str, object] = field(repr=False, default_factory=dict)
    na_action: str = "drop"
    data: pd.DataFrame | None = field(repr=False, default=None)

    @property
    def formula(self) -> str:
        """The formula text the design was built from.

        Examples
        --------
        >>> import mixmio
        >>> d = mixmio.build_design("Reaction ~ Days + (1 | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> d.formula
        'Reaction ~ Days + (1 | Subject)'
        """
        return self.spec.formula

    @property
    def n_obs(self) -> int:
        """Number of rows used (after dropping rows with missing values).

        Examples
        --------
        >>> import mixmio
        >>> d = mixmio.build_design("Reaction ~ Days + (1 | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> d.n_obs
        180
        """
        return len(self.y)

    @property
    def z_columns(self) -> pd.DataFrame:
        """One row per Z column: ``group``, ``level``, ``term`` (the term column) and
        ``label`` (its cap key).

        Examples
        --------
        >>> import mixmio
        >>> d = mixmio.build_design("Reaction ~ Days + (Days | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> d.z_columns.shape
        (36, 4)
        >>> d.z_columns.iloc[0].tolist()
        ['Subject', '308', 'Intercept', '1|Subject']
        """
        parts = []
        for b in self.blocks:
            for j, col in enumerate(b.columns):
                parts.append(pd.DataFrame({
                    "group": b.group, "level": b.levels.to_numpy(dtype=object),
                    "term": col, "label": b.labels[j]}))
        if not parts:
            return pd.DataFrame(columns=["group", "level", "term", "label"])
        return pd.concat(parts, ignore_index=True)

    @property
    def column_labels(self) -> list[str]:
        """Cap keys of every random-effect column, in order (``1|school``, ...).

        Examples
        --------
        >>> import mixmio
        >>> d = mixmio.build_design("Reaction ~ Days + (Days | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> d.column_labels
        ['1|Subject', 'Days|Subject']
        """
        return [lab for b in self.blocks for lab in b.labels]

    def block_of(self, label: str) -> tuple[RandomBlock, int]:
        """The random block holding the random-effect column ``label`` (a cap key such as
        ``"x|school"``) and the column's position within the block.

        Raises ``KeyError`` (listing the column labels) when no column has that label.

        Examples
        --------
        >>> import mixmio
        >>> d = mixmio.build_design("Reaction ~ Days + (Days | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> block, j = d.block_of("Days|Subject")
        >>> block.group, j, block.column_slice(j)
        ('Subject', 1, slice(18, 36, None))
        """
        for b in self.blocks:
            if label in b.labels:
                return b, b.labels.index(label)
        raise KeyError(
            f"'{label}' names no random-effect column; the columns are {self.column_labels}")

    def transform(self, newdata: pd.DataFrame, *, missing: str = "raise",
                  warn_unseen: bool = True) -> NewDesign:
        """Build X and Z for new rows with the training columns and levels.

        Rows whose level of a grouping factor was not seen in training get no Z entries for
        that factor; they are reported in ``unseen`` / ``unseen_rows`` (and with a warning
        unless ``warn_unseen=False``).

        ``missing="raise"`` refuses rows with a missing value in a variable the formula uses
        (naming the columns); ``missing="skip"`` leaves them out: X, Z and the per-row arrays
        then describe only the rows of ``complete`` (a mask over newdata's rows).

        Examples
        --------
        >>> import numpy as np, mixmio
        >>> data = mixmio.datasets.load("sleepstudy")
        >>> d = mixmio.build_design("Reaction ~ Days + (1 | Subject)", data)
        >>> nd = d.transform(data.head(3))
        >>> nd.X.shape, nd.Z.shape, nd.unseen
        ((3, 2), (3, 18), {})
        >>> nd = d.transform(data.head(3).assign(Days=[0, np.nan, 2]), missing="skip")
        >>> nd.X.shape, nd.complete.tolist()
        ((2, 2), [True, False, True])
        """
        check_choice("missing", missing, ("raise", "skip"))
        newdata = as_frame(newdata, "newdata")
        cols = required_columns(self.spec, response=False)
        missing_cols = [c for c in cols if c not in newdata.columns]
        if missing_cols:
            raise ColumnNotFoundError(
                f"newdata lacks the column(s) {missing_cols} used by the formula")
        self._check_new_dtypes(newdata, cols)
        mask, counts = missing_rows(newdata, cols)
        if mask.any():
            if missing == "raise":
                raise DataError(f"newdata has missing values in {counts}; drop or impute those "
                                "rows first.")
            newdata = newdata.loc[~mask]
        complete = ~mask
        if len(newdata) == 0:  # every row has a missing value: nothing to encode
            return NewDesign(
                pd.DataFrame(np.zeros((0, self.X.shape[1])), columns=self.X.columns),
                sp.csc_matrix((0, self.Z.shape[1])), np.zeros(0), {}, {}, complete,
                tuple(np.zeros(0, dtype=np.int64) for _ in self.blocks),
                tuple(np.zeros((0, b.q)) for b in self.blocks),
                {b.group: np.zeros(0, dtype=object) for b in self.blocks})
        X = materialize(self.model_spec, newdata, "fixed part")
        check_finite("the fixed-effects columns of newdata", list(X.columns),
                     X.to_numpy(dtype=float))
        blocks_Z, codes_all, values_all = [], [], []
        unseen: dict[str, list[str]] = {}
        unseen_rows: dict[str, np.ndarray] = {}
        keys_of: dict[str, np.ndarray] = {}
        for b in self.blocks:
            values = _term_values(b.term, newdata, b.model_spec)[0]
            check_finite(f"the columns of random term ({b.term}) in newdata", list(b.columns),
                         values)
            if b.group not in keys_of:
                keys_of[b.group] = level_keys(newdata, b.term.group)
            codes, new_levels = map_codes(keys_of[b.group], b.levels)
            if new_levels:
                unseen[b.group] = new_levels
                unseen_rows[b.group] = codes < 0
            blocks_Z.append(term_z(values, codes, b.n_levels))
            codes_all.append(codes)
            values_all.append(values)
        if unseen and warn_unseen:
            desc = "; ".join(f"{g}: {len(v)} level(s) e.g. {v[:3]}" for g, v in unseen.items())
            warnings.warn(f"levels not seen in training ({desc}); their random effects are "
                          "taken as zero (population level)", stacklevel=user_stacklevel())
        return NewDesign(X, _stack_z(blocks_Z, len(newdata)),
                         _offset(self.spec, newdata, "newdata"), unseen, unseen_rows,
                         complete, tuple(codes_all), tuple(values_all), keys_of)

    def _check_new_dtypes(self, newdata: pd.DataFrame, cols: list[str]) -> None:
        """A column of newdata must be encoded as in training: a number stays a number, a
        factor a factor (grouping factors match levels by label, so only their containers
        are checked)."""
        groups = {v for b in self.blocks for v in b.term.group_vars}
        check_columns(newdata, cols, groups, set())
        for c in cols:
            old = self.column_dtypes.get(c)
            if old is None or c in groups:
                continue
            new = newdata[c].dtype
            if dtype_class(new) != dtype_class(old):
                raise DataTypeError(
                    f"column '{c}' of newdata has dtype {new}, but the model was trained with "
                    f"dtype {old}; convert it to the training dtype first, e.g. "
                    f"newdata['{c}'] = newdata['{c}'].astype('{old}')")

    def describe(self) -> str:
        """A plain-text description of the design (sizes, terms, clusters).

        Examples
        --------
        >>> import mixmio
        >>> d = mixmio.build_design("Reaction ~ Days + (1 | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> print(d.describe().splitlines()[1])
        Observations: 180
        """
        from mixmio.design._describe import describe

        return describe(self)

    def __repr__(self) -> str:
        return (f"Design(n={self.n_obs}, p={self.X.shape[1]}, random_columns={self.Z.shape[1]}, "
                f"terms={[b.label for b in self.blocks]})")


def build_design(formula: str | FormulaSpec, data: pd.DataFrame, na_action: str = "drop"
                 ) -> Design:
    """Build y, X, sparse Z and the random-effect blocks of an lme4 formula.

    ``na_action="drop"`` removes rows with a missing value in any variable the formula uses
    and records them (``n_dropped``, ``dropped_rows``); ``"raise"`` refuses such data and
    names the columns.

    Parameters
    ----------
    formula : lme4 formula text (``"y ~ x + (1 + x | school)"``) or a parsed
        :class:`~mixmio.formula.FormulaSpec`.
    data : DataFrame (or dict of named columns) with the variables.
    na_action : ``"drop"`` or ``"raise"``.

    Returns
    -------
    Design

    Examples
    --------
    >>> import numpy as np, mixmio
    >>> data = mixmio.datasets.load("sleepstudy")
    >>> data.loc[[0, 5], "Days"] = np.nan
    >>> d = mixmio.build_design("Reaction ~ Days + (1 | Subject)", data)
    >>> d.n_obs, d.n_dropped, list(d.dropped_rows)
    (178, 2, [0, 5])
    >>> d.Z.shape
    (178, 18)
    """
    spec = formula if isinstance(formula, FormulaSpec) else parse_formula(formula)
    data = as_frame(data)
    check_choice("na_action", na_action, ("drop", "raise"))
    data, mask, counts, dropped, dtypes = _checked_rows(spec, data, na_action)
    y, X = _fixed_part(spec, data)
    blocks, z_parts = _random_blocks(spec, data)
    Z = _stack_z(z_parts, len(y))
    offset = _offset(spec, data, "data")
    return Design(spec, y, X, Z, tuple(blocks), offset,
                  int(mask.sum()), dropped, data.index, counts, X.model_spec, dtypes,
                  na_action, data.copy(deep=False))


def _checked_rows(spec: FormulaSpec, data: pd.DataFrame, na_action: str):
    """The columns :func:`build_design` needs, checked, and the rows it keeps: (data without
    the rows with a missing value, the mask of those rows, the missing counts per column,
    their index, the columns' dtypes)."""
    cols = required_columns(spec)
    unknown = [c for c in cols if c not in data.columns]
    if unknown:
        raise ColumnNotFoundError(_unknown_message(unknown, data.columns, spec.formula))
    check_response(data, spec.response)
    groups = {v for t in spec.random for v in t.group_vars}
    dtypes = check_columns(data, cols, groups, bare_variables(spec))
    mask, counts = missing_rows(data, cols)
    dropped = data.index[mask]
    if mask.any():
        if na_action == "raise":
            raise DataError(
                f"missing values in {counts} ({int(mask.sum())} rows); pass na_action='drop' to "
                "drop those rows, or impute them first.")
        data = data.loc[~mask]
    if len(data) == 0:
        raise DataError("no rows left to fit after dropping rows with missing values"
                        if mask.any() else "the data has no rows")
    if len(data) == 1:
        raise DataError("the data has a single row"
                        + (f" left after dropping {int(mask.sum())} with missing values"
                           if mask.any() else "")
                        + ": a model needs at least 2 rows (and more rows than coefficients)")
    return data, mask, counts, dropped, dtypes


def _fixed_part(spec: FormulaSpec, data: pd.DataFrame):
    """(y, X) of the fixed-effects formula, checked (one finite response column, finite
    columns, no empty term, full rank)."""
    mm = materialize(spec.fixed_formula, data, "formula")
    lhs, X = mm.lhs, mm.rhs
    if lhs.shape[1] != 1:
        raise TypeError(f"the response '{spec.response}' must give one numeric column, "
                        f"got {list(lhs.columns)}")
    y = np.asarray(lhs.iloc[:, 0], dtype=float)
    check_finite("the response", [spec.response], y)
    check_finite("the fixed-effects columns", list(X.columns), X.to_numpy(dtype=float))
    _check_empty_terms(X, data)
    check_rank(X)
    return y, X


def _random_blocks(spec: FormulaSpec, data: pd.DataFrame):
    """The RandomBlock of every random term and its Z columns (one sparse block each)."""
    blocks = []
    z_parts = []
    start = 0
    seen: dict[str, str] = {}
    for term in spec.random:
        values, columns, term_spec = _term_values(term, data, None)
        check_finite(f"the columns of random term ({term})", list(columns), values)
        codes, levels = grouping_codes(data, term.group)
        group = ":".join(term.group_vars)  # backticks removed: `my group` -> my group
        labels = [f"{'1' if c == 'Intercept' else c}|{group}" for c in columns]
        for lab in labels:
            if lab in seen:
                raise ValueError(f"random-effect column '{lab}' appears in two terms "
                                 f"('{seen[lab]}' and '{term}'); keep it in one")
            seen[lab] = str(term)
        width = len(columns) * len(levels)
        blocks.append(RandomBlock(term, group, levels, codes, columns, labels, values,
                                  slice(start, start + width), term_spec))
        z_parts.append(term_z(values, codes, len(levels)))
        start += width
    return blocks, z_parts


def _check_empty_terms(X: pd.DataFrame, data: pd.DataFrame) -> None:
    """A fixed-effect term that encodes to no column (a factor with one level) is refused,
    as lme4 does, instead of vanishing from the model."""
    ms = getattr(X, "model_spec", None)
    empty = [str(t) for t, idx in getattr(ms, "term_indices", {}).items()
             if len(idx) == 0 and str(t) not in ("1", "0")]
    if empty:
        detail = []
        for t in empty:
            col = t.strip("`")
            if col in data.columns:
                detail.append(f"'{t}' (its only level is {data[col].iloc[0]!r})")
            else:
                detail.append(f"'{t}'")
        raise ValueError(f"fixed-effect term(s) {', '.join(detail)} give no column: a factor "
                         "needs at least 2 levels (lme4: 'contrasts can be applied only to "
                         "factors with 2 or more levels'). Remove the term from the formula.")



def _term_values(term: RandomTerm, data: pd.DataFrame, spec) -> tuple[np.ndarray, list, object]:
    if term.expr.strip() == "1":
        return np.ones((len(data), 1)), ["Intercept"], None
    mm = materialize(spec if spec is not None else term.expr, data, f"random term ({term})")
    if mm.shape[1] == 0:
        raise ValueError(f"random term ({term}) has no columns")
    return mm.to_numpy(dtype=float), list(mm.columns), mm.model_spec


def _stack_z(parts: list[sp.csc_matrix], n: int) -> sp.csc_matrix:
    return sp.hstack(parts, format="csc") if parts else sp.csc_matrix((n, 0))


def _offset(spec: FormulaSpec, data: pd.DataFrame, where: str) -> np.ndarray:
    """Sum of the formula's ``offset(...)`` terms on ``data`` (zeros without any)."""
    offset = sum((evaluate_offset(e, data) for e in spec.offsets), np.zeros(len(data)))
    offset = np.asarray(offset, dtype=float)
    check_finite(f"the offset in {where}", ["offset"], offset)
    return offset


def term_z(values: np.ndarray, codes: np.ndarray, n_levels: int) -> sp.csc_matrix:
    n, q = values.shape
    ok = codes >= 0
    rows = np.tile(np.nonzero(ok)[0], q)
    cols = np.concatenate([codes[ok] + j * n_levels for j in range(q)])
    vals = values[ok].T.ravel()
    keep = vals != 0
    return sp.csc_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, q * n_levels))


def _unknown_message(unknown: list[str], columns, formula: str) -> str:
    import difflib

    hints = []
    for u in unknown:
        close = difflib.get_close_matches(u, [str(c) for c in columns], n=2)
        hints.append(f"'{u}'" + (f" (did you mean {' or '.join(repr(c) for c in close)}?)"
                                 if close else ""))
    return (f"the formula uses variable(s) not in the data: {', '.join(hints)}.\n"
            f"    formula: {formula}")
