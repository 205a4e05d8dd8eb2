"""The front door: ``mio_clr``."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from mixmio._checks import as_frame, check_bool, check_int, check_random_state, check_solve_args
from mixmio.results.clr import MioClrResult
from mixmio.solvers.clr import solve as _solve
from mixmio.solvers.clr.solve import FORMULATIONS, solve_clr
from mixmio.solvers.engines import CLR_SOLVERS as SOLVERS


def mio_clr(formula: str, data: pd.DataFrame, n_clusters: int, *,
            outlier_penalty: float | None = None, min_size: int | None = None,
            solver: str = "auto", time_limit: float | None = None, mip_gap: float = 1e-4,
            random_state: int | np.random.Generator | None = None, na_action: str = "drop",
            verbose: bool = False,
            formulation: str = "auto", symmetry_breaking: bool = True) -> MioClrResult:
    """Clusterwise least-absolute-deviations regression with unknown clusters.

    Splits the rows into ``n_clusters`` groups and fits one LAD line per group, minimising
    the total absolute deviation of every row to its own group's line: the MILP (P1) of
    Zhu, Li & Kong (2012), or (P2) when ``outlier_penalty`` T is given (a row may instead be
    flagged as an outlier at cost T).  The big-M is proven valid (see
    :mod:`mixmio.problem.clr`), so ``status == "optimal"`` certifies the clusterwise
    optimum itself; the warm start is a k-means-style alternation with random restarts.
    The same argument gives an exact big-M-free model, the choice of K "basic" lines (a
    K-median problem, :mod:`mixmio.solvers.clr.milp`), which ``formulation="auto"`` uses when the
    candidate lines are few (n = 36, one covariate: 630 lines; proven in seconds where (P1)
    can take minutes).

    Parameters
    ----------
    formula : a formula without random terms (``"y ~ x"``, ``"y ~ x1 + x2"``); every
        cluster gets all its columns.
    data : DataFrame with the variables.
    n_clusters : K, between 1 and the number of rows.
    outlier_penalty : T > 0 for (P2) (rows whose best absolute residual would exceed T are
        flagged); None for (P1).
    min_size : smallest cluster size c (``n_clusters * min_size`` must not exceed n).
    solver : ``"auto"`` / ``"highs"`` (HiGHS MILP, open source), ``"gurobi"`` (optional;
        its pip licence stops at 2,000 variables and constraints), ``"heuristic"`` (the warm
        start alone, no bound).
    time_limit : seconds for the whole fit; when reached the best assignment is returned
        with status ``time_limit``, its proven gap and a RuntimeWarning.
    mip_gap : relative gap under which a fit is called ``optimal``.
    random_state : seed of the warm start's restarts (a proven optimum does not depend on
        it; its labels may differ only between tied optima).
    na_action : ``"drop"`` or ``"raise"`` for rows with missing values.
    verbose : print the MILP solver's log.
    formulation : ``"auto"`` (``"lines"`` when n x C(n, p) <= 300,000, else ``"bigm"``),
        ``"bigm"`` ((P1)/(P2) of the paper) or ``"lines"``.  ``fit.solver`` says which ran.
    symmetry_breaking : add the symmetry-breaking rows to (P1)/(P2) (clusters numbered by
        first member); off only for comparisons.

    Returns a :class:`~mixmio.results.clr.MioClrResult`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mixmio import mio_clr
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0, 10, 16)
    >>> g = np.arange(16) % 2
    >>> df = pd.DataFrame({"x": x, "y": np.where(g == 0, 1 + 2 * x, 30 - 3 * x)
    ...                    + rng.normal(0, 0.1, 16)})
    >>> fit = mio_clr("y ~ x", df, n_clusters=2, random_state=0)
    >>> fit.status, fit.sizes.tolist()
    ('optimal', [8, 8])
    >>> fit.coef.round(0).abs().to_numpy().tolist()
    [[1.0, 2.0], [30.0, 3.0]]
    """
    data = as_frame(data)
    name, random_state = _check_clr_args(solver, formulation, time_limit, mip_gap, random_state,
                                         verbose, outlier_penalty, symmetry_breaking,
                                         n_clusters, min_size)
    design, X, y = _clr_design(formula, data, na_action, n_clusters, min_size)
    _solve.check_formulation(design.n_obs, X.shape[1], formulation)
    problem, solution = solve_clr(
        X, y, int(n_clusters), outlier_penalty=None if outlier_penalty is None
        else float(outlier_penalty), min_size=None if min_size is None else int(min_size),
        solver=name, time_limit=time_limit, mip_gap=mip_gap, random_state=random_state,
        verbose=verbose, symmetry_breaking=bool(symmetry_breaking), formulation=formulation)
    # time_limit, gap_limit and error were warned about by solve_clr (certified_status)
    return MioClrResult.from_solution(design, problem, solution, mip_gap=mip_gap)


def _check_clr_args(solver, formulation, time_limit, mip_gap, random_state, verbose,
                    outlier_penalty, symmetry_breaking, n_clusters, min_size) -> tuple:
    """mio_clr's arguments checked before any design is built: ``(solver name, random
    state)``."""
    check_solve_args(mip_gap, time_limit)
    random_state = check_random_state(random_state)
    check_bool("verbose", verbose)
    name = str(solver).lower()
    if name not in SOLVERS:
        raise ValueError(f"solver must be one of {list(SOLVERS)}, got {solver!r}")
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {list(FORMULATIONS)}, got "
                         f"{formulation!r}")  # checked again with n and p below
    if name == "gurobi":
        try:
            import gurobipy  # noqa: F401
        except ImportError as exc:
            raise ValueError("solver='gurobi' needs gurobipy installed; use solver='auto' "
                             "(HiGHS)") from exc
    if outlier_penalty is not None and (
            isinstance(outlier_penalty, bool) or not isinstance(outlier_penalty, numbers.Real)
            or not np.isfinite(outlier_penalty)  # type: ignore[call-overload]  # a Real
            or outlier_penalty <= 0):
        raise ValueError(f"outlier_penalty must be a positive number or None, got "
                         f"{outlier_penalty!r}")
    check_bool("symmetry_breaking", symmetry_breaking)
    check_int("n_clusters", n_clusters)
    check_int("min_size", min_size, none_ok=True)
    return name, random_state


def _clr_design(formula: str, data: pd.DataFrame, na_action: str, n_clusters: int,
                min_size: int | None) -> tuple:
    """The fixed-effects design and its checks against the cluster count and size:
    ``(design, X, y minus the offset)``."""
    from mixmio.design import build_design

    design = build_design(formula, data, na_action=na_action)
    if design.blocks:
        raise ValueError(f"mio_clr fits fixed-effects formulas only; remove the random "
                         f"term(s) {[str(b.term) for b in design.blocks]} (the clusters are "
                         "what the fit finds)")
    n = design.n_obs
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be between 1 and the number of rows ({n}), got "
                         f"{n_clusters}")
    if min_size is not None and min_size < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size}")
    if min_size is not None and n_clusters * min_size > n:
        raise ValueError(f"min_size={min_size} is infeasible: n_clusters * min_size = "
                         f"{n_clusters * min_size} exceeds the number of rows ({n})")
    X = design.X.to_numpy(dtype=float)
    if X.shape[1] == 0:
        raise ValueError(f"the formula {formula!r} has no columns: each cluster's line needs "
                         "at least an intercept (remove '0 +' / '- 1', or add a covariate)")
    return design, X, design.y - design.offset
