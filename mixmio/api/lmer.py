"""Front door: :func:`mio_lmer`, the sparse linear mixed model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixmio._checks import as_frame
from mixmio.api import _lmer
from mixmio.errors import ArgumentError

if TYPE_CHECKING:
    from mixmio.problem.holistic.constraints import Constraint
    from mixmio.results.lmer import MioLmerResult


def mio_lmer(formula: str, data: pd.DataFrame,
             k: int | Mapping[str, int | tuple[int, int]] | str,
             *, k_fixed: int | None = None, ridge: float | str = "auto", solver: str = "auto",
             time_limit: float | None = None, mip_gap: float = 1e-4, refit: bool = True,
             warm_start: bool = True, random_state: int | np.random.Generator | None = None,
             na_action: str = "drop", verbose: bool = False,
             constraints: Sequence[Constraint] | Constraint = ()) -> MioLmerResult:
    """Fit a sparse mixed model: at most ``k`` non-zero cluster deviations per column.

    Minimises 1/2 ||y - X beta - Z gamma||^2 + ridge/2 ||gamma||^2 (plus ridge/2
    ||beta_selectable||^2 when ``k_fixed`` is set) subject to the ℓ0 caps.

    Parameters
    ----------
    formula : lme4 formula, e.g. ``"y ~ x + (1 + x | school)"``.
    data : DataFrame with the variables.
    k : int (caps every random-effect column) or dict keyed by column label
        (``{"1|school": 5, "x|school": 2}``); a pair ``(worst, best)`` is an asymmetric cap:
        at most ``worst`` positive and ``best`` negative deviations
        (``{"1|hospital": (3, 0)}`` flags only clusters above the population); or ``"cv"``:
        choose it by 5-fold cluster-blocked cross-validation over the default grid
        (:func:`mixmio.cv_lmer`), return the refit at the chosen cap with the CV table in
        ``fit.cv_result``.
    k_fixed : optional cap on the selectable fixed effects (the intercept is always in).
    ridge : ``"auto"`` (1e-4 x median column sum of squares of [X | Z]) or a positive number.
    solver : ``"auto"`` (exact: mixmio's own engines where they apply, else a CVXPY model
        solved by Gurobi when its licence allows the model's size and by SCIP otherwise; no
        commercial licence is needed), ``"SCIP"``, ``"GUROBI"``, or another installed CVXPY
        solver that handles mixed-integer quadratic programs.
    time_limit : seconds; when reached, the incumbent is returned with status ``time_limit``
        and its proven gap (``None``: no limit).
    mip_gap : relative gap under which a fit is called ``optimal``.
    verbose : print the search's progress (time, nodes, incumbent, gap every 2 s for the
        branch and bound; the solver's log for CVXPY backends) to stderr.
    refit : report the unpenalised least-squares refit on the selected support (kept
        penalised when the refit would break an asymmetric cap's signs).
    warm_start : also run the discrete first-order heuristic for a first incumbent (the
        engines run their own structure-aware heuristics in any case).
    random_state : seed of the heuristics' random restarts: None, an int, or a numpy
        ``Generator`` (drawn from once for a seed); the exact result does not depend on it,
        a heuristic or time-limited one may.
    na_action : ``"drop"`` (drop rows with a missing value in a variable the formula uses,
        counted in ``fit.design.n_dropped``) or ``"raise"``.
    constraints : holistic constraints (:mod:`mixmio.holistic`): ``ForceInclude`` /
        ``Exclude`` (columns with ``k_fixed``, or ``clusters={"school": ["S12"]}``),
        ``JointClusterSelection(term)``, and with ``k_fixed`` ``GroupSparsity``,
        ``CorrelationLimit``, ``Transforms``, ``Robust``.  The dummies of a factor form a
        group by default when ``k_fixed`` is set.  Problems with constraints are solved by the
        CVXPY backend (``fit.solver`` says which engine ran).

    Examples
    --------
    >>> import mixmio
    >>> data = mixmio.datasets.load("sleepstudy")
    >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, k=3)
    >>> fit.status
    'optimal'
    >>> sorted(fit.selected["level"])
    ['309', '310', '337']
    """
    if isinstance(k, str):
        if k != "cv":
            raise ArgumentError(f"k must be an int, a dict of caps or 'cv', got {k!r}")
        from mixmio.api.cv import cv_lmer

        cv = cv_lmer(formula, data, k_fixed=k_fixed, ridge=ridge, solver=solver,
                     time_limit=time_limit, mip_gap=mip_gap, refit=refit,
                     warm_start=warm_start, random_state=random_state, na_action=na_action,
                     verbose=verbose, constraints=constraints)
        assert cv.fit is not None  # cv_lmer always refits at k_best
        return cv.fit
    data = as_frame(data)
    settings = _lmer.lmer_settings(k_fixed=k_fixed, ridge=ridge, solver=solver,
                                   time_limit=time_limit, mip_gap=mip_gap, refit=refit,
                                   warm_start=warm_start, random_state=random_state,
                                   verbose=verbose)
    prepared = _lmer.lmer_prepare(formula, data, na_action, constraints)
    return _lmer.lmer_fit(prepared, k, settings)
