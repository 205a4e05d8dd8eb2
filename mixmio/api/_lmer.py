"""mio_lmer's stages, shared by the path, the cross-validation and mio_glmer: the checked
settings, the prepared design (built once for every cap), the Problem of one cap, and one fit."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from mixmio._checks import check_bool, check_random_state, check_ridge, check_solve_args
from mixmio.design import Design, build_design
from mixmio.problem.build import build_problem, resolve_caps, split_sign_caps
from mixmio.results.lmer import MioLmerResult


@dataclass(frozen=True)
class LmerPrepared:
    """What a mio_lmer fit builds before its caps are known: the checked constraints, the
    transform map and the design (shared by every fit of a path over k)."""

    design: Design
    cons: tuple
    tmap: dict[str, list[str]]


def lmer_settings(*, k_fixed=None, ridge="auto", solver="auto", time_limit=None,
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


def lmer_prepare(formula: str, data: pd.DataFrame, na_action: str,
                 constraints) -> LmerPrepared:
    from mixmio.problem.holistic.compile import apply_transforms, check_constraints

    cons = check_constraints(constraints)
    formula2, tmap = apply_transforms(formula, data, cons)
    design = build_design(formula2, data, na_action=na_action)
    return LmerPrepared(design, cons, tmap)


def lmer_problem(prepared: LmerPrepared, k, settings: dict, base=None):
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


def lmer_fit(prepared: LmerPrepared, k, settings: dict, base=None,
             warm=None) -> MioLmerResult:
    """Solve one cap on a prepared design (``warm``: a previous Solution or support mask)."""
    from mixmio.solvers import solve

    problem = lmer_problem(prepared, k, settings, base=base)
    solution = solve(problem, solver=settings["solver"], time_limit=settings["time_limit"],
                     mip_gap=settings["mip_gap"], warm_start=settings["warm_start"],
                     random_state=settings["random_state"], verbose=settings["verbose"],
                     warm=warm)
    return MioLmerResult.from_solution(prepared.design, problem, solution,
                                       mip_gap=settings["mip_gap"], refit=settings["refit"])
