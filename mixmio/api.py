"""Front doors: the functions users call."""

from __future__ import annotations

import pandas as pd

from .design import build_design
from .problem.build import build_problem
from .results.lmer import MioLmerResult


def mio_lmer(formula: str, data: pd.DataFrame, k, *, k_fixed: int | None = None,
             ridge="auto", solver: str = "auto", time_limit: float | None = None,
             mip_gap: float = 1e-4, refit: bool = True, warm_start: bool = True,
             random_state=None, na_action: str = "drop", verbose: bool = False) -> MioLmerResult:
    """Fit a sparse mixed model: at most ``k`` non-zero cluster deviations per column.

    Minimises 1/2 ||y - X beta - Z gamma||^2 + ridge/2 ||gamma||^2 (plus ridge/2
    ||beta_selectable||^2 when ``k_fixed`` is set) subject to the ℓ0 caps.

    Parameters
    ----------
    formula : lme4 formula, e.g. ``"y ~ x + (1 + x | school)"``.
    data : DataFrame with the variables.
    k : int (caps every random-effect column) or dict keyed by column label
        (``{"1|school": 5, "x|school": 2}``).
    k_fixed : optional cap on the selectable fixed effects (the intercept is always in).
    ridge : ``"auto"`` (1e-4 x median column sum of squares of [X | Z]) or a positive number.
    solver : ``"auto"`` (open source, exact), ``"SCIP"``, ``"GUROBI"``, or any CVXPY
        mixed-integer solver.
    time_limit : seconds; when reached, the incumbent is returned with status ``time_limit``.
    mip_gap : relative gap under which a fit is called ``optimal``.
    refit : report the unpenalised least-squares refit on the selected support.

    Examples
    --------
    >>> import mixmio
    >>> data = mixmio.datasets.load("sleepstudy")
    >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, k=3)
    >>> fit.status
    'optimal'
    >>> sorted(fit.selected["level"])
    ['308', '309', '310']
    """
    from .solvers import solve

    if not isinstance(mip_gap, (int, float)) or not 0 <= mip_gap < 1:
        raise ValueError(f"mip_gap must be in [0, 1), got {mip_gap!r}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    design = build_design(formula, data, na_action=na_action)
    problem = build_problem(design, k, k_fixed=k_fixed, ridge=ridge)
    solution = solve(problem, solver=solver, time_limit=time_limit, mip_gap=mip_gap,
                     warm_start=warm_start, random_state=random_state, verbose=verbose)
    w = solution.w
    if refit:
        from .solvers.refit import refit_support

        w = refit_support(problem, w)
    return MioLmerResult(design, problem, solution, w, mip_gap, refit)
