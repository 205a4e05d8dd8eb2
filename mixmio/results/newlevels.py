"""Cluster effects for levels not seen in training (``MioLmerResult.predict(new_levels=...)``).

Three rules besides the population line (zero effect):

- ``"soft"``: a classification tree trained on the training rows' covariates (the
  fixed-effects design columns, intercept excluded) predicts a row's training cluster; a new
  row gets ``sum_c pi_c(x) z(x)' gamma_c`` with ``pi(x)`` the tree's class probabilities.
- ``"hard"``: the effect of the tree's most probable cluster (the first one on ties).
- ``"features"``: a regression tree from cluster-level features to the cluster's estimated
  effects (one output per term column), trained on the training clusters.

The classification tree depends on the design only (not on the fitted effects), so it is
cached per ``(design, grouping factor, depth, random_state)``: the fits of a path over k that
share one design train it once.

>>> import mixmio
>>> d = mixmio.build_design("Reaction ~ Days + (1 | Subject)",
...                         mixmio.datasets.load("sleepstudy"))
>>> P = cluster_probabilities(d, "Subject", d.X.head(2))
>>> P.shape, P.sum(axis=1).round(6).tolist()
((2, 18), [1.0, 1.0])
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from weakref import WeakKeyDictionary

import numpy as np
import pandas as pd

from mixmio._checks import check_choice, check_int
from mixmio._runtime import require
from mixmio.errors import ArgumentError, ColumnNotFoundError, DataError

__all__ = ["MODES", "check_cluster_features", "check_tree_args", "cluster_probabilities",
           "cluster_tree", "feature_effects", "leaf_probabilities", "numeric_columns"]

MODES = ("population", "soft", "hard", "features", "error")

_TREES: WeakKeyDictionary = WeakKeyDictionary()  # design -> {(group, depth, seed): tree}
_LOCK = threading.Lock()


# -- checks ----------------------------------------------------------------------------------
def check_mode(new_levels) -> str:
    """``None`` (population, with a warning) or one of :data:`MODES`."""
    if new_levels is None:
        return "population"
    check_choice("new_levels", new_levels, MODES)
    return new_levels


def check_tree_args(max_depth, random_state) -> None:
    """``max_depth``: None (ceil(log2 K)) or an int >= 1; ``random_state``: None or an int
    >= 0 (the trees' tie-breaking seed)."""
    check_int("max_depth", max_depth, lo=1, none_ok=True)
    check_int("random_state (of the new-level trees)", random_state, lo=0, none_ok=True)


def default_depth(n_levels: int) -> int:
    """ceil(log2 K), at least 1: deep enough to give every cluster a leaf of its own."""
    return max(1, math.ceil(math.log2(max(n_levels, 2))))


def covariates(design) -> list[str]:
    """The fixed-effects design columns the trees use: all but the intercept."""
    return [c for c in design.X.columns if c != "Intercept"]


def numeric_columns(design) -> list[str]:
    """Fixed-effects design columns built from numeric variables only (not the intercept,
    not a factor's dummy columns nor their interactions).

    >>> import mixmio
    >>> data = mixmio.datasets.load("sleepstudy").assign(
    ...     late=lambda d: (d.Days > 4).map({True: "yes", False: "no"}))
    >>> d = mixmio.build_design("Reaction ~ Days + late + (1 | Subject)", data)
    >>> list(d.X.columns), numeric_columns(d)
    (['Intercept', 'Days', 'late[T.yes]'], ['Days'])
    """
    ms = design.model_spec
    state = getattr(ms, "encoder_state", None) or {}
    categorical = {name for name, (kind, _) in state.items()
                   if getattr(kind, "value", kind) == "categorical"}
    structure = getattr(ms, "structure", None)
    if structure is None:
        return covariates(design)
    out = []
    for s in structure:
        factors = [str(f.expr) if hasattr(f, "expr") else str(f)
                   for f in getattr(s.term, "factors", ())]
        if str(s.term) == "1" or any(f in categorical for f in factors):
            continue
        out += [c for c in s.columns if c != "Intercept"]
    return out


def check_cluster_features(design, cluster_features, groups: Sequence[str],
                           newdata: pd.DataFrame) -> dict[str, list[str]]:
    """``cluster_features`` as ``{grouping factor: columns}``: a list applies to every factor
    in ``groups``; every column must be in the training data and in ``newdata`` and be
    constant within every training cluster of its factor."""
    if isinstance(cluster_features, str):
        cluster_features = [cluster_features]
    if isinstance(cluster_features, Mapping):
        unknown = [g for g in cluster_features if g not in groups]
        if unknown:
            raise ArgumentError(f"cluster_features names grouping factor(s) {unknown}; the "
                                f"model's grouping factors are {list(groups)}")
        spec = {g: list(cluster_features.get(g, ())) for g in groups}
    else:
        spec = {g: list(cluster_features) for g in groups}
    train = design.data
    for g, cols in spec.items():
        if not cols:
            continue
        if train is None:
            raise DataError("this design keeps no training data, so cluster_features cannot "
                            "be read for the training clusters; rebuild it with build_design")
        for c in cols:
            if c not in train.columns:
                raise ColumnNotFoundError(f"cluster_features column '{c}' is not a column of "
                                          "the training data")
            if c not in newdata.columns:
                raise ColumnNotFoundError(f"cluster_features column '{c}' is not a column of "
                                          "newdata; add it (its value for every new cluster)")
        block = next(b for b in design.blocks if b.group == g)
        _check_constant(train[cols], block.codes, block.levels, g, "the training data")
    return spec


def _check_constant(frame: pd.DataFrame, codes, levels, group: str, where: str) -> None:
    """Every column of ``frame`` must take one value (NaN counts as one) per cluster."""
    for c in frame.columns:
        n = frame[c].groupby(np.asarray(codes)).nunique(dropna=False)
        bad = n.index[n.to_numpy() > 1]
        if len(bad):
            lev = levels[bad[0]] if levels is not None else bad[0]
            raise DataError(f"cluster_features column '{c}' varies within cluster '{lev}' of "
                            f"'{group}' in {where}; a cluster-level feature must be constant "
                            "within every cluster (aggregate it per cluster first, e.g. its "
                            "cluster mean)")


# -- the classification tree ("soft", "hard") ------------------------------------------------
def _tree_inputs(design, newX) -> np.ndarray:
    cols = covariates(design)
    if isinstance(newX, pd.DataFrame):
        missing = [c for c in cols if c not in newX.columns]
        if missing:
            raise ColumnNotFoundError(f"newX lacks the fixed-effects column(s) {missing}")
        arr = newX[cols].to_numpy(dtype=float)
    else:
        arr = np.asarray(newX, dtype=float)
        if arr.ndim != 2 or arr.shape[1] not in (len(cols), design.X.shape[1]):
            raise ArgumentError(f"newX must have the {len(cols)} covariate columns {cols} "
                                f"(or all {design.X.shape[1]} fixed-effects columns), got "
                                f"shape {arr.shape}")
        if arr.shape[1] != len(cols):
            keep = [j for j, c in enumerate(design.X.columns) if c != "Intercept"]
            arr = arr[:, keep]
    # no covariate (y ~ 1 + ...): one constant column, so the tree is its root and pi the
    # clusters' shares of the training rows
    return arr if arr.shape[1] else np.zeros((arr.shape[0], 1))


def cluster_tree(design, group: str, max_depth: int | None = None,
                 random_state: int | None = 0):
    """The ``DecisionTreeClassifier`` predicting a training row's cluster of ``group`` from
    its covariates, trained once per ``(design, group, depth, random_state)``.

    >>> import mixmio
    >>> d = mixmio.build_design("Reaction ~ Days + (1 | Subject)",
    ...                         mixmio.datasets.load("sleepstudy"))
    >>> cluster_tree(d, "Subject") is cluster_tree(d, "Subject")
    True
    """
    DecisionTreeClassifier = require(  # noqa: N806
        "sklearn.tree", "predict(new_levels='soft' | 'hard')").DecisionTreeClassifier

    check_tree_args(max_depth, random_state)
    block = next((b for b in design.blocks if b.group == group), None)
    if block is None:
        raise ArgumentError(f"'{group}' is not a grouping factor of the design; they are "
                            f"{sorted({b.group for b in design.blocks})}")
    depth = default_depth(block.n_levels) if max_depth is None else int(max_depth)
    key = (group, depth, random_state)
    with _LOCK:
        cache = _TREES.setdefault(design, {})
        tree = cache.get(key)
    if tree is None:
        X = _tree_inputs(design, design.X)
        tree = DecisionTreeClassifier(max_depth=depth, random_state=random_state)
        tree.fit(X, block.codes)
        with _LOCK:
            tree = cache.setdefault(key, tree)
    return tree


def cluster_probabilities(design, group: str, newX, max_depth: int | None = None,
                          random_state: int | None = 0) -> np.ndarray:
    """Class probabilities pi(x), ``(n_new, K)`` in the design's level order, of the cached
    :func:`cluster_tree` of ``group`` for new rows.

    ``newX``: the rows' fixed-effects design columns, a DataFrame with the design's column
    names (``design.transform(newdata).X``; the intercept may be there or not) or an array
    with all of ``design.X``'s columns or all but the intercept.

    >>> import mixmio
    >>> d = mixmio.build_design("Reaction ~ Days + (1 | Subject)",
    ...                         mixmio.datasets.load("sleepstudy"))
    >>> cluster_probabilities(d, "Subject", d.X.head(1)).shape
    (1, 18)
    """
    tree = cluster_tree(design, group, max_depth, random_state)
    K = next(b for b in design.blocks if b.group == group).n_levels
    X = _tree_inputs(design, newX)
    out = np.zeros((X.shape[0], K))
    if X.shape[0]:
        out[:, tree.classes_] = tree.predict_proba(X)
    return out


def leaf_probabilities(design, group: str, newX, max_depth: int | None = None,
                       random_state: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """pi(x) factored through the tree's leaves: ``(inverse, Pleaf)`` with ``Pleaf`` the
    class probabilities of the distinct leaves the rows fall in (``(n_leaves, K)``) and
    ``inverse`` each row's leaf, so that ``Pleaf[inverse]`` equals
    :func:`cluster_probabilities` (computing ``Pleaf @ Gamma`` first costs O(n_leaves K)
    instead of O(n_new K)).

    >>> import mixmio, numpy as np
    >>> d = mixmio.build_design("Reaction ~ Days + (1 | Subject)",
    ...                         mixmio.datasets.load("sleepstudy"))
    >>> inv, P = leaf_probabilities(d, "Subject", d.X.head(3))
    >>> np.allclose(P[inv], cluster_probabilities(d, "Subject", d.X.head(3)))
    True
    """
    tree = cluster_tree(design, group, max_depth, random_state)
    K = next(b for b in design.blocks if b.group == group).n_levels
    X = _tree_inputs(design, newX)
    if not X.shape[0]:
        return np.zeros(0, dtype=int), np.zeros((0, K))
    leaves, inverse = np.unique(tree.apply(X.astype(np.float32)), return_inverse=True)
    vals = tree.tree_.value[leaves, 0, :]
    out = np.zeros((leaves.size, K))
    out[:, tree.classes_] = vals / vals.sum(axis=1, keepdims=True)
    return inverse.ravel(), out


# -- the regression tree ("features") --------------------------------------------------------
def _encode(frame: pd.DataFrame, categories: dict[str, list]) -> np.ndarray:
    """Numeric and bool columns as they are; other columns one-hot on the training values
    (a value training never had gives all zeros)."""
    parts = []
    for c in frame.columns:
        if c in categories:
            v = frame[c].to_numpy(dtype=object)
            parts.append(np.column_stack([v == cat for cat in categories[c]]).astype(float)
                         if categories[c] else np.zeros((len(frame), 0)))
        else:
            parts.append(frame[[c]].to_numpy(dtype=float))
    return np.hstack(parts) if parts else np.zeros((len(frame), 0))


def _categories(frame: pd.DataFrame) -> dict[str, list]:
    out = {}
    for c in frame.columns:
        s = frame[c]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            out[c] = sorted(pd.unique(s.dropna()).tolist(), key=str)
    return out


def feature_effects(design, gamma_targets: np.ndarray, group: str, nd, rows: np.ndarray,
                    newdata: pd.DataFrame, cols: list[str] | None,
                    max_depth: int | None, random_state: int | None):
    """Predicted effects of the new clusters of ``group`` (one row per new row in ``rows``;
    columns as ``gamma_targets``, K x outputs) and the fitted ``DecisionTreeRegressor``.

    Features: the ``cols`` columns (constant within clusters) or, when None, the cluster
    means of :func:`numeric_columns`.  ``nd`` is ``design.transform(newdata)`` and ``rows``
    a mask over its rows.
    """
    DecisionTreeRegressor = require(  # noqa: N806
        "sklearn.tree", "predict(new_levels='features')").DecisionTreeRegressor

    block = next(b for b in design.blocks if b.group == group)
    keys = nd.level_keys[group][rows]
    new_sub = newdata.loc[_complete_index(newdata, nd)]
    if cols:
        train = design.data[cols]
        first = pd.Series(np.arange(len(block.codes))).groupby(block.codes).first()
        cats = _categories(train)
        F_train = _encode(train.iloc[first.to_numpy()], cats)
        new = new_sub[cols].loc[rows]
        _check_constant(new, keys, None, group, "newdata")
        new_first = pd.Series(np.arange(len(keys))).groupby(keys, sort=False).first()
        F_new = _encode(new.iloc[new_first.to_numpy()], cats)
    else:
        num = numeric_columns(design)
        F_train = (design.X[num].groupby(block.codes).mean().to_numpy(dtype=float))
        new_first = pd.Series(np.arange(len(keys))).groupby(keys, sort=False).first()
        F_new = (nd.X[num].loc[rows].set_axis(keys).groupby(level=0, sort=False).mean()
                 .reindex(new_first.index).to_numpy(dtype=float))
    depth = default_depth(block.n_levels) if max_depth is None else int(max_depth)
    reg = DecisionTreeRegressor(max_depth=depth, random_state=random_state)
    reg.fit(F_train, gamma_targets)
    pred = np.asarray(reg.predict(F_new), dtype=float).reshape(len(new_first), -1)
    where = pd.Index(new_first.index).get_indexer(pd.Index(keys))
    return pred[where], reg


def _complete_index(newdata: pd.DataFrame, nd) -> np.ndarray:
    """Positions of newdata's rows that ``nd`` describes (as a boolean mask)."""
    return np.ones(len(newdata), dtype=bool) if nd.complete is None else nd.complete
