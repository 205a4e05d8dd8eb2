"""King's holistic regression pipeline (King 2015, ch. 3.3).

Stage 1: split the rows 50/25/25 into training, validation and test sets (``random_state``);
standardise the training columns (zero mean, unit l2 norm, as King does); add the transformed
forms; compile the constraints (``CorrelationLimit(rho)`` by default) and compute ``k_max``.

Stage 2: solve for every ``k = 1..k_max`` and every Gamma of the robustness grid (``{0}`` plus
geometric values up to ``||X'y||_inf``) and score each model by validation R^2.  To run in
seconds rather than King's hours, the grid is solved by the constrained heuristic
(``grid_solver="heuristic"``; greedy + swaps, warm-started along the path over ``k``), and the
path over ``k`` for a Gamma stops after ``patience`` values of ``k`` without a better validation
R^2 (``patience=None``: every ``k``).  Pass ``grid_solver="auto"`` to solve every grid point
exactly (the subset engine, with ``time_limit`` each).

Stage 3: the ``top`` distinct supports by validation R^2 are re-solved exactly (``solver``) and
put through the bootstrap-and-cut loop (:class:`mixmio.Significance`): a model with a
coefficient whose bootstrap interval covers 0, or a condition number above ``max_condition``,
is cut off (``sum_S z <= |S| - 1``) and re-solved, at most ``max_rounds`` solves.  The finalists
are reported with validation and test R^2, condition numbers, maximum pairwise correlation and
bootstrap intervals.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixmio._runtime import user_stacklevel
from mixmio.problem import CapSet, Problem
from mixmio.problem.holistic.constraints import CorrelationLimit, Robust, Significance, robust_grid
from mixmio.results.holistic import HolisticModel, HolisticResult, r_squared, response_values

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from mixmio.design import Design
    from mixmio.problem.holistic.constraints import Constraint

__all__ = ["holistic_regression"]


def holistic_regression(formula: str, data: pd.DataFrame,
                        constraints: Sequence[Constraint] = (), *,
                        rho: float | None = 0.8, n_gamma: int = 10,
                        ks: Iterable[int] | None = None, top: int = 3,
                        significance: bool | Significance = True, B: int = 200,
                        grid_solver: str = "heuristic", solver: str = "auto",
                        time_limit: float | None = 10.0, patience: int | None = None,
                        split: Sequence[float] = (0.5, 0.25, 0.25),
                        random_state: int | np.random.Generator | None = None,
                        na_action: str = "drop") -> HolisticResult:
    """King's holistic regression pipeline (see module docstring).

    Splits the rows into training, validation and test sets, solves the best-subset problem
    on the training rows for every cap ``k`` and every robustness Gamma, ranks the models by
    validation R^2, and re-solves and bootstrap-tests the best ``top`` of them.

    Parameters
    ----------
    formula : a formula without random terms (``"y ~ x1 + x2 + f"``).
    data : DataFrame with the variables.
    constraints : holistic constraints, added to ``CorrelationLimit(rho)`` (``rho=None``: no
        correlation limit) and ``Robust`` (``Robust(gamma=x)`` fixes Gamma; default: the grid
        of ``n_gamma`` values).  A ``Significance`` here replaces ``significance``.
    rho : threshold of the default :class:`mixmio.CorrelationLimit` (ignored when
        ``constraints`` has one; ``None``: none).
    n_gamma : number of Gamma values in the robustness grid, 0 included (without a
        ``Robust`` constraint; ``Robust(n_grid=...)`` sets it otherwise).  ``n_gamma=1`` is
        Gamma = 0 only.
    ks : the caps to try (default ``1..k_max``); values outside ``1..k_max`` are skipped with
        a warning.
    top : number of distinct supports (by validation R^2) re-solved exactly, tested and
        reported.
    significance : True (the defaults of :class:`mixmio.Significance`, with ``B`` and
        ``random_state`` from here), a ``Significance`` object, or False.
    B : pairs-bootstrap replicates for each model's intervals when ``significance`` is off;
        with it on, the intervals are the significance test's own draws (``Significance.B`` of
        them, at its ``alpha``), so a model reported significant never has an interval
        covering 0.  The bootstrapped estimator is the reported one (penalised by the ridge
        and by Gamma).
    grid_solver : how the grid is solved: ``"heuristic"`` (default; greedy + swaps, warm
        started along the path over ``k``) or an exact solver name as for ``solver`` (e.g.
        ``"auto"``), each grid point then getting ``time_limit``.
    solver : solver of the ``top`` finalists' exact re-solves: ``"auto"`` (the exact subset
        engine when it applies, else CVXPY/SCIP), ``"subset"``, ``"SCIP"``, ``"GUROBI"``, ...
    time_limit : seconds per exact solve (default 10 s; ``None``: no limit).  A solve that
        reaches it returns its incumbent with status ``time_limit``.
    patience : stop the path over ``k`` for a Gamma after this many values of ``k`` without a
        better validation R^2 (default ``None``: try every ``k``).
    split : training, validation and test fractions, each in (0, 1), summing to 1.
    random_state : seed of the split, the heuristics and the bootstraps (``None``: not
        reproducible).
    na_action : ``"drop"`` rows with a missing value in a variable the formula uses, or
        ``"raise"``.

    Returns
    -------
    HolisticResult
        The finalists, best first (significant ones before the others), with the grid.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
    >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
    ...                                  top=2, B=20, random_state=0)
    >>> res.best.selected, res.best.significant
    (['a', 'b'], True)
    >>> res.split_sizes
    (60, 30, 30)
    """
    from mixmio.solvers.bnb.cd import single_thread

    # every argument checked before any solve (a bad solver was found after the whole grid)
    data, settings = _holistic_settings(data, rho, n_gamma, ks, top, significance, B,
                                        grid_solver, solver, time_limit, patience, split,
                                        random_state, na_action)
    with single_thread():
        return _holistic(formula, data, constraints, settings)


@dataclass(frozen=True)
class _Settings:
    """holistic_regression's checked arguments (see its parameters)."""

    rho: float | None
    n_gamma: int
    ks: Iterable[int] | None
    top: int
    significance: bool | Significance
    B: int
    grid_solver: str
    solver: str
    time_limit: float | None
    patience: int | None
    split: tuple
    random_state: int | Sequence[int] | None
    na_action: str


def _holistic_settings(data, rho, n_gamma, ks, top, significance, B, grid_solver, solver,
                       time_limit, patience, split, random_state, na_action):
    """``(data as a frame, _Settings)``, every argument checked."""
    from mixmio._checks import as_frame, check_random_state, check_solve_args, check_split
    from mixmio.solvers import check_solver

    data = as_frame(data)
    check_solve_args(1e-4, time_limit)
    random_state = check_random_state(random_state)
    check_solver(solver)
    check_solver(grid_solver)
    for name, v, lo in (("n_gamma", n_gamma, 1), ("top", top, 1), ("B", B, 10)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(
            patience, (int, np.integer)) or patience < 1):
        raise ValueError(f"patience must be None or an integer >= 1, got {patience!r}")
    split = check_split(split)
    return data, _Settings(rho, n_gamma, ks, top, significance, B, grid_solver, solver,
                           time_limit, patience, split, random_state, na_action)


def _holistic(formula: str, data: pd.DataFrame, constraints, st: _Settings) -> HolisticResult:
    """The three stages on checked arguments (see the module docstring)."""
    t0 = time.perf_counter()
    cons, rob, sig, cons_nosolve = _holistic_constraints(constraints, st)
    data, formula2, tmap, (tr, va, te) = _split_rows(formula, data, cons, st)
    std = _standardize(formula2, data.iloc[tr], cons_nosolve, tmap, st.na_action)
    design = std.design
    if rob is not None and rob.gamma != "grid":
        gammas = np.array([float(rob.gamma)])
    else:
        gammas = robust_grid(std.X[:, std.sel], std.ycen,
                             st.n_gamma if rob is None else rob.n_grid)
    val = _Holdout(design, data.iloc[va])
    test = _Holdout(design, data.iloc[te])
    grid = _solve_grid(std, gammas, _k_list(st.ks, std.k_max), val, st)
    models = []
    for k, gamma in _finalists(grid, st.top):
        m = _finalist(std, k, gamma, sig, val, test, st)
        if m is not None:
            models.append(m)
    models.sort(key=lambda m: (not m.significant, -m.val_r2))
    return HolisticResult(models, grid, std.k_max, gammas, design,
                          (tr.size, va.size, te.size), tuple(cons), time.perf_counter() - t0)


def _holistic_constraints(constraints, st: _Settings) -> tuple:
    """``(constraints with the default CorrelationLimit, Robust or None, Significance or
    None, the constraints compiled into the problem)``."""
    from mixmio.problem.holistic.compile import check_constraints

    cons = list(check_constraints(constraints))
    if st.rho is not None and not any(isinstance(c, CorrelationLimit) for c in cons):
        cons.append(CorrelationLimit(st.rho))
    rob = next((c for c in cons if isinstance(c, Robust)), None)
    sig = next((c for c in cons if isinstance(c, Significance)), None)
    cons_nosolve = [c for c in cons if not isinstance(c, (Robust, Significance))]
    if sig is None and st.significance:
        sig = st.significance if isinstance(st.significance, Significance) else Significance(
            B=st.B, random_state=st.random_state)
    return cons, rob, sig, cons_nosolve


def _split_rows(formula: str, data: pd.DataFrame, cons, st: _Settings) -> tuple:
    """Stage 1's split of the complete rows: ``(complete rows, transformed formula, transform
    map, (training, validation, test row positions))``."""
    from mixmio.design import build_design
    from mixmio.problem.holistic.compile import apply_transforms

    data = data.reset_index(drop=True)
    formula2, tmap = apply_transforms(formula, data, cons)
    data = data.loc[build_design(formula2, data, na_action=st.na_action).row_index]
    data = data.reset_index(drop=True)
    rng = np.random.default_rng(st.random_state)
    perm = rng.permutation(len(data))
    n_tr = int(round(st.split[0] * len(data)))
    n_va = int(round(st.split[1] * len(data)))
    return data, formula2, tmap, (perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:])


@dataclass(frozen=True, eq=False)
class _Standardized:
    """The training design with its selectable columns standardised (zero mean with an
    intercept, unit l2 norm), the Problem on them, and the way back to the original scale."""

    design: Design
    base: Problem  # on the original columns, uncapped
    sel: np.ndarray  # selectable columns
    k_max: int
    has_int: bool
    mean: np.ndarray
    norm: np.ndarray
    X: np.ndarray  # standardised design
    std: Problem  # the Problem on X with the compiled constraints
    ycen: np.ndarray

    @property
    def free(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.base.p), self.sel)

    def to_original(self, w_std: np.ndarray) -> np.ndarray:
        sel = self.sel
        beta = w_std[: self.base.p].copy()
        beta[sel] = w_std[sel] / self.norm
        if self.has_int:
            j0 = list(self.design.X.columns).index("Intercept")
            beta[j0] = w_std[j0] - float(beta[sel] @ self.mean)
        return beta

    def problem_for(self, k: int, gamma: float) -> Problem:
        l1 = None
        if gamma > 0:
            l1 = np.zeros(self.base.n_coef)
            l1[self.sel] = gamma
        pr = replace(self.std, caps=(CapSet("fixed effects", self.sel, int(k)),), l1=l1)
        pr.__dict__["gram"] = self.std.gram  # same data: share the cached Gram blocks
        return pr


def _standardize(formula2: str, train: pd.DataFrame, cons_nosolve, tmap,
                 na_action: str) -> _Standardized:
    from mixmio.design import build_design
    from mixmio.problem.build import auto_ridge, build_lm_problem
    from mixmio.problem.holistic.compile import compile_constraints

    design = build_design(formula2, train, na_action=na_action)
    base = build_lm_problem(design, None)
    sel = base.caps[0].index
    compiled = compile_constraints(cons_nosolve, design, fixed_selectable=sel, k_fixed=None,
                                   caps=base.caps, auto_groups=True, transforms=tmap,
                                   context="holistic_regression")
    k_max = int(compiled.k_max if compiled.k_max is not None else sel.size)
    # standardise the selectable training columns: zero mean (only with an intercept to
    # absorb it; centring a no-intercept model changes the model), unit l2 norm
    has_int = "Intercept" in design.X.columns
    X = base.X.copy()
    mean = X[:, sel].mean(axis=0) if has_int else np.zeros(sel.size)
    Xc = X[:, sel] - mean
    norm = np.sqrt(np.sum(Xc**2, axis=0))
    norm[norm == 0] = 1.0
    X[:, sel] = Xc / norm
    y = base.y
    ridge = auto_ridge(X, base.Z)
    std = Problem(X, base.Z, y, ridge, base.caps, base.penalized, constraints=compiled.rows)
    ycen = y - y.mean() if has_int else y
    return _Standardized(design, base, sel, k_max, has_int, mean, norm, X, std, ycen)


class _Holdout:
    """The design matrix and response of held-out rows, and the R^2 of coefficients on
    them."""

    def __init__(self, design, rows: pd.DataFrame):
        self.X = design.transform(rows).X.to_numpy(dtype=float)
        self.y = response_values(design, rows)

    def r2(self, beta: np.ndarray) -> float:
        return r_squared(self.y, self.X @ beta)


def _k_list(ks, k_max: int) -> list[int]:
    """The caps of the grid (``ks`` within 1..k_max; default all of them)."""
    if ks is None:
        return list(range(1, k_max + 1))
    k_list = sorted({int(k) for k in ks if 1 <= k <= k_max})
    out_of_range = sorted({int(k) for k in ks} - set(k_list))
    if not k_list:
        raise ValueError(f"every k in ks={list(ks)} is outside 1..k_max={k_max} (k_max is "
                         "the largest support the constraints allow on the training half)")
    if out_of_range:
        warnings.warn(f"ks {out_of_range} are outside 1..k_max={k_max} and are skipped",
                      stacklevel=user_stacklevel())
    return k_list


def _grid_solve(pr: Problem, prev_z, st: _Settings):
    """One grid point's solution (the heuristic, warm-started along k, or ``grid_solver``)."""
    from mixmio.solvers import solve
    from mixmio.solvers.subset.constrained import constrained_warm_start

    if st.grid_solver == "heuristic":
        if pr.is_plain:
            from mixmio.solvers.heuristics import warm_start

            return warm_start(pr, random_state=st.random_state)
        return constrained_warm_start(pr, random_state=st.random_state,
                                      n_starts=3 if prev_z is None else 1, start=prev_z)
    return solve(pr, solver=st.grid_solver, time_limit=st.time_limit,
                 random_state=st.random_state)


def _solve_grid(std: _Standardized, gammas, k_list, val: _Holdout,
                st: _Settings) -> pd.DataFrame:
    """Stage 2: every (Gamma, k) solved and scored by validation R^2 (the path over k of a
    Gamma stops after ``patience`` caps without a better one)."""
    sel = std.sel
    grid_rows = []
    for gamma in gammas:
        prev_z = None
        best_val, since = -np.inf, 0
        for k in k_list:
            sol = _grid_solve(std.problem_for(k, float(gamma)), prev_z, st)
            if sol.status == "infeasible" or not np.isfinite(sol.objective):
                continue
            prev_z = sol.z if sol.z is not None else sol.w != 0
            score = val.r2(std.to_original(sol.w))
            supp = tuple(int(j) for j in sel[np.asarray(prev_z)[sel]])
            grid_rows.append({"gamma": float(gamma), "k": k, "size": len(supp),
                              "val_r2": score, "objective": sol.objective,
                              "status": sol.status, "support": supp})
            if score > best_val + 1e-12:
                best_val, since = score, 0
            else:
                since += 1
                if st.patience is not None and since >= st.patience:
                    break
    grid = pd.DataFrame(grid_rows)
    if grid.empty:
        raise ValueError("no grid point produced a feasible model")
    return grid


def _finalists(grid: pd.DataFrame, top: int) -> list[tuple[int, float]]:
    """``(k, Gamma)`` of the ``top`` distinct supports by validation R^2."""
    order = grid.sort_values("val_r2", ascending=False)
    finalists, seen = [], set()
    for _, r in order.iterrows():
        if r["support"] in seen:
            continue
        seen.add(r["support"])
        finalists.append((int(r["k"]), float(r["gamma"])))
        if len(finalists) >= top:
            break
    return finalists


def _finalist(std: _Standardized, k: int, gamma: float, sig, val: _Holdout, test: _Holdout,
              st: _Settings) -> HolisticModel | None:
    """Stage 3 for one finalist: the exact re-solve (through the significance loop), the
    bootstrap intervals and the scores; None when no model is feasible."""
    from mixmio.inference.significance import significance_loop
    from mixmio.results.lm import condition_number, max_abs_corr
    from mixmio.solvers import solve

    cols = list(std.design.X.columns)
    kw: dict[str, Any] = dict(solver=st.solver, time_limit=st.time_limit, mip_gap=1e-4,
                              warm_start=True, random_state=st.random_state, verbose=False)
    pr = std.problem_for(k, gamma)
    draws = None
    if sig is not None:
        pr, sol, rounds, draws = significance_loop(pr, sig, kw, refit=False, names=cols)
    else:
        sol, rounds = solve(pr, **kw), []
    if sol.status == "infeasible" or not np.isfinite(sol.objective):
        return None
    beta = std.to_original(sol.w)
    S = std.sel[sol.w[std.sel] != 0]
    coef = pd.Series(beta, index=cols, name="estimate")
    cond, mc = condition_number(std.X, S), max_abs_corr(std.X, S)
    iv = _intervals(std, pr, S, draws, sig, st)
    last = next((r for r in reversed(rounds) if np.isfinite(r["objective"])), None)
    significant = bool(last is None or (not last["insignificant"]
                                        and last["condition"] <= sig.max_condition))
    for r in rounds:
        r["columns"] = [cols[j] for j in r["support"]]
    return HolisticModel(
        k=k, gamma=gamma, coef=coef, selected=[cols[j] for j in S],
        val_r2=val.r2(beta), test_r2=test.r2(beta), condition=cond,
        max_corr=mc, intervals=iv, status=sol.status, gap=sol.gap, solver=sol.solver,
        rounds=tuple(rounds), significant=significant, design=std.design)


def _intervals(std: _Standardized, pr: Problem, S: np.ndarray, draws, sig,
               st: _Settings) -> pd.DataFrame:
    """Pairs-bootstrap intervals of the reported (penalised) estimator on the support, on the
    original scale.  Under Significance they are the last round's own draws, so the test and
    the intervals cannot disagree; otherwise B fresh draws seeded from random_state."""
    from mixmio.inference.significance import pairs_bootstrap

    cols = list(std.design.X.columns)
    keep = np.concatenate([std.free, S]).astype(int)
    if draws is None or not np.array_equal(draws[0], keep):
        draws = pairs_bootstrap(pr, S, int(st.B), np.random.default_rng(st.random_state),
                                refit=False)
    est = np.empty_like(draws[1])
    for b, row in enumerate(draws[1]):
        wfull = np.zeros(std.base.n_coef)
        wfull[keep] = row
        est[b] = std.to_original(wfull)[keep]
    alpha = 0.05 if sig is None else sig.alpha
    return pd.DataFrame({"lower": np.quantile(est, alpha / 2, axis=0),
                         "upper": np.quantile(est, 1 - alpha / 2, axis=0)},
                        index=[cols[j] for j in keep])
