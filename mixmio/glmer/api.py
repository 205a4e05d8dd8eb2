"""mio_glmer: l0-capped cluster selection in generalised linear mixed models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._validate import (
    as_frame,
    check_bool,
    check_choice,
    check_random_state,
    check_ridge,
    check_solve_args,
)
from ..holistic.constraints import Constraint
from . import family as fam
from ._checks import check_family, check_response, check_separation, resolve_weights
from .problem import GlmmProblem
from .result import MioGlmerResult
from .solve import check_glmer_solver, solve_glmm

__all__ = ["mio_glmer", "glmer_auto_ridge"]


def mio_glmer(formula: str, data: pd.DataFrame, k, family: str = "binomial", *,
              weights: str | Sequence[float] | np.ndarray | None = None,
              ridge: float | str = "auto", solver: str = "auto",
              time_limit: float | None = None, mip_gap: float = 1e-4, na_action: str = "drop",
              random_state: int | np.random.Generator | None = None, verbose: bool = False,
              constraints: Sequence[Constraint] | Constraint = ()) -> MioGlmerResult:
    """Sparse generalised linear mixed model: at most ``k`` clusters deviate, certified.

    Minimises  deviance / 2 + ridge / 2 ||gamma||^2  over the fixed effects beta (free) and
    the cluster effects gamma, with ``eta = X beta + Z gamma + offset`` on the canonical link
    (logit, log), subject to the caps on the number of non-zero cluster effects.  Clusters
    not selected have effect exactly 0; ``status`` is ``optimal`` only with a proven
    relative gap <= ``mip_gap``.

    Parameters
    ----------
    formula : lme4 formula, e.g. ``"y ~ x + (1 | hospital)"`` or
        ``"infections ~ offset(np.log(predicted)) + (1 | hospital)"``; random intercepts
        and slopes (``(1 + x | g)``, ``(0 + x | g)``), several terms.
    data : DataFrame (or dict of columns).
    k : the cap: an int for every random-effect column, or a dict per column label
        (``{"1|g": 5, "x|g": 2}``), a pair ``(above, below)`` for an asymmetric cap.
    family : ``"binomial"`` (logit link; 0/1 response, or a proportion with ``weights`` the
        trials, as in lme4's glmer) or ``"poisson"`` (log link; counts).
    weights : trials (binomial) or prior weights (poisson): a column name or one positive
        value per row of ``data``.
    ridge : ``"auto"`` (1e-4 x the median Fisher information of a random-effect column at the
        intercept-only fit, see :func:`glmer_auto_ridge`) or a positive number.
    solver : ``"auto"`` (the exact random-intercept branch and bound when it applies, else
        SCIP), ``"engine"``, ``"SCIP"`` or ``"heuristic"``.
    time_limit : seconds (None: no limit); a fit stopped by it has status ``time_limit``
        and reports its gap.
    mip_gap : relative gap proven at ``optimal``.
    na_action : ``"drop"`` (drop rows with missing values, counted in ``n_dropped``) or
        ``"raise"``.
    random_state : seed of the heuristic's random steps.
    verbose : progress lines from the search.
    constraints : ``ForceInclude`` / ``Exclude`` of named clusters, ``JointClusterSelection``.

    Returns a :class:`~mixmio.glmer.result.MioGlmerResult`.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 25)
    >>> eta = -1 + np.where(g < 2, 2.0, 0.0)
    >>> df = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "g": g})
    >>> fit = mixmio.mio_glmer("y ~ 1 + (1 | g)", df, k=2, family="binomial")
    >>> fit.status, sorted(fit.selected["level"])
    ('optimal', ['0', '1'])
    """
    from ..api import _lmer_prepare, _lmer_problem

    data = as_frame(data)
    family = check_family(family)
    check_choice("na_action", na_action, ("drop", "raise"))
    check_solve_args(mip_gap, time_limit)
    check_bool("verbose", verbose)
    check_ridge(ridge, positive=True)
    solver = check_glmer_solver(solver)
    random_state = check_random_state(random_state)
    wser, data, n_weight_na = resolve_weights(weights, data, na_action)
    prepared = _lmer_prepare(formula, data, na_action, constraints)
    design = prepared.design
    w = None if wser is None else wser.loc[design.row_index].to_numpy()
    y, trials = check_response(family, design.y, w, design.row_index, design.spec.response)
    X = design.X.to_numpy(dtype=float)
    check_separation(family, X, y, trials, list(design.X.columns))
    if ridge == "auto":
        ridge = glmer_auto_ridge(family, X, design.Z, y, trials, design.offset)
    settings = dict(k_fixed=None, ridge=float(ridge), solver="auto", time_limit=None,
                    mip_gap=mip_gap, refit=False, warm_start=True, random_state=random_state,
                    verbose=verbose)
    base = _lmer_problem(prepared, k, settings)
    problem = GlmmProblem(base, family, y, trials, np.asarray(design.offset, dtype=float))
    solution = solve_glmm(problem, solver=solver, time_limit=time_limit, mip_gap=mip_gap,
                          random_state=random_state, verbose=verbose)
    return MioGlmerResult(design, problem, solution, solution.w, mip_gap, False,
                          n_weight_dropped=n_weight_na,
                          weights_given=weights is not None)


def glmer_auto_ridge(family: str, X: np.ndarray, Z, y: np.ndarray, w: np.ndarray,
                     offset: np.ndarray) -> float:
    """1e-4 x the median over random-effect columns c of the Fisher information
    sum_i Z_ic^2 l''_i(eta0_i), at eta0 the intercept-only fit with the offset (a 1-D Newton).

    The GLM analogue of mio_lmer's 1e-4 x median column sum of squares (the information of a
    Gaussian column with unit variance): it scales with the data the way the likelihood does.
    """
    a = _intercept_only(family, y, w, offset)
    _, h = fam.derivatives(family, a + offset, y, w)
    info = np.asarray(Z.multiply(Z).T @ h).ravel()
    info = info[info > 0]
    return 1e-4 * float(np.median(info)) if info.size else 1e-4


def _intercept_only(family: str, y, w, offset, iters: int = 100) -> float:
    """The intercept a minimising sum_i l_i(a + offset_i) (clamped away from the boundary
    when every response is 0, or every one at the trials)."""
    tot, n = float(np.sum(y)), float(np.sum(w))
    frac = min(max(tot / n, 1e-6), 1 - 1e-6) if family == "binomial" else max(tot, 1e-6)
    if family == "poisson":
        return float(np.log(frac / np.sum(w * np.exp(offset))))
    a = float(np.log(frac / (1 - frac))) - float(np.median(offset))
    ys = np.clip(y, 1e-6 * w, w - 1e-6 * w)
    for _ in range(iters):
        g, h = fam.derivatives(family, a + offset, ys, w)
        step = float(np.sum(g)) / max(float(np.sum(h)), 1e-300)
        a -= step
        if abs(step) < 1e-12 * max(1.0, abs(a)):
            break
    return a

