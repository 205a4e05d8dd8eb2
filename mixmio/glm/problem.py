"""GlmProblem: best-subset logistic regression as arrays (no formulas, no DataFrames)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["GlmProblem"]


@dataclass(frozen=True, eq=False)
class GlmProblem:
    """Best-subset logistic regression as arrays (no formulas, no DataFrames).

    ``X`` n x p, ``y`` in {0, 1}, ``offset`` n, ``units`` the selectable column groups (each
    counts its size toward ``k``), ``always`` the columns always in (the intercept), ``ridge``
    the penalty on the selectable columns, ``names`` the column names (for messages).
    ``weights`` (unit sizes) and ``penalized`` (the mask of the selectable columns, read-only)
    are computed once at construction.
    """

    X: np.ndarray
    y: np.ndarray
    offset: np.ndarray
    units: tuple[np.ndarray, ...]
    always: np.ndarray
    k: int
    ridge: float = 0.0
    names: tuple[str, ...] = ()
    weights: np.ndarray = field(init=False, repr=False)
    penalized: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", np.array([u.size for u in self.units], dtype=int))
        mask = np.zeros(self.X.shape[1], dtype=bool)
        for u in self.units:
            mask[u] = True
        mask.flags.writeable = False
        object.__setattr__(self, "penalized", mask)

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def selectable_weight(self) -> int:
        return int(self.weights.sum())

    def columns_of(self, units) -> np.ndarray:
        """Always-in columns plus the columns of ``units`` (indices into ``self.units``)."""
        parts = [self.always] + [self.units[u] for u in sorted(units)]
        return np.sort(np.concatenate(parts)).astype(int) if parts else np.zeros(0, int)
