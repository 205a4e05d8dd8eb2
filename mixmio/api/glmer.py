"""mio_glmer: l0-capped cluster selection in generalised linear mixed models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mixmio._checks import (
    as_frame,
    check_bool,
    check_choice,
    check_random_state,
    check_ridge,
    check_solve_args,
)
from mixmio.problem import family as fam
from mixmio.problem.glmer import GlmmProblem
from mixmio.problem.glmer_checks import (
    check_family,
    check_response,
    check_separation,
    resolve_weights,
)
from mixmio.problem.holistic.constraints import Constraint
from mixmio.results.glmer import MioGlmerResult
from mixmio.solvers.glmer.solve import check_glmer_solver, solve_glmm

__all__ = ["mio_glmer", "glmer_auto_ridge", "GlmerPrepared", "glmer_settings", "glmer_prepare",
           "glmer_problem", "glmer_fit"]


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
        (``{"1|g": 5, "x|g": 2}``), a pair ``(above, below)`` for an asymmetric cap, or
        ``"cv"``: chosen by :func:`mixmio.cv_glmer` (5-fold cluster-blocked CV over the seed
        paper's grid), the fit's ``cv_result`` holding the CV.
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

    Returns a :class:`~mixmio.results.glmer.MioGlmerResult`.

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
    if isinstance(k, str) and k == "cv":
        from mixmio.api.glmer_tuning import cv_glmer

        return cv_glmer(formula, data, family=family, weights=weights, ridge=ridge,
                        solver=solver, time_limit=time_limit, mip_gap=mip_gap,
                        na_action=na_action, random_state=random_state, verbose=verbose,
                        constraints=constraints).fit
    data = as_frame(data)
    family = check_family(family)
    check_choice("na_action", na_action, ("drop", "raise"))
    settings = glmer_settings(ridge=ridge, solver=solver, time_limit=time_limit,
                              mip_gap=mip_gap, random_state=random_state, verbose=verbose)
    prepared = glmer_prepare(formula, data, family, weights, na_action, constraints,
                             settings["ridge"])
    return glmer_fit(prepared, k, settings)


@dataclass(frozen=True)
class GlmerPrepared:
    """What a mio_glmer fit builds before its caps are known (shared by every fit of a path
    over k): mio_lmer's prepared design, the checked response, trials / weights, offset and
    the ridge value."""

    lmer: object  # mixmio.api.lmer._LmerPrepared
    family: str
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    ridge: float
    n_weight_dropped: int
    weights_given: bool

    @property
    def design(self):
        return self.lmer.design


def glmer_settings(*, ridge="auto", solver="auto", time_limit=None, mip_gap=1e-4,
                   random_state=None, verbose=False) -> dict:
    """mio_glmer's solve settings, checked before any design is built."""
    check_solve_args(mip_gap, time_limit)
    check_bool("verbose", verbose)
    check_ridge(ridge, positive=True)
    return dict(ridge=ridge, solver=check_glmer_solver(solver), time_limit=time_limit,
                mip_gap=mip_gap, random_state=check_random_state(random_state),
                verbose=verbose)


def glmer_prepare(formula: str, data: pd.DataFrame, family: str, weights, na_action: str,
                  constraints, ridge) -> GlmerPrepared:
    """Design, response checks, separation check and ridge of a mio_glmer fit."""
    from mixmio.api.lmer import _lmer_prepare

    wser, data, n_weight_na = resolve_weights(weights, data, na_action)
    lmer = _lmer_prepare(formula, data, na_action, constraints)
    design = lmer.design
    w = None if wser is None else wser.loc[design.row_index].to_numpy()
    y, trials = check_response(family, design.y, w, design.row_index, design.spec.response)
    X = design.X.to_numpy(dtype=float)
    offset = np.asarray(design.offset, dtype=float)
    check_separation(family, X, y, trials, list(design.X.columns))
    if ridge == "auto":
        ridge = glmer_auto_ridge(family, X, design.Z, y, trials, offset)
    return GlmerPrepared(lmer, family, y, trials, offset, float(ridge), n_weight_na,
                         weights is not None)


def glmer_problem(prepared: GlmerPrepared, k, base: GlmmProblem | None = None
                  ) -> GlmmProblem:
    """The GlmmProblem of one cap ``k`` (``base``: a problem of the same design whose arrays
    are reused, so an engine's per-cluster caches survive a path over k)."""
    from mixmio.api.lmer import _lmer_problem

    lin = dict(k_fixed=None, ridge=prepared.ridge)
    linear = _lmer_problem(prepared.lmer, k, lin,
                           base=None if base is None else base.base)
    if base is not None:
        return GlmmProblem(linear, prepared.family, base.y, base.weights, base.offset)
    return GlmmProblem(linear, prepared.family, prepared.y, prepared.weights,
                       prepared.offset)


def glmer_fit(prepared: GlmerPrepared, k, settings: dict, base: GlmmProblem | None = None,
              warm=None) -> MioGlmerResult:
    """Solve one cap on a prepared design (``warm``: a previous Solution or support mask)."""
    problem = glmer_problem(prepared, k, base)
    solution = solve_glmm(problem, solver=settings["solver"],
                          time_limit=settings["time_limit"], mip_gap=settings["mip_gap"],
                          warm=warm, random_state=settings["random_state"],
                          verbose=settings["verbose"])
    return MioGlmerResult(prepared.design, problem, solution, solution.w,
                          settings["mip_gap"], False,
                          n_weight_dropped=prepared.n_weight_dropped,
                          weights_given=prepared.weights_given)


def glmer_auto_ridge(family: str, X: np.ndarray, Z, y: np.ndarray, w: np.ndarray,
                     offset: np.ndarray) -> float:
    """1e-4 x the median over random-effect columns c of the Fisher information
    sum_i Z_ic^2 l''_i(eta0_i), at eta0 the intercept-only fit with the offset (a 1-D Newton).

    The GLM analogue of mio_lmer's 1e-4 x median column sum of squares (the information of a
    Gaussian column with unit variance): it scales with the data the way the likelihood does.
    """
    a = fam.intercept_only(family, y, w, offset)
    _, h = fam.derivatives(family, a + offset, y, w)
    info = np.asarray(Z.multiply(Z).T @ h).ravel()
    info = info[info > 0]
    return 1e-4 * float(np.median(info)) if info.size else 1e-4

