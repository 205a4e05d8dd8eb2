"""Bootstrap and stability selection of :func:`mixmio.mio_glmer` fits.

The statistics, results, reports, summaries and plots are mio_lmer's
(:mod:`mixmio.inference.bootstrap`, :mod:`mixmio.inference.stability`): every replicate
re-runs the capped selection with the fit's caps and ridge value, here through
:func:`mixmio.solvers.glmer.solve.solve_glmm` (warm-started from the full-data support), and the
replicate machinery (seeds, joblib / Dask, chunking, failure accounting) is shared.  What is
specific to the GLMM is how a replicate's data are made:

``parametric``
    Clusters fixed; the responses are drawn from the fitted model, independently per row:
    binomial(trials, fitted p) or Poisson(fitted mean, offset included), with the unselected
    clusters' effects 0 in the generating model.  It assumes that model (family, link,
    independence given the effects, no over-dispersion) and says so in every report.
``cluster``
    Clusters of the first grouping factor (or ``cluster_by=``) drawn with replacement, each
    draw a new cluster, as mio_lmer's cluster scheme; the replicate's GLMM is the linear
    sub-problem plus the drawn rows' responses, weights (trials) and offsets.

Stability selection draws half-samples as mio_lmer's (``scheme="obs"``: half of the rows;
``"cluster_strat"``: half of every cluster's rows; complementary pairs by default) and reports
the selection frequencies, the flagged set and the bound q^2 / ((2 threshold - 1) K) on the
expected number of false flags.

A replicate fails (counted in ``failures``, excluded from every statistic, never dropped
silently) when its solve fails or raises, or when its fixed effects separate the outcomes
(status ``separation``: no finite optimum, see
:func:`mixmio.problem.glmer_checks.check_separation`).
A fixed-effect column that is all zero in a replicate is missing (NaN) there.

>>> import numpy as np, pandas as pd, mixmio
>>> rng = np.random.default_rng(0)
>>> g = np.repeat(np.arange(10), 20)
>>> df = pd.DataFrame({"y": rng.poisson(np.where(g == 0, 6.0, 2.0)), "g": g})
>>> fit = mixmio.mio_glmer("y ~ 1 + (1 | g)", df, k=1, family="poisson")
>>> boot = fit.bootstrap(B=10, random_state=1, progress=False)  # bootstrap_glmer
>>> boot.scheme, boot.n_ok
('parametric', 10)
>>> r = boot.ranef_table().iloc[0]
>>> r["level"], bool(r["lower"] > 0), float(r["selection_frequency"])
('0', True, 1.0)
>>> st = fit.stability(B=6, random_state=1, progress=False)  # stability_glmer
>>> st.n_ok, st.flagged["level"].tolist()
(6, ['0'])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mixmio._checks import check_replicate_settings, check_solve_args
from mixmio.errors import ArgumentError, SeparationError
from mixmio.inference._tasks import (
    RESAMPLE_UNSUPPORTED,
    WARM_START,
    _Context,
    _Out,
    compact,
    make_context,
    resamplable,
    seeds_of,
    solve_and_refit,
    sub_problem,
    unit_block_index,
)
from mixmio.inference.bootstrap import (
    BootstrapResult,
    check_boot_args,
    check_resampling,
    cluster_rows,
    run_bootstrap,
)
from mixmio.inference.stability import (
    StabilityResult,
    _check_stability_args,
    half_rows,
    run_stability,
)
from mixmio.problem import family as fam
from mixmio.problem.glmer import GlmmProblem
from mixmio.problem.glmer_checks import check_separation
from mixmio.results._methods import register
from mixmio.solvers.glmer.solve import check_glmer_solver

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mixmio.results.glmer import MioGlmerResult

__all__ = ["SCHEMES", "bootstrap_glmer", "parametric_response", "stability_glmer"]

SCHEMES = ("parametric", "cluster")

PARAMETRIC_NOTE = ("parametric scheme: assumes the fitted {family} model generates the data: "
                   "responses drawn independently, {law}, given the selected cluster effects "
                   "(unselected clusters at 0; no over-dispersion)")
_LAW = {"binomial": "successes ~ binomial(trials, fitted probability)",
        "poisson": "counts ~ Poisson(fitted mean, offset included)"}
_WEIGHTS_NOTE = ("the Poisson prior weights are not part of the generating model: counts are "
                 "drawn from Poisson(fitted mean) and refitted with the fit's weights")


@dataclass(frozen=True, eq=False)
class _GlmmContext(_Context):
    """A replicate context whose solve is :func:`~mixmio.solvers.glmer.solve.solve_glmm`.

    ``problem`` is the fit's linear base problem (the structure the row and cluster
    resampling of :mod:`mixmio.inference._tasks` works on); ``glmm`` the fit's GlmmProblem
    (family, responses, weights, offset of the full data); ``mu`` the fitted linear
    predictor without the offset."""

    glmm: GlmmProblem | None = None
    names: tuple[str, ...] = ()  # fixed-effect column names (for the separation message)

    def solve(self, problem, **kw):
        from mixmio.solvers.glmer.solve import solve_glmm

        return solve_glmm(problem, **kw)

    @property
    def eta(self) -> np.ndarray:
        """The fitted linear predictor, offset included."""
        assert self.glmm is not None  # always set by _context
        return self.mu + self.glmm.offset


def _context(fit: MioGlmerResult, unit: int, solver: str, time_limit, options: dict
             ) -> _GlmmContext:
    ctx = make_context(fit, unit_block=unit, solver=solver, time_limit=time_limit,
                       options=options)
    gp = fit.problem
    kw = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(_Context)}
    expected = fam.mean(gp.family, ctx.mu + gp.offset)
    if gp.family == "binomial":
        expected = gp.weights * expected  # successes out of the trials
    kw.update(problem=gp.base, refit=False, resid=gp.y - expected,
              solve_kw={"solver": solver, "time_limit": time_limit, "mip_gap": fit.mip_gap})
    return _GlmmContext(**kw, glmm=gp, names=tuple(map(str, fit.design.X.columns)))


# -- replicate workers (module level: picklable) -----------------------------------------------
def parametric_response(ctx: _GlmmContext, rng: np.random.Generator) -> np.ndarray:
    """One draw of the responses from the fitted model: successes out of the trials
    (binomial) or counts (poisson), as floats."""
    g = ctx.glmm
    assert g is not None  # always set by _context
    mean = fam.mean(g.family, ctx.eta)
    if g.family == "binomial":
        return rng.binomial(np.round(g.weights).astype(np.int64), mean).astype(float)
    return rng.poisson(mean).astype(float)


def _solve(ctx: _GlmmContext, base, rows: np.ndarray | None, y: np.ndarray, colmap,
           seed: int) -> _Out:
    """Solve the GLMM of ``base`` with responses ``y`` on ``rows`` of the fit (None: all)."""
    g = ctx.glmm
    assert g is not None  # always set by _context
    weights, offset = (g.weights, g.offset) if rows is None else (g.weights[rows],
                                                                  g.offset[rows])
    gp = GlmmProblem(base, g.family, np.asarray(y, dtype=float), weights, offset)
    try:
        check_separation(g.family, gp.X, gp.y, gp.weights, list(ctx.names))
    except SeparationError as exc:
        return _Out(None, "separation", f"the replicate's fixed effects separate the "
                                        f"outcomes (no finite optimum): {exc}")
    return solve_and_refit(ctx, gp, colmap, seed)


def _on_rows(ctx: _GlmmContext, rows: np.ndarray, block_codes, seed: int) -> _Out:
    problem, colmap = sub_problem(ctx, rows, ctx.y[rows], block_codes)
    assert ctx.glmm is not None  # always set by _context
    return _solve(ctx, problem, rows, ctx.glmm.y[rows], colmap, seed)


def _subset(ctx: _GlmmContext, rows: np.ndarray, seed: int) -> _Out:
    """The fit's model on a subset of its rows (levels relabelled over those present)."""
    return _on_rows(ctx, rows, [compact(b.codes[rows]) for b in ctx.blocks], seed)


def _failure(exc: Exception) -> _Out:
    return _Out(None, "exception", f"{type(exc).__name__}: {exc}")


def _boot_replicate(ctx: _GlmmContext, seed: np.random.SeedSequence) -> _Out:
    try:
        rng, solver_seed = seeds_of(seed)
        if ctx.options["scheme"] == "cluster":
            rows, block_codes = cluster_rows(ctx, rng)
            return _on_rows(ctx, rows, block_codes, solver_seed)
        return _solve(ctx, ctx.problem, None, parametric_response(ctx, rng), None, solver_seed)
    except Exception as exc:  # noqa: BLE001 - recorded as a failure, never dropped silently
        return _failure(exc)


def _jackknife_replicate(ctx: _GlmmContext, task: tuple[int, np.random.SeedSequence]) -> _Out:
    unit, seed = task
    try:
        _, solver_seed = seeds_of(seed)
        return _subset(ctx, np.flatnonzero(ctx.unit_codes != unit), solver_seed)
    except Exception as exc:  # noqa: BLE001
        return _failure(exc)


def _stability_replicate(ctx: _GlmmContext, task: tuple[np.random.SeedSequence,
                                                        np.random.SeedSequence, int]) -> _Out:
    try:
        return _subset(ctx, *half_rows(ctx, task))
    except Exception as exc:  # noqa: BLE001
        return _failure(exc)


# -- front doors -------------------------------------------------------------------------------
def _check_replicate_solver(fit, solver, time_limit) -> str:
    check_solve_args(fit.mip_gap, time_limit)
    return check_glmer_solver(solver)


@register("bootstrap_glmer")
def bootstrap_glmer(fit: MioGlmerResult, B: int = 500, scheme: str = "parametric",
                    ci: str = "percentile", level: float = 0.95, n_jobs: int = 1,
                    random_state: int | Sequence[int] | None = None, progress: bool = True, *,
                    solver: str = "auto", time_limit: float | None = None,
                    cluster_by: str | None = None) -> BootstrapResult:
    """Bootstrap a :class:`~mixmio.results.glmer.MioGlmerResult`, re-running the selection in
    every replicate; schemes in the module docstring, statistics as
    :func:`mixmio.inference.bootstrap`.

    Parameters
    ----------
    fit : the mio_glmer fit (its caps and ridge value are reused).
    B : number of replicates (at least 2).
    scheme : ``"parametric"`` (responses drawn from the fitted family) or ``"cluster"``.
    ci : ``"percentile"``, ``"basic"`` or ``"bca"`` (``bca`` also runs the delete-one-cluster
        jackknife of the resampling factor).
    level : interval coverage in (0, 1).
    n_jobs : joblib workers (``-1``: all cores; a Dask cluster under
        ``joblib.parallel_config(backend="dask")``).  Results are identical for any
        ``n_jobs`` and backend: replicate ``b`` uses ``SeedSequence(random_state).spawn(B)[b]``.
    random_state : None, an int or a sequence of ints seeding ``numpy.random.SeedSequence``.
    progress : show a progress bar (in Jupyter, or when stderr is a terminal).
    solver, time_limit : per-replicate settings of :func:`~mixmio.solvers.glmer.solve.solve_glmm`
        (``mip_gap`` is the fit's); replicates stopped by the limit count, with a NOTE.
    cluster_by : the resampling grouping factor (default the first).

    Returns
    -------
    BootstrapResult (``fit.with_bootstrap(boot).summary()`` shows its columns;
    ``boot.report()`` is the significance report).

    See the module docstring for an example.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES} for a mio_glmer fit, got {scheme!r}")
    level = check_boot_args(B, ci, level)
    unit = unit_block_index(fit, cluster_by)
    block = fit.design.blocks[unit]
    solver = _check_replicate_solver(fit, solver, time_limit)
    random_state, n_jobs = check_replicate_settings(random_state, n_jobs, progress)
    check_resampling(fit.problem.base, scheme, ci, block)
    gp = fit.problem
    notes = []
    if scheme == "parametric":
        if gp.family == "binomial" and np.any(np.abs(gp.weights - np.round(gp.weights)) > 1e-8):
            raise ArgumentError("scheme='parametric' draws binomial(trials, p) successes, so the "
                                "trials (weights) must be whole numbers; use scheme='cluster'")
        notes.append(PARAMETRIC_NOTE.format(family=gp.family, law=_LAW[gp.family]))
        if gp.family == "poisson" and np.any(gp.weights != 1):
            notes.append(_WEIGHTS_NOTE)
    detail = (f"{_LAW[gp.family]} of the fitted {gp.family} model, clusters fixed"
              if scheme == "parametric" else f"clusters of {block.group} resampled")
    options = {"scheme": scheme, "cluster_by": block.group, "family": gp.family,
               "solver": solver, "time_limit": time_limit, "k_fixed": None,
               "warm_start": WARM_START, "scheme_detail": detail}
    ctx = _context(fit, unit, solver, time_limit, options)
    return run_bootstrap(fit, ctx, _boot_replicate, _jackknife_replicate, B, scheme, ci, level,
                         random_state, n_jobs, progress, notes)


@register("stability_glmer")
def stability_glmer(fit: MioGlmerResult, B: int = 100, frac: float = 0.5,
                    pairing: str = "complementary", threshold: float = 0.6, n_jobs: int = 1,
                    random_state: int | Sequence[int] | None = None, progress: bool = True, *,
                    scheme: str = "obs", solver: str = "auto", time_limit: float | None = None,
                    cluster_by: str | None = None) -> StabilityResult:
    """Stability selection of a mio_glmer fit's clusters over half-samples, as
    :func:`mixmio.inference.stability` (same arguments, checks and result).

    ``scheme="obs"`` draws half of the rows, ``"cluster_strat"`` half of every cluster's rows
    of the first grouping factor (or ``cluster_by``); a cluster with no row in a half cannot
    be selected there.  With one row per cluster (e.g. one row per hospital) a cluster is in
    only one half of each complementary pair, so no frequency can exceed about 0.5: stability
    selection needs several rows per cluster.

    See the module docstring for an example.
    """
    _check_stability_args(B, frac, pairing, threshold, scheme)
    unit = unit_block_index(fit, cluster_by)
    solver = _check_replicate_solver(fit, solver, time_limit)
    random_state, n_jobs = check_replicate_settings(random_state, n_jobs, progress)
    if not resamplable(fit.problem.base):
        raise NotImplementedError(RESAMPLE_UNSUPPORTED)
    options = {"scheme": scheme, "cluster_by": fit.design.blocks[unit].group,
               "family": fit.problem.family, "solver": solver, "time_limit": time_limit,
               "warm_start": WARM_START}
    ctx = _context(fit, unit, solver, time_limit, options)
    return run_stability(fit, ctx, _stability_replicate, B, frac, pairing, threshold, scheme,
                         random_state, n_jobs, progress)
