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

    Holistic constraints (compiled by :func:`mixmio.api.glm.mio_glm`): ``forced`` the units
    that must be in (they count toward ``k``); ``rows`` packing rows ``(units, coef, rhs)``
    meaning ``sum coef_u z_u <= rhs`` with ``coef > 0`` (a ``CorrelationLimit`` pair, the forms
    of a ``Transforms`` variable).  Excluded columns belong to no unit (and are not in
    ``always``): they stay at 0.  A support (a set of unit indices) is feasible when it holds
    ``forced``, weighs at most ``k`` and meets every row (:meth:`feasible`); every subset of a
    feasible support that still holds ``forced`` is feasible too (the rows are packing rows).
    """

    X: np.ndarray
    y: np.ndarray
    offset: np.ndarray
    units: tuple[np.ndarray, ...]
    always: np.ndarray
    k: int
    ridge: float = 0.0
    names: tuple[str, ...] = ()
    forced: tuple[int, ...] = ()
    rows: tuple[tuple[np.ndarray, np.ndarray, float], ...] = ()
    weights: np.ndarray = field(init=False, repr=False)
    penalized: np.ndarray = field(init=False, repr=False)
    row_coefs: tuple[dict[int, float], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", np.array([u.size for u in self.units], dtype=int))
        mask = np.zeros(self.X.shape[1], dtype=bool)
        for u in self.units:
            mask[u] = True
        mask.flags.writeable = False
        object.__setattr__(self, "penalized", mask)
        object.__setattr__(self, "row_coefs", tuple(
            {int(u): float(c) for u, c in zip(ru, rc, strict=True)} for ru, rc, _ in self.rows))

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

    @property
    def candidates(self) -> np.ndarray:
        """The columns any support may use: always-in columns plus every unit's columns
        (all columns unless some are excluded)."""
        return self.columns_of(range(len(self.units)))

    def feasible(self, units) -> bool:
        """Does the support ``units`` hold the forced units, the cap and every row?"""
        s = set(int(u) for u in units)
        if not set(self.forced) <= s or sum(int(self.weights[u]) for u in s) > self.k:
            return False
        return all(sum(c for u, c in coef.items() if u in s) <= row[2] + 1e-9
                   for coef, row in zip(self.row_coefs, self.rows, strict=True))

    def prune(self, A, B) -> tuple[int, ...]:
        """The units of ``B`` that can still join the support ``A``: those that fit the room
        ``k - weight(A)`` and keep every row that ``A`` meets within its right-hand side (a
        row ``A`` fills leaves its other units out)."""
        A = set(int(u) for u in A)
        room = self.k - sum(int(self.weights[u]) for u in A)
        out = [int(u) for u in B if self.weights[u] <= room]
        for coef, row in zip(self.row_coefs, self.rows, strict=True):
            slack = row[2] - sum(c for u, c in coef.items() if u in A)
            out = [u for u in out if coef.get(u, 0.0) <= slack + 1e-9]
        return tuple(out)

    def greedy_fill(self, A, order) -> list[int]:
        """``A`` plus the units of ``order`` taken in turn whenever the support stays
        feasible (cap and rows); ``A`` itself is assumed feasible."""
        chosen = [int(u) for u in A]
        have = set(chosen)
        rest = self.prune(chosen, [int(u) for u in order if int(u) not in have])
        while rest:
            u = rest[0]
            chosen.append(u)
            rest = self.prune(chosen, rest[1:])
        return chosen

    def unique_support(self) -> list[int] | None:
        """The optimal support when no search is needed -- the forced units when no other unit
        can join them, or every unit that can when together they are feasible (adding columns
        never raises min F) -- else None."""
        forced = list(self.forced)
        B = self.prune(forced, [u for u in range(len(self.units)) if u not in set(forced)])
        if not B:
            return forced
        if self.feasible(forced + list(B)):
            return forced + list(B)
        return None
