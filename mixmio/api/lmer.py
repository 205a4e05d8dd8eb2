"""Front doors: the functions users call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixmio._checks import as_frame, check_bool, check_random_state, check_ridge, check_solve_args
from mixmio._runtime import user_stacklevel
from mixmio.design import build_design
from mixmio.errors import ArgumentError
from mixmio.problem import LinearConstraint
from mixmio.problem.build import build_lm_problem, build_problem, resolve_caps, split_sign_caps
from mixmio.results.lm import MioLmResult, condition_number

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

        return cv_lmer(formula, data, k_fixed=k_fixed, ridge=ridge, solver=solver,
                       time_limit=time_limit, mip_gap=mip_gap, refit=refit,
                       warm_start=warm_start, random_state=random_state, na_action=na_action,
                       verbose=verbose, constraints=constraints).fit
    data = as_frame(data)
    settings = _lmer_settings(k_fixed=k_fixed, ridge=ridge, solver=solver,
                              time_limit=time_limit, mip_gap=mip_gap, refit=refit,
                              warm_start=warm_start, random_state=random_state,
                              verbose=verbose)
    prepared = _lmer_prepare(formula, data, na_action, constraints)
    return _lmer_fit(prepared, k, settings)


@dataclass(frozen=True)
class _LmerPrepared:
    """What a mio_lmer fit builds before its caps are known: the checked constraints, the
    transform map and the design (shared by every fit of a path over k)."""

    design: object
    cons: tuple
    tmap: object


def _lmer_settings(*, k_fixed=None, ridge="auto", solver="auto", time_limit=None,
                   mip_gap=1e-4, refit=True, warm_start=True, random_state=None,
                   verbose=False) -> dict:
    """mio_lmer's solve settings, checked (before any design is built)."""
    check_solve_args(mip_gap, time_limit)
    check_bool("refit", refit)
    check_bool("warm_start", warm_start)
    check_bool("verbose", verbose)
    check_ridge(ridge, positive=True)
    return dict(k_fixed=k_fixed, ridge=ridge, solver=solver, time_limit=time_limit,
                mip_gap=mip_gap, refit=refit, warm_start=warm_start,
                random_state=check_random_state(random_state), verbose=verbose)


def _lmer_prepare(formula: str, data: pd.DataFrame, na_action: str,
                  constraints) -> _LmerPrepared:
    from mixmio.problem.holistic.compile import apply_transforms, check_constraints

    cons = check_constraints(constraints)
    formula2, tmap = apply_transforms(formula, data, cons)
    design = build_design(formula2, data, na_action=na_action)
    return _LmerPrepared(design, cons, tmap)


def _lmer_problem(prepared: _LmerPrepared, k, settings: dict, base=None):
    """The Problem of one cap ``k``.  ``base``: a Problem of the same design whose arrays are
    reused (so the engines' per-cluster statistics, cached per array, are built once)."""
    from mixmio.problem.holistic.compile import compile_constraints

    design, cons, k_fixed = prepared.design, prepared.cons, settings["k_fixed"]
    if base is not None and not cons and k_fixed is None and base.is_plain \
            and not split_sign_caps(k)[1]:
        # only the caps change (a path over k): the same arrays and structure, new CapSets
        caps = resolve_caps(design, k)
        return replace(base, caps=tuple(replace(c, k=caps[c.label]) for c in base.caps))
    ridge = settings["ridge"] if base is None else base.ridge
    problem = build_problem(design, k, k_fixed=k_fixed, ridge=ridge)
    if base is not None:
        problem = replace(problem, X=base.X, Z=base.Z, y=base.y, terms=base.terms)
    if cons or k_fixed is not None:
        fixed_cap = next((c for c in problem.caps if c.label == "fixed effects"), None)
        compiled = compile_constraints(
            cons, design, fixed_selectable=None if fixed_cap is None else fixed_cap.index,
            k_fixed=k_fixed, caps=problem.caps, auto_groups=k_fixed is not None,
            transforms=prepared.tmap, context="mio_lmer")
        if compiled.significance is not None:
            raise ValueError("Significance is supported by mio_lm and holistic_regression only")
        if compiled.rows or compiled.l1 is not None:
            problem = replace(problem, constraints=compiled.rows, l1=compiled.l1)
    return problem


def _lmer_fit(prepared: _LmerPrepared, k, settings: dict, base=None,
              warm=None) -> MioLmerResult:
    """Solve one cap on a prepared design (``warm``: a previous Solution or support mask)."""
    from mixmio.solvers import solve

    problem = _lmer_problem(prepared, k, settings, base=base)
    solution = solve(problem, solver=settings["solver"], time_limit=settings["time_limit"],
                     mip_gap=settings["mip_gap"], warm_start=settings["warm_start"],
                     random_state=settings["random_state"], verbose=settings["verbose"],
                     warm=warm)
    _raise_if_no_solution(solution)
    w = solution.w
    if settings["refit"]:
        from mixmio.results.refit import refit_if_feasible
        from mixmio.solvers.bnb.cd import single_thread

        # O(n p) products and p x p algebra: a spinning BLAS worker only slows them down
        with single_thread():
            w = refit_if_feasible(problem, w, z=solution.z)
    return MioLmerResult(prepared.design, problem, solution, w, settings["mip_gap"],
                         settings["refit"])


def mio_lm(formula: str, data: pd.DataFrame, k: int | None,
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
    from mixmio.problem.holistic.compile import (
        apply_transforms,
        check_constraints,
        compile_constraints,
    )
    from mixmio.solvers import solve

    data = as_frame(data)
    check_solve_args(mip_gap, time_limit)
    if not (isinstance(refit, str) and refit == "auto"):
        check_bool("refit", refit)
    check_bool("warm_start", warm_start)
    check_bool("verbose", verbose)
    check_ridge(ridge)
    random_state = check_random_state(random_state)
    cons = check_constraints(constraints)
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
    if refit == "auto":
        refit = compiled.gamma == 0
    kw = dict(solver=solver, time_limit=time_limit, mip_gap=mip_gap, warm_start=warm_start,
              random_state=random_state, verbose=verbose)
    rounds: tuple = ()
    if compiled.significance is not None:
        problem, solution, rounds, _ = significance_loop(problem, compiled.significance, kw,
                                                         refit=bool(refit),
                                                         names=list(design.X.columns))
    else:
        solution = solve(problem, **kw)
    _raise_if_no_solution(solution)
    names = list(design.X.columns)
    for r in rounds:
        r["columns"] = [names[j] for j in r["support"]]
    w = solution.w
    if refit:
        from mixmio.results.refit import refit_if_feasible

        w = refit_if_feasible(problem, w, z=solution.z)
    shrunk = [names[j] for j in sorted(_forced_columns(problem)) if j < len(names) and w[j] == 0]
    if shrunk:
        import warnings

        warnings.warn(f"forced-in column(s) {shrunk} have estimate exactly 0"
                      + (f" (the l1 penalty of Robust(gamma={compiled.gamma:g}) shrinks them "
                         "to 0)" if compiled.gamma > 0 else ""), stacklevel=user_stacklevel())
    return MioLmResult(design, problem, solution, w, mip_gap, bool(refit), compiled.k_max,
                       cons, tuple(rounds), compiled)


def pairs_bootstrap(problem, S: np.ndarray, B: int, rng, refit: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs-bootstrap draws of the estimator on the support: the always-in columns plus ``S``.

    ``refit=True`` bootstraps least squares on those columns (what ``mio_lm`` reports with a
    refit); ``refit=False`` bootstraps the problem's own penalised estimator on them (the ridge
    on penalised columns and the l1 term of ``Robust``), which is what is reported without one.
    Returns ``(columns, draws)`` with draws B x len(columns).
    """
    from mixmio.solvers.bnb.cd import fit_quadratic

    free = np.setdiff1d(np.arange(problem.p), problem.caps[0].index)
    cols = np.concatenate([free, S]).astype(int)
    X = problem.X[:, cols]
    y = problem.y
    n = X.shape[0]
    pen = problem.ridge * np.asarray(problem.penalized, dtype=float)[cols]
    l1 = None if problem.l1 is None else np.asarray(problem.l1, dtype=float)[cols]
    est = np.empty((B, cols.size))
    for b in range(B):
        idx = rng.integers(0, n, n)
        Xb, yb = X[idx], y[idx]
        if refit:
            est[b] = np.linalg.lstsq(Xb, yb, rcond=None)[0]
        else:
            est[b] = fit_quadratic(Xb.T @ Xb + np.diag(pen), Xb.T @ yb, l1)
    return cols, est


def _insignificant(cols: np.ndarray, est: np.ndarray, S: np.ndarray, alpha: float) -> list[int]:
    """Columns of ``S`` whose percentile interval of the draws covers 0."""
    lo = np.quantile(est, alpha / 2, axis=0)
    hi = np.quantile(est, 1 - alpha / 2, axis=0)
    cover = (lo <= 0) & (hi >= 0)
    inS = set(S.tolist())
    return [int(c) for c, cv in zip(cols, cover, strict=True) if cv and c in inS]


def significance_loop(problem, sig, solve_kw: dict, refit: bool = True,
                      names: list[str] | None = None):
    """King's stage 3 on a Problem: solve, bootstrap and check the condition number, cut the
    support when it fails; at most ``sig.max_rounds`` solves.

    The bootstrap draws the estimator that will be reported (``refit``: least squares on the
    support, else the problem's penalised estimator; see :func:`pairs_bootstrap`), so the test
    and the reported intervals agree.  It is seeded by ``sig.random_state``, else by the
    fit's ``random_state``.  Columns forced in (``ForceInclude`` and the groups tied to it)
    are reported when insignificant but never cut: the cut is
    ``sum_{S minus forced} z <= |S minus forced| - 1``.  When a cut leaves no feasible
    model, the last feasible round's model is returned with a warning.

    Returns ``(problem with the kept cuts, solution, rounds, draws)``; every round records
    the support (column indices), objective, status, condition number, insignificant columns
    (names when ``names`` is given) and the cut; ``draws`` are the returned model's
    ``(columns, B x columns array)``, or None when it had nothing to test.
    """
    import warnings

    from mixmio.solvers import solve

    seed = sig.random_state if sig.random_state is not None else solve_kw.get("random_state")
    rng = np.random.default_rng(seed)
    forced = _forced_columns(problem)
    label = (lambda j: names[j]) if names is not None else int
    rounds: list[dict] = []
    kept = None  # (problem, solution, draws) of the last feasible round
    for r in range(1, int(sig.max_rounds) + 1):
        solution = solve(problem, **solve_kw)
        if solution.status == "infeasible" or not np.isfinite(solution.objective):
            rounds.append({"round": r, "support": [], "objective": np.inf, "status":
                           solution.status, "condition": np.nan, "insignificant": [],
                           "cut": False})
            if kept is not None:
                prev = rounds[-2]
                warnings.warn(f"Significance: after the cut of round {r - 1} no model is "
                              f"feasible ({solution.status}); the model of round {r - 1} is "
                              f"returned although it fails (condition {prev['condition']:.3g}, "
                              f"insignificant columns {prev['insignificant']})",
                              stacklevel=user_stacklevel())
                return (*kept[:2], rounds, kept[2])
            return problem, solution, rounds, None
        idx = problem.caps[0].index
        z = solution.z
        on = (solution.w[idx] != 0) if z is None else (np.asarray(z)[idx] | (solution.w[idx]
                                                                             != 0))
        S = idx[on]
        cond = condition_number(problem.X, S)
        bad, draws = [], None
        if S.size:
            draws = pairs_bootstrap(problem, S, int(sig.B), rng, refit)
            bad = _insignificant(*draws, S, sig.alpha)
        free = np.array([j for j in S if j not in forced], dtype=int)
        judged = [j for j in bad if j not in forced]
        ok = not judged and cond <= sig.max_condition
        rec = {"round": r, "support": [int(j) for j in S], "objective": solution.objective,
               "status": solution.status, "condition": cond,
               "insignificant": [label(j) for j in bad], "cut": False}
        rounds.append(rec)
        kept = (problem, solution, draws)
        if ok or free.size == 0:
            if not ok:
                warnings.warn(f"Significance: the model of round {r} fails (condition "
                              f"{cond:.3g}, insignificant columns {rec['insignificant']}) but "
                              "every selected column is forced in, so there is nothing to cut; "
                              "it is returned as is", stacklevel=user_stacklevel())
            break
        if r == int(sig.max_rounds):
            warnings.warn(f"Significance: the model of round {r} still fails (condition "
                          f"{cond:.3g}, insignificant columns {rec['insignificant']}) after "
                          f"max_rounds={sig.max_rounds}; it is returned as is",
                          stacklevel=user_stacklevel())
            break
        rec["cut"] = True
        cut = LinearConstraint(free, np.ones(free.size), "<=", float(free.size - 1),
                               f"Significance cut (round {r})")
        problem = replace(problem, constraints=tuple(problem.constraints) + (cut,))
    return (*kept[:2], rounds, kept[2])


def _forced_columns(problem) -> set[int]:
    """Indicator indices forced to 1 (single-index ``>= 1`` rows) and those tied to them by
    equality rows (groups)."""
    from mixmio.problem.holistic.compile import closure

    seeds = {int(c.index[0]) for c in problem.constraints
             if c.sense == ">=" and c.index.size == 1 and c.coef[0] > 0 and c.rhs >= c.coef[0]}
    return closure(problem.constraints, seeds) if seeds else set()


def _raise_if_no_solution(solution) -> None:
    """A proof of infeasibility, or a solver that found nothing (which proves nothing)."""
    if solution.status == "infeasible":
        raise ValueError(f"no solution satisfies the constraints ({solution.message})")
    if not np.isfinite(solution.objective):
        raise RuntimeError(f"the solver found no feasible solution ({solution.message}); "
                           "try solver='auto' or an exact MIQP solver")

