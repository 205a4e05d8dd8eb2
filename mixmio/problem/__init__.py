"""The problem stage: backend-agnostic data for one ℓ0-capped least-squares program.

A :class:`Problem` holds everything a solver needs and nothing about formulas or
DataFrames.  The coefficient vector is ``w = [beta; gamma]`` (fixed effects first,
then every column of Z).  The objective is

    1/2 ||y - X beta - Z gamma||^2 + ridge/2 ||w[penalized]||^2

subject to, for every :class:`CapSet`, at most ``k`` non-zero entries of ``w[index]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class CapSet:
    """An ℓ0 cap: at most ``k`` of ``w[index]`` may be non-zero."""

    label: str
    index: np.ndarray
    k: int


@dataclass(frozen=True)
class TermStructure:
    """Structure of one random-effects term, for engines that exploit it.

    Columns of Z (not of w) for this term are ``start + j * n_levels + level`` for term column
    ``j`` (0..q-1): each term column is a contiguous block of ``n_levels`` entries.
    """

    label: str
    start: int
    q: int
    n_levels: int
    codes: np.ndarray  # (n,) integer level of every row
    values: np.ndarray  # (n, q) the term's own columns (ones for an intercept)


@dataclass(frozen=True, eq=False)
class Problem:
    X: np.ndarray
    Z: sp.csc_matrix
    y: np.ndarray
    ridge: float
    caps: tuple[CapSet, ...]
    penalized: np.ndarray  # bool mask over w
    terms: tuple[TermStructure, ...] = ()
    # linear constraints on the indicators (holistic issue)
    constraints: tuple = field(default_factory=tuple)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def m(self) -> int:
        return self.Z.shape[1]

    @property
    def n_coef(self) -> int:
        return self.p + self.m

    @cached_property
    def design(self) -> sp.csc_matrix:
        """[X | Z] as one sparse matrix."""
        return sp.hstack([sp.csc_matrix(self.X), self.Z], format="csc")

    @cached_property
    def gram(self) -> tuple[sp.csc_matrix, np.ndarray, float]:
        """(G, c, y'y) with G = [X Z]'[X Z] and c = [X Z]'y."""
        D = self.design
        G = (D.T @ D).tocsc()
        c = np.asarray(D.T @ self.y).ravel()
        return G, c, float(self.y @ self.y)

    @cached_property
    def capped(self) -> np.ndarray:
        """Sorted indices of all coefficients that carry an indicator."""
        if not self.caps:
            return np.zeros(0, dtype=int)
        return np.unique(np.concatenate([c.index for c in self.caps]))

    def objective(self, w: np.ndarray) -> float:
        r = self.y - self.X @ w[: self.p] - self.Z @ w[self.p :]
        return 0.5 * float(r @ r) + 0.5 * self.ridge * float(np.sum(w[self.penalized] ** 2))

    def is_feasible(self, w: np.ndarray, tol: float = 0.0) -> bool:
        return all(np.count_nonzero(np.abs(w[c.index]) > tol) <= c.k for c in self.caps)
