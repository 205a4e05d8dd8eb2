"""Grouping factors: integer codes and level labels, lme4 style.

Grouping variables are factors whatever their dtype (integer subject ids are levels).  An
interaction factor ``a:b`` has one level per combination present in the data, labelled
``"x:y"``.  Levels are ordered like R's factors: a categorical's own category order, else
sorted values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mixmio.errors import DataError
from mixmio.formula import group_columns


def level_label(v) -> str:
    """A level's label: integral numbers print without a decimal part, so an id column read
    as float (309.0, e.g. after a NaN) matches its integer form (309), as R's factor labels do.
    """
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _factor(series: pd.Series, name: str) -> tuple[np.ndarray, pd.Index]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        cat = series.cat
        used = np.unique(cat.codes[cat.codes >= 0])
        if len(used) < len(cat.categories):
            empty = [str(c) for i, c in enumerate(cat.categories) if i not in set(used)]
            raise DataError(
                f"grouping factor '{name}' has levels with no rows: {empty[:10]}"
                f"{' ...' if len(empty) > 10 else ''}. Every cluster needs data; drop the empty "
                f"levels first with data['{name}'] = data['{name}'].cat.remove_unused_categories()."
            )
        return np.asarray(cat.codes, dtype=np.int64), pd.Index(cat.categories)
    codes, uniques = pd.factorize(series, sort=True)
    return codes.astype(np.int64), pd.Index(uniques)


def grouping_codes(data: pd.DataFrame, group: str) -> tuple[np.ndarray, pd.Index]:
    """Integer level codes (n,) and level labels (strings) of a grouping factor."""
    names = list(group_columns(group))
    parts = [_factor(data[v], v) for v in names]
    if len(parts) == 1:
        codes, levels = parts[0]
        labels = pd.Index([level_label(v) for v in levels], dtype=object)
    else:
        stacked = np.column_stack([c for c, _ in parts])
        combos, codes = np.unique(stacked, axis=0, return_inverse=True)
        codes = codes.ravel().astype(np.int64)
        labels = pd.Index(
            [":".join(level_label(parts[j][1][combo[j]]) for j in range(len(parts)))
             for combo in combos],
            dtype=object,
        )
    if labels.has_duplicates:
        dup = sorted(set(labels[labels.duplicated()]))
        colon = any(":" in level_label(v) for _, lv in parts for v in lv)
        why = ("because a level contains ':'. Rename those levels (for example replace ':' "
               "with '_')" if colon else
               "because values of different types print alike (e.g. 1, 1.0 and '1'). Convert "
               "the column to one type (e.g. .astype(str))")
        raise DataError(f"grouping factor '{group}': different levels get the same label "
                         f"{dup[:5]} {why} so every cluster has its own label.")
    if len(labels) < 2:
        raise DataError(
            f"grouping factor '{group}' has {len(labels)} level"
            f"{'' if len(labels) == 1 else 's'}; a random effect needs at least 2 clusters. "
            "Remove the term or check the grouping column."
        )
    return codes, labels


def _labels(series: pd.Series) -> pd.Series:
    """``level_label`` of every row, computed once per distinct value (not per row)."""
    uniq = pd.unique(series)
    return series.map(dict(zip(uniq, (level_label(v) for v in uniq), strict=True)))


def level_keys(data: pd.DataFrame, group: str) -> np.ndarray:
    """Every row's level label of grouping factor ``group`` (``"a:b"`` joins the labels)."""
    labelled = [_labels(data[v]) for v in group_columns(group)]
    keys = labelled[0] if len(labelled) == 1 else pd.concat(labelled, axis=1).agg(":".join,
                                                                                   axis=1)
    return keys.to_numpy(dtype=object)


def map_codes(keys: np.ndarray, levels: pd.Index) -> tuple[np.ndarray, list[str]]:
    """Codes of rows' level labels (:func:`level_keys`) against training ``levels``; -1 and
    a sorted list for unseen levels."""
    codes = levels.get_indexer(pd.Index(keys))
    unseen = sorted(set(keys[codes < 0]))
    return codes.astype(np.int64), unseen
