"""Warm start for clusterwise LAD: k-means-style alternation with random restarts.

Each restart draws K random "basic" lines (each through p random rows), then alternates
(i) assign every row to the line with the smallest absolute residual (or flag it an outlier
when that residual exceeds T; under ``min_size`` the assignment is a transportation LP, whose
vertices are integral) and (ii) refit each cluster by LAD (a linear program), until the
assignment repeats.  The best restart is returned; it is a feasible point of (P1)/(P2), so
its objective is a valid upper bound, and nothing more.

Every LAD fit goes through a :class:`LadCache` shared by one solve (warm start, the
coefficient box, the MILP's candidate and the reported fit): each distinct cluster (set of
rows, box) is fitted once, and a repeat returns the stored fit, which is what refitting would
give (the same rows in the same order, the same single-threaded LP).
"""

from __future__ import annotations

import numpy as np

from mixmio import _runtime


def lad_fit(X: np.ndarray, y: np.ndarray, box: np.ndarray | None = None
            ) -> tuple[np.ndarray, float]:
    """Least-absolute-deviations fit ``min_a sum |y - X a|`` as an LP solved by HiGHS
    (with ``|a_l| <= box_l`` when a box is given).

    Returns ``(coefficients, objective)``; an empty X gives zeros and 0.

    Here the LP has two optimal vertices, ``a = [1, 2]`` and ``a = [1, 19/3]`` (both cost
    13), so which coefficients come back depends on the HiGHS version; what is unique is the
    objective, and that ``a`` attains the best LAD cost over all basic lines (an LAD optimum
    is attained at a line through ``p`` rows):

    >>> from itertools import combinations
    >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
    >>> y = np.array([1.0, 3.0, 5.0, 20.0])
    >>> a, obj = lad_fit(X, y)
    >>> round(obj, 6)
    13.0
    >>> best = min(np.abs(y - X @ np.linalg.solve(X[list(B)], y[list(B)])).sum()
    ...            for B in combinations(range(4), 2))
    >>> round(float(best), 6), bool(abs(np.abs(y - X @ a).sum() - best) < 1e-7)
    (13.0, True)
    """
    import highspy

    m, p = X.shape
    if m == 0:
        return np.zeros(p), 0.0
    inf = highspy.kHighsInf
    h = _runtime.highs()
    h.silent()
    h.setOptionValue("threads", 1)
    lp = highspy.HighsLp()
    lp.num_col_ = p + 2 * m
    lp.num_row_ = m
    lp.col_cost_ = np.concatenate([np.zeros(p), np.ones(2 * m)])
    lim = np.full(p, inf) if box is None else np.asarray(box, dtype=float)
    lp.col_lower_ = np.concatenate([-lim, np.zeros(2 * m)])
    lp.col_upper_ = np.concatenate([lim, np.full(2 * m, inf)])
    lp.row_lower_ = y.astype(float)
    lp.row_upper_ = y.astype(float)
    import scipy.sparse as sp

    A = sp.hstack([sp.csc_matrix(X), sp.eye(m, format="csc"), -sp.eye(m, format="csc")],
                  format="csc")
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data
    h.passModel(lp)
    h.run()
    a = np.asarray(h.getSolution().col_value[:p], dtype=float)
    return a, float(np.abs(y - X @ a).sum())


class LadCache:
    """LAD fits of the rows of one ``(X, y)``, memoised by (row set, box).

    ``fit(mask, box)`` is ``lad_fit(X[mask], y[mask], box)``, solved once per distinct key;
    ``fits`` counts the LPs solved, ``hits`` the repeats served from the store.

    >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
    >>> cache = LadCache(X, np.array([1.0, 3.0, 5.0, 20.0]))
    >>> mask = np.array([True, True, True, False])
    >>> [round(cache.fit(mask)[1], 9) for _ in range(3)], cache.fits, cache.hits
    ([0.0, 0.0, 0.0], 1, 2)
    """

    def __init__(self, X: np.ndarray, y: np.ndarray):
        self.X, self.y = X, y
        self.fits = 0
        self.hits = 0
        self._store: dict[tuple[bytes, bytes | None], tuple[np.ndarray, float]] = {}

    def fit(self, mask: np.ndarray, box: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """``(coefficients, objective)`` of the LAD fit of the rows where ``mask`` is True."""
        mask = np.asarray(mask, dtype=bool)
        key = (np.packbits(mask).tobytes(),
               None if box is None else np.asarray(box, dtype=float).tobytes())
        hit = self._store.get(key)
        if hit is None:
            hit = lad_fit(self.X[mask], self.y[mask], box)
            self._store[key] = hit
            self.fits += 1
        else:
            self.hits += 1
        return hit[0].copy(), hit[1]


def objective_of(X: np.ndarray, y: np.ndarray, labels: np.ndarray, K: int,
                 outlier_penalty: float | None, box: np.ndarray | None = None,
                 cache: LadCache | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Refit every cluster of ``labels`` (-1: outlier) by LAD (inside ``box`` when given),
    through ``cache`` (a :class:`LadCache` of the same ``X, y``) when given.

    Returns ``(coef K x p, per-cluster LAD objective, total objective)``; the total adds
    ``T`` per outlier.
    """
    p = X.shape[1]
    coef = np.zeros((K, p))
    lad = np.zeros(K)
    for k in range(K):
        m = labels == k
        if cache is None:
            coef[k], lad[k] = lad_fit(X[m], y[m], box)
        else:
            coef[k], lad[k] = cache.fit(m, box)
    n_out = int(np.sum(labels < 0))
    total = float(lad.sum()) + (0.0 if outlier_penalty is None else outlier_penalty * n_out)
    return coef, lad, total


def canonical_labels(labels: np.ndarray, K: int) -> np.ndarray:
    """Relabel clusters by first member (empty clusters last); -1 (outliers) kept."""
    out = np.full_like(labels, -1)
    order: list[int] = []
    for lab in labels:
        if lab >= 0 and lab not in order:
            order.append(int(lab))
    order += [k for k in range(K) if k not in order]
    for new, old in enumerate(order):
        out[labels == old] = new
    return out


def fill_empty(X: np.ndarray, y: np.ndarray, labels: np.ndarray, K: int,
               cache: LadCache | None = None) -> np.ndarray:
    """Give every empty cluster one row, never raising the objective: an outlier if any
    (its cost T becomes 0), else the worst-fitted member of the largest cluster (a
    one-row cluster costs 0 and refitting the donor on fewer rows cannot cost more)."""
    lab = labels.copy()
    while True:
        sizes = np.bincount(lab[lab >= 0], minlength=K)
        empty = np.flatnonzero(sizes == 0)
        if empty.size == 0:
            return lab
        if (lab < 0).any():
            lab[np.flatnonzero(lab < 0)[0]] = empty[0]
            continue
        donor = int(np.argmax(sizes))
        if sizes[donor] < 2:
            return lab
        member = lab == donor
        rows = np.flatnonzero(member)
        a, _ = lad_fit(X[rows], y[rows]) if cache is None else cache.fit(member)
        lab[rows[np.argmax(np.abs(y[rows] - X[rows] @ a))]] = empty[0]


def assign(R: np.ndarray, outlier_penalty: float | None, min_size: int | None) -> np.ndarray:
    """Rows to clusters for fixed lines: cheapest residual, outliers above T, sizes >= c."""
    n, K = R.shape
    if min_size is None:
        lab = np.argmin(R, axis=1)
        if outlier_penalty is not None:
            lab = np.where(R[np.arange(n), lab] > outlier_penalty, -1, lab)
        return lab
    import scipy.sparse as sp
    from scipy.optimize import Bounds, LinearConstraint, milp

    cost = R if outlier_penalty is None else np.column_stack([R, np.full(n, outlier_penalty)])
    C = cost.shape[1]
    rows_one = sp.kron(sp.eye(n), np.ones((1, C)))
    cols = sp.kron(np.ones((1, n)), sp.eye(C)).tocsr()[:K]
    cons = [LinearConstraint(rows_one, 1, 1), LinearConstraint(cols, min_size, np.inf)]
    res = milp(cost.ravel(), constraints=cons, integrality=np.ones(n * C),
               bounds=Bounds(0, 1))
    if res.x is None:  # pragma: no cover - feasible whenever K * min_size <= n
        return np.argmin(R, axis=1)
    lab = np.argmax(res.x.reshape(n, C), axis=1)
    return np.where(lab >= K, -1, lab)


def alternating(X: np.ndarray, y: np.ndarray, K: int, outlier_penalty: float | None = None,
                min_size: int | None = None, restarts: int = 10, max_iter: int = 50,
                random_state=None, deadline: float | None = None,
                cache: LadCache | None = None) -> tuple[np.ndarray, float]:
    """Best of ``restarts`` alternations; returns ``(labels, objective)`` (labels canonical,
    -1 for outliers).  Past ``deadline`` (a ``time.perf_counter()`` value) no further
    restart or iteration starts; the first iteration of the first restart always runs, so
    there is an assignment to return.  ``cache``: the solve's :class:`LadCache` (a fresh
    one when None)."""
    import time

    if cache is None:
        cache = LadCache(X, y)

    rng = np.random.default_rng(random_state)
    n, p = X.shape
    best_lab, best_obj = None, np.inf
    for _ in range(max(1, restarts)):
        if best_lab is not None and deadline is not None and time.perf_counter() > deadline:
            break
        A = np.empty((K, p))
        for k in range(K):
            B = rng.choice(n, size=min(p, n), replace=False)
            A[k] = np.linalg.lstsq(X[B], y[B], rcond=None)[0]
        lab, obj = None, np.inf
        for _ in range(max_iter):
            new = assign(np.abs(y[:, None] - X @ A.T), outlier_penalty, min_size)
            if lab is not None and np.array_equal(new, lab):
                break
            lab = new
            A, _, obj = objective_of(X, y, lab, K, outlier_penalty, cache=cache)
            if deadline is not None and time.perf_counter() > deadline:
                break
        if obj < best_obj - 1e-12:
            best_lab, best_obj = lab, obj
    # the first iteration of the first restart always runs and its objective is finite
    assert best_lab is not None
    lab = fill_empty(X, y, best_lab, K, cache)
    if not np.array_equal(lab, best_lab):
        best_obj = objective_of(X, y, lab, K, outlier_penalty, cache=cache)[2]
    return canonical_labels(lab, K), best_obj
