"""The clusterwise LAD problem as plain data, and its valid big-M.

(P1) of METHODS §4 (seed 003, Zhu, Li & Kong 2012), with ``zeta_ik = 1`` when row ``i`` is in
cluster ``k``::

    min   sum_{i,k} (e+_ik + e-_ik)  [+ T sum_i eta_i]                         (P2 with eta)
    s.t.  sum_k zeta_ik [+ eta_i] = 1
          -M_i (1 - zeta_ik) <= x_i'a_k - y_i + e+_ik - e-_ik <= M_i (1 - zeta_ik)
          sum_i zeta_ik >= c                                                 (min_size)

Why the paper's M is not enough
-------------------------------
For a non-member (``zeta_ik = 0``) the big-M rows read ``|x_i'a_k - y_i + e+ - e-| <= M``;
when ``|y_i - x_i'a_k| > M`` the model pays ``e`` to stay feasible, so for fixed ``(a, zeta)``
the MILP objective is the CLR objective plus ``sum (|r_ik| - M)_+`` over non-members.  The
MILP optimum is therefore never below the CLR optimum, and equals it as soon as *one* optimal
CLR solution has every non-member residual ``<= M``.  The paper takes M = the largest pairwise
distance between data points, but the lines are unbounded (two rows with nearly equal x
define a steep line), so nothing guarantees that; with a too small M the MILP's "optimal"
objective and its bound can both sit above the true optimum.

A valid M (``big_m="proven"``)
------------------------------
Claim: some optimal CLR solution uses, in every cluster, coefficients ``a = X_B^{-1} y_B``
for a set ``B`` of p rows of the data with ``X_B`` nonsingular (a "basic" line).

* Given the clusters, each cluster's coefficients solve an LAD problem on its members S.  LAD
  is a linear program; restricted to the row space of ``X_S`` (which changes no member's
  residual) it has an optimal vertex, which interpolates ``r = rank(X_S)`` members of S with
  linearly independent rows ``B_S``.
* When ``r < p`` (a small or degenerate cluster, or an empty one with ``r = 0``), complete
  ``B_S`` to a basis with ``p - r`` rows ``J`` of the whole data (X has full column rank,
  checked by the design) and take the unique ``a'`` interpolating ``B = B_S + J``.
  ``a' - a`` vanishes on ``B_S``, hence on the span of ``X_S``: every member's residual, so
  the cluster's LAD objective, is unchanged.

Hence ``M_i = max_B |y_i - x_i' X_B^{-1} y_B|`` over nonsingular p-subsets B bounds every
residual (member or not) of that optimal solution, and the MILP with these per-row ``M_i``
has the CLR optimum as its optimum and its dual bound is a valid lower bound on the CLR
objective.  With outlier flags (P2) the same argument applies to the clusters' members.
When ``min_size = c > p`` a basic line must fit at least ``c - p`` further rows with total
absolute residual at most the incumbent objective U (its cluster has ``c`` members and LAD
objective ``<= U``; with a rank-deficient cluster the rows of ``S - B_S`` are still outside
B), so lines failing that test are dropped from the maximum (and from the candidate lines
of the big-M-free model in :mod:`mixmio.solvers.clr.milp`, which rests on the same claim).
``X_B`` counts as singular when ``|det X_B| <= 1e-10 prod_b ||x_b||`` (Hadamard-relative),
so that exactly collinear rows (repeated x values) do not produce round-off lines; the proof
therefore assumes that rows whose x agree to ~1e-10 relative are repeats, not distinct
points defining a near-vertical line.

Duplicate candidate lines: different p-subsets can give the same line (repeated rows, or
three rows on one line), which would only add identical columns to the lines model.
:func:`unique_lines` keeps one line of each group whose fitted values agree, at every row,
within ``tau = 1e-10 max|y|`` (:data:`LINE_DEDUP_RTOL`); exact duplicates always merge.
Replacing a dropped line by its kept twin moves no row's residual by more than ``tau``, so the
lines model's optimum over the kept lines is within ``n tau`` of its optimum over all lines
(far below HiGHS's feasibility tolerances; zero for exact duplicates) and the model stays
exact.  Lines that differ by more, however little, are all kept.

The enumeration costs ``C(n, p) * n``; above :data:`MAX_SUBSETS` p-subsets mixmio falls back
to a stated modelling box (``big_m="box"``): ``|a_kl| <= b_l`` for every cluster, with
``b_l`` ten times the largest ``|a_l|`` of the warm start's clusters and of the one-line LAD
fit, and ``M_i = |y_i| + sum_l |x_il| b_l``, which is exact for the boxed model.  A fit
from a boxed model is reported (and its summary says so) as optimal *for the model with the
box*.

Symmetry breaking (seed 003 eq. 22-23 with METHODS §9's erratum, sum from j = 1):
``sum_{s>k} zeta_is <= sum_{j<i} zeta_jk`` for every row i and k = 1..K-1: a row may open
cluster k+1 only after cluster k has a member, so clusters are numbered by their first
member (empty clusters last) and exactly one relabelling survives.  For i = 1 it gives the
paper's ``zeta_11 = 1`` (or, with outlier flags, "row 1 is in cluster 1 or an outlier",
which keeps (P2) exact when row 1 is an outlier).  The paper stops at i = n - 1 and k >= 2;
the rows i = n and k = 1 are valid too (any solution relabelled by first member satisfies
them) and only remove more copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Literal, overload

import numpy as np

#: largest number of p-subsets enumerated for the proven big-M
MAX_SUBSETS = 200_000
#: relative determinant under which a p-subset counts as singular
DET_TOL = 1e-10
#: candidate lines whose fitted values agree within this fraction of max|y| at every row
#: are duplicates (:func:`unique_lines`)
LINE_DEDUP_RTOL = 1e-10


@dataclass(frozen=True, eq=False)
class ClrProblem:
    """Arrays of a clusterwise LAD problem: no formulas, no DataFrames.

    ``X`` (n x p), ``y`` (the response minus any offset), ``n_clusters``, ``outlier_penalty``
    (T of (P2), None for (P1)), ``min_size``, ``big_m`` (per-row M_i), ``big_m_kind``
    (``"proven"`` or ``"box"``), ``coef_box`` (per-column box half-widths, None when proven),
    ``symmetry_breaking``, ``formulation`` (``"bigm"``: (P1)/(P2); ``"lines"``: the
    choice of K basic lines, see :mod:`mixmio.solvers.clr.milp`), ``lines`` (the candidate basic
    lines, m x p, for ``"lines"``, duplicates removed) and ``duplicate_lines`` (how many
    duplicate candidate lines :func:`unique_lines` removed).
    """

    X: np.ndarray
    y: np.ndarray
    n_clusters: int
    outlier_penalty: float | None
    min_size: int | None
    big_m: np.ndarray
    big_m_kind: str
    coef_box: np.ndarray | None
    symmetry_breaking: bool = True
    subsets_used: int = 0
    formulation: str = "bigm"
    lines: np.ndarray | None = None
    duplicate_lines: int = 0

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def null_objective(self) -> float:
        """sum |y - median y|: the scale that floors the certificate's relative gap
        (:func:`mixmio.solvers.solution.relative_gap`), so an exact fit can be optimal."""
        y = np.asarray(self.y, dtype=float)
        return float(np.abs(y - np.median(y)).sum()) if y.size else 0.0

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def ridge(self) -> float:
        """No ridge penalty in clusterwise LAD (kept for the shared certificate)."""
        return 0.0


@overload
def proven_big_m(X: np.ndarray, y: np.ndarray, min_size: int | None = ...,
                 upper: float = ..., chunk: int = ..., return_lines: Literal[False] = ...
                 ) -> tuple[np.ndarray, int]: ...
@overload
def proven_big_m(X: np.ndarray, y: np.ndarray, min_size: int | None = ...,
                 upper: float = ..., chunk: int = ..., *, return_lines: Literal[True]
                 ) -> tuple[np.ndarray, int, np.ndarray]: ...
def proven_big_m(X: np.ndarray, y: np.ndarray, min_size: int | None = None,
                 upper: float = np.inf, chunk: int = 4096, return_lines: bool = False
                 ) -> tuple[np.ndarray, int] | tuple[np.ndarray, int, np.ndarray]:
    """Per-row ``M_i = max_B |y_i - x_i' X_B^{-1} y_B|`` over nonsingular p-subsets B.

    With ``min_size = c > p`` and a finite incumbent objective ``upper``, subsets whose line
    cannot fit ``c - p`` further rows within total absolute residual ``upper`` are skipped
    (see the module docstring).  Returns ``(M, number of subsets kept)``, and the kept
    lines' coefficients (m x p) as a third item with ``return_lines``.

    >>> X = np.column_stack([np.ones(3), [0.0, 1.0, 2.0]])
    >>> M, used = proven_big_m(X, np.array([0.0, 1.0, 0.0]))
    >>> M.tolist(), used
    ([2.0, 1.0, 2.0], 3)
    """
    n, p = X.shape
    M = np.zeros(n)
    used = 0
    kept: list[np.ndarray] = []
    extra = 0 if min_size is None else int(min_size) - p
    for idx in _subset_chunks(n, p, chunk):
        XB = X[idx]                                        # m x p x p
        det = np.linalg.det(XB)
        scale = np.prod(np.linalg.norm(XB, axis=2), axis=1)
        ok = np.abs(det) > DET_TOL * np.maximum(scale, 1e-300)
        if not ok.any():
            continue
        XB, idx = XB[ok], idx[ok]
        a = np.linalg.solve(XB, y[idx][..., None])[..., 0]  # m x p
        R = np.abs(y[None, :] - a @ X.T)                    # m x n
        if extra > 0 and np.isfinite(upper):
            k = min(extra + p, n)
            best = np.partition(R, k - 1, axis=1)[:, :k].sum(axis=1)
            keep = best <= upper * (1 + 1e-9) + 1e-12
            R, a = R[keep], a[keep]
        if R.shape[0]:
            used += R.shape[0]
            np.maximum(M, R.max(axis=0), out=M)
            if return_lines:
                kept.append(a)
    if return_lines:
        return M, used, (np.vstack(kept) if kept else np.zeros((0, p)))
    return M, used


def unique_lines(lines: np.ndarray, X: np.ndarray, y: np.ndarray
                 ) -> tuple[np.ndarray, int]:
    """The candidate lines without duplicates, in first-occurrence order, and the number
    removed.

    Lines fall in one group when every coefficient rounds to the same multiple of
    ``q_l = tau / (p max_i |x_il|)`` with ``tau = LINE_DEDUP_RTOL * max|y|`` (exact equality
    when ``tau = 0``); two lines of a group then differ by less than ``q_l`` in every
    coefficient, hence by less than ``tau`` in the fitted value of every row.  Near twins
    straddling a rounding boundary are kept (harmless: only a missed merge).

    >>> X = np.column_stack([np.ones(3), [0.0, 1.0, 2.0]])
    >>> L = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0 + 1e-15], [1.0, 2.0 + 1e-6]])
    >>> kept, removed = unique_lines(L, X, np.array([1.0, 3.0, 5.0]))
    >>> kept.tolist() == [[1.0, 2.0], [1.0, 2.0 + 1e-6]], removed
    (True, 2)
    """
    m, p = lines.shape
    if m < 2:
        return lines, 0
    tau = LINE_DEDUP_RTOL * float(np.max(np.abs(y)))
    if tau > 0:
        xmax = np.max(np.abs(X), axis=0)
        q = tau / (p * np.where(xmax > 0, xmax, 1.0))
        key = np.round(lines / q) + 0.0        # + 0.0: -0.0 and 0.0 are one key
    else:
        key = lines + 0.0
    _, first = np.unique(key, axis=0, return_index=True)
    first.sort()
    return lines[first], m - first.size


def box_big_m(X: np.ndarray, y: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """``M_i = |y_i| + sum_l |x_il| b_l``: the largest residual of any coefficient vector in
    the box ``|a_l| <= b_l``."""
    return np.abs(y) + np.abs(X) @ np.asarray(bound, dtype=float)


def n_subsets(n: int, p: int) -> int:
    """Number of p-subsets of n rows (what the proven big-M enumerates)."""
    return comb(n, p)


def _subset_chunks(n: int, p: int, chunk: int):
    """p-subsets of range(n) as integer arrays of shape (m, p), m <= chunk (lexicographic)."""
    if p == 0:
        return
    if p == 1:
        yield np.arange(n)[:, None]
        return
    if p == 2:
        i, j = np.triu_indices(n, 1)
        pairs = np.column_stack([i, j])
        for s in range(0, len(pairs), chunk):
            yield pairs[s:s + chunk]
        return
    from itertools import combinations

    buf = []
    for c in combinations(range(n), p):
        buf.append(c)
        if len(buf) == chunk:
            yield np.asarray(buf)
            buf = []
    if buf:
        yield np.asarray(buf)


def symmetry_rows(n: int, K: int) -> list[tuple[list[int], list[float]]]:
    """Symmetry-breaking rows as (zeta indices ``i * K + k``, coefficients), each ``<= 0``:
    ``sum_{s>k} zeta_is - sum_{j<i} zeta_jk <= 0`` for i = 0..n-1, k = 0..K-2 (0-based)."""
    rows = []
    for i in range(n):
        for k in range(K - 1):
            idx = [i * K + s for s in range(k + 1, K)] + [j * K + k for j in range(i)]
            coef = [1.0] * (K - 1 - k) + [-1.0] * i
            rows.append((idx, coef))
    return rows
