"""The path over k and cross-validation for mio_glmer (the machinery of mio_lmer's)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mixmio.api.cv import FitModel, _check_cv_args, _predict, cross_validate
from mixmio.api.path import check_lmer_args, path_from_prepared, resolve_grid
from mixmio.problem import family as fam
from mixmio.problem.glmer_checks import resolve_weights
from mixmio.results.cv import CVResult
from mixmio.results.path import PathResult

__all__ = ["glmer_path", "cv_glmer", "GLMER_ARGS"]

#: the keyword arguments of mio_glmer a path (and a CV) passes through
GLMER_ARGS = ("weights", "ridge", "solver", "time_limit", "mip_gap", "na_action",
              "random_state", "verbose", "constraints")

_WEIGHTS_COLUMN = "(weights)"


def _check_args(kwargs: Mapping[str, Any], where: str) -> dict:
    return check_lmer_args(kwargs, where, GLMER_ARGS, "mio_glmer")


def _settings_and_extra(family: str, kw: dict):
    from mixmio.api._glmer import glmer_settings
    from mixmio.problem.glmer_checks import check_family

    family = check_family(family)
    extra = (family, kw.pop("weights", None), kw.get("ridge", "auto"))
    settings = glmer_settings(**{a: kw[a] for a in ("ridge", "solver", "time_limit",
                                                    "mip_gap", "random_state", "verbose")
                                 if a in kw})
    return settings, extra


# --------------------------------------------------------------------- the model for CV
def _prepare(formula, data, na_action, constraints, extra):
    from mixmio.api._glmer import glmer_prepare

    family, weights, ridge = extra
    return glmer_prepare(formula, data, family, weights, na_action, constraints, ridge)


def _fit(prepared, k, settings, base=None, warm=None):
    from mixmio.api._glmer import glmer_fit

    return glmer_fit(prepared, k, settings, base=base, warm=warm)


def _target(prepared, rows):
    return prepared.y[rows], prepared.weights[rows]


def _deviance(fit, test, target, predict_new, predict_kw) -> float:
    """Mean deviance per held-out row of the predicted means."""
    y, w = target
    mu = np.asarray(_predict(fit, test, predict_new, predict_kw), dtype=float)
    good = np.isfinite(mu)
    if fit.family == "binomial":
        eta = fam.link("binomial", np.clip(mu[good], 1e-12, 1 - 1e-12))
    else:
        eta = np.log(np.maximum(mu[good], 1e-300))
    dev = 2.0 * fam.loss(fit.family, eta, y[good], w[good])
    return float(np.mean(dev))


GLMER_MODEL = FitModel("mio_glmer", _prepare, _fit, _target, _deviance, metric="deviance")


# --------------------------------------------------------------------- front doors
def glmer_path(formula: str, data: pd.DataFrame,
               k: Sequence[int] | Mapping[str, Sequence[int] | int] | None = None,
               family: str = "binomial", **mio_glmer_args) -> PathResult:
    """Fit :func:`mixmio.mio_glmer` over a grid of caps, warm-started along the path.

    As :func:`mixmio.lmer_path`: the design and the response checks run once, each cap
    starts from the previous cap's support, every point is certified as a single fit is.

    Parameters
    ----------
    formula, data, family : as in :func:`mixmio.mio_glmer`.
    k : None (the seed paper's fractions of K), a list of ints, or a dict of per-column
        lists, as in :func:`mixmio.lmer_path`.
    **mio_glmer_args : ``weights``, ``ridge``, ``solver``, ``time_limit`` (per cap),
        ``mip_gap``, ``na_action``, ``random_state``, ``verbose``, ``constraints``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 25)
    >>> df = pd.DataFrame({"y": rng.poisson(np.where(g < 2, 6.0, 2.0)), "g": g})
    >>> path = mixmio.glmer_path("y ~ 1 + (1 | g)", df, k=[0, 1, 2, 4], family="poisson")
    >>> path.table[["k", "status", "n_selected"]].values.tolist()
    [[0, 'optimal', 0], [1, 'optimal', 1], [2, 'optimal', 2], [4, 'optimal', 4]]
    """
    from mixmio._checks import as_frame

    kw = _check_args(mio_glmer_args, "glmer_path")
    na_action = kw.pop("na_action", "drop")
    constraints = kw.pop("constraints", ())
    settings, extra = _settings_and_extra(family, kw)
    prepared = _prepare(formula, as_frame(data), na_action, constraints, extra)
    grid = resolve_grid(prepared.design, k)
    return path_from_prepared(prepared, grid, settings, formula, fit_one=_fit)


def cv_glmer(formula: str, data: pd.DataFrame,
             k: Sequence[int] | Mapping[str, Sequence[int] | int] | None = None,
             family: str = "binomial", *, cv: str | Any = "blocked", folds: int = 5,
             rule: str = "min", predict_new: str = "soft",
             cluster_features: Sequence[str] | None = None,
             random_state: int | np.random.Generator | None = None, n_jobs: int | None = None,
             progress: bool = False, **mio_glmer_args) -> CVResult:
    """Choose the caps k of :func:`mixmio.mio_glmer` by cross-validated deviance.

    As :func:`mixmio.cv_lmer`, with the held-out score the mean deviance per row of the
    predicted means (binomial or Poisson; ``predict_new`` decides held-out clusters under
    ``cv="blocked"``).  ``weights`` given as values (not a column name) are split with the
    rows.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 25)
    >>> df = pd.DataFrame({"y": rng.poisson(np.where(g < 3, 6.0, 2.0)), "g": g})
    >>> cv = mixmio.cv_glmer("y ~ 1 + (1 | g)", df, k=[0, 3, 6], family="poisson",
    ...                      cv="within", random_state=0)
    >>> cv.metric, list(cv.table["k"])
    ('deviance', [0, 3, 6])
    """
    from mixmio._checks import as_frame

    kw = _check_args(mio_glmer_args, "cv_glmer")
    na_action = kw.pop("na_action", "drop")
    constraints = kw.pop("constraints", ())
    seed = _check_cv_args(cv, folds, rule, predict_new, progress, n_jobs, random_state)
    if "random_state" not in kw:
        kw["random_state"] = seed
    data = as_frame(data)
    w = kw.get("weights")
    if w is not None and not isinstance(w, str):
        # values travel with their rows through the folds (checked as mio_glmer checks them)
        w, _, _ = resolve_weights(w, data, "drop")
        data = data.assign(**{_WEIGHTS_COLUMN: w})
        kw["weights"] = _WEIGHTS_COLUMN
    settings, extra = _settings_and_extra(family, kw)
    return cross_validate(GLMER_MODEL, formula, data, k, settings=settings,
                          na_action=na_action, constraints=constraints, extra=extra, cv=cv,
                          folds=folds, rule=rule, predict_new=predict_new,
                          cluster_features=cluster_features, seed=seed, n_jobs=n_jobs,
                          progress=progress)
