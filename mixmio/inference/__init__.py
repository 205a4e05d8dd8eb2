"""Inference for sparse mixed-model fits: bootstrap, stability selection, significance report.

Every refit (bootstrap replicate, jackknife fit, half-sample) re-runs the selection through
:func:`mixmio.solvers.solve` and runs through joblib (``n_jobs``; a Dask cluster under
``joblib.parallel_config(backend="dask")``).  Results are identical for any ``n_jobs`` and
backend given ``random_state``.  Under a Dask backend pass ``n_jobs=-1`` (every worker);
``n_jobs=1`` runs in the calling process whatever the backend.

Fits are immutable: ``fit.bootstrap(...)`` leaves ``fit`` unchanged.  The fit whose
``summary()`` shows bootstrap SE, interval and selection frequency (fixed effects, and a
"Selected clusters (bootstrap)" section) is ``fit.with_bootstrap(boot)``, also available as
``boot.fit``.

Importing this package registers the fits' delegating methods (``fit.bootstrap()``,
``fit.stability()``, the plots) in :mod:`mixmio.results._methods`; ``import mixmio`` does.

>>> import mixmio
>>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
...                       mixmio.datasets.load("sleepstudy"), k=3)
>>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
>>> boot.n_ok
20
"""

from mixmio.inference.bootstrap import BootstrapResult, bootstrap
from mixmio.inference.glmer import bootstrap_glmer, stability_glmer
from mixmio.inference.plots import plot_effects
from mixmio.inference.report import BootstrapReport
from mixmio.inference.stability import StabilityResult, stability
from mixmio.inference.subset_bootstrap import (
           SubsetBootstrapReport,
           SubsetBootstrapResult,
           subset_bootstrap,
)

__all__ = ["BootstrapReport", "BootstrapResult", "StabilityResult", "SubsetBootstrapReport",
           "SubsetBootstrapResult", "bootstrap", "bootstrap_glmer", "plot_effects", "stability",
           "stability_glmer", "subset_bootstrap"]
