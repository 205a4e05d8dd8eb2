"""Design + caps -> Problem, with every check on the caps done before any solve."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import CapSet, Problem, TermStructure


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
    for b in design.blocks:
        for j, lab in enumerate(b.labels):
            sl = b.column_slice(j)
            caps.append(CapSet(lab, np.arange(p + sl.start, p + sl.stop), caps_by_label[lab]))
        terms.append(TermStructure(b.label, b.z_slice.start, b.q, b.n_levels, b.codes,
                                   b.values))
    penalized = np.ones(p + design.Z.shape[1], dtype=bool)
    penalized[:p] = False
    if k_fixed is not None:
        penalized[selectable] = True
        caps.append(CapSet("fixed effects", np.asarray(selectable, dtype=int), int(k_fixed)))
    y = design.y - design.offset
    return Problem(X, design.Z.tocsc(), y, float(ridge), tuple(caps), penalized, tuple(terms))
