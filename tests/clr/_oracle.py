"""Brute-force oracle for clusterwise LAD: every assignment, each cluster fitted by an LP.

Deliberately independent of mixmio.clr: the LAD fits use scipy.optimize.linprog, and the
optimum is the minimum over all labelings (2^n for K = 2, 3^n with outlier flags).
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
from scipy.optimize import linprog


def lad_objective(X: np.ndarray, y: np.ndarray) -> float:
    """min_a sum |y - X a| by linprog (0 for no rows)."""
    m, p = X.shape
    if m == 0:
        return 0.0
    c = np.concatenate([np.zeros(p), np.ones(2 * m)])
    A = np.hstack([X, np.eye(m), -np.eye(m)])
    res = linprog(c, A_eq=A, b_eq=y, bounds=[(None, None)] * p + [(0, None)] * (2 * m),
                  method="highs")
    assert res.status == 0, res.message
    return float(res.fun)


def brute_force_clr(X: np.ndarray, y: np.ndarray, min_size: int | None = None,
                    outlier_penalty: float | None = None) -> float:
    """Optimal objective of 2-cluster LAD regression (optionally with outlier flags)."""
    n = len(y)

    @cache
    def lad(mask: int) -> float:
        rows = [i for i in range(n) if mask >> i & 1]
        return lad_objective(X[rows], y[rows])

    c = 0 if min_size is None else min_size
    states = (0, 1) if outlier_penalty is None else (0, 1, 2)
    best = np.inf
    for lab in itertools.product(states, repeat=n):
        a = sum(1 << i for i in range(n) if lab[i] == 0)
        b = sum(1 << i for i in range(n) if lab[i] == 1)
        if bin(a).count("1") < c or bin(b).count("1") < c:
            continue
        n_out = sum(1 for v in lab if v == 2)
        cost = lad(a) + lad(b) + (0.0 if outlier_penalty is None else outlier_penalty * n_out)
        best = min(best, cost)
    return best
