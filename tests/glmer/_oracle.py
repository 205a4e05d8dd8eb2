"""Independent oracle for the GLMM solvers (no mixmio solver or family code).

- :func:`support_minimum`: the minimum of the penalised GLMM objective

      F(w) = sum_i l_i(eta_i) + ridge/2 ||w_penalized||^2,  eta = X beta + Z gamma + offset,

  with w restricted to the columns of a mask (the uncapped columns always in), by a damped
  Newton method with a backtracking line search on dense arrays, the losses written here
  from the formulas (binomial: n log(1 + e^eta) - y eta - n H(y/n); poisson:
  w (e^eta - y eta - y + y log y)).  Converged to a Newton decrement of 1e-13 relative, so
  the value agrees with any other exact fit to far better than 1e-8.
- :func:`brute_force`: the exact optimum over every feasible pattern.  A support S is
  allowed when some indicator vector z >= S satisfies the caps and the indicator rows
  (allowed supports are the downward closure of the feasible z).  With sign caps, the optimum
  w* is the unconstrained minimiser on its own support (near w*, every w on that support
  keeps w*'s signs, so it is a local and hence global minimiser of the convex restriction),
  so the optimum is the least value over allowed supports whose unconstrained minimiser
  satisfies the sign caps; a support whose minimiser breaks them is covered by its subsets.
- :func:`small_problem`: simulated data through ``mixmio.build_design`` and
  ``mixmio.problem.build.build_problem`` (plus compiled holistic constraints), as a
  GlmmProblem.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["support_minimum", "brute_force", "small_problem", "feasible_z", "allowed_supports"]


# ---------------------------------------------------------------------------------------------
# losses (written from the formulas, not imported)
# ---------------------------------------------------------------------------------------------
def _xlogx(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    out = np.zeros_like(a)
    pos = a > 0
    out[pos] = a[pos] * np.log(a[pos])
    return out


def _constant(family: str, y: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The saturated negative log-likelihood per row, subtracted so each loss is >= 0 and
    zero at eta = link(y / n): binomial n H(y / n), poisson w (y - y log y)."""
    if family == "binomial":
        return _xlogx(n) - _xlogx(y) - _xlogx(n - y)
    return n * (y - _xlogx(y))


def _softplus(eta: np.ndarray) -> np.ndarray:
    return np.maximum(eta, 0.0) + np.log1p(np.exp(-np.abs(eta)))


def _sigmoid(eta: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(eta))
    return np.where(eta >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _loss_terms(family, eta, y, n, const):
    """(value, first, second derivative) per row."""
    if family == "binomial":
        p = _sigmoid(eta)
        return n * _softplus(eta) - y * eta - const, n * p - y, n * p * (1.0 - p)
    mu = np.exp(eta)
    return n * (mu - y * eta) - const, n * (mu - y), n * mu


def objective(problem, w: np.ndarray) -> float:
    """F(w) computed here (the oracle's own evaluation)."""
    D = _dense(problem)
    eta = D @ w + problem.offset
    const = _constant(problem.family, problem.y, problem.weights)
    val = _loss_terms(problem.family, eta, problem.y, problem.weights, const)[0]
    pen = np.asarray(problem.penalized, dtype=bool)
    return float(np.sum(val)) + 0.5 * problem.ridge * float(w[pen] @ w[pen])


def _dense(problem) -> np.ndarray:
    Z = problem.Z
    Zd = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z)
    return np.hstack([np.asarray(problem.X, dtype=float), Zd])


def _capped_mask(problem) -> np.ndarray:
    mask = np.zeros(problem.X.shape[1] + problem.Z.shape[1], dtype=bool)
    for c in problem.caps:
        mask[np.asarray(c.index, dtype=int)] = True
    return mask


# ---------------------------------------------------------------------------------------------
# the per-support fit
# ---------------------------------------------------------------------------------------------
def _newton(D, y, n, off, const, family, ridge_diag, tol=1e-13, max_iter=200):
    """Minimise sum l(D v + off) + 1/2 v' diag(ridge_diag) v by damped Newton."""
    d = D.shape[1]
    v = np.zeros(d)

    def f(v):
        eta = D @ v + off
        return float(np.sum(_loss_terms(family, eta, y, n, const)[0])) + 0.5 * float(
            ridge_diag @ (v * v))

    fv = f(v)
    for _ in range(max_iter):
        eta = D @ v + off
        _, g1, g2 = _loss_terms(family, eta, y, n, const)
        grad = D.T @ g1 + ridge_diag * v
        H = (D * g2[:, None]).T @ D + np.diag(ridge_diag)
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, grad, rcond=None)[0]
        dec = float(grad @ step)  # Newton decrement squared
        if dec <= tol * max(1.0, abs(fv)):
            return v, fv, True
        t = 1.0
        while t > 1e-12:
            v_new = v - t * step
            f_new = f(v_new)
            if f_new <= fv - 0.25 * t * dec:
                break
            t *= 0.5
        else:
            return v, fv, dec <= 1e-9 * max(1.0, abs(fv))
        v, fv = v_new, f_new
    return v, fv, False


def support_minimum(problem, mask) -> tuple[float, np.ndarray]:
    """(min F, w) with w_j = 0 outside ``mask`` (bool over w; uncapped columns always in)."""
    mask = np.asarray(mask, dtype=bool) | ~_capped_mask(problem)
    cols = np.flatnonzero(mask)
    D = _dense(problem)[:, cols]
    pen = np.asarray(problem.penalized, dtype=bool)[cols]
    const = _constant(problem.family, problem.y, problem.weights)
    v, fv, ok = _newton(D, np.asarray(problem.y, float), np.asarray(problem.weights, float),
                        np.asarray(problem.offset, float), const, problem.family,
                        problem.ridge * pen.astype(float))
    if not ok:
        raise RuntimeError("oracle Newton fit did not converge (separation?)")
    w = np.zeros(mask.size)
    w[cols] = v
    return fv, w


# ---------------------------------------------------------------------------------------------
# enumeration
# ---------------------------------------------------------------------------------------------
def _patterns(c: int) -> np.ndarray:
    """(2^c, c) bool matrix: row b is the binary expansion of b."""
    b = np.arange(2 ** c)
    return ((b[:, None] >> np.arange(c)[None, :]) & 1).astype(bool)


def feasible_z(problem) -> tuple[np.ndarray, np.ndarray]:
    """(capped indices, bool vector over 2^c patterns: pattern feasible as z)."""
    cap = np.flatnonzero(_capped_mask(problem))
    c = cap.size
    if c > 14:
        raise ValueError(f"brute force over {c} indicators is too large (at most 14)")
    P = _patterns(c)
    pos = -np.ones(problem.X.shape[1] + problem.Z.shape[1], dtype=int)
    pos[cap] = np.arange(c)
    ok = np.ones(P.shape[0], dtype=bool)
    for cs in problem.caps:
        ok &= P[:, pos[np.asarray(cs.index, int)]].sum(axis=1) <= cs.k
    for row in problem.constraints:
        lhs = P[:, pos[np.asarray(row.index, int)]].astype(float) @ np.asarray(row.coef, float)
        if row.sense == "<=":
            ok &= lhs <= row.rhs + 1e-9
        elif row.sense == ">=":
            ok &= lhs >= row.rhs - 1e-9
        else:
            ok &= np.abs(lhs - row.rhs) <= 1e-9
    return cap, ok


def allowed_supports(problem) -> tuple[np.ndarray, np.ndarray]:
    """(capped indices, bool over 2^c patterns: some feasible z contains the pattern)."""
    cap, ok = feasible_z(problem)
    allowed = ok.copy()
    idx = np.arange(allowed.size)
    for b in range(cap.size):
        without = (idx >> b) & 1 == 0
        allowed[without] |= allowed[idx[without] | (1 << b)]
    return cap, allowed


def _signs_ok(problem, w: np.ndarray) -> bool:
    for sc in problem.sign_caps:
        v = w[np.asarray(sc.index, int)]
        if np.count_nonzero(v > 0) > sc.k_pos or np.count_nonzero(v < 0) > sc.k_neg:
            return False
    return True


def brute_force(problem) -> tuple[float, np.ndarray]:
    """(optimal value, optimal support mask over w) by enumeration (see the module).

    Raises ValueError when no pattern is feasible."""
    cap, allowed = allowed_supports(problem)
    P = _patterns(cap.size)
    n_coef = problem.X.shape[1] + problem.Z.shape[1]
    best, best_mask = np.inf, None
    for b in np.flatnonzero(allowed):
        mask = np.zeros(n_coef, dtype=bool)
        mask[cap[P[b]]] = True
        val, w = support_minimum(problem, mask)
        if problem.sign_caps and not _signs_ok(problem, w):
            continue
        if val < best:
            best, best_mask = val, mask
    if best_mask is None:
        raise ValueError("no feasible pattern")
    return best, best_mask


# ---------------------------------------------------------------------------------------------
# simulated problems
# ---------------------------------------------------------------------------------------------
def small_problem(family: str, formula: str, n_clusters: int, rows: int, k, seed: int,
                  offset: bool = False, weights: bool = False, ridge=1.0, constraints=(),
                  k_fixed=None):
    """A GlmmProblem on simulated data.

    Columns: ``y`` (successes or counts), ``x``, ``x2`` (covariates), ``g`` (``n_clusters``
    levels ``g0, g1, ...``, ``rows`` rows each), ``h`` (a crossed factor with
    ``max(2, n_clusters // 2)`` levels ``h0, ...``), ``off`` (offset values).  Half of the
    g clusters deviate in intercept and in the slope of x, alternating signs; h has small
    effects.  ``offset=True`` adds ``+ offset(off)`` to the formula; ``weights=True`` draws
    binomial trials in 1..6 (poisson: prior weights in [0.5, 2]).  ``constraints``: holistic
    constraint objects, compiled as mio_lmer compiles them; ``k_fixed``: a fixed-effects cap.
    """
    from mixmio import build_design
    from mixmio.problem.build import build_problem
    from mixmio.problem.glmer import GlmmProblem

    rng = np.random.default_rng(seed)
    n = n_clusters * rows
    g = np.repeat(np.arange(n_clusters), rows)
    nh = max(2, n_clusters // 2)
    h = rng.integers(0, nh, size=n)
    x = rng.normal(size=n)
    x2 = rng.normal(size=n)
    dev = np.zeros(n_clusters)
    dev[::2] = np.where(np.arange(0, n_clusters, 2) % 4 == 0, 1.0, -1.0)
    slope = np.zeros(n_clusters)
    slope[1::2] = np.where(np.arange(1, n_clusters, 2) % 4 == 1, 0.8, -0.8)
    heff = 0.4 * rng.normal(size=nh)
    off = rng.uniform(-0.5, 0.5, size=n) if offset else np.zeros(n)
    eta = 0.5 * x - 0.3 * x2 + dev[g] + slope[g] * x + heff[h] + off
    if family == "binomial":
        trials = rng.integers(1, 7, size=n) if weights else np.ones(n, dtype=int)
        y = rng.binomial(trials, 1.0 / (1.0 + np.exp(-eta)))
        wts = trials.astype(float)
    elif family == "poisson":
        y = rng.poisson(np.exp(0.5 + eta))
        wts = rng.uniform(0.5, 2.0, size=n) if weights else np.ones(n)
    else:
        raise ValueError(family)
    data = pd.DataFrame({"y": y.astype(float), "x": x, "x2": x2,
                         "g": [f"g{i}" for i in g], "h": [f"h{i}" for i in h], "off": off})
    if offset:
        formula = formula + " + offset(off)"
    design = build_design(formula, data)
    base = build_problem(design, k, k_fixed=k_fixed, ridge=ridge)
    if constraints or k_fixed is not None:
        from dataclasses import replace

        from mixmio.problem.holistic.compile import check_constraints, compile_constraints

        fixed_cap = next((c for c in base.caps if c.label == "fixed effects"), None)
        compiled = compile_constraints(
            check_constraints(constraints), design,
            fixed_selectable=None if fixed_cap is None else fixed_cap.index, k_fixed=k_fixed,
            caps=base.caps, auto_groups=k_fixed is not None, context="mio_lmer")
        base = replace(base, constraints=compiled.rows)
    return GlmmProblem(base, family, np.asarray(design.y, float), wts,
                       np.asarray(design.offset, float))
