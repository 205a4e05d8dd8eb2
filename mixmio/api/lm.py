"""Front door: :func:`mio_lm`, best-subset (holistic) linear regression."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixmio._checks import as_frame, check_bool, check_random_state, check_ridge, check_solve_args
from mixmio.design import build_design
from mixmio.inference.significance import significance_loop
from mixmio.problem.build import build_lm_problem
from mixmio.results.lm import MioLmResult

if TYPE_CHECKING:
    from mixmio.problem.holistic.constraints import Constraint


def mio_lm(formula: str, data: pd.DataFrame, k: int | None, *,
           constraints: Sequence[Constraint] | Constraint = (), ridge: float | str = "auto",
           solver: str = "auto", time_limit: float | None = None, mip_gap: float = 1e-4,
           random_state: int | np.random.Generator | None = None, na_action: str = "drop",
           refit: bool | str = "auto", warm_start: bool = True,
           verbose: bool = False) -> MioLmResult:
    """Best-subset (holistic) linear regression: at most ``k`` selected columns.

    Minimises 1/2 RSS + ridge/2 ||beta_selectable||^2 (+ Gamma ||beta||_1 under ``Robust``)
    subject to ``||beta_selectable||_0 <= k`` and the constraints.  The intercept is always in,
    unpenalised, and does not count toward ``k``; a cap counts columns (a factor's dummies,
    grouped by default, count as their number).

    Parameters
    ----------
    formula : a formula without random terms (``"y ~ x1 + x2 + f"``).
    k : the cap (``None``: no cap, i.e. every selectable column, or ``k_max`` when the
        constraints allow fewer).
    constraints : holistic constraints (``GroupSparsity``, ``CorrelationLimit``,
        ``ForceInclude``, ``Exclude``, ``Transforms``, ``Robust``, ``Significance``).
    ridge : ``"auto"`` (1e-4 x median column sum of squares) or a number >= 0.
    solver : ``"auto"`` (the exact subset engine when it applies, else CVXPY/SCIP),
        ``"subset"``, ``"heuristic"``, ``"SCIP"``, ``"GUROBI"``, ...
    refit : ``"auto"`` (least squares on the support unless ``Robust`` with gamma > 0),
        True or False.
    data, time_limit, mip_gap, random_state, na_action, warm_start, verbose : as in
        :func:`mio_lmer`.

    Returns a :class:`mixmio.results.lm.MioLmResult`.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame(rng.normal(size=(200, 5)), columns=list("abcde"))
    >>> df["y"] = df.a + df.b + rng.normal(size=200)
    >>> fit = mixmio.mio_lm("y ~ a + b + c + d + e", df, k=2,
    ...                     constraints=[mixmio.ForceInclude(["e"])])
    >>> sorted(fit.selected), fit.status
    (['a', 'e'], 'optimal')
    """
    from mixmio.problem.holistic.compile import check_constraints
    from mixmio.solvers import solve

    data = as_frame(data)
    kw = _lm_settings(ridge, solver, time_limit, mip_gap, random_state, refit, warm_start,
                      verbose)
    cons = check_constraints(constraints)
    design, problem, compiled = _lm_problem(formula, data, k, ridge, cons, na_action)
    if refit == "auto":
        refit = compiled.gamma == 0
    rounds: list = []
    if compiled.significance is not None:
        problem, solution, rounds, _ = significance_loop(problem, compiled.significance, kw,
                                                         refit=bool(refit),
                                                         names=list(design.X.columns))
    else:
        solution = solve(problem, **kw)
    return MioLmResult.from_solution(design, problem, solution, mip_gap=mip_gap,
                                     refit=bool(refit), constraints=cons, rounds=rounds,
                                     compiled=compiled)


def _lm_settings(ridge, solver, time_limit, mip_gap, random_state, refit, warm_start,
                 verbose) -> dict:
    """mio_lm's arguments checked (before any design is built), as the solve settings."""
    check_solve_args(mip_gap, time_limit)
    if not (isinstance(refit, str) and refit == "auto"):
        check_bool("refit", refit)
    check_bool("warm_start", warm_start)
    check_bool("verbose", verbose)
    check_ridge(ridge)
    random_state = check_random_state(random_state)
    return dict(solver=solver, time_limit=time_limit, mip_gap=mip_gap, warm_start=warm_start,
                random_state=random_state, verbose=verbose)


def _lm_problem(formula: str, data: pd.DataFrame, k, ridge, cons: tuple, na_action: str):
    """The design, the Problem (cap and compiled constraints) and the compiled constraints."""
    from mixmio.problem.holistic.compile import apply_transforms, compile_constraints

    formula2, tmap = apply_transforms(formula, data, cons)
    design = build_design(formula2, data, na_action=na_action)
    problem = build_lm_problem(design, k, ridge=ridge)
    compiled = compile_constraints(cons, design, fixed_selectable=problem.caps[0].index,
                                   k_fixed=None if k is None else problem.caps[0].k,
                                   caps=problem.caps, auto_groups=True, transforms=tmap,
                                   context="mio_lm")
    if k is None and compiled.k_max is not None and compiled.k_max < problem.caps[0].k:
        # no cap asked: the largest support the constraints allow
        problem = replace(problem, caps=(replace(problem.caps[0], k=int(compiled.k_max)),))
    if compiled.rows or compiled.l1 is not None:
        problem = replace(problem, constraints=compiled.rows, l1=compiled.l1)
    return design, problem, compiled
