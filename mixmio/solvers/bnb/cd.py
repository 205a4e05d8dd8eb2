"""Exact fits on a fixed support with an optional l1 term and sign bounds.

``fit_quadratic(A, b, l1, lo, hi)`` minimises ``1/2 w'Aw - b'w + sum l1_j |w_j|`` subject to
``lo <= w <= hi`` (A symmetric positive definite).  Coordinates with no l1 weight and no bound
are profiled out exactly (Schur complement); the rest are solved by cyclic coordinate descent
(numba) to a tight tolerance.  Used by polish, the constrained heuristic and the subset engine.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

try:  # numba is optional: fall back to a Python loop
    from numba import njit
except ImportError:  # pragma: no cover
    def njit(*a, **k):  # type: ignore[no-redef]  # the no-numba stand-in
        def wrap(f):
            return f
        return wrap if not (a and callable(a[0])) else a[0]


@njit(cache=True)
def _cd_loop(A, b, l1, lo, hi, w, max_sweeps, tol):  # pragma: no cover - compiled
    n = A.shape[0]
    g = A @ w - b  # gradient of the smooth part
    for _ in range(max_sweeps):
        dmax = 0.0
        wmax = 0.0
        for j in range(n):
            ajj = A[j, j]
            if ajj <= 0.0:
                continue
            old = w[j]
            t = ajj * old - g[j]  # b_j - sum_{i != j} A_ji w_i
            if t > l1[j]:
                new = (t - l1[j]) / ajj
            elif t < -l1[j]:
                new = (t + l1[j]) / ajj
            else:
                new = 0.0
            if new < lo[j]:
                new = lo[j]
            if new > hi[j]:
                new = hi[j]
            d = new - old
            if d != 0.0:
                w[j] = new
                for i in range(n):
                    g[i] += A[i, j] * d
                ad = abs(d)
                if ad > dmax:
                    dmax = ad
            aw = abs(new)
            if aw > wmax:
                wmax = aw
        if dmax <= tol * (1.0 + wmax):
            break
    return w


def fit_quadratic(A: np.ndarray, b: np.ndarray, l1: np.ndarray | None = None,
                  lo: np.ndarray | None = None, hi: np.ndarray | None = None,
                  w0: np.ndarray | None = None, tol: float = 1e-12,
                  max_sweeps: int = 20000) -> np.ndarray:
    """Minimiser of 1/2 w'Aw - b'w + l1'|w| on the box [lo, hi] (see module docstring)."""
    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    n = b.size
    if n == 0:
        return np.zeros(0)
    l1 = np.zeros(n) if l1 is None else np.asarray(l1, dtype=float)
    lo = np.full(n, -np.inf) if lo is None else np.asarray(lo, dtype=float)
    hi = np.full(n, np.inf) if hi is None else np.asarray(hi, dtype=float)
    smooth = (l1 <= 0) & ~np.isfinite(lo) & ~np.isfinite(hi)
    if np.all(smooth):
        return _solve(A, b)
    P = np.flatnonzero(smooth)
    N = np.flatnonzero(~smooth)
    if P.size:
        App = A[np.ix_(P, P)]
        Apn = A[np.ix_(P, N)]
        try:
            cf = sla.cho_factor(App, check_finite=False)
            sol = lambda r: sla.cho_solve(cf, r, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            pinv = np.linalg.pinv(App, hermitian=True)
            sol = lambda r: pinv @ r
        K = sol(np.column_stack([Apn, b[P]]))
        Ared = A[np.ix_(N, N)] - Apn.T @ K[:, :-1]
        bred = b[N] - Apn.T @ K[:, -1]
    else:
        Ared, bred = A[np.ix_(N, N)], b[N]
    Ared = 0.5 * (Ared + Ared.T)
    wn = np.zeros(N.size) if w0 is None else np.clip(np.asarray(w0, float)[N], lo[N], hi[N])
    wn = _cd_loop(np.ascontiguousarray(Ared), np.ascontiguousarray(bred),
                  np.ascontiguousarray(l1[N]), np.ascontiguousarray(lo[N]),
                  np.ascontiguousarray(hi[N]), np.ascontiguousarray(wn), max_sweeps, tol)
    w = np.zeros(n)
    w[N] = wn
    if P.size:
        w[P] = K[:, -1] - K[:, :-1] @ wn
    return w


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        cf = sla.cho_factor(A, check_finite=False)
        w = sla.cho_solve(cf, b, check_finite=False)
        if np.all(np.isfinite(w)):
            return w
    except (np.linalg.LinAlgError, ValueError):
        pass
    return sla.lstsq(A, b, check_finite=False)[0]


_CONTROLLER = None


def single_thread(user_api: str | None = "blas"):
    """Context manager limiting BLAS (``user_api=None``: every thread pool) to one thread.

    Small dense algebra in tight loops runs much faster that way, above all on a loaded
    machine; a no-op without threadpoolctl.  The library scan (a read of the process's memory
    map, ~3 ms) is done once per process; later calls only set and restore the limits.
    """
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api=user_api)
