"""The problem stage: backend-agnostic data for one ℓ0-capped least-squares program.

A :class:`Problem` holds everything a solver needs and nothing about formulas or
DataFrames.  The coefficient vector is ``w = [beta; gamma]`` (fixed effects first,
then every column of Z).  The objective is

    1/2 ||y - X beta - Z gamma||^2 + ridge/2 ||w[penalized]||^2

subject to, for every :class:`CapSet`, at most ``k`` non-zero entries of ``w[index]``.

Holistic extensions (all optional, see :mod:`mixmio.holistic`):

- ``constraints``: :class:`LinearConstraint` rows on the 0/1 indicators ``z`` of the capped
  coefficients (``z_j = 0`` forces ``w_j = 0``; ``z_j = 1`` allows ``w_j != 0``);
- ``sign_caps``: :class:`SignCap` asymmetric caps (at most ``k_pos`` positive and ``k_neg``
  negative entries of ``w[index]``);
- ``l1``: weights of an added ``sum_j l1_j |w_j|`` term (robustness, King 2015 Theorem 3).
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


@dataclass(frozen=True, eq=False)
class LinearConstraint:
    """``sum_i coef[i] * z[index[i]]  (sense)  rhs`` on the indicators of ``w[index]``.

    ``index`` holds coefficient indices (positions in ``w``, each must carry an indicator:
    be in some :class:`CapSet`); ``sense`` is ``"<="``, ``">="`` or ``"=="``; ``name`` is the
    user constraint that produced the row (used in messages and reports).
    """

    index: np.ndarray
    coef: np.ndarray
    sense: str
    rhs: float
    name: str

    def __post_init__(self):
        if self.sense not in ("<=", ">=", "=="):
            raise ValueError(f"sense must be '<=', '>=' or '==', got {self.sense!r}")
        idx = np.asarray(self.index, dtype=int)
        coef = np.asarray(self.coef, dtype=float)
        if idx.shape != coef.shape or idx.ndim != 1:
            raise ValueError("index and coef must be 1-d arrays of the same length")
        object.__setattr__(self, "index", idx)
        object.__setattr__(self, "coef", coef)
        object.__setattr__(self, "rhs", float(self.rhs))

    def lhs(self, z: np.ndarray) -> float:
        """Left-hand side for an indicator vector ``z`` over ``w``."""
        return float(self.coef @ np.asarray(z, dtype=float)[self.index])

    def satisfied(self, z: np.ndarray, tol: float = 1e-9) -> bool:
        v = self.lhs(z)
        if self.sense == "<=":
            return v <= self.rhs + tol
        if self.sense == ">=":
            return v >= self.rhs - tol
        return abs(v - self.rhs) <= tol


@dataclass(frozen=True)
class SignCap:
    """Asymmetric cap: at most ``k_pos`` entries of ``w[index]`` > 0 and ``k_neg`` < 0."""

    label: str
    index: np.ndarray
    k_pos: int
    k_neg: int


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
    # linear constraints on the indicators (holistic issue): LinearConstraint rows
    constraints: tuple = field(default_factory=tuple)
    # asymmetric (sign-split) caps
    sign_caps: tuple = field(default_factory=tuple)
    # optional weights of an added sum_j l1[j] |w_j| term (None: no such term)
    l1: np.ndarray | None = None

    @property
    def is_plain(self) -> bool:
        """True when only caps (no constraints, sign caps or l1 term) define the problem."""
        return not self.constraints and not self.sign_caps and self.l1 is None

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

    @cached_property
    def null_objective(self) -> float:
        """1/2 sum (y - mean y)^2: the scale that floors the certificate's relative gap
        (:func:`mixmio.solvers.solution.relative_gap`)."""
        y = np.asarray(self.y, dtype=float)
        r = y - y.mean() if y.size else y
        return 0.5 * float(r @ r)

    def objective(self, w: np.ndarray) -> float:
        r = self.y - self.X @ w[: self.p] - self.Z @ w[self.p :]
        out = 0.5 * float(r @ r) + 0.5 * self.ridge * float(np.sum(w[self.penalized] ** 2))
        if self.l1 is not None:
            out += float(np.asarray(self.l1, dtype=float) @ np.abs(w))
        return out

    def is_feasible(self, w: np.ndarray, tol: float = 0.0, z: np.ndarray | None = None) -> bool:
        """Caps, sign caps and linear constraints hold for ``w``.

        ``z`` (bool mask over ``w``) are the indicators; by default the support of ``w``.  A
        given ``z`` must cover the support (``w_j != 0`` needs ``z_j = 1``).
        """
        nz = np.abs(w) > tol
        if not all(np.count_nonzero(nz[c.index]) <= c.k for c in self.caps):
            return False
        for sc in self.sign_caps:
            v = w[sc.index]
            if np.count_nonzero(v > tol) > sc.k_pos or np.count_nonzero(v < -tol) > sc.k_neg:
                return False
        if z is not None:
            zz = np.asarray(z, dtype=bool)
            if np.any(nz[self.capped] & ~zz[self.capped]):
                return False
            if not all(np.count_nonzero(zz[c.index]) <= c.k for c in self.caps):
                return False
        else:
            zz = nz
        return all(c.satisfied(zz) for c in self.constraints)
