"""Design + caps -> Problem, with every check on the caps done before any solve."""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from typing import cast

import numpy as np

from mixmio.problem import CapSet, Problem, SignCap, TermStructure


def auto_ridge(X: np.ndarray, Z) -> float:
    """1e-4 x the median column sum of squares of [X | Z] (METHODS 1)."""
    sq = [np.sum(X**2, axis=0)]
    if Z.shape[1]:
        sq.append(np.asarray(Z.multiply(Z).sum(axis=0)).ravel())
    colsq = np.concatenate(sq)
    colsq = colsq[colsq > 0]
    return 1e-4 * float(np.median(colsq)) if len(colsq) else 1e-4


def resolve_caps(design, k) -> dict[str, int]:
    """Cap per random-effect column label, validated against the design."""
    labels = design.column_labels
    if not labels:
        raise ValueError("the formula has no random-effects term, so there is nothing to cap; "
                         "use mixmio.mio_lm for a fixed-effects-only model")
    if k is None:
        raise TypeError("k is required: an int caps every random-effect column, or a dict keyed "
                        f"by column label sets caps one by one (labels: {labels})")
    sizes = {lab: design.block_of(lab)[0].n_levels for lab in labels}
    k, _ = split_sign_caps(k)
    if isinstance(k, Mapping):
        unknown = [key for key in k if key not in sizes]
        if unknown:
            raise KeyError(f"k has key(s) {unknown} that name no random-effect column; "
                           f"the columns are {labels}")
        missing = [lab for lab in labels if lab not in k]
        if missing:
            raise ValueError(f"k gives no cap for {missing}; give every column a cap "
                             f"(use the number of levels for 'no cap')")
        caps = dict(k)
    else:
        caps = {lab: k for lab in labels}
    for lab, v in caps.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"cap for '{lab}' must be an integer, got {v!r}")
        if v < 0 or v > sizes[lab]:
            raise ValueError(f"cap for '{lab}' is {v}, outside 0..{sizes[lab]} (the number of "
                             f"levels of '{design.block_of(lab)[0].group}')")
    return {lab: int(v) for lab, v in caps.items()}


def cap_key(key) -> str:
    """A cap key as the design labels it: backticks dropped and no spaces around ``|``
    (``"1 | `my group`"`` -> ``"1|my group"``), so keys written as in the formula work."""
    if not isinstance(key, str):
        return key
    return re.sub(r"\s*\|\s*", "|", key.replace("`", "")).strip()


def split_sign_caps(k):
    """``k`` with asymmetric ``(worst, best)`` tuples replaced by their totals, and the dict of
    those tuples (``{label: (k_pos, k_neg)}``): at most ``worst`` positive and ``best`` negative
    deviations."""
    if not isinstance(k, Mapping):
        return k, {}
    k = {cap_key(key): v for key, v in k.items()}
    totals, signs = {}, {}
    for lab, v in k.items():
        if isinstance(v, tuple):
            if len(v) != 2 or any(isinstance(x, bool) or not isinstance(x, (int, np.integer))
                                  or x < 0 for x in v):
                raise TypeError(f"asymmetric cap for '{lab}' must be a pair of non-negative "
                                f"integers (worst, best), got {v!r}")
            signs[lab] = (int(v[0]), int(v[1]))
            totals[lab] = int(v[0]) + int(v[1])
        else:
            totals[lab] = v
    return totals, signs


def build_problem(design, k, k_fixed: int | None = None, ridge="auto") -> Problem:
    """The ℓ0-capped program of a design: caps per random-effect column, optional fixed cap."""
    caps_by_label = resolve_caps(design, k)
    X = design.X.to_numpy(dtype=float)
    p = X.shape[1]
    selectable = [j for j, c in enumerate(design.X.columns) if c != "Intercept"]
    if k_fixed is not None:
        if isinstance(k_fixed, bool) or not isinstance(k_fixed, (int, np.integer)):
            raise TypeError(f"k_fixed must be an integer or None, got {k_fixed!r}")
        if not 0 <= k_fixed <= len(selectable):
            raise ValueError(f"k_fixed is {k_fixed}, outside 0..{len(selectable)} (the number "
                             "of selectable fixed effects; the intercept is always in)")
    if ridge == "auto":
        ridge = auto_ridge(X, design.Z)
    elif not (isinstance(ridge, (int, float)) and np.isfinite(ridge) and ridge > 0):
        raise ValueError(f"ridge must be 'auto' or a positive number, got {ridge!r}")

    caps: list[CapSet] = []
    terms: list[TermStructure] = []
    sign_caps: list[SignCap] = []
    _, signs = split_sign_caps(k)
    for b in design.blocks:
        for j, lab in enumerate(b.labels):
            sl = b.column_slice(j)
            caps.append(CapSet(lab, np.arange(p + sl.start, p + sl.stop), caps_by_label[lab]))
            if lab in signs:
                sign_caps.append(SignCap(lab, np.arange(p + sl.start, p + sl.stop),
                                         *signs[lab]))
        terms.append(TermStructure(b.label, b.z_slice.start, b.q, b.n_levels, b.codes,
                                   b.values))
    penalized = np.ones(p + design.Z.shape[1], dtype=bool)
    penalized[:p] = False
    if k_fixed is not None:
        penalized[selectable] = True
        caps.append(CapSet("fixed effects", np.asarray(selectable, dtype=int), int(k_fixed)))
    y = design.y - design.offset
    return Problem(X, design.Z.tocsc(), y, float(ridge), tuple(caps), penalized, tuple(terms),
                   sign_caps=tuple(sign_caps))


def build_lm_problem(design, k, ridge="auto") -> Problem:
    """Best-subset regression of a design without random terms: at most ``k`` non-zero
    selectable coefficients (every column but the intercept), ridge on those only."""
    if design.blocks:
        raise ValueError("the formula has random-effect terms "
                         f"{[b.label for b in design.blocks]}; use mixmio.mio_lmer for them")
    X = design.X.to_numpy(dtype=float)
    p = X.shape[1]
    selectable = np.array([j for j, c in enumerate(design.X.columns) if c != "Intercept"],
                          dtype=int)
    if k is None:
        k = selectable.size
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer (the number of selected columns), got {k!r}")
    if not 0 <= k <= selectable.size:
        raise ValueError(f"k is {k}, outside 0..{selectable.size} (the number of selectable "
                         "columns; the intercept is always in and does not count)")
    if ridge == "auto":
        ridge = auto_ridge(X, design.Z)
    elif (isinstance(ridge, bool) or not isinstance(ridge, numbers.Real)
          or not np.isfinite(cast(float, ridge)) or ridge < 0):  # cast: a Real
        raise ValueError(f"ridge must be 'auto' or a non-negative number, got {ridge!r}")
    penalized = np.zeros(p, dtype=bool)
    penalized[selectable] = True
    caps = (CapSet("fixed effects", selectable, int(k)),)
    import scipy.sparse as sp

    y = design.y - design.offset
    return Problem(X, sp.csc_matrix((X.shape[0], 0)), y, float(ridge), caps, penalized)
