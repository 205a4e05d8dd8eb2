"""Separation check and valid coefficient bounds (the big-M of the OA master).

Why the bounds are valid (the M argument)
-----------------------------------------
Let U be the value of a feasible point (the warm start), so every optimal beta* has
F(beta*) <= U.  Let b be the fit on *all* columns, H = hess F(b) (with the ridge),
g = grad F(b) (~0).  The logistic loss l(t) = log(1 + e^t) - y t has |l'''| <= l'',
so along any direction d the function s -> F(b + s d) is generalised self-concordant with
constant t = max_i |x_i'd| (Bach 2010, Prop. 1; the ridge part has no third derivative), which
gives the global lower bound

    F(b + d) >= F(b) + g'd + d'Hd (e^{-t} + t - 1) / t^2.

With q = d'Hd: t <= c sqrt(q) for c = max_i ||x_i||_{H^-1}, and g'd >= -a sqrt(q) for
a = ||g||_{H^-1}; (e^{-t} + t - 1)/t^2 decreases in t, so F(b + d) <= U forces
psi(sqrt q) <= U - F(b) with psi(r) = (e^{-cr} + cr - 1)/c^2 - a r, i.e. sqrt(q) <= r_max
(found by bisection).  Then |d_j| <= r_max sqrt((H^-1)_jj), so

    lo_j = min(0, b_j - r_max sqrt((H^-1)_jj)),   hi_j = max(0, b_j + r_max sqrt((H^-1)_jj))

bound beta*_j on every support: the bound holds on the whole level set {F <= U} of the
unconstrained problem, which contains every k-sparse optimum (0 is added so that z = 0 stays
feasible).  They are widened by 1% + 1e-6 (1 + |b_j|) against rounding.  No guess is
involved.  With excluded columns (``Exclude``) "all columns" means the candidate columns
(``GlmProblem.candidates``): the argument runs in their subspace, which holds every feasible
beta, and the excluded columns get lo = hi = 0.  U is the value of a *feasible* support, so
the constrained optimum is in the level set too.  The bound needs the full fit to exist:
no (quasi-)complete separation on the full design (Albert & Anderson 1984), or a
ridge > 0.  A direction separating on a support separates on the full design, so without
separation the MLE is finite on every support too.

Without a ridge, a separated design has no finite bound: :func:`check_separation` raises
:class:`~mixmio.solvers.glm.logistic.SeparationError` before any solve, naming the columns of a
separating direction (pass ``ridge="auto"`` or a positive ridge then).
"""

from __future__ import annotations

import numpy as np

from mixmio import _runtime
from mixmio.problem.glm import GlmProblem
from mixmio.solvers.glm.logistic import SeparationError, fit_support

__all__ = ["check_separation", "coefficient_bounds"]


def check_separation(problem: GlmProblem, cols: np.ndarray | None = None,
                     deadline: float | None = None) -> None:
    """Raise :class:`SeparationError` when some d != 0 has s_i x_i'd >= 0 for every row
    (complete or quasi-complete separation on the columns ``cols``, default every column a
    support may use: all but the excluded ones) and the problem has no ridge.

    LP: maximise sum_i s_i x_i'd subject to s_i x_i'd >= 0, -1 <= d <= 1 (HiGHS).  The
    design has full column rank (checked by the design stage), so a positive optimum is a
    separating direction and a zero optimum proves there is none.
    """
    if problem.ridge > 0:
        return
    import highspy

    cols = problem.candidates if cols is None else np.asarray(cols, dtype=int)
    if cols.size == 0:
        return
    X = problem.X[:, cols]
    # separation does not depend on the columns' units: scale each to max |x| = 1, so the
    # box on d and the threshold below do not favour large-unit columns
    X = X / np.maximum(np.max(np.abs(X), axis=0), 1e-300)
    S = X * (2.0 * problem.y - 1.0)[:, None]
    h = highs()
    if deadline is not None and np.isfinite(deadline):
        import time

        h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 1e-3))
    inf = highspy.kHighsInf
    p = cols.size
    h.addVars(p, np.full(p, -1.0), np.full(p, 1.0))
    h.changeColsCost(p, np.arange(p), -S.sum(axis=0))
    _add_dense_rows(h, S, np.zeros(S.shape[0]), np.full(S.shape[0], inf))
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        import warnings

        from mixmio._runtime import user_stacklevel

        warnings.warn("mio_glm: the separation check was inconclusive (HiGHS status "
                      f"{h.getModelStatus()}); the fit goes on, and a "
                      "separated support shows up as a failed fit or an open gap",
                      RuntimeWarning, stacklevel=user_stacklevel())
        return
    value = -h.getInfo().objective_function_value
    scale = float(np.sum(np.max(np.abs(X), axis=1)))
    if value > 1e-7 * max(1.0, scale):
        d = np.asarray(h.getSolution().col_value)
        names = [problem.names[j] if j < len(problem.names) else str(j) for j in cols]
        separating = [names[j] for j in np.flatnonzero(np.abs(d) > 1e-6)]
        raise SeparationError(
            "the classes are (quasi-)completely separated by a combination of the columns "
            f"{separating}: the maximum-likelihood estimate is infinite on supports that contain "
            "them, and no finite bound on the coefficients can be proven. Pass ridge='auto' "
            "(a small ridge on the selectable columns, reported in the summary) or a positive "
            "ridge, or remove the separating columns.", separating)


def coefficient_bounds(problem: GlmProblem, upper: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds ``lo <= beta*_j <= hi`` valid for every beta with F(beta) <= ``upper`` (so for
    every optimal beta* when ``upper`` is the value of a feasible point), from the
    self-concordance of the logistic loss (module docstring: the M argument).

    Returns ``(lo, hi)`` with lo <= 0 <= hi; raises :class:`SeparationError` when the full
    fit does not exist (no ridge and separated classes).
    """
    pr = problem
    cols = pr.candidates  # every column without constraints; excluded ones stay at 0
    b, val, ok = fit_support(cols, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized)
    if not ok:
        raise SeparationError("the fit on all columns did not converge (the classes are "
                              "separated or nearly so); no finite coefficient bound can be "
                              "proven. Pass ridge='auto' or a positive ridge.")
    from scipy.special import expit

    mu = expit(pr.X @ b + pr.offset)
    Xc = pr.X[:, cols]
    pen = pr.penalized[cols]
    bc = b[cols]
    H = (Xc * (mu * (1 - mu))[:, None]).T @ Xc
    H[np.diag_indices_from(H)] += pr.ridge * pen
    g = Xc.T @ (mu - pr.y) + pr.ridge * np.where(pen, bc, 0.0)
    Hinv = np.linalg.inv(H)
    Hinv = 0.5 * (Hinv + Hinv.T)
    a = float(np.sqrt(max(g @ Hinv @ g, 0.0)))            # ||grad||_{H^-1}
    c = float(np.sqrt(np.max(np.sum((Xc @ Hinv) * Xc, axis=1))))  # max ||x_i||_{H^-1}
    delta = max(float(upper) - val, 0.0)
    r = radius(a, c, delta)
    half = r * np.sqrt(np.maximum(np.diag(Hinv), 0.0))
    widen = 1.01 * half + 1e-6 * (1.0 + np.abs(bc))
    lo = np.zeros(pr.p)
    hi = np.zeros(pr.p)
    lo[cols] = np.minimum(bc - widen, 0.0)
    hi[cols] = np.maximum(bc + widen, 0.0)
    return lo, hi


def radius(a: float, c: float, delta: float) -> float:
    """Largest r >= 0 with (e^{-cr} + cr - 1)/c^2 - a r <= delta (a bisection on a convex
    function that is 0 at 0 and grows like r/c; needs a < 1/c)."""
    if c <= 0:
        return np.sqrt(2.0 * delta) + 2.0 * a
    if a * c >= 1.0:
        raise SeparationError("the full fit's gradient is too large to bound the coefficients "
                              "(the fit did not converge); pass ridge='auto' or a positive ridge")
    psi = lambda r: (np.expm1(-c * r) + c * r) / (c * c) - a * r - delta
    lo_r, hi_r = 0.0, 1.0
    while psi(hi_r) <= 0:
        hi_r *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo_r + hi_r)
        if psi(mid) <= 0:
            lo_r = mid
        else:
            hi_r = mid
    return hi_r


def highs():

    h = _runtime.highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    return h


def _add_dense_rows(h, A: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
    m, p = A.shape
    starts = (np.arange(m) * p).astype(np.int32)
    idx = np.tile(np.arange(p, dtype=np.int32), m)
    h.addRows(m, lower, upper, m * p, starts, idx, A.ravel().astype(float))
