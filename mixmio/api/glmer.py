"""mio_glmer: l0-capped cluster selection in generalised linear mixed models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mixmio._checks import as_frame, check_choice
from mixmio.api._glmer import glmer_fit, glmer_prepare, glmer_settings
from mixmio.problem.glmer_checks import check_family
from mixmio.problem.holistic.constraints import Constraint
from mixmio.results.glmer import MioGlmerResult

__all__ = ["mio_glmer"]


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

        cv = cv_glmer(formula, data, family=family, weights=weights, ridge=ridge,
                      solver=solver, time_limit=time_limit, mip_gap=mip_gap,
                      na_action=na_action, random_state=random_state, verbose=verbose,
                      constraints=constraints)
        assert isinstance(cv.fit, MioGlmerResult)  # cv_glmer always refits at k_best
        return cv.fit
    data = as_frame(data)
    family = check_family(family)
    check_choice("na_action", na_action, ("drop", "raise"))
    settings = glmer_settings(ridge=ridge, solver=solver, time_limit=time_limit,
                              mip_gap=mip_gap, random_state=random_state, verbose=verbose)
    prepared = glmer_prepare(formula, data, family, weights, na_action, constraints,
                             settings["ridge"])
    return glmer_fit(prepared, k, settings)
