"""Warm start, valid big-M, MILP, and an honest :class:`~mixmio.solvers.solution.Solution`.

The reported assignment is the better of the MILP's and the warm start's, each refitted by
LAD per cluster (so the objective is the exact CLR objective of the labels, never the MILP's
tolerance-blurred value).  ``best_bound`` is the MILP's dual bound (valid for the CLR problem
with the proven big-M; for the boxed model with ``big_m_kind == "box"``), never below 0.
All LAD fits of one solve share a :class:`~mixmio.solvers.clr.heuristic.LadCache`, so no cluster is
fitted twice.  The status is :func:`~mixmio.solvers.solution.certified_status` of the gap of
the *reported* objective (``optimal`` only when it is within ``mip_gap``; ``time_limit`` /
``gap_limit`` with a RuntimeWarning), or ``error`` (with a RuntimeWarning) when the MILP
solver failed and the gap is not within ``mip_gap``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping

import numpy as np

from mixmio import _runtime
from mixmio._runtime import user_stacklevel
from mixmio.problem.clr import (
    MAX_SUBSETS,
    ClrProblem,
    box_big_m,
    n_subsets,
    proven_big_m,
    unique_lines,
)
from mixmio.solvers.clr.heuristic import (
    LadCache,
    alternating,
    canonical_labels,
    fill_empty,
    objective_of,
)
from mixmio.solvers.clr.milp import (
    build_lines_model,
    build_model,
    labels_from,
    labels_from_lines,
    solve_gurobi,
    solve_highs,
    start_vector,
)
from mixmio.solvers.solution import Solution, certified_status, gap_scale, relative_gap

#: random restarts of the alternating warm start
RESTARTS = 10
#: the modelling box is this many times the warm start's largest |coefficient| per column
BOX_FACTOR = 10.0
FORMULATIONS = ("auto", "bigm", "lines")
#: ``formulation="auto"`` uses the lines model when n x (number of lines) is at most this
LINES_MAX = 300_000


def check_formulation(n: int, p: int, formulation: str) -> None:
    """Refuse, before any solve, a formulation that cannot be built."""
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {list(FORMULATIONS)}, got "
                         f"{formulation!r}")
    if formulation == "lines" and n_subsets(n, p) > MAX_SUBSETS:
        raise ValueError(f"formulation='lines' enumerates C(n, p) = {n_subsets(n, p)} "
                         f"candidate lines, more than {MAX_SUBSETS}; use 'bigm' or 'auto'")


def make_problem(X: np.ndarray, y: np.ndarray, n_clusters: int, outlier_penalty: float | None,
                 min_size: int | None, upper: float, warm_coef: np.ndarray,
                 symmetry_breaking: bool = True, formulation: str = "bigm",
                 cache: LadCache | None = None) -> ClrProblem:
    """The :class:`ClrProblem` with its big-M: proven when at most :data:`MAX_SUBSETS`
    p-subsets must be enumerated, else the stated coefficient box.  ``formulation``:
    ``"bigm"``, ``"lines"`` (needs the enumeration) or ``"auto"`` (lines when n x lines
    <= :data:`LINES_MAX`, counting the lines after duplicates are removed).  ``cache``: the
    solve's :class:`~mixmio.solvers.clr.heuristic.LadCache` (for the box's one-line fit)."""
    n, p = X.shape
    if n_subsets(n, p) <= MAX_SUBSETS:
        M, used, lines = proven_big_m(X, y, min_size, upper, return_lines=True)
        lines, removed = unique_lines(lines, X, y)
        use_lines = formulation == "lines" or (formulation == "auto"
                                               and n * len(lines) <= LINES_MAX)
        return ClrProblem(X, y, n_clusters, outlier_penalty, min_size, M, "proven", None,
                          symmetry_breaking, used, "lines" if use_lines else "bigm",
                          lines if use_lines else None, removed)
    check_formulation(n, p, formulation)
    cache = LadCache(X, y) if cache is None else cache
    one = cache.fit(np.ones(n, dtype=bool))[0]
    scale = np.max(np.abs(np.vstack([warm_coef, one[None, :]])), axis=0)
    box = BOX_FACTOR * np.where(scale > 0, scale, 1.0)
    return ClrProblem(X, y, n_clusters, outlier_penalty, min_size, box_big_m(X, y, box), "box",
                      box, symmetry_breaking, 0)


def solve_clr(X: np.ndarray, y: np.ndarray, n_clusters: int, *,
              outlier_penalty: float | None = None, min_size: int | None = None,
              solver: str = "auto", time_limit: float | None = None, mip_gap: float = 1e-4,
              random_state=None, verbose: bool = False, symmetry_breaking: bool = True,
              formulation: str = "auto", restarts: int = RESTARTS,
              highs_options: Mapping[str, object] | None = None
              ) -> tuple[ClrProblem, Solution]:
    """Solve (P1)/(P2) on arrays; returns the problem (with its big-M) and the Solution.

    ``formulation``: ``"bigm"`` ((P1)/(P2) with the proven big-M and, unless turned off,
    the symmetry-breaking rows), ``"lines"`` (the K-median model over basic lines) or
    ``"auto"`` (lines when small enough, else bigm); both are exact.  ``highs_options``:
    extra HiGHS options for this solve's MILP (experiments; checked before any work).

    ``Solution.w`` is the K x p coefficient matrix flattened by cluster; ``Solution.labels``
    (canonical, -1 for outliers), ``coef`` and ``lad`` (per-cluster objective) are typed
    fields; ``info`` holds the diagnostics ``warm_objective``, ``milp_objective``,
    ``lad_fits`` (LAD LPs solved) and ``duplicate_lines`` (duplicate candidate lines removed).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0, 10, 12)
    >>> y = np.where(np.arange(12) < 6, 1 + x, 20 - 2 * x)
    >>> X = np.column_stack([np.ones(12), x])
    >>> pr, sol = solve_clr(X, y, 2, random_state=0)
    >>> sol.status, round(sol.objective, 8), pr.big_m_kind, pr.formulation
    ('optimal', 0.0, 'proven', 'lines')
    """
    t0 = time.perf_counter()
    name = solver.lower()
    K = int(n_clusters)
    if highs_options:
        _check_highs_options(name, highs_options)
    if name == "gurobi" and _resolved(X.shape[0], X.shape[1], formulation) == "bigm":
        _gurobi_precheck(X.shape[0], X.shape[1], K, outlier_penalty is not None,
                         min_size is not None, symmetry_breaking)
    cache = LadCache(X, y)
    warm_lab, warm_obj = alternating(X, y, K, outlier_penalty, min_size, restarts,
                                     random_state=random_state,
                                     deadline=None if time_limit is None else t0 + time_limit,
                                     cache=cache)
    warm_coef, _, _ = objective_of(X, y, warm_lab, K, outlier_penalty, cache=cache)
    if name == "heuristic":
        pr = ClrProblem(X, y, K, outlier_penalty, min_size, np.zeros(len(y)), "none", None,
                        symmetry_breaking, 0, "none")
        return pr, _solution(pr, warm_lab, 0.0, "heuristic", "heuristic", t0, None,
                             "alternating warm start only (no bound)", warm_obj, np.nan,
                             mip_gap, cache)
    pr = make_problem(X, y, K, outlier_penalty, min_size, warm_obj, warm_coef,
                      symmetry_breaking, formulation, cache)
    if pr.coef_box is not None:
        warm_coef, _, warm_obj = objective_of(X, y, warm_lab, K, outlier_penalty, pr.coef_box,
                                              cache)
    if pr.formulation == "lines":
        model, start, decode = build_lines_model(pr), None, labels_from_lines
    else:
        model, decode = build_model(pr), labels_from
        start = start_vector(pr, warm_lab, warm_coef)
    rest = None if time_limit is None else time_limit - (time.perf_counter() - t0)
    label = f"{'gurobi' if name == 'gurobi' else 'highs'}-{pr.formulation}"
    if rest is not None and rest <= 0:
        return pr, _solution(pr, warm_lab, 0.0, "time_limit", label, t0, 0,
                             "time limit reached in the warm start", warm_obj, np.nan,
                             mip_gap, cache)
    if name == "gurobi":
        out = solve_gurobi(pr, model, start, rest, mip_gap, verbose, decode)
    else:
        out = solve_highs(pr, model, start, rest, mip_gap, verbose, decode,
                          highs_options=highs_options)
    labels = warm_lab
    if out.labels is not None:
        cand = canonical_labels(fill_empty(X, y, out.labels, K, cache), K)
        if objective_of(X, y, cand, K, outlier_penalty, pr.coef_box, cache)[2] <= warm_obj:
            labels = cand
    bound = out.bound if np.isfinite(out.bound) else 0.0
    status = {"optimal": "optimal", "time_limit": "time_limit"}.get(out.status, "error")
    if status == "error":
        bound = 0.0
    return pr, _solution(pr, labels, max(bound, 0.0), status, label, t0, out.nodes,
                         out.message, warm_obj, out.objective, mip_gap, cache)


def _check_highs_options(solver: str, options: Mapping[str, object]) -> None:
    """Refuse, before any work, extra HiGHS options for Gurobi or ones HiGHS refuses."""
    if solver not in ("auto", "highs"):
        raise ValueError(f"highs_options apply to solver='auto' / 'highs', not {solver!r}")
    import highspy

    h = _runtime.highs()
    h.silent()
    for key, value in options.items():
        if h.setOptionValue(key, value) != highspy.HighsStatus.kOk:
            raise ValueError(f"HiGHS refused the option {key}={value!r}")


def _resolved(n: int, p: int, formulation: str) -> str:
    """The formulation ``make_problem`` will build, as far as it is known up front."""
    if formulation != "auto":
        return formulation
    enumerable = n_subsets(n, p) <= MAX_SUBSETS
    return "lines" if enumerable and n * n_subsets(n, p) <= LINES_MAX else (
        "bigm" if not enumerable else "auto")


def _gurobi_precheck(n: int, p: int, K: int, outliers: bool, min_size: bool, sb: bool
                     ) -> None:
    """Refuse, before the warm start, a (P1)/(P2) model a size-limited Gurobi cannot take."""
    from mixmio.solvers.clr.milp import (
        GUROBI_PIP_LIMIT,
        GurobiLicenceError,
        bigm_size,
        gurobi_size_limited,
        licence_message,
    )

    n_vars, n_rows = bigm_size(n, p, K, outliers, min_size, sb)
    if max(n_vars, n_rows) > GUROBI_PIP_LIMIT and gurobi_size_limited():
        raise GurobiLicenceError(licence_message(n_vars, n_rows))


def _solution(pr: ClrProblem, labels: np.ndarray, bound: float, status: str, solver: str,
              t0: float, nodes: int | None, message: str, warm_obj: float, milp_obj: float,
              mip_gap: float, cache: LadCache) -> Solution:
    """The Solution of ``labels`` (refitted through ``cache``) with the proven ``bound``.

    ``status`` is the search's outcome: ``heuristic`` (kept), ``optimal`` / ``time_limit``
    (certified: :func:`certified_status` of the reported objective's gap) or ``error`` (the
    MILP solver failed: ``error`` with a RuntimeWarning unless the gap is within
    ``mip_gap``)."""
    timed_out = status == "time_limit"
    coef, lad, obj = objective_of(pr.X, pr.y, labels, pr.n_clusters, pr.outlier_penalty,
                                  pr.coef_box, cache)
    bound = min(bound, obj)
    gap = relative_gap(obj, bound, gap_scale(pr))
    who = f"mio_clr ({solver})"
    if status == "error" and gap > mip_gap:
        msg = (f"the MILP failed ({message}); the best assignment found is returned with "
               f"relative gap {gap:.3g}")
        warnings.warn(f"{who}: {msg}", RuntimeWarning, stacklevel=user_stacklevel())
        message = msg
    elif status != "heuristic":
        status, cert = certified_status(gap, mip_gap, status == "time_limit", who)
        message = f"{message}; {cert}"
    info = {"warm_objective": warm_obj, "milp_objective": milp_obj, "lad_fits": cache.fits,
            "duplicate_lines": pr.duplicate_lines}
    return Solution(w=coef.ravel(), objective=obj, best_bound=bound, status=status,
                    solver=solver, solve_time=time.perf_counter() - t0, nodes=nodes,
                    message=message, info=info, labels=labels, coef=coef, lad=lad,
                    timed_out=timed_out, gap_scale=gap_scale(pr))
