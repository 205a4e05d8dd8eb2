"""Cross-validation of the caps k: folds blocked by cluster, within clusters, or any
scikit-learn splitter."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixmio.api.path import check_lmer_args, path_from_prepared, resolve_grid
from mixmio.errors import ArgumentError, ArgumentTypeError
from mixmio.results.cv import CVResult

if TYPE_CHECKING:

    pass

PREDICT_NEW = ("soft", "hard", "population", "features")


# ---------------------------------------------------------------------------- folds
def blocked_folds(codes: np.ndarray, folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Test rows of each fold: the clusters, shuffled, dealt to the folds in turn (every
    cluster's rows in one fold)."""
    K = int(codes.max()) + 1
    order = rng.permutation(K)
    fold_of = np.empty(K, dtype=int)
    fold_of[order] = np.arange(K) % folds
    return [np.flatnonzero(fold_of[codes] == f) for f in range(folds)]


def within_folds(codes: np.ndarray, folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Test rows of each fold: each cluster's rows, shuffled, dealt to the folds in turn from
    a random fold on.  A cluster with two or more rows keeps rows in training in every fold;
    a cluster with one row is never held out (it would leave training)."""
    n = codes.size
    fold_of = np.full(n, -1)
    perm = rng.permutation(n)
    order = perm[np.argsort(codes[perm], kind="stable")]  # rows by cluster, shuffled within
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    offsets = rng.integers(0, folds, size=sizes.size)
    pos = np.arange(n) - np.repeat(starts, sizes)  # position within its cluster
    cl = codes[order]
    fold_of[order] = (offsets[cl] + pos) % folds
    fold_of[order[sizes[cl] < 2]] = -1
    return [np.flatnonzero(fold_of == f) for f in range(folds)]


def _splitter_folds(cv, data: pd.DataFrame, y: np.ndarray, groups: np.ndarray
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    import warnings

    try:
        with warnings.catch_warnings():  # KFold and friends say they ignore the groups
            warnings.filterwarnings("ignore", message="The groups parameter is ignored")
            splits = list(cv.split(data, y, groups))
    except Exception as exc:  # a splitter's own complaint, with context
        raise ArgumentError(f"the splitter {cv!r} failed on the data: {exc}") from exc
    if not splits:
        raise ArgumentError(f"the splitter {cv!r} produced no folds")
    return [(np.asarray(tr, dtype=int), np.asarray(te, dtype=int)) for tr, te in splits]


# ---------------------------------------------------------------------------- result
@dataclass(frozen=True)
class FitModel:
    """How cross-validation prepares, fits and scores one kind of model (module-level
    functions, so folds pickle to joblib workers and Dask).

    ``prepare(formula, data, na_action, constraints, extra) -> prepared`` (the design of a
    fold); ``fit(prepared, k, settings, base=None, warm=None) -> fit``;
    ``target(prepared, rows) -> object`` (what ``score`` needs of the held-out rows, taken
    from the full data's design); ``score(fit, test, target, predict_new, predict_kw) ->
    float`` (lower is better)."""

    name: str
    prepare: Any
    fit: Any
    target: Any
    score: Any
    metric: str = "mse"


def _lmer_prepare_fold(formula, data, na_action, constraints, extra):
    from mixmio.api._lmer import lmer_prepare

    return lmer_prepare(formula, data, na_action, constraints)


def _lmer_fit_fold(prepared, k, settings, base=None, warm=None):
    from mixmio.api._lmer import lmer_fit

    return lmer_fit(prepared, k, settings, base=base, warm=warm)


def _lmer_target(prepared, rows):
    return prepared.design.y[rows]


def _mse(fit, test, y_test, predict_new, predict_kw) -> float:
    pred = np.asarray(_predict(fit, test, predict_new, predict_kw), dtype=float)
    good = np.isfinite(pred)
    return float(np.mean((y_test[good] - pred[good]) ** 2))


LMER_MODEL = FitModel("mio_lmer", _lmer_prepare_fold, _lmer_fit_fold, _lmer_target, _mse)


def _fold_scores(task) -> tuple[list[float], list[bool]]:
    """Held-out score and certification of every cap on one fold."""
    from mixmio.solvers.bnb.cd import single_thread

    (model, formula, train, test, target, grid, settings, na_action, constraints, extra,
     predict_new, predict_kw) = task
    with single_thread(user_api=None):
        prepared = model.prepare(formula, train, na_action, constraints, extra)
        sizes = {lab: prepared.design.block_of(lab)[0].n_levels
                 for lab in prepared.design.column_labels}
        capped = [(key, {lab: min(v, sizes[lab]) for lab, v in pt.items()}) for key, pt in grid]
        uniq: dict = {}
        for _, pt in capped:
            uniq.setdefault(tuple(pt.values()), pt)
        inner = [(vals, pt) for vals, pt in uniq.items()]
        inner.sort(key=lambda t: (sum(t[0]), t[0]))
        path = path_from_prepared(prepared, inner, settings, formula, fit_one=model.fit)
        err, ok = [], []
        cache: dict = {}
        for _, pt in capped:
            vals = tuple(pt.values())
            if vals not in cache:
                fit = path.fits[vals]
                cache[vals] = (model.score(fit, test, target, predict_new, predict_kw),
                               fit.status == "optimal")
            err.append(cache[vals][0])
            ok.append(cache[vals][1])
    return err, ok


def _predict(fit, test: pd.DataFrame, mode: str, kw: dict):
    import warnings

    with warnings.catch_warnings():
        # a held-out fold may miss factor levels or carry new ones: the mode decides
        warnings.simplefilter("ignore", UserWarning)
        return fit.predict(test, new_levels=mode, **kw)


# ---------------------------------------------------------------------------- front door
def cv_lmer(formula: str, data: pd.DataFrame,
            k: Sequence[int] | Mapping[str, Sequence[int] | int] | None = None, *,
            cv: str | Any = "blocked", folds: int = 5, rule: str = "min",
            predict_new: str = "soft", cluster_features: Sequence[str] | None = None,
            random_state: int | np.random.Generator | None = None, n_jobs: int | None = None,
            progress: bool = False, **mio_lmer_args) -> CVResult:
    """Choose the caps k of :func:`mixmio.mio_lmer` by cross-validated prediction error.

    Every fold fits the warm-started path of :func:`mixmio.lmer_path` on its training rows and
    scores the held-out rows by mean squared error; caps larger than a fold's number of
    clusters are taken as that number.

    Parameters
    ----------
    formula, data : as in :func:`mixmio.mio_lmer`.
    k : the grid, as in :func:`mixmio.lmer_path` (None: the seed paper's fractions of K).
    cv : ``"blocked"`` (default): whole clusters of the first random term's grouping factor
        are held out, so the score is prediction for *new* clusters, predicted by
        ``predict_new``; ``"within"``: rows are held out inside every cluster (every cluster
        with two or more rows stays in training), so the score is prediction for *known*
        clusters; or any scikit-learn splitter (``GroupKFold(5)``, ``KFold(5, shuffle=True)``,
        ...), called as ``cv.split(data, y, groups)`` with the grouping factor as groups.
    folds : number of folds for ``"blocked"`` and ``"within"``.
    rule : ``"min"`` (the cap of least mean error) or ``"1se"`` (the smallest cap whose mean
        is within one standard error of the minimum).
    predict_new : the ``new_levels`` mode of :meth:`MioLmerResult.predict` for held-out
        clusters: ``"soft"`` (default), ``"hard"``, ``"population"`` or ``"features"``.
    cluster_features : columns for ``predict_new="features"``.
    random_state : seed of the fold assignment (and of the fits' heuristics).
    n_jobs : folds run through joblib (``joblib.parallel_config(backend="dask")`` sends them
        to a Dask cluster); results are identical for every ``n_jobs``.
    progress : show a progress bar over folds (on a terminal).
    **mio_lmer_args : passed to every fit (``ridge``, ``solver``, ``time_limit``, ...).

    Examples
    --------
    >>> import mixmio
    >>> exam = mixmio.datasets.load("Exam")
    >>> cv = mixmio.cv_lmer("normexam ~ standLRT + (1 | school)", exam, k=[0, 10, 20],
    ...                     cv="within", random_state=0)
    >>> list(cv.table["k"]), int(cv.table["n_certified"].min())
    ([0, 10, 20], 5)
    """
    from mixmio.api._lmer import lmer_settings

    kw = check_lmer_args(mio_lmer_args, "cv_lmer")
    na_action = kw.pop("na_action", "drop")
    constraints = kw.pop("constraints", ())
    seed = _check_cv_args(cv, folds, rule, predict_new, progress, n_jobs, random_state)
    if "random_state" not in kw:
        kw["random_state"] = seed
    settings = lmer_settings(**kw)
    return cross_validate(LMER_MODEL, formula, data, k, settings=settings,
                          na_action=na_action, constraints=constraints, extra=None, cv=cv,
                          folds=folds, rule=rule, predict_new=predict_new,
                          cluster_features=cluster_features, seed=seed, n_jobs=n_jobs,
                          progress=progress)


def _check_cv_args(cv, folds, rule, predict_new, progress, n_jobs, random_state):
    """The CV arguments, checked before any design is built; returns the fold seed."""
    from mixmio._checks import (
        check_bool,
        check_choice,
        check_int,
        check_n_jobs,
        check_random_state,
    )

    check_choice("rule", rule, ("min", "1se"))
    check_choice("predict_new", predict_new, PREDICT_NEW)
    check_bool("progress", progress)
    check_n_jobs(n_jobs)
    if isinstance(cv, str):
        check_choice("cv", cv, ("blocked", "within"))
        check_int("folds", folds, lo=2)
    elif not hasattr(cv, "split"):
        raise ArgumentTypeError("cv must be 'blocked', 'within' or a scikit-learn splitter "
                                f"(an object with a split method), got {cv!r}")
    return check_random_state(random_state)


def cross_validate(model: FitModel, formula: str, data, k, *, settings: dict, na_action: str,
                   constraints, extra, cv, folds: int, rule: str, predict_new: str,
                   cluster_features, seed, n_jobs, progress: bool) -> CVResult:
    """The CV of :func:`cv_lmer` for any :class:`FitModel` (arguments already checked)."""
    from mixmio._checks import as_frame, check_n_jobs

    n_jobs = check_n_jobs(n_jobs)
    cv_name = cv if isinstance(cv, str) else type(cv).__name__
    predict_kw: dict = {}
    if cluster_features is not None:
        if predict_new != "features":
            raise ArgumentError("cluster_features is used by predict_new='features' only")
        predict_kw["cluster_features"] = list(cluster_features)
    data = as_frame(data)
    prepared = model.prepare(formula, data, na_action, constraints, extra)
    design = prepared.design
    if not design.blocks:
        raise ArgumentError(f"cross-validating {model.name} needs a random term such as "
                            "(1 | g); for a model without one use mixmio.mio_lm")
    grid = resolve_grid(design, k)
    if predict_new == "features":
        from mixmio.results import newlevels as nl

        groups = sorted({b.group for b in design.blocks})
        if cluster_features is not None:
            # present and constant within every cluster, checked on all rows before any fit
            nl.check_cluster_features(design, list(cluster_features), groups, data)
        elif not nl.numeric_columns(design):
            raise ArgumentError("predict_new='features' needs cluster_features=[...] or a "
                                "numeric fixed-effects column (whose cluster means are the "
                                "features); the formula has neither")
    used = data.drop(index=list(design.dropped_rows)) if design.n_dropped else data
    used = used.reset_index(drop=True)
    block = design.blocks[0]
    codes = np.asarray(block.codes)
    rng = np.random.default_rng(seed)
    if cv_name == "blocked" and folds > block.n_levels:
        raise ArgumentError(f"folds={folds} is more than the {block.n_levels} clusters of "
                            f"'{block.group}'; blocked CV needs at least one cluster per fold")
    if cv_name == "within" and folds > len(codes):
        raise ArgumentError(f"folds={folds} is more than the {len(codes)} rows")
    if cv_name in ("blocked", "within"):
        deal = blocked_folds if cv_name == "blocked" else within_folds
        splits = [(np.setdiff1d(np.arange(len(codes)), te), te)
                  for te in deal(codes, folds, rng)]
    else:
        splits = _splitter_folds(cv, used, design.y, codes)
    empty = [i + 1 for i, (tr, te) in enumerate(splits) if tr.size == 0 or te.size == 0]
    if empty:
        raise ArgumentError(f"fold(s) {empty} have no training or no test rows; use fewer "
                            "folds")
    tasks = [(model, formula, used.iloc[tr], used.iloc[te], model.target(prepared, te), grid,
              settings, na_action, constraints, extra, predict_new, predict_kw)
             for tr, te in splits]
    results = _run(tasks, n_jobs, progress)
    F = len(tasks)
    mse = np.array([r[0] for r in results]).T  # caps x folds
    cert = np.array([r[1] for r in results]).T
    mean = mse.mean(axis=1)
    se = mse.std(axis=1, ddof=1) / np.sqrt(F) if F > 1 else np.zeros(len(grid))
    keys = [key for key, _ in grid]
    table = pd.DataFrame({"k": keys, "mean": mean, "se": se, "n_certified": cert.sum(axis=1)})
    for f in range(F):
        table[f"fold_{f + 1}"] = mse[:, f]
    i_min = int(np.argmin(mean))
    i_1se = int(np.flatnonzero(mean <= mean[i_min] + se[i_min])[0])
    caps = dict(grid)
    result = CVResult(formula, cv_name, rule, predict_new, table, [te for _, te in splits],
                      caps, keys[i_min], keys[i_1se], metric=model.metric)
    best = caps[result.k_best]
    fit = model.fit(prepared, best, settings)
    fit = replace(fit, cv_result=result)
    object.__setattr__(result, "fit", fit)
    return result


def _run(tasks: list, n_jobs, progress: bool) -> list:
    from joblib import Parallel, delayed

    from mixmio.inference._tasks import show_progress

    # always through joblib, so an active parallel_config (a Dask cluster) takes the folds
    gen = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_fold_scores)(t) for t in tasks)
    if not show_progress(progress):
        return list(gen)
    from tqdm.auto import tqdm

    return list(tqdm(gen, total=len(tasks), desc="CV folds", unit="fold", file=sys.stderr))
