"""mio_glmer's stages, shared by its path and cross-validation (:mod:`mixmio.api.glmer_tuning`):
the checked settings, the prepared design, the GlmmProblem of one cap, and one fit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixmio._checks import check_bool, check_random_state, check_ridge, check_solve_args
from mixmio.problem import family as fam
from mixmio.problem.glmer import GlmmProblem
from mixmio.problem.glmer_checks import check_response, check_separation, resolve_weights
from mixmio.results.glmer import MioGlmerResult
from mixmio.solvers.glmer.solve import check_glmer_solver, solve_glmm

if TYPE_CHECKING:
    from mixmio.api._lmer import LmerPrepared
    from mixmio.design import Design


@dataclass(frozen=True)
class GlmerPrepared:
    """What a mio_glmer fit builds before its caps are known (shared by every fit of a path
    over k): mio_lmer's prepared design, the checked response, trials / weights, offset and
    the ridge value."""

    lmer: LmerPrepared
    family: str
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    ridge: float
    n_weight_dropped: int
    weights_given: bool

    @property
    def design(self) -> Design:
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
    from mixmio.api._lmer import lmer_prepare

    wser, data, n_weight_na = resolve_weights(weights, data, na_action)
    lmer = lmer_prepare(formula, data, na_action, constraints)
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
    from mixmio.api._lmer import lmer_problem

    lin = dict(k_fixed=None, ridge=prepared.ridge)
    linear = lmer_problem(prepared.lmer, k, lin,
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
    return MioGlmerResult.from_solution(prepared.design, problem, solution,
                                        mip_gap=settings["mip_gap"],
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
